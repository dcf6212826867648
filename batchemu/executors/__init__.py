"""The executor contract: run a *task* (one attempt of a job: N containers) on a container engine.

The scheduler talks to an executor only through `Executor`; `docker.DockerExecutor`, `swarm.SwarmExecutor`
and `simulate.SimulatedExecutor` are the ones we ship, and another engine's executor is one new module (or
package) that implements the same methods (class Executor below). An executor knows its engine and nothing of
AWS: it reports what happened in engine terms (`Outcome`: exited with a code, OOM-killed, could not pull, could not start, the
host was lost) and batchemu.model.attempts alone turns that into AWS's `statusReason` and `container.reason`.

A task, in the order an executor carries it out:
- its containers join `TaskSpec.network` when it names one (a network shared by every task that names
  it, so their containers reach each other by IP; created on demand, removed when its last container is
  gone), else the executor's default network;
- init containers (`init=True`) run one after another, in list order, each to exit 0, before any other;
- then each other container starts once every `depends_on` condition holds (START: the named container
  has started; COMPLETE: it has exited; SUCCESS: it has exited 0); one whose condition can no longer hold
  never starts (`Outcome.NOT_STARTED`);
- a container with a `hostname` has that host name, and on a task network the other containers reach it
  by that name (a network alias; executors without name resolution, like simulate, have nothing to do);
- when an essential container exits, an init container fails, or a container with `ends_task_on_failure`
  fails (exits non-zero or cannot start), the others are stopped;
- the task is over when nothing runs and nothing more can start: `collect_exits` reports it once, with
  one `ContainerResult` per container.

Engine objects carry the labels below (job id, attempt, instance), so a restarted server adopts its
running tasks and removes what is left of finished ones. Tasks are named by (job id, attempt): starting
the same attempt twice carries on with the first one's containers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# Labels on every container (and network) we create; a restarted server finds its own by them.
LABEL_JOB_ID = "batchemu.job-id"
LABEL_ATTEMPT = "batchemu.attempt"
LABEL_INSTANCE = "batchemu.instance"
LABEL_MANAGED = "batchemu.managed"

# The name at which a container on a task network reaches the machine its engine runs on (a server
# listening on every address is reachable there).
HOST_ALIAS = "batchemu-host"

START, COMPLETE, SUCCESS = "START", "COMPLETE", "SUCCESS"  # dependency conditions
CONDITIONS = (START, COMPLETE, SUCCESS)
DEFAULT_CONTAINER = "default"


@dataclass
class ContainerSpec:
    """One container of a task, fully resolved (overrides applied, parameters substituted)."""

    image: str
    command: list[str]
    environment: dict[str, str]
    vcpus: float
    memory_mib: int | None
    log_group: str
    log_stream: str
    name: str = DEFAULT_CONTAINER                                # unique within its task
    entrypoint: list[str] | None = None                         # None: the image's
    essential: bool = True
    init: bool = False
    depends_on: list[tuple[str, str]] = field(default_factory=list)  # (container name, START|COMPLETE|SUCCESS)
    user: str | None = None
    privileged: bool = False
    readonly_root_filesystem: bool = False
    ulimits: list[dict] = field(default_factory=list)          # wire form: {name, softLimit, hardLimit}
    linux_parameters: dict = field(default_factory=dict)       # wire form of LinuxParameters
    mount_points: list[dict] = field(default_factory=list)     # wire form of MountPoint, into TaskSpec.volumes
    gpus: int = 0
    # Its host name; on TaskSpec.network also the name the task's other containers reach it by (None: the
    # engine's choice, and no alias).
    hostname: str | None = None
    # A non-essential container whose failure (non-zero exit, or could not start) ends the task as an
    # essential container's exit does, while its success does not (the hosts of a distributed job).
    ends_task_on_failure: bool = False


@dataclass
class TaskSpec:
    """One attempt of one job: its containers, the volumes they share and the network they join."""

    job_id: str
    attempt: int  # 1-based
    containers: list[ContainerSpec]
    # Wire form of Volume: `host.sourcePath` binds a host directory; any other volume is an engine volume
    # of the task, shared by the containers that mount it (an ECS task volume, a pod's emptyDir).
    volumes: list[dict] = field(default_factory=list)
    network: str | None = None   # name of a shared task network to join (HOST_ALIAS resolves on it); None:
    #                              the executor's default network
    labels: dict[str, str] = field(default_factory=dict)     # extra labels (the executor adds its own)


@dataclass
class StartedTask:
    task_id: str                 # what running(), stop() and TaskExit name the task by
    address: str | None = None   # IPv4 address on TaskSpec.network of the task's first essential container


class Outcome(enum.Enum):
    """How one container of a task ended, in engine terms."""

    EXITED = "EXITED"              # exited by itself or was stopped: exit_code says how
    OOM_KILLED = "OOM_KILLED"      # killed by the kernel for memory: exit_code 137
    PULL_FAILED = "PULL_FAILED"    # its image is absent and could not be pulled
    CREATE_FAILED = "CREATE_FAILED"  # the engine refused to create it
    START_FAILED = "START_FAILED"  # the engine refused to start it (command not found, ...)
    NOT_STARTED = "NOT_STARTED"    # never started: a dependency could not be met, or the task ended first
    HOST_LOST = "HOST_LOST"        # the host under it went away (injected spot reclaim or host failure)


@dataclass
class ContainerResult:
    name: str
    outcome: Outcome
    exit_code: int | None = None
    detail: str | None = None       # the engine's own words for a failure
    essential: bool = True
    container_id: str | None = None
    started_at: int | None = None   # epoch ms, from the engine
    finished_at: int | None = None  # epoch ms, from the engine


@dataclass
class TaskExit:
    """A task of ours that is over, as read from the engine before its containers were removed."""

    job_id: str
    attempt: int
    task_id: str
    containers: list[ContainerResult]

    @property
    def main(self) -> ContainerResult:
        """The container whose end decides the task: the first essential one that failed, else the
        first essential one (a task has at least one)."""
        essential = [c for c in self.containers if c.essential] or self.containers
        for result in essential:
            if result.outcome is not Outcome.EXITED or result.exit_code != 0:
                return result
        return essential[0]


class StartFailure(Exception):
    """The task could not start (`outcome` PULL_FAILED, CREATE_FAILED or START_FAILED); str() is the
    engine's detail. Nothing of the task is left on the engine."""

    def __init__(self, outcome: Outcome, detail: str, container: str = DEFAULT_CONTAINER) -> None:
        super().__init__(detail)
        self.outcome, self.detail, self.container = outcome, detail, container


class EngineUnavailable(Exception):
    """The container engine cannot be reached; jobs wait until it can."""


LogSink = Callable[[str, str, list[tuple[int, str]]], None]  # (group, stream, [(timestamp ms, line)])


class Executor(Protocol):
    def status(self) -> tuple[bool, str]:
        """(reachable, detail) of the engine, e.g. (False, "Cannot connect to /var/run/docker.sock")."""

    def start(self, task: TaskSpec) -> StartedTask:
        """Create the task's containers (pulling images if absent) and start what can start now.

        Raises StartFailure or EngineUnavailable; may block for a while (the scheduler calls it from a
        bounded worker pool)."""

    def running(self) -> dict[tuple[str, int], str]:
        """(job id, attempt) -> task id of this server's tasks that are not over."""

    def collect_exits(self) -> list[TaskExit]:
        """Advance this server's tasks (start containers whose dependencies now hold, stop the others of
        a task whose essential container exited) and report each task that is over, once; its containers
        are removed afterwards unless config.keep_containers."""

    def stop(self, task_id: str, timeout: float = 10.0) -> None:
        """SIGTERM every container of the task, SIGKILL after `timeout`; a task already gone is fine."""

    def remove_all(self) -> None:
        """Remove every container and network this server instance created (pytest plugin teardown)."""

    def set_listener(self, on_event: Callable[[], None]) -> None:
        """Call `on_event` (from any thread) whenever a container of ours dies, so the scheduler wakes."""

    def set_log_sink(self, sink: LogSink) -> None:
        """Ship every stdout/stderr line of each running container to `sink`, under its own stream."""

    def inject_fault(self, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
        """Force a fault of batchemu.executors.faults: end the attempt's running task with the fault's
        outcome (reported by collect_exits), or, for pull-failure, fail the job's next start(). Raises
        faults.FaultRefused when the task has ended already."""

    def close(self) -> None:
        """Stop background threads."""
