"""Resource kinds and statuses: the store's `kind` of each Batch resource (also the resource type in its ARN)
and the statuses a compute environment, job queue, service environment or quota share walks through.

Handlers (service/) set CREATING, UPDATING or DELETING; the scheduler's status reconcilers move a resource on
to VALID, or out of the store.
"""

from __future__ import annotations

from batchemu.context import Context
from batchemu.model import states
from batchemu.store import Tx

COMPUTE_ENVIRONMENT = "compute-environment"
JOB_QUEUE = "job-queue"
JOB_DEFINITION = "job-definition"
SCHEDULING_POLICY = "scheduling-policy"
CONSUMABLE_RESOURCE = "consumable-resource"
SERVICE_ENVIRONMENT = "service-environment"
QUOTA_SHARE = "quota-share"

CREATING, UPDATING, DELETING, DELETED, VALID, INVALID = (
    "CREATING", "UPDATING", "DELETING", "DELETED", "VALID", "INVALID")
# Statuses a resource passes through on its way to VALID (or out of the store, for DELETING).
TRANSIENT = (CREATING, UPDATING, DELETING)
GOING = (DELETING, DELETED)   # on its way out: not to be updated or ordered by a job queue
USABLE = (VALID, UPDATING)    # a compute environment, queue or service environment in these takes jobs
ENABLED, DISABLED = "ENABLED", "DISABLED"


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


def queue_deletion_due(ctx: Context, tx: Tx, queue: dict) -> bool:
    """Whether a queue is DELETING and may leave the store now: its dwell is over and no job in it is
    still unfinished (AWS terminates a deleted queue's jobs before the queue goes)."""
    return (queue["status"] == DELETING and settled(ctx, queue)
            and not tx.jobs.query({"job_queue_arn": queue["jobQueueArn"]}, statuses=list(states.ACTIVE), limit=1,
                                  rows_only=True)
            and not tx.service_jobs.count(states.SERVICE_ACTIVE, queue["jobQueueArn"]))
