"""Injected faults in engine terms, shared by the executors: which outcome each one forces on a running
attempt, and the pull failures armed for a job's next start.

    spot-reclaim, host-failure  the host is lost: no exit code, `Host EC2 (instance i-...) terminated.`
    oom                         the kernel killed the container: exit 137, OOM-killed
    pull-failure                the job's next start cannot pull its image

An executor kills the attempt's container (or ends its simulated run) and reports the exit with the fault's
outcome; batchemu.attempts turns that into AWS's words as for any other exit. Faults live in memory: a
restarted server has none pending.
"""

from __future__ import annotations

import hashlib
import threading

from batchemu.executors import ContainerExit

SPOT_RECLAIM, OOM, HOST_FAILURE, PULL_FAILURE = "spot-reclaim", "oom", "host-failure", "pull-failure"
FAULTS = (SPOT_RECLAIM, OOM, HOST_FAILURE, PULL_FAILURE)
ENDS_RUNNING_ATTEMPT = frozenset({SPOT_RECLAIM, OOM, HOST_FAILURE})
OOM_EXIT_CODE = 137


class FaultRefused(Exception):
    """The fault cannot apply (the attempt has ended meanwhile); str() says why."""


def instance_id(job_id: str, attempt: int) -> str:
    """A stable made-up EC2 instance id for the host of one attempt."""
    return "i-" + hashlib.sha1(f"{job_id}/{attempt}".encode()).hexdigest()[:17]


def lost_host_reason(job_id: str, attempt: int) -> str:
    """What AWS gives a job whose host went away (Spot reclaim, instance failure)."""
    return f"Host EC2 (instance {instance_id(job_id, attempt)}) terminated."


def pull_failure_reason(image: str) -> str:
    repository = image.rsplit("@", 1)[0]
    return (f"CannotPullContainerError: Error response from daemon: pull access denied for {repository}, "
            "repository does not exist or may require 'docker login': denied: requested access to the resource "
            "is denied")


def apply(fault: str, exit: ContainerExit) -> None:
    """Make `exit` report the fault's outcome instead of how the killed container really ended."""
    if fault == OOM:
        exit.exit_code, exit.oom_killed, exit.error = OOM_EXIT_CODE, True, None
    else:
        exit.exit_code, exit.oom_killed, exit.error = None, False, lost_host_reason(exit.job_id, exit.attempt)


class FaultBook:
    """Faults waiting to show: on a container (by id) until its exit is reported, on a job until it starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on_container: dict[str, str] = {}
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

    def mark(self, container_id: str, fault: str) -> None:
        with self._lock:
            self._on_container[container_id] = fault

    def unmark(self, container_id: str) -> None:
        with self._lock:
            self._on_container.pop(container_id, None)

    def settle(self, exit: ContainerExit) -> ContainerExit:
        """The exit as reported: with the outcome of a fault injected into its container, if any."""
        with self._lock:
            fault = self._on_container.pop(exit.container_id, None)
        if fault is not None:
            apply(fault, exit)
        return exit
