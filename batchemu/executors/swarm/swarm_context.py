"""What the parts of the Swarm executor share: the engine, the log pump, the fault book, and the bookkeeping
that start(), collect_exits(), the watcher and the removal pool read and write under one lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import docker

from batchemu.config import Config
from batchemu.executors import ContainerResult, faults, tasks
from batchemu.executors.docker.engine import Engine
from batchemu.executors.docker.logs import LogPump
from batchemu.executors.swarm.service_logs import service_log_frames
from batchemu.executors.swarm.service_specs import PlannedService


class SwarmContext:
    """One server's hold on the swarm. Every field below `lock` is read and written under it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = Engine(config)
        self.lock = threading.Lock()
        self.choosing = threading.Lock()                  # one node choice at a time, each counted before the next
        self.plans: dict[str, list[PlannedService]] = {}  # task id -> its services, in the task's order
        self.starting: set[str] = set()                   # tasks inside start()
        self.placing: dict[str, tuple[str, int, int]] = {}  # task inside start() -> (node, nano CPUs, bytes)
        self.groups_in_use: dict[str, int] = {}           # network group -> starts under way that join it
        self.reported: set[str] = set()                   # tasks handed out (their services removed next)
        self.removing: set[str] = set()
        self.ending: set[str] = set()                     # services being stopped on the pool
        self.stopped: dict[str, str] = {}                 # service name removed by a stop -> its task id
        # task id -> container -> (result, view) of containers that ended while their task went on (their
        # services are removed at once)
        self.done: dict[str, dict[str, tuple[ContainerResult, tasks.Seen]]] = {}
        self.done_loaded: set[str] = set()                # tasks whose kept results (kept_results) were read
        self.known: dict[tuple[str, int], tuple[str, str]] = {}  # live attempt -> (task id, node id)
        self.unreachable_since: float | None = None
        self.local_node = ""
        self.sweep = True                                 # idle networks to remove on the next pass
        self.faults = faults.FaultBook()
        self.stopping = threading.Event()
        self.removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchemu-swarm-rm")
        self.logs = LogPump(self.engine, self.stopping, frames=service_log_frames, discover=False,
                            name="batchemu-swarm-logs")

    def client(self) -> docker.DockerClient:
        return self.engine.client()
