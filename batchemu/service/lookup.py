"""Finding a named resource by its name or ARN, describing pages of them, and the CREATING/UPDATING/
DELETING status bookkeeping that compute environments and job queues share."""

from __future__ import annotations

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model.resources import (
    CREATING,
    DELETING,
    DISABLED,
    GOING,
    JOB_QUEUE,
    TRANSIENT,
    UPDATING,
    VALID,
)
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.store import Tx

UNFINISHED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
SERVICE_UNFINISHED = (*UNFINISHED, "SCHEDULED")


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
            rows = sorted((tx.resource_seq(arn), doc) for arn, doc in found.items())
            rows = [(seq, doc) for seq, doc in rows if seq > after][:limit + 1]
        else:
            rows = tx.list_resources(kind, after_seq=after, limit=limit + 1)
    page = rows[:limit]
    result: dict = {member: [doc for _, doc in page]}
    if len(rows) > limit:
        result["nextToken"] = encode_token(page[-1][0])
    return result


def queue_deletion_due(ctx: Context, tx: Tx, queue: dict) -> bool:
    """Whether a queue is DELETING and may leave the store now: its dwell is over and no job in it is
    still unfinished (AWS terminates a deleted queue's jobs before the queue goes)."""
    return (queue["status"] == DELETING and settled(ctx, queue)
            and not tx.query_jobs({"job_queue_arn": queue["jobQueueArn"]}, statuses=list(UNFINISHED), limit=1,
                                  rows_only=True)
            and not tx.count_service_jobs(SERVICE_UNFINISHED, queue["jobQueueArn"]))


def queues_using(ctx: Context, tx: Tx, compute_environment_arn: str) -> bool:
    """Whether a job queue that is not on its way out orders this compute environment."""
    return any(compute_environment_arn in (e["computeEnvironment"] for e in queue.get("computeEnvironmentOrder") or [])
               for _, queue in tx.list_resources(JOB_QUEUE) if not queue_deletion_due(ctx, tx, queue))


def settle(ctx: Context, kind: str, arn_key: str, name_key: str, healthy: str | None = None) -> None:
    """The reconcile step of a resource family with no further dependants: due CREATING/UPDATING become
    VALID, due DELETING leave the store."""
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        for _, doc in tx.list_resources(kind):
            if doc["status"] not in TRANSIENT or not settled(ctx, doc):
                continue
            if doc["status"] == DELETING:
                tx.delete_resource(doc[arn_key])
            else:
                set_status(doc, VALID, now, healthy)
                tx.put_resource(kind, doc[arn_key], doc[name_key], doc)
