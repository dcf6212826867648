"""What the parts of the Docker executor share: the engine, the die-event follower, the log pump, the fault
book, the removal pool, and the bookkeeping that start(), collect_exits(), the die events and the removal
pool read and write under one lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker

from batchemu.config import Config
from batchemu.executors import faults
from batchemu.executors.docker.engine import LABEL_NETWORK, Engine, attempt_key, task_of
from batchemu.executors.docker.events import DieEvents
from batchemu.executors.docker.logs import LogFiles, LogPump

LIVE_STATES = ("running", "paused", "restarting")


class DockerContext:
    """One server's hold on the engine. The sets and dicts below `lock` are read and written under it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.engine = Engine(config)
        self.lock = threading.Lock()  # guards the sets below
        self.reported: set[str] = set()   # tasks handed out (their containers removed on the next call)
        self.due: dict[str, Removal] = {}  # tasks reported by the last collect_exits(), to remove on the next
        self.started: dict[str, Removal] = {}  # tasks start() made, until reported: their containers
        self.task_of: dict[str, str] = {}       # container id -> task id, for the tasks in started
        self.last_exit_scan = 0.0
        self.images: dict[str, tuple[float, str]] = {}  # a container's image -> (found at, local image)
        self.removing: set[str] = set()   # tasks being removed on the removal pool
        self.starting: set[str] = set()   # tasks inside start()
        self.stopping_tasks: set[str] = set()  # tasks whose containers are being stopped
        self.networks_in_use: dict[str, int] = {}  # network group -> starts under way that join it
        self.removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchemu-docker-rm")
        self.host_cpus: int | None = None
        self.swept = False   # idle task networks left by an earlier server removed on the first collect
        self.faults = faults.FaultBook()
        self.stopping = threading.Event()
        self.logs = LogPump(self.engine, self.stopping, dead_frames=LogFiles().frames)
        self.events = DieEvents(self.engine, self.stopping, self.logs.exited, self.logs.ship_final_lines)

    def client(self) -> docker.DockerClient:
        return self.engine.client()

    def list_tasks(self, client: docker.DockerClient, *extra: str, **filters) -> dict[str, list[dict]]:
        """task id -> container summaries of this server's containers."""
        summaries = client.api.containers(all=True, filters={"label": self.engine.label_filters(*extra), **filters})
        out: dict[str, list[dict]] = {}
        for summary in summaries:
            labels = summary.get("Labels") or {}
            if attempt_key(labels) is not None:
                out.setdefault(task_of(labels, summary["Id"]), []).append(summary)
        return out


@dataclass(frozen=True)
class Removal:
    """A task's containers to remove, and whether it may have left a task volume or network."""

    container_ids: list[str]
    volumes: bool
    networks: bool

    @classmethod
    def of(cls, summaries: list[dict]) -> Removal:
        """From the engine's container list (a summary names the container's mounts and labels)."""
        return cls(container_ids=[s["Id"] for s in summaries],
                   volumes=any(m.get("Type") == "volume" for s in summaries for m in s.get("Mounts") or []),
                   networks=any(LABEL_NETWORK in (s.get("Labels") or {}) for s in summaries))
