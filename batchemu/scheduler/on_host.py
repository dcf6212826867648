"""Jobs on a host: STARTING -> RUNNING once the container runs, the end of each attempt (succeed, retry or
fail), and stops for terminated or timed-out jobs, sent again until the container has exited."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from batchemu.model import attempts, states
from batchemu.scheduler import usage
from batchemu.store import Tx

log = logging.getLogger("batchemu.scheduler")

VANISHED_GRACE_MS = 1000  # a job that became RUNNING just before the listing may not be in it yet
RESTOP_MS = 15_000        # a stop whose container has not exited by then is sent again


@dataclass
class Work:
    """Engine calls one pass asks for (made after its transaction, never inside it)."""

    start: list[str] = field(default_factory=list)                   # job ids
    start_service: list[str] = field(default_factory=list)           # service job ids
    stop: list[tuple[str, str]] = field(default_factory=list)        # (job id, task id)


def record_exits(tx: Tx, exits) -> None:
    """Store each reported task exit on its attempt (never on a finished or another attempt)."""
    for exit in exits:
        attempt = tx.attempts.get(exit.job_id, exit.attempt)
        if attempt is None or not attempts.can_move(attempt, attempts.EXITED):
            continue
        tx.attempts.update(exit.job_id, exit.attempt, phase=attempts.EXITED, **attempts.exit_fields(exit),
                           container_id=attempt["container_id"] or exit.task_id)


def progress(tx: Tx, ctx, now_of, ready, busy, engine_up: bool, running: tuple[set, int] | None,
             work: Work) -> None:
    """One step for every job on a host."""
    for _, job in tx.jobs.query({}, statuses=list(states.ON_HOST)):
        if busy(job["jobId"]) or job.get("nodeProperties"):
            continue  # a multi-node parent runs no task of its own (batchemu.model.multinode)
        now = now_of()
        info = states.internal(job)
        attempt = tx.attempts.get(job["jobId"], info.get("attempt", 0))
        if attempt is None:  # placed by a server that crashed before recording it: place it again
            tx.attempts.insert(job["jobId"], info.get("attempt", 0), info.get("computeEnvironment"), now)
            attempt = tx.attempts.require(job["jobId"], info.get("attempt", 0))
        before = (job["status"], len(job.get("attempts") or []), repr(info), job.get("startedAt"))
        changes: dict = {}
        try:
            if job["status"] == states.STARTING:
                _starting(job, info, attempt, changes, now, ready, work, engine_up)
            if job["status"] == states.RUNNING:
                _running(job, info, {**attempt, **changes}, changes, now, ready, work, running)
        except Exception:  # one job's fault must not stop the pass for the others; it is tried again
            log.exception("progress of job %s failed", job["jobId"])
            continue
        save_attempt(tx, attempt, changes)
        if (job["status"], len(job.get("attempts") or []), repr(info), job.get("startedAt")) != before:
            if job["status"] not in states.ON_HOST:
                usage.attempt_ended(tx, ctx, job, now)
            tx.jobs.update(job)


def save_attempt(tx: Tx, attempt: dict, changes: dict) -> None:
    """Store what a pass changed on an attempt (`_delete`: a requeued attempt that never happened)."""
    if changes.pop("_delete", False):
        tx.attempts.delete(attempt["job_id"], attempt["attempt"])
    elif changes:
        tx.attempts.update(attempt["job_id"], attempt["attempt"], **changes)


def request_stop(job: dict, attempt: dict, changes: dict, now: int, work: Work) -> None:
    """Ask for a stop, again when an earlier one has not taken effect (the engine was busy or down)."""
    if now - (attempt.get("stop_sent_at") or -RESTOP_MS) >= RESTOP_MS:
        changes["stop_sent_at"] = now
        work.stop.append((job["jobId"], attempt["container_id"]))


def _finish(job: dict, attempt: dict, changes: dict, now: int, **end) -> None:
    attempts.finish_attempt(job, now, timed_out=bool(attempt.get("timed_out")), containers=attempt.get("containers"),
                            **end)
    changes.update(phase=attempts.ENDED, ended_at=now)


def _starting(job: dict, info: dict, attempt: dict, changes: dict, now: int, ready, work: Work,
              engine_up: bool) -> None:
    phase = attempt["phase"]
    if phase == attempts.REQUEUED:
        changes["_delete"] = True
        info["attempt"] -= 1
        states.transition(job, states.RUNNABLE, now)
    elif phase == attempts.START_FAILED:
        reason, status_reason = attempts.start_failure(attempt["start_error"])
        _finish(job, attempt, changes, now, exit_code=None, reason=reason, status_reason=status_reason)
    elif phase in (attempts.STARTED, attempts.EXITED):
        if info.get("terminateReason") and phase == attempts.STARTED:
            request_stop(job, attempt, changes, now, work)
        if ready(job, now):
            states.transition(job, states.RUNNING, now)
            job["startedAt"] = now
    elif info.get("terminateReason"):
        # Terminated before its container was ever created.
        _finish(job, attempt, changes, now, exit_code=None, reason=None, status_reason=info["terminateReason"])
    elif engine_up:
        work.start.append(job["jobId"])  # not started yet, or the start was lost (server restarted mid-start)


def _running(job: dict, info: dict, attempt: dict, changes: dict, now: int, ready, work: Work,
             running: tuple[set, int] | None) -> None:
    if attempt["phase"] == attempts.EXITED:
        if ready(job, now):
            exit_code, reason, status_reason = attempts.end_of(job, attempt)
            _finish(job, attempt, changes, now, exit_code=exit_code, reason=reason, status_reason=status_reason)
        return
    timeout = (job.get("timeout") or {}).get("attemptDurationSeconds")
    if timeout and not attempt.get("timed_out") and now - job.get("startedAt", now) >= timeout * 1000:
        changes["timed_out"] = 1
        attempt = {**attempt, "timed_out": 1}
    if info.get("terminateReason") or attempt.get("timed_out"):
        request_stop(job, attempt, changes, now, work)
    elif (running is not None and states.entered_at(job) < running[1] - VANISHED_GRACE_MS
          and (job["jobId"], info.get("attempt")) not in running[0]):
        # Neither running nor reported stopped: the engine lost it (restart, manual removal).
        changes.update(phase=attempts.EXITED, engine_error=attempts.VANISHED_REASON)
