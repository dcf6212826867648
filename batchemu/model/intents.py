"""Cancel and terminate, for every kind of job: the one path from an API call (CancelJob, TerminateJob,
TerminateServiceJob, their bulk forms), a deleted job queue or quota share, or a queue's time limit, to
the job's document.

`apply` is what either does to a job: a queued job FAILS at once with the caller's reason (isCancelled or
isTerminated); a job on a host is left to the scheduler's on-host pass when terminated, which stops its
container until it has exited and ends the attempt with the reason, and is left alone when cancelled (a
STARTING or RUNNING job, as AWS does). Container jobs record the intent on their row first (`record`,
`terminate_queue`), and `carry_out` applies it: at once by the handler that recorded it, and by the
scheduler's passes for the rest. On an array parent either reaches every child; the parent ends when its
children have (arrays.roll_up), with the caller's reason. Service jobs, in a table of their own, are
terminated at once (`terminate_service_job`).
"""

from __future__ import annotations

from batchemu.model import states
from batchemu.store import JobRow, Tx

CANCEL, TERMINATE = "cancel", "terminate"
BATCH = 20_000
_FLAGS = {CANCEL: "isCancelled", TERMINATE: "isTerminated"}


def apply(job: dict, intent: str, reason: str, now: int, *, service: bool = False) -> None:
    """Cancel or terminate an unfinished job's document (a service job's with `service`); the caller stores it."""
    on_host = states.SERVICE_ON_HOST if service else states.ON_HOST
    if job["status"] not in on_host:
        states.transition(job, states.FAILED, now, reason,
                          table=states.SERVICE_TRANSITIONS if service else states.TRANSITIONS)
        job[_FLAGS[intent]] = True
    elif intent == TERMINATE:
        # The on-host pass stops the container; the attempt ends with this reason.
        states.internal(job)["terminateReason"] = reason
        job["isTerminated"] = True


def record(tx: Tx, job_id: str, intent: str, reason: str) -> bool:
    """Record cancel or terminate on a job, for carry_out; whether the job exists."""
    if tx.jobs.row(job_id) is None:
        return False
    tx.intents.record(job_id, intent, reason)
    return True


def terminate_queue(tx: Tx, queue_arn: str, reason: str, now: int) -> bool:
    """Terminate every unfinished job of a deleted job queue, service jobs at once and the others through
    their rows, as AWS does; whether any newly was."""
    service = [terminate_service_job(tx, job, reason, now) for _, job in tx.service_jobs.query(
        queue_arn=queue_arn, statuses=list(states.SERVICE_ACTIVE), limit=10_000)]
    return any(service) | (tx.intents.terminate_queue(queue_arn, reason) > 0)


def terminate_service_job(tx: Tx, job: dict, reason: str, now: int) -> bool:
    """TerminateServiceJob; whether the job was not finished or terminated already."""
    if job["status"] in states.FINISHED or job.get("isTerminated"):
        return False
    apply(job, TERMINATE, reason, now, service=True)
    tx.service_jobs.update(job)
    return True


def terminate_quota_share(tx: Tx, queue_arn: str, share_name: str, reason: str, now: int) -> None:
    """Terminate the unfinished service jobs of a deleted quota share."""
    for _, job in tx.service_jobs.query(queue_arn=queue_arn, quota_share=share_name, statuses=list(states.SERVICE_ACTIVE),
                                        limit=10_000):
        terminate_service_job(tx, job, reason, now)


def carry_out(tx: Tx, now: int) -> bool:
    """Act on every intent recorded on a row; whether any job changed."""
    changed = False
    for _ in range(3):  # a parent's intent marks its children, which this loop then serves
        rows = tx.intents.pending(BATCH)
        if not rows:
            break
        light: dict[tuple[str, str], list[str]] = {}
        for row in rows:
            intent, reason = row["intent"], row["intent_reason"] or ""
            if row["status"] in states.FINISHED:
                tx.intents.clear(row["job_id"])
                continue
            changed = True
            if row["array_size"] is not None:
                _mark_parent(tx, row, intent, reason)
                continue
            if row["status"] in states.QUEUED and not row["has_doc"]:
                light.setdefault((intent, reason), []).append(row["job_id"])
                continue
            job = tx.jobs.require(row["job_id"])  # a row tx.intents.pending just read
            apply(job, intent, reason, now)
            tx.jobs.update(job)
            tx.intents.clear(row["job_id"])
        for (intent, reason), job_ids in light.items():
            flag = "is_cancelled" if intent == CANCEL else "is_terminated"
            states.move_rows(tx, job_ids, states.QUEUED, states.FAILED, now, reason, **{flag: 1})
    return changed


def _mark_parent(tx: Tx, row: JobRow, intent: str, reason: str) -> None:
    tx.intents.record_for_children(row["job_id"], intent, reason)
    parent = tx.jobs.require(row["job_id"])
    states.internal(parent)["intentReason"] = reason
    parent[_FLAGS[intent]] = True
    tx.jobs.update(parent)
    tx.intents.clear(row["job_id"])
