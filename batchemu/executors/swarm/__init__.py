"""Runs tasks on a Docker Swarm: one `replicated-job` service (one replica, no restart) per container.

The Docker client points at a manager node (DOCKER_HOST or the local socket). batchemu places each task on
a node itself (node_choice.choose_node: no Swarm reservations, which Swarm 20.10's constraint enforcer counts for
ever once a job task completed); what runs at once is capped by the compute environment's maxvCpus. A task of
several containers, and every task that names a shared network (the nodes of a multi-node job), joins an
attachable overlay network (labelled, removed once no service of ours uses it), so its containers reach each
other by address on whichever node they run; StartedTask.address is the first container's address on it (the
contract asks for the first essential one's: the same unless a task lists a sidecar first). The containers of
one task are placed on the node of its first one, as ECS places a task on one instance (task volumes are
node-local). Init containers, dependsOn and essential flags are batchemu.executors.tasks.step: a container
is a service once it may start. What the engine reports, in engine terms, is in task_progress.

Services carry the labels containers carry under Docker, so a restarted server adopts running tasks and
records those that ended meanwhile; the plan of a task with containers still to start is a label of its
network, and the results of containers that ended while their task went on are swarm configs.

The parts, by idea: reachability (connection and a lost swarm), node_choice (what a node holds),
service_specs (a container's service), launch (start and requeue), survey (what the swarm shows of our
tasks), task_progress (carrying tasks on, their exits), kept_results (results kept as configs), cleanup
(ending and removing), watcher (waking the scheduler), service_logs (output), swarm_context (what they share).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from docker.errors import DockerException

from batchemu.config import Config
from batchemu.executors import EngineUnavailable, LogSink, StartedTask, TaskExit, TaskSpec
from batchemu.executors.docker.engine import UNREACHABLE
from batchemu.executors.swarm import cleanup, launch, reachability, survey, task_progress
from batchemu.executors.swarm.node_choice import node_report
from batchemu.executors.swarm.swarm_context import SwarmContext
from batchemu.executors.swarm.watcher import Watcher

__all__ = ["SwarmExecutor"]


class SwarmExecutor:
    """The Executor of batchemu.executors on the Docker Swarm of the manager the client points at."""

    name = "swarm"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._ctx = SwarmContext(config)
        self._watcher = Watcher(self._ctx)
        for thread in (self._watcher.thread, self._ctx.logs.thread):
            thread.start()

    def status(self) -> tuple[bool, str]:
        return reachability.status(self._ctx)

    def cluster(self) -> dict:
        """The swarm's nodes with their capacity and what batchemu's running tasks take of it."""
        try:
            client = self._ctx.client()
            nodes = client.api.nodes()
            used = launch.node_use(self._ctx, client)
        except (EngineUnavailable, DockerException, *UNREACHABLE) as exc:
            return {"nodes": [], "error": str(exc)}
        return {"nodes": node_report(nodes, used)}

    def start(self, task: TaskSpec) -> StartedTask:
        return launch.start(self._ctx, task)

    def running(self) -> dict[tuple[str, int], str]:
        return survey.running(self._ctx)

    def collect_exits(self) -> list[TaskExit]:
        return task_progress.collect_exits(self._ctx)

    def stop(self, task_id: str, timeout: float = 10.0) -> None:
        cleanup.stop(self._ctx, task_id, timeout)

    def inject_fault(self, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
        cleanup.inject_fault(self._ctx, job_id, attempt, task_id, fault)

    def remove_all(self) -> None:
        cleanup.remove_all(self._ctx)

    def set_listener(self, on_event: Callable[[], None]) -> None:
        self._watcher.listener = on_event

    def set_log_sink(self, sink: LogSink) -> None:
        self._ctx.logs.sink = sink

    def close(self) -> None:
        ctx = self._ctx
        ctx.stopping.set()
        ctx.removals.shutdown(wait=True)
        for thread in (self._watcher.thread, ctx.logs.thread):
            if thread is not threading.current_thread():
                thread.join(timeout=5)
