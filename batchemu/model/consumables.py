"""Consumable resource arithmetic: what is free of a resource, and what jobs take and give back.
`inUseQuantity` is kept on the resource document; the scheduler moves it as attempts begin and end (`hold`,
`release`). A resource deleted while jobs hold it may be re-created under the same name and ARN: it is then
"the same resource" for jobs still waiting, but what the earlier jobs held is not given back to it
(resource-aware-scheduling-how-to-delete.html), so each hold remembers the resource's generation."""

from __future__ import annotations

from batchemu.model.resources import CONSUMABLE_RESOURCE
from batchemu.store import Tx


def save(tx: Tx, doc: dict) -> None:
    """Store a consumable resource document."""
    tx.resources.put(CONSUMABLE_RESOURCE, doc["consumableResourceArn"], doc["consumableResourceName"], doc)


def available(doc: dict) -> int:
    """The quantity of a resource no job holds (never below 0)."""
    return max(doc["totalQuantity"] - doc["inUseQuantity"], 0)


def adjust_in_use(tx: Tx, arn: str, delta: int) -> dict | None:
    """Add `delta` (negative to release) to a resource's inUseQuantity, never below 0; the updated doc,
    or None when the resource no longer exists."""
    doc = tx.resources.get(CONSUMABLE_RESOURCE, arn)
    if doc is None:
        return None
    doc["inUseQuantity"] = max(doc["inUseQuantity"] + delta, 0)
    save(tx, doc)
    return doc


def use_up(tx: Tx, arn: str, quantity: int) -> None:
    """A NON_REPLENISHABLE quantity a job held is gone for good: take it off the total."""
    doc = tx.resources.get(CONSUMABLE_RESOURCE, arn)
    if doc is not None:
        doc["totalQuantity"] = max(doc["totalQuantity"] - quantity, 0)
        save(tx, doc)


def hold(tx: Tx, needs: dict[str, int]) -> dict[str, int]:
    """Take what an attempt needs (resource ARN -> quantity): resource ARN -> generation of each resource
    held (its creation order, new when it is deleted and created again)."""
    generations: dict[str, int] = {}
    for arn, quantity in needs.items():
        if adjust_in_use(tx, arn, quantity) is not None:
            generations[arn] = tx.resources.seq(arn) or 0
    return generations


def release(tx: Tx, needs: dict[str, int], generations: dict[str, int] | None) -> None:
    """Give back what an attempt held (a NON_REPLENISHABLE quantity is used up). A resource deleted since
    the hold is ignored, even when created again since (`generations` None: held before generations were
    kept, so given back as before)."""
    for arn, quantity in needs.items():
        if generations is not None and (arn not in generations or tx.resources.seq(arn) != generations[arn]):
            continue
        doc = adjust_in_use(tx, arn, -quantity)
        if doc is not None and doc.get("resourceType") == "NON_REPLENISHABLE":
            use_up(tx, arn, quantity)
