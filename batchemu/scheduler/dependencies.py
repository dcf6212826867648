"""Jobs waiting in the queue: SUBMITTED -> PENDING, and PENDING -> RUNNABLE once every job they depend on
has SUCCEEDED, or FAILED (without running) once one of them has FAILED.

Dependencies are rows of an edge table: a job ending is an index look-up for its dependents, whatever
kind the edge is (plain, N_TO_N between same-index children, SEQUENTIAL between neighbouring children).
An array child also waits for whatever its parent waits for.
"""

from __future__ import annotations

from collections.abc import Callable

from batchemu import job_states as states
from batchemu.store import Tx

DEPENDENCY_FAILED = "Dependent Job failed"


def dependency_failed(job_id: str) -> str:
    return f"{DEPENDENCY_FAILED}: {job_id} FAILED"


def advance(tx: Tx, now: int, dwell_ms: int, ready: Callable[[dict, int], bool]) -> bool:
    """One step for every waiting job whose dwell is over; whether any moved."""
    moved = False
    for _, job in tx.query_jobs({}, statuses=[states.SUBMITTED]):
        if ready(job, now):
            states.transition(job, states.PENDING, now)
            tx.update_job(job)
            moved = True
    runnable_rows, failed_rows = [], {}
    for job_id, has_doc, failed_dependency, waiting in tx.pending_verdicts(now - dwell_ms):
        if failed_dependency is None and waiting:
            continue
        moved = True
        if not has_doc:
            if failed_dependency is None:
                runnable_rows.append(job_id)
            else:
                failed_rows.setdefault(failed_dependency, []).append(job_id)
            continue
        job = tx.get_job(job_id)
        if failed_dependency is None:
            states.transition(job, states.RUNNABLE, now)
        else:
            states.transition(job, states.FAILED, now, dependency_failed(failed_dependency))
        tx.update_job(job)
    tx.set_rows_status(runnable_rows, states.RUNNABLE, now)
    for dependency, job_ids in failed_rows.items():
        tx.set_rows_status(job_ids, states.FAILED, now, dependency_failed(dependency))
    return moved
