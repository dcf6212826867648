"""The watcher thread: Swarm has no event for a task's end, so it lists our tasks every WATCH_SECONDS and
wakes the scheduler when one ended (or its node was lost) since the last look."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from docker.errors import DockerException

from batchemu.executors import EngineUnavailable
from batchemu.executors.docker.engine import UNREACHABLE
from batchemu.executors.swarm.reachability import lost_swarm
from batchemu.executors.swarm.survey import ENDED_STATES, lost, newest_tasks, node_states, our_services
from batchemu.executors.swarm.swarm_context import SwarmContext

log = logging.getLogger("batchemu.executors.swarm")

WATCH_SECONDS = 0.5            # how often the watcher lists our tasks to wake the scheduler on an end


class Watcher:
    """Calls `listener` (set by Executor.set_listener) when a task of ours ends."""

    def __init__(self, ctx: SwarmContext) -> None:
        self.ctx = ctx
        self.listener: Callable[[], None] | None = None
        self.thread = threading.Thread(target=self._watch, name="batchemu-swarm-watch", daemon=True)

    def notify(self) -> None:
        listener = self.listener
        if listener is not None:
            try:
                listener()
            except Exception:
                log.exception("executor listener failed")

    def _watch(self) -> None:
        ctx = self.ctx
        seen: set[str] = set()
        while not ctx.stopping.wait(WATCH_SECONDS):
            if self.listener is None:
                continue
            try:
                client = ctx.client()
                services = our_services(ctx, client)
                ids = [sid for members in services.values() for sid in members.values()]
                swarm_tasks = newest_tasks(ctx, client, ids)
                nodes = node_states(client) if swarm_tasks else {}
            except (EngineUnavailable, DockerException, *UNREACHABLE):
                if lost_swarm(ctx) and ctx.known:
                    self.notify()
                continue
            except Exception:
                log.exception("swarm watch pass failed")
                continue
            ended = {sid for sid, task in swarm_tasks.items() if task.state in ENDED_STATES or lost(task, nodes)}
            with ctx.lock:
                ended |= {f"stopped:{owner}" for owner in ctx.stopped.values() if owner not in services}
            for service_id in ended - seen:
                ctx.logs.exited(service_id)
            if ended - seen:
                self.notify()
            seen = ended
