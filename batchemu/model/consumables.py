"""Consumable resource arithmetic: what is free of a resource, and what jobs take and give back.
`inUseQuantity` is kept on the resource document; the scheduler moves it as attempts begin and end."""

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
