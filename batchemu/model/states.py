"""The job state machine as data: which transitions exist, and one function that performs them."""

from __future__ import annotations

SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED = (
    "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")

# Forward order every job walks; FAILED may cut it short (cancel, failed dependency, failed start),
# and a retried attempt goes back to RUNNABLE. An array parent goes SUBMITTED -> PENDING -> SUCCEEDED or
# FAILED when its children have ended.
TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({PENDING, FAILED}),
    PENDING: frozenset({RUNNABLE, FAILED, SUCCEEDED}),  # an array parent ends from PENDING
    RUNNABLE: frozenset({STARTING, FAILED}),
    STARTING: frozenset({RUNNING, RUNNABLE, FAILED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, RUNNABLE}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
}

# Service jobs (SageMaker Training through Batch) add SCHEDULED, "handed to SageMaker", between RUNNABLE and
# STARTING; a scheduled, starting or running job goes back to RUNNABLE when preempted or retried.
SCHEDULED = "SCHEDULED"
SERVICE_TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({PENDING, FAILED}),
    PENDING: frozenset({RUNNABLE, FAILED}),
    RUNNABLE: frozenset({SCHEDULED, FAILED}),
    SCHEDULED: frozenset({STARTING, RUNNABLE, FAILED}),
    STARTING: frozenset({RUNNING, RUNNABLE, FAILED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, RUNNABLE}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
}
SERVICE_ON_HOST = (SCHEDULED, STARTING, RUNNING)

ACTIVE = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING)
QUEUED = (SUBMITTED, PENDING, RUNNABLE)  # CancelJob acts on these only, as AWS does
ON_HOST = (STARTING, RUNNING)
FINISHED = (SUCCEEDED, FAILED)


class IllegalTransition(Exception):
    pass


def internal(job: dict) -> dict:
    """Our bookkeeping inside a stored job document (never serialized: not in the output shape)."""
    return job.setdefault("batchemu", {})


def entered_at(job: dict) -> int:
    """Epoch ms at which the job entered its current status."""
    history = internal(job).get("transitions") or [[job["status"], job["createdAt"]]]
    return history[-1][1]


def transition(job: dict, status: str, now: int, reason: str | None = None,
               table: dict[str, frozenset[str]] = TRANSITIONS) -> None:
    """Move `job` to `status`, keeping the time of every transition; reject moves the table lacks (service
    jobs pass their own table)."""
    if status not in table[job["status"]]:
        raise IllegalTransition(f"job {job['jobId']}: {job['status']} -> {status}")
    job["status"] = status
    internal(job).setdefault("transitions", []).append([status, now])
    if status in FINISHED:
        # Clients (Metaflow) take stoppedAt > 0 as "done", cancelled-in-queue jobs included.
        job["stoppedAt"] = now
    if reason is not None:
        job["statusReason"] = reason
