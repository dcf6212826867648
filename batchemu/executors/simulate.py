"""An executor without a container engine: every attempt "runs" for a while, then exits as its job asked.

The scheduler cannot tell it from Docker: tasks are started, listed as running, stopped and reported
once as exits, every container of a task ending together. A run lasts `config.simulate_seconds` and exits
0 unless the environment of the task's first container (definition or overrides) says otherwise:

    BATCHEMU_SIMULATE_SECONDS    how long this run takes
    BATCHEMU_SIMULATE_EXIT_CODE  its exit code
    BATCHEMU_SIMULATE_REASON     an engine outcome named by AWS's container reason: OutOfMemoryError...,
                                 Host EC2..., CannotPullContainerError: DETAIL, CannotCreateContainerError:
                                 DETAIL, CannotStartContainerError: DETAIL (CannotInspectContainerError
                                 counts as a start failure)

One background thread wakes the scheduler when the next run is due to end; runs live in memory, so a
restarted server finds its running jobs lost, as a host that went away.
"""

from __future__ import annotations

import heapq
import logging
import math
import shlex
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from batchemu.config import Config
from batchemu.executors import (
    ContainerResult,
    LogSink,
    Outcome,
    StartedTask,
    StartFailure,
    TaskExit,
    TaskSpec,
    faults,
)

log = logging.getLogger("batchemu.executors.simulate")

SECONDS_VARIABLE = "BATCHEMU_SIMULATE_SECONDS"
EXIT_CODE_VARIABLE = "BATCHEMU_SIMULATE_EXIT_CODE"
REASON_VARIABLE = "BATCHEMU_SIMULATE_REASON"
SIGTERM_EXIT = 143  # a stopped run ends as a process killed by SIGTERM
OOM_EXIT = 137
# BATCHEMU_SIMULATE_REASON prefixes and what the engine would have reported; anything else fails the start.
OOM_PREFIX = "OutOfMemoryError"
START_FAILURES = {"CannotPullContainerError": Outcome.PULL_FAILED, "CannotCreateContainerError": Outcome.CREATE_FAILED,
                  "CannotStartContainerError": Outcome.START_FAILED,
                  "CannotInspectContainerError": Outcome.START_FAILED}
LOST_HOST_PREFIX = "Host EC2"


def _start_failure(detail: str) -> StartFailure:
    return StartFailure(Outcome.START_FAILED, detail)


@dataclass
class _Run:
    job_id: str
    attempt: int
    run_id: str
    names: list[str]         # of the task's containers
    ends_at: float           # time.monotonic()
    started_at: int          # epoch ms
    exit_code: int | None
    outcome: Outcome = Outcome.EXITED
    ended: bool = False      # stopped, or past ends_at
    reported: bool = False


def _number(environment: dict[str, str], name: str, kind, default):
    text = environment.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text.strip())
    except ValueError:
        raise _start_failure(f"{name}={text!r} is not a number") from None
    if isinstance(value, float) and not math.isfinite(value) or value < 0:
        raise _start_failure(f"{name}={text!r} must be a number >= 0")
    return value


class SimulatedExecutor:
    """The Executor of batchemu.executors that starts nothing (`--executor simulate`)."""

    name = "simulate"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._runs: dict[str, _Run] = {}
        self._due: list[tuple[float, str]] = []   # heap of (ends_at, run id)
        self._lock = threading.Condition()
        self._listener: Callable[[], None] | None = None
        self._sink: LogSink | None = None
        self._stopping = False
        self._faults = faults.FaultBook()
        self._thread = threading.Thread(target=self._wake_at_ends, name="batchemu-simulate", daemon=True)
        self._thread.start()

    def status(self) -> tuple[bool, str]:
        return True, "simulated executor: attempts run without containers"

    def start(self, task: TaskSpec) -> StartedTask:
        first = task.containers[0]
        if self._faults.take_pull_failure(task.job_id):
            raise StartFailure(Outcome.PULL_FAILED, faults.pull_failure_detail(first.image))
        environment = first.environment
        seconds = _number(environment, SECONDS_VARIABLE, float, self.config.simulate_seconds)
        reason = (environment.get(REASON_VARIABLE) or "").strip()
        oom = reason.startswith(OOM_PREFIX)
        exit_code = _number(environment, EXIT_CODE_VARIABLE, int, OOM_EXIT if oom else 0)
        outcome = Outcome.OOM_KILLED if oom else Outcome.EXITED
        prefix, _, detail = reason.partition(": ")
        if prefix in START_FAILURES:
            raise StartFailure(START_FAILURES[prefix], detail)
        if reason.startswith(LOST_HOST_PREFIX):
            exit_code, outcome = None, Outcome.HOST_LOST
        elif reason and not oom:
            raise _start_failure(
                f"{REASON_VARIABLE}={reason!r} is none of {OOM_PREFIX}..., "
                f"{LOST_HOST_PREFIX}... or {', '.join(p + ': ...' for p in START_FAILURES)}")
        now = time.time()
        run = _Run(job_id=task.job_id, attempt=task.attempt, run_id=f"simulated-{uuid.uuid4().hex}",
                   names=[c.name for c in task.containers], ends_at=time.monotonic() + seconds,
                   started_at=int(now * 1000), exit_code=exit_code, outcome=outcome)
        with self._lock:
            self._runs[run.run_id] = run
            heapq.heappush(self._due, (run.ends_at, run.run_id))
            self._lock.notify_all()
        for container in task.containers:
            self._ship(container.image, container.command, container.log_group, container.log_stream,
                       run.started_at)
        return StartedTask(task_id=run.run_id)

    def _ship(self, image: str, command: list[str], group: str, stream: str, at: int) -> None:
        sink = self._sink
        if sink is None:
            return
        line = f"simulated run of {image} {shlex.join(command)}".rstrip()
        try:
            sink(group, stream, [(at, line)])
        except Exception:
            log.exception("log sink failed for %s", stream)

    def _settle(self) -> None:
        """Mark runs past their end as ended (called with the lock held)."""
        now = time.monotonic()
        for run in self._runs.values():
            if not run.ended and run.ends_at <= now:
                run.ended = True

    def running(self) -> dict[tuple[str, int], str]:
        with self._lock:
            self._settle()
            return {(run.job_id, run.attempt): run.run_id for run in self._runs.values() if not run.ended}

    def collect_exits(self) -> list[TaskExit]:
        finished_at = int(time.time() * 1000)
        exits = []
        with self._lock:
            self._settle()
            for run_id, run in list(self._runs.items()):
                if run.reported:
                    del self._runs[run_id]  # handed out by the previous call
                elif run.ended:
                    run.reported = True
                    results = [ContainerResult(name=name, outcome=run.outcome, exit_code=run.exit_code,
                                               started_at=run.started_at,
                                               finished_at=max(finished_at, run.started_at)) for name in run.names]
                    exits.append(TaskExit(job_id=run.job_id, attempt=run.attempt, task_id=run_id,
                                          containers=results))
        return exits

    def stop(self, task_id: str, timeout: float = 10.0) -> None:
        with self._lock:
            run = self._runs.get(task_id)
            if run is None or run.ended:
                return
            run.ended, run.exit_code, run.outcome = True, SIGTERM_EXIT, Outcome.EXITED
        self._notify()

    def inject_fault(self, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
        if fault == faults.PULL_FAILURE:
            self._faults.arm_pull_failure(job_id)
            return
        with self._lock:
            run = self._runs.get(task_id or "")
            if run is None or run.ended:
                raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")
            run.ended = True
            result = ContainerResult(name="", outcome=Outcome.EXITED)
            faults.apply(fault, result)
            run.exit_code, run.outcome = result.exit_code, result.outcome
        self._notify()

    def remove_all(self) -> None:
        with self._lock:
            self._runs.clear()
            self._due.clear()

    def set_listener(self, on_event: Callable[[], None]) -> None:
        self._listener = on_event

    def set_log_sink(self, sink: LogSink) -> None:
        self._sink = sink

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _notify(self) -> None:
        listener = self._listener
        if listener is not None:
            try:
                listener()
            except Exception:
                log.exception("run end listener failed")

    def _wake_at_ends(self) -> None:
        """Wake the scheduler as each run's time is up, as a container's "die" event would."""
        while True:
            with self._lock:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._lock.wait(None if not self._due else self._due[0][0] - time.monotonic())
                if self._stopping:
                    return
                while self._due and self._due[0][0] <= time.monotonic():
                    heapq.heappop(self._due)
            self._notify()
