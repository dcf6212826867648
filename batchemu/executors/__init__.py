"""Executors turn "run this container with these limits" into calls on a container engine.

The scheduler talks to an executor only through this interface; `docker.DockerExecutor` is the one we ship.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# Labels on every container we start; a restarted server finds its containers again by them.
LABEL_JOB_ID = "batchemu.job-id"
LABEL_ATTEMPT = "batchemu.attempt"
LABEL_INSTANCE = "batchemu.instance"
LABEL_MANAGED = "batchemu.managed"


@dataclass
class ContainerSpec:
    """One attempt of one job, fully resolved (overrides applied, parameters substituted)."""

    job_id: str
    attempt: int  # 1-based
    image: str
    command: list[str]
    environment: dict[str, str]
    vcpus: float
    memory_mib: int | None
    log_group: str
    log_stream: str
    user: str | None = None
    privileged: bool = False
    readonly_root_filesystem: bool = False
    ulimits: list[dict] = field(default_factory=list)          # wire form: {name, softLimit, hardLimit}
    linux_parameters: dict = field(default_factory=dict)       # wire form of LinuxParameters
    volumes: list[dict] = field(default_factory=list)          # wire form of Volume
    mount_points: list[dict] = field(default_factory=list)     # wire form of MountPoint
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)       # extra labels (the executor adds its own)


@dataclass
class ContainerExit:
    """A container of ours that has stopped, as read from the engine before it was removed."""

    job_id: str
    attempt: int
    container_id: str
    exit_code: int | None
    oom_killed: bool = False
    # Set when there is no exit code to report (the container vanished, the engine lost it...).
    error: str | None = None
    started_at: int | None = None   # epoch ms, from the engine
    finished_at: int | None = None  # epoch ms, from the engine


class ImagePullError(Exception):
    """The image is not present and could not be pulled; str() is AWS's full statusReason."""


class EngineUnavailable(Exception):
    """The container engine cannot be reached; jobs wait until it can."""


LogSink = Callable[[str, str, list[tuple[int, str]]], None]  # (group, stream, [(timestamp ms, line)])


class Executor(Protocol):
    def status(self) -> tuple[bool, str]:
        """(reachable, detail) of the engine, e.g. (False, "Cannot connect to /var/run/docker.sock")."""

    def start(self, spec: ContainerSpec) -> str:
        """Create and start the container, pulling the image if absent; return its id.

        Raises ImagePullError or EngineUnavailable; may block for a while (the scheduler calls it from a
        bounded worker pool)."""

    def running(self) -> dict[tuple[str, int], str]:
        """(job id, attempt) -> container id of this server's containers that are still running."""

    def collect_exits(self) -> list[ContainerExit]:
        """Stopped containers of this server, each reported once; removed unless keep_containers."""

    def stop(self, container_id: str, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; a container already gone is not an error."""

    def remove_all(self) -> None:
        """Remove every container this server instance started (pytest plugin teardown)."""

    def set_listener(self, on_event: Callable[[], None]) -> None:
        """Call `on_event` (from any thread) whenever a container of ours dies, so the scheduler wakes."""

    def set_log_sink(self, sink: LogSink) -> None:
        """Ship every stdout/stderr line of running containers to `sink` while they run."""

    def inject_fault(self, job_id: str, attempt: int, container_id: str | None, fault: str) -> None:
        """Force a fault of batchemu.executors.faults: end the attempt's running container with the fault's
        outcome (reported by collect_exits), or, for pull-failure, fail the job's next start(). Raises
        faults.FaultRefused when the container has ended already."""

    def close(self) -> None:
        """Stop background threads."""
