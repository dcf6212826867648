"""Injected faults in engine terms, shared by the executors: which outcome each one forces on a running
attempt, and the pull failures armed for a job's next start.

    spot-reclaim, host-failure  the host is lost: no exit code (Outcome.HOST_LOST)
    oom                         the kernel killed the containers: exit 137, OOM-killed
    pull-failure                the job's next start cannot pull its image

An executor kills the attempt's task (or ends its simulated run) and reports the exit with the fault's
outcome; batchemu.model.attempts turns that into AWS's words as for any other exit. Faults live in memory: a
restarted server has none pending.
"""

from __future__ import annotations

import threading

from batchemu.executors import ContainerResult, Outcome, TaskExit

SPOT_RECLAIM, OOM, HOST_FAILURE, PULL_FAILURE = "spot-reclaim", "oom", "host-failure", "pull-failure"
FAULTS = (SPOT_RECLAIM, OOM, HOST_FAILURE, PULL_FAILURE)
ENDS_RUNNING_ATTEMPT = frozenset({SPOT_RECLAIM, OOM, HOST_FAILURE})
OOM_EXIT_CODE = 137


class FaultRefused(Exception):
    """The fault cannot apply (the attempt has ended meanwhile); str() says why."""


def pull_failure_detail(image: str) -> str:
    """What the Docker Engine says when an image cannot be pulled."""
    repository = image.rsplit("@", 1)[0]
    return (f"Error response from daemon: pull access denied for {repository}, "
            "repository does not exist or may require 'docker login': denied: requested access to the resource "
            "is denied")


def apply(fault: str, result: ContainerResult) -> None:
    """Make `result` report the fault's outcome instead of how the killed container really ended."""
    if result.outcome in (Outcome.NOT_STARTED, Outcome.START_FAILED):
        return
    if fault == OOM:
        result.outcome, result.exit_code = Outcome.OOM_KILLED, OOM_EXIT_CODE
    else:
        result.outcome, result.exit_code = Outcome.HOST_LOST, None


class FaultBook:
    """Faults waiting to show: on a task (by id) until its exit is reported, on a job until it starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on_task: dict[str, str] = {}
        self._next_start: set[str] = set()

    def arm_pull_failure(self, job_id: str) -> None:
        with self._lock:
            self._next_start.add(job_id)

    def take_pull_failure(self, job_id: str) -> bool:
        """Whether a pull failure was armed for this job (disarmed by asking)."""
        with self._lock:
            if job_id in self._next_start:
                self._next_start.discard(job_id)
                return True
            return False

    def mark(self, task_id: str, fault: str) -> None:
        with self._lock:
            self._on_task[task_id] = fault

    def unmark(self, task_id: str) -> None:
        with self._lock:
            self._on_task.pop(task_id, None)

    def settle(self, exit: TaskExit) -> TaskExit:
        """The exit as reported: with the outcome of a fault injected into its task, if any."""
        with self._lock:
            fault = self._on_task.pop(exit.task_id, None)
        if fault is not None:
            for result in exit.containers:
                apply(fault, result)
        return exit
