"""The job state machine as data: which transitions exist, and the one function that performs them.

`transition` moves one job's document, and notes the change on it for the event outbox, which the store fills
in the transaction that writes the document (batchemu.store.event_outbox). Two bulk moves reach the store's fast paths, checked against the
same table first: `move_rows` (rows without a document: array children that never started) and
`queue_ready_submitted` (SUBMITTED -> PENDING -> RUNNABLE of every job that waits for nothing, without
decoding a document), each recording its events too. Nothing else calls those store methods
(tests/test_job_states.py checks).
"""

from __future__ import annotations

from collections.abc import Iterable

from batchemu.store import Tx

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

# A node of a multi-node job starts over at RUNNABLE, from wherever the parent's last attempt left it, when
# the parent is retried (batchemu.model.multinode).
NODE_TRANSITIONS: dict[str, frozenset[str]] = {
    status: targets if status == RUNNABLE else targets | {RUNNABLE} for status, targets in TRANSITIONS.items()}

ACTIVE = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING)
QUEUED = (SUBMITTED, PENDING, RUNNABLE)  # CancelJob acts on these only, as AWS does
ON_HOST = (STARTING, RUNNING)
FINISHED = (SUCCEEDED, FAILED)
SERVICE_ACTIVE = tuple(status for status in SERVICE_TRANSITIONS if status not in FINISHED)


class IllegalTransition(Exception):
    pass


def internal(job: dict) -> dict:
    """Our bookkeeping inside a stored job document (never serialized: not in the output shape)."""
    return job.setdefault("batchemu", {})


def entered_at(job: dict) -> int:
    """Epoch ms at which the job entered its current status."""
    history = internal(job).get("transitions") or [[job["status"], job["createdAt"]]]
    return history[-1][1]


def check(was: str, status: str, table: dict[str, frozenset[str]] = TRANSITIONS) -> None:
    """IllegalTransition unless the table has the move `was` -> `status`."""
    if status not in table[was]:
        raise IllegalTransition(f"{was} -> {status}")


def transition(job: dict, status: str, now: int, reason: str | None = None,
               table: dict[str, frozenset[str]] = TRANSITIONS) -> None:
    """Move `job` to `status`, keeping the time of every transition; reject moves the table lacks (service
    jobs pass their own table)."""
    if status not in table[job["status"]]:
        raise IllegalTransition(f"job {job['jobId']}: {job['status']} -> {status}")
    job["status"] = status
    info = internal(job)
    info.setdefault("transitions", []).append([status, now])
    info.setdefault("events", []).append([status, now, False])  # taken off by the store, into its outbox
    if status in FINISHED:
        # Clients (Metaflow) take stoppedAt > 0 as "done", cancelled-in-queue jobs included.
        job["stoppedAt"] = now
    if reason is not None:
        job["statusReason"] = reason


def move_rows(tx: Tx, job_ids: list[str], was: Iterable[str], status: str, now: int, reason: str | None = None,
              **flags: int) -> None:
    """transition() in bulk for rows without a document (their columns are their whole state), each in one
    of the statuses `was`; every move `was` -> `status` must be in the table. `flags`: is_cancelled,
    is_terminated."""
    for before in set(was):
        check(before, status)
    if job_ids:
        tx.arrays.set_children_status(job_ids, status, now, reason, **flags)
        tx.events.record_rows(job_ids, status, now)


def queue_ready_submitted(tx: Tx, now: int) -> int:
    """SUBMITTED -> PENDING -> RUNNABLE in one store statement for every ordinary job that waits for nothing
    (no dependsOn, not an array, not a node), as transition() twice would move each; how many moved."""
    check(SUBMITTED, PENDING)
    check(PENDING, RUNNABLE)
    return tx.jobs.queue_ready_submitted(now)
