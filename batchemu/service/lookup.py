"""Finding a named resource by its name or ARN, describing pages of them, and the delete rules that
compute environments, job queues, service environments and quota shares share."""

from __future__ import annotations

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model.resources import (
    CREATING,
    DISABLED,
    GOING,
    JOB_QUEUE,
    UPDATING,
    queue_deletion_due,
    settled,
)
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.store import Tx


def find(tx: Tx, kind: str, name_or_arn: str) -> dict | None:
    """The resource of `kind` with this ARN, or else with this name (names are unique per kind)."""
    if name_or_arn.startswith("arn:"):
        return tx.resources.get(kind, name_or_arn)
    found = tx.resources.find(kind, name_or_arn)
    return found[0] if found else None


def deletable(ctx: Context, doc: dict, what: str, name: str) -> bool:
    """The delete rules compute environments and job queues share: False when a deletion is already under
    way (deleting again is a no-op), ClientException while being modified or not DISABLED yet."""
    if doc["status"] in GOING:
        return False
    if doc["status"] in (CREATING, UPDATING) and not settled(ctx, doc):
        raise ClientException("Cannot delete, resource is being modified")
    if doc["state"] != DISABLED:
        raise ClientException(f"Cannot delete, {what} {name} must be DISABLED first")
    return True


def describe_page(ctx: Context, request: dict, *, kind: str, member: str, label: str, arn_key: str,
                  limit_max: int = 100) -> dict:
    """DescribeComputeEnvironments / DescribeJobQueues: the resources named in `request[member]` (names or
    ARNs; unknown ones left out), or every one, in creation order, a page of maxResults at a time."""
    refs = request.get(member) or []
    if len(refs) > limit_max:
        raise ClientException(f"{member} can contain at most {limit_max} names or ARNs")
    if refs and request.get("maxResults") is not None:
        raise ClientException(f"{label} and MaxResults cannot both be set")
    limit = page_size(request.get("maxResults"), default=limit_max, limit=limit_max)
    after = decode_token(request.get("nextToken"))
    with ctx.store.transaction() as tx:
        if refs:
            found = {doc[arn_key]: doc for doc in (find(tx, kind, ref) for ref in refs) if doc is not None}
            # Each was found in this same transaction, so each has its seq.
            rows = sorted((seq, doc) for arn, doc in found.items() if (seq := tx.resources.seq(arn)) is not None)
            rows = [(seq, doc) for seq, doc in rows if seq > after][:limit + 1]
        else:
            rows = tx.resources.of_kind(kind, after_seq=after, limit=limit + 1)
    page = rows[:limit]
    result: dict = {member: [doc for _, doc in page]}
    if len(rows) > limit:
        result["nextToken"] = encode_token(page[-1][0])
    return result


def queues_using(ctx: Context, tx: Tx, compute_environment_arn: str) -> bool:
    """Whether a job queue that is not on its way out orders this compute environment."""
    return any(compute_environment_arn in (e["computeEnvironment"] for e in queue.get("computeEnvironmentOrder") or [])
               for _, queue in tx.resources.of_kind(JOB_QUEUE) if not queue_deletion_due(ctx, tx, queue))
