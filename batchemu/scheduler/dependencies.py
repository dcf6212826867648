"""Jobs waiting in the queue: SUBMITTED -> PENDING, and PENDING -> RUNNABLE once every job they depend on
has SUCCEEDED, or FAILED (without running) once one of them has FAILED.

Dependencies are rows of an edge table: a job ending is an index look-up for its dependents, whatever
kind the edge is (plain, N_TO_N between same-index children, SEQUENTIAL between neighbouring children).
An array child also waits for whatever its parent waits for. The nodes of a multi-node job follow their
parent (batchemu.model.multinode.follow_parents), not this.
"""

from __future__ import annotations

from collections.abc import Callable

from batchemu.model import states
from batchemu.store import Tx

DEPENDENCY_FAILED = "Dependent Job failed"


def dependency_failed(job_id: str) -> str:
    return f"{DEPENDENCY_FAILED}: {job_id} FAILED"


def _waits_for_nothing(job: dict) -> bool:
    """An ordinary job without dependencies: PENDING has nothing to wait for. (SubmitJob stores an edge
    for each dependsOn entry, and only array jobs take typed ones.)"""
    return not job.get("dependsOn") and not (job.get("arrayProperties") or {}).get("size")


def advance(tx: Tx, now: int, dwell_ms: int, ready: Callable[[dict, int], bool]) -> bool:
    """One step for every waiting job whose dwell is over; whether another pass may move more: a job
    failed (its dependents may fail next), or an array parent or child moved (arrays.roll_up, which ran
    before this, counts them). An ordinary job made RUNNABLE needs none: placement follows in this pass."""
    again = False
    if not dwell_ms:
        # Most jobs wait for nothing and need no dwell: moved in SQL, their documents never decoded here.
        states.queue_ready_submitted(tx, now)
    for _, job in tx.jobs.query({}, statuses=[states.SUBMITTED], nodes=False):
        if ready(job, now):
            states.transition(job, states.PENDING, now)
            # Straight on to RUNNABLE with one write, as pending_verdicts would find in this same pass.
            if _waits_for_nothing(job) and ready(job, now):
                states.transition(job, states.RUNNABLE, now)
                tx.jobs.update_status(job, was=states.SUBMITTED)  # nothing else of it changed on the wire
                continue
            again = again or bool((job.get("arrayProperties") or {}).get("size"))
            tx.jobs.update(job)
    runnable_rows: list[str] = []
    failed_rows: dict[str, list[str]] = {}
    for job_id, has_doc, failed_dependency, waiting in tx.dependencies.pending_verdicts(now - dwell_ms):
        if failed_dependency is None and waiting:
            continue
        again = again or failed_dependency is not None or not has_doc
        if not has_doc:
            if failed_dependency is None:
                runnable_rows.append(job_id)
            else:
                failed_rows.setdefault(failed_dependency, []).append(job_id)
            continue
        job = tx.jobs.require(job_id)  # a row pending_verdicts just read
        again = again or bool(states.internal(job).get("parentId"))
        if failed_dependency is None:
            states.transition(job, states.RUNNABLE, now)
        else:
            states.transition(job, states.FAILED, now, dependency_failed(failed_dependency))
        tx.jobs.update(job)
    states.move_rows(tx, runnable_rows, [states.PENDING], states.RUNNABLE, now)
    for dependency, job_ids in failed_rows.items():
        states.move_rows(tx, job_ids, [states.PENDING], states.FAILED, now, dependency_failed(dependency))
    return again
