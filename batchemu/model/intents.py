"""Cancel and terminate, recorded on the job by the API and carried out here: at once by the handler that
recorded them for what needs only the store, and by the scheduler's passes for the rest.

CancelJob acts on SUBMITTED, PENDING and RUNNABLE jobs only (a STARTING or RUNNING job is left alone, as
AWS does); TerminateJob fails queued jobs too, and stops a job on a host: the on-host pass sends the stop
again until the container has exited. On an array parent either reaches every child; the parent ends when
its children have (arrays.roll_up), with the caller's reason.
"""

from __future__ import annotations

from batchemu.model import states
from batchemu.store import Tx

BATCH = 20_000


def carry_out(tx: Tx, now: int) -> bool:
    """Act on every recorded intent; whether any job changed."""
    changed = False
    for _ in range(3):  # a parent's intent marks its children, which this loop then serves
        rows = tx.jobs_with_intent(BATCH)
        if not rows:
            break
        light: dict[tuple[str, str], list[str]] = {}
        for row in rows:
            intent, reason = row["intent"], row["intent_reason"] or ""
            if row["status"] in states.FINISHED:
                tx.clear_intent(row["job_id"])
                continue
            changed = True
            if row["array_size"] is not None:
                _mark_parent(tx, row, intent, reason)
                continue
            if row["status"] in states.QUEUED and not row["has_doc"]:
                light.setdefault((intent, reason), []).append(row["job_id"])
                continue
            job = tx.get_job(row["job_id"])
            flag = "isCancelled" if intent == "cancel" else "isTerminated"
            if job["status"] in states.QUEUED:
                states.transition(job, states.FAILED, now, reason)
                job[flag] = True
            elif intent == "terminate":
                # The on-host pass stops the container; the attempt ends with this reason.
                states.internal(job)["terminateReason"] = reason
                job["isTerminated"] = True
            tx.update_job(job)
            tx.clear_intent(row["job_id"])
        for (intent, reason), job_ids in light.items():
            flag = "is_cancelled" if intent == "cancel" else "is_terminated"
            states.move_rows(tx, job_ids, states.QUEUED, states.FAILED, now, reason, **{flag: 1})
    return changed


def _mark_parent(tx: Tx, row, intent: str, reason: str) -> None:
    tx.set_intent("parent_id = ?", (row["job_id"],), intent, reason)
    parent = tx.get_job(row["job_id"])
    states.internal(parent)["intentReason"] = reason
    parent["isCancelled" if intent == "cancel" else "isTerminated"] = True
    tx.update_job(parent)
    tx.clear_intent(row["job_id"])
