"""Jobs on a host: STARTING -> RUNNING once the container runs, the end of each attempt (succeed, retry or
fail), and stops for terminated or timed-out jobs, sent again until the container has exited."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from batchemu import attempts
from batchemu import job_states as states
from batchemu.scheduler import usage
from batchemu.store import Tx

log = logging.getLogger("batchemu.scheduler")

VANISHED_GRACE_MS = 1000  # a job that became RUNNING just before the listing may not be in it yet
RESTOP_MS = 15_000        # a stop whose container has not exited by then is sent again


@dataclass
class Work:
    """Engine calls one pass asks for (made after its transaction, never inside it)."""

    start: list[str] = field(default_factory=list)                   # job ids
    stop: list[tuple[str, str]] = field(default_factory=list)        # (job id, container id)


def record_exits(tx: Tx, exits) -> None:
    """Store each reported container exit on its job's current attempt."""
    for exit in exits:
        job = tx.get_job(exit.job_id)
        info = states.internal(job) if job else {}
        if job is None or job["status"] not in states.ON_HOST or info.get("attempt") != exit.attempt:
            continue
        info["exit"] = {"exit_code": exit.exit_code, "oom_killed": exit.oom_killed, "error": exit.error}
        info.setdefault("containerId", exit.container_id)
        tx.update_job(job)


def progress(tx: Tx, ctx, now_of, ready, busy, engine_up: bool, running: tuple[set, int] | None,
             work: Work) -> bool:
    """One step for every job on a host; whether one left the host (capacity freed)."""
    freed = False
    for _, job in tx.query_jobs({}, statuses=list(states.ON_HOST)):
        if busy(job["jobId"]):
            continue
        now = now_of()
        info = states.internal(job)
        before = (job["status"], len(job.get("attempts") or []), repr(info))
        try:
            if job["status"] == states.STARTING:
                _starting(job, info, now, ready, work, engine_up)
            if job["status"] == states.RUNNING:
                _running(job, info, now, ready, work, running)
        except Exception:  # one job's fault must not stop the pass for the others; it is tried again
            log.exception("progress of job %s failed", job["jobId"])
            continue
        if (job["status"], len(job.get("attempts") or []), repr(info)) != before:
            if job["status"] not in states.ON_HOST:
                usage.attempt_ended(tx, ctx, job, now)
                freed = True
            tx.update_job(job)
    return freed


def _stop(job: dict, info: dict, now: int, work: Work) -> None:
    """Ask for a stop, again when an earlier one has not taken effect (the engine was busy or down)."""
    if now - info.get("stopSentAt", -RESTOP_MS) >= RESTOP_MS:
        info["stopSentAt"] = now
        work.stop.append((job["jobId"], info["containerId"]))


def _starting(job: dict, info: dict, now: int, ready, work: Work, engine_up: bool) -> None:
    if info.get("requeue"):
        info.pop("requeue")
        info["attempt"] -= 1
        states.transition(job, states.RUNNABLE, now)
    elif info.get("startError"):
        reason = info["startError"]
        attempts.finish_attempt(job, now, exit_code=None, reason=reason, status_reason=reason)
    elif info.get("containerId"):
        if info.get("terminateReason"):
            _stop(job, info, now, work)
        if ready(job, now):
            states.transition(job, states.RUNNING, now)
            job["startedAt"] = now
    elif info.get("terminateReason"):
        # Terminated before its container was ever created.
        attempts.finish_attempt(job, now, exit_code=None, reason=None, status_reason=info["terminateReason"])
    elif engine_up:
        work.start.append(job["jobId"])  # start lost (server restarted mid-start): same attempt again


def _running(job: dict, info: dict, now: int, ready, work: Work, running: tuple[set, int] | None) -> None:
    if info.get("exit"):
        if ready(job, now):
            exit_code, reason, status_reason = attempts.end_of(job, info["exit"])
            attempts.finish_attempt(job, now, exit_code=exit_code, reason=reason, status_reason=status_reason)
        return
    timeout = (job.get("timeout") or {}).get("attemptDurationSeconds")
    if timeout and not info.get("timedOut") and now - job.get("startedAt", now) >= timeout * 1000:
        info["timedOut"] = True
    if info.get("terminateReason") or info.get("timedOut"):
        _stop(job, info, now, work)
    elif (running is not None and states.entered_at(job) < running[1] - VANISHED_GRACE_MS
          and (job["jobId"], info.get("attempt")) not in running[0]):
        # Neither running nor reported stopped: the engine lost it (restart, manual removal).
        info["exit"] = {"exit_code": None, "oom_killed": False, "error": attempts.VANISHED_REASON}
