"""Runs tasks as containers on the local Docker Engine through the docker SDK: the lifecycle.

A task's containers are all created by start(), which starts what can start at once; collect_exits()
then carries each task on from what the engine shows (batchemu.executors.tasks.step) and reports it once
it is over. Two background threads: the die-event follower (events.py) and the log pump (logs.py).
Containers, task volumes and task networks carry labels (job, attempt, instance, task), so a restarted
server adopts its tasks and removes what finished ones left behind.

The parts, by idea: engine (the connection, labels and names), transport (lean engine calls on a local
socket), arguments (a container's create arguments), task_start (networks, volumes, images, create and
start), task_exits (running(), collect_exits(), each task carried on and its results), task_removal
(stops, removals, injected faults), events (die events), logs (output), docker_context (what they share).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from docker.errors import DockerException

from batchemu.config import Config
from batchemu.executors import EngineUnavailable, LogSink, StartedTask, TaskExit, TaskSpec
from batchemu.executors.docker import task_exits, task_removal, task_start
from batchemu.executors.docker.docker_context import DockerContext
from batchemu.executors.docker.engine import (
    LABEL_LOG_GROUP,
    LABEL_LOG_STREAM,
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
)

__all__ = ["LABEL_LOG_GROUP", "LABEL_LOG_STREAM", "LABEL_NETWORK", "LABEL_TASK", "DockerExecutor"]


class DockerExecutor:
    """The Executor of batchemu.executors on the Docker Engine of DOCKER_HOST (or the local socket)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._ctx = DockerContext(config)
        self._status: tuple[float, tuple[bool, str]] | None = None  # (asked at, answer) of the last "up"
        for thread in (self._ctx.events.thread, self._ctx.logs.thread):
            thread.start()

    def status(self) -> tuple[bool, str]:
        """Whether the engine answers. An answer stays true while the event stream that was open when it
        came stays open (it breaks when the engine goes), so the scheduler's checks cost no engine call."""
        answered = self._status
        connected = self._ctx.events.connected_since
        if answered is not None and connected is not None and answered[0] >= connected:
            return answered[1]
        asked = time.monotonic()
        status = self._ask_status()
        self._status = (asked, status) if status[0] else None
        return status

    def _ask_status(self) -> tuple[bool, str]:
        try:
            client = self._ctx.client()
            version = client.api.version()
        except EngineUnavailable as exc:
            return False, str(exc)
        except UNREACHABLE as exc:
            return False, str(self._ctx.engine.unreachable(exc))
        except DockerException as exc:
            return False, f"Docker Engine error: {exc}"
        return True, f"Docker Engine {version.get('Version')} (API {client.api.api_version})"

    def start(self, task: TaskSpec) -> StartedTask:
        return task_start.start(self._ctx, task)

    def running(self) -> dict[tuple[str, int], str]:
        return task_exits.running(self._ctx)

    def collect_exits(self) -> list[TaskExit]:
        return task_exits.collect_exits(self._ctx)

    def stop(self, task_id: str, timeout: float = 10.0) -> None:
        task_removal.stop(self._ctx, task_id, timeout)

    def inject_fault(self, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
        task_removal.inject_fault(self._ctx, job_id, attempt, task_id, fault)

    def remove_all(self) -> None:
        task_removal.remove_all(self._ctx)

    def set_listener(self, on_event: Callable[[], None]) -> None:
        self._ctx.events.listener = on_event

    def set_log_sink(self, sink: LogSink) -> None:
        self._ctx.logs.sink = sink

    def close(self) -> None:
        ctx = self._ctx
        ctx.stopping.set()
        ctx.removals.shutdown(wait=True)
        ctx.events.close()
        for thread in (ctx.events.thread, ctx.logs.thread):
            if thread is not threading.current_thread():
                thread.join(timeout=5)
