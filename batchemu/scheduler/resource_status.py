"""The status reconcilers of Batch's resources: the handlers (service/) set CREATING, UPDATING or DELETING,
and on each pass that follows a resource write the loop runs these to finish the transitions that are due
(batchemu.model.resources.settled): CREATING/UPDATING become VALID, DELETING leaves the store, once a
deleted job queue or quota share has had its unfinished jobs terminated.

`RECONCILERS` names them by the resource kind each one settles, in the order a pass runs them.
"""

from __future__ import annotations

from collections.abc import Callable

from batchemu.context import Context
from batchemu.model import intents
from batchemu.model.resources import (
    COMPUTE_ENVIRONMENT,
    DELETING,
    JOB_QUEUE,
    QUOTA_SHARE,
    SERVICE_ENVIRONMENT,
    TRANSIENT,
    VALID,
    queue_deletion_due,
    set_status,
    settled,
)

COMPUTE_ENVIRONMENT_HEALTHY = "ComputeEnvironment Healthy"
JOB_QUEUE_HEALTHY = "JobQueue Healthy"
QUEUE_DELETED = "Job queue deleted"
SHARE_DELETED = "Quota share deleted"  # our wording: AWS documents that a deleted share's jobs are terminated


def _settle(ctx: Context, kind: str, arn_key: str, name_key: str, healthy: str | None = None) -> None:
    """The reconcile step of a resource family with no further dependants: due CREATING/UPDATING become
    VALID, due DELETING leave the store."""
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        for _, doc in tx.resources.of_kind(kind):
            if doc["status"] not in TRANSIENT or not settled(ctx, doc):
                continue
            if doc["status"] == DELETING:
                tx.resources.delete(doc[arn_key])
            else:
                set_status(doc, VALID, now, healthy)
                tx.resources.put(kind, doc[arn_key], doc[name_key], doc)


def settle_compute_environments(ctx: Context) -> None:
    """Due CREATING/UPDATING compute environments become VALID, due DELETING ones leave the store."""
    _settle(ctx, COMPUTE_ENVIRONMENT, "computeEnvironmentArn", "computeEnvironmentName", COMPUTE_ENVIRONMENT_HEALTHY)


def settle_service_environments(ctx: Context) -> None:
    """Due CREATING/UPDATING service environments become VALID, due DELETING ones leave the store."""
    _settle(ctx, SERVICE_ENVIRONMENT, "serviceEnvironmentArn", "serviceEnvironmentName")


def settle_job_queues(ctx: Context) -> None:
    """Due CREATING/UPDATING job queues become VALID; a DELETING queue has its jobs terminated and leaves
    the store once none is unfinished."""
    now = ctx.clock()
    terminated = False
    with ctx.store.transaction() as tx:
        for _, doc in tx.resources.of_kind(JOB_QUEUE):
            if doc["status"] == DELETING:
                if settled(ctx, doc):
                    terminated = intents.terminate_queue(tx, doc["jobQueueArn"], QUEUE_DELETED, now) or terminated
                if queue_deletion_due(ctx, tx, doc):
                    tx.resources.delete(doc["jobQueueArn"])
            elif doc["status"] in TRANSIENT and settled(ctx, doc):
                set_status(doc, VALID, now, JOB_QUEUE_HEALTHY)
                tx.resources.put(JOB_QUEUE, doc["jobQueueArn"], doc["jobQueueName"], doc)
    if terminated:
        ctx.notify()  # the scheduler carries the terminations out


def settle_quota_shares(ctx: Context) -> None:
    """Due CREATING/UPDATING quota shares become VALID, a DELETING one leaves the store once its unfinished
    service jobs are terminated; the shares of a job queue that has left the store go with it."""
    with ctx.store.transaction() as tx:
        for _, doc in tx.resources.of_kind(QUOTA_SHARE):
            if tx.resources.get(JOB_QUEUE, doc["jobQueueArn"]) is None:
                tx.resources.delete(doc["quotaShareArn"])
            elif doc["status"] == DELETING and settled(ctx, doc):
                intents.terminate_quota_share(tx, doc["jobQueueArn"], doc["quotaShareName"], SHARE_DELETED,
                                              ctx.clock())
    _settle(ctx, QUOTA_SHARE, "quotaShareArn", "quotaShareName")


# Resource kind -> its reconciler, in the order of a pass (a quota share after its job queue, so that the shares
# of a queue that left the store go in the same pass).
RECONCILERS: dict[str, Callable[[Context], None]] = {
    COMPUTE_ENVIRONMENT: settle_compute_environments,
    SERVICE_ENVIRONMENT: settle_service_environments,
    JOB_QUEUE: settle_job_queues,
    QUOTA_SHARE: settle_quota_shares,
}
