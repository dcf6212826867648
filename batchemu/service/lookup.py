"""Finding a named resource by its name or ARN, and the CREATING/UPDATING/DELETING status bookkeeping
that compute environments and job queues share."""

from __future__ import annotations

from batchemu.service.context import Context
from batchemu.store import Tx

# Statuses a resource passes through on its way to VALID (or out of the store, for DELETING).
TRANSIENT = ("CREATING", "UPDATING", "DELETING")


def find(tx: Tx, kind: str, name_or_arn: str) -> dict | None:
    """The resource of `kind` with this ARN, or else with this name (names are unique per kind)."""
    if name_or_arn.startswith("arn:"):
        return tx.get_resource(kind, name_or_arn)
    found = tx.find_resources(kind, name_or_arn)
    return found[0] if found else None


def set_status(doc: dict, status: str, now: int, reason: str | None = None) -> None:
    """Move a resource document to `status`, remembering when (for the dwell of `settled`)."""
    doc["status"] = status
    if reason is None:
        doc.pop("statusReason", None)
    else:
        doc["statusReason"] = reason
    doc.setdefault("batchemu", {})["statusChangedAt"] = now


def settled(ctx: Context, doc: dict) -> bool:
    """Whether the reconcile loop may finish the resource's transient status now.

    With the default state_dwell of 0 a transition is due at once, so handlers treat a due transition
    as done: a client that disables a queue and deletes it straight away never races the scheduler.
    """
    changed = doc.get("batchemu", {}).get("statusChangedAt", 0)
    return ctx.clock() >= changed + int(ctx.config.state_dwell * 1000)
