"""Follows the engine's event stream so the scheduler wakes the moment a container of ours dies.

Each dead container's end is read once, here: the engine sends "die" after it marked the container stopped
but a moment before its container list shows it so, and that end is what collect_exits() would ask for anyway
(DieEvents.inspection()), so the executor neither polls the list until it catches up nor inspects the
container twice. Its last output is read here too, before the scheduler hears of it, on a small pool: the
engine answers about a container that just died only once it has finished with it (some 20 ms, longer when
busy), and the scheduler's pass should not wait for that. A container that exited 0, whose "start" event was
seen and which had no "oom" event, is not inspected at all: its die event holds all of its end (labels, exit
code, time), and its start event its start. Every other end (a failure, a kill, an OOM kill, a container
started before this stream) is inspected."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import docker
import urllib3
from docker.errors import DockerException, NotFound

from batchemu.executors import EngineUnavailable
from batchemu.executors.docker.engine import UNREACHABLE, Engine, timestamp_of_ns

log = logging.getLogger("batchemu.executors.docker")

RECONNECT_SECONDS = 1.0
DIE_SETTLE_SECONDS = 2.0   # longest wait for a dead container to inspect as stopped before waking anyway
LIVE_STATES = ("running", "paused", "restarting")
KEPT_INSPECTIONS = 1000    # inspections of dead containers not yet taken, at most (older ones are dropped)
KEPT_STARTS = 10_000       # start times of live containers kept, at most (older ones are inspected when they die)
DIE_WORKERS = 4            # dead containers whose end and last output are read at once
EVENT_ATTRIBUTES = ("exitCode", "image", "name")  # what an event's attributes hold besides the labels


class DieEvents:
    def __init__(self, engine: Engine, stopping: threading.Event, on_die: Callable[[str], None],
                 last_output: Callable[[docker.DockerClient, str, dict], bool | None]) -> None:
        self._engine = engine
        self._stopping = stopping
        self._on_die = on_die       # told the container id first (the log pump's last read)
        self._last_output = last_output  # ships a stopped container's last lines (LogPump.ship_final_lines)
        self._pool = ThreadPoolExecutor(max_workers=DIE_WORKERS, thread_name_prefix="batchemu-docker-die")
        self.listener: Callable[[], None] | None = None
        self._events = None
        # Set when the stream (re)connects (containers may have died unheard), and by the executor when it
        # wants its containers listed: it lists them only then (or now and then), not on every pass.
        self.died = threading.Event()
        self.died.set()
        self._lock = threading.Lock()
        self._stopped: dict[str, dict] = {}   # container id -> its inspection once stopped, until forgotten
        self._dead: list[str] = []            # containers that died since take_dead()
        self._starts: dict[str, int] = {}     # container id -> epoch ns of its start event, until it dies
        self._oom: set[str] = set()           # containers with an oom event, until they die
        self.connected_since: float | None = None  # monotonic time the current event stream was opened
        self.thread = threading.Thread(target=self._follow, name="batchemu-docker-events", daemon=True)

    def notify(self) -> None:
        listener = self.listener
        if listener is not None:
            try:
                listener()
            except Exception:
                log.exception("container event listener failed")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        events = self._events
        if events is not None:
            try:
                events.close()
            except (OSError, AttributeError, DockerException) as exc:  # an already broken stream
                log.debug("closing the docker event stream: %s", exc)

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                client = self._engine.client()
                events = client.events(decode=True, filters={
                    "type": "container", "event": ["start", "oom", "die"], "label": self._engine.label_filters()})
                self._events = events
            except (EngineUnavailable, DockerException, *UNREACHABLE):
                self._stopping.wait(RECONNECT_SECONDS)
                continue
            if self._stopping.is_set():  # close() ran before the stream existed to be cut
                events.close()
                break
            self.connected_since = time.monotonic()
            # Containers may have died while nobody listened.
            self.died.set()
            self.notify()
            try:
                for event in events:
                    if self._stopping.is_set():
                        break
                    self._take(client, event)
            except (OSError, ValueError, AttributeError, DockerException, urllib3.exceptions.HTTPError) as exc:
                # The engine went away or close() cut the stream: reconnect, or leave.
                log.debug("docker event stream ended: %s", exc)
            finally:
                self._events = None
                self.connected_since = None
            self._stopping.wait(RECONNECT_SECONDS / 10)

    def inspection(self, container_id: str) -> dict | None:
        """The inspection of a container a die event found stopped (None if there is none)."""
        with self._lock:
            return self._stopped.get(container_id)

    def take_dead(self) -> list[str]:
        """The containers that died since the last call."""
        with self._lock:
            dead, self._dead = self._dead, []
        return dead

    def forget(self, container_id: str) -> None:
        with self._lock:
            self._stopped.pop(container_id, None)

    def _take(self, client: docker.DockerClient, event: dict) -> None:
        container_id = event.get("id") or event.get("Actor", {}).get("ID", "")
        action = event.get("Action") or event.get("status")
        if action == "start":
            with self._lock:
                self._starts[container_id] = int(event.get("timeNano") or 0)
                while len(self._starts) > KEPT_STARTS:
                    del self._starts[next(iter(self._starts))]
        elif action == "oom":
            with self._lock:
                self._oom.add(container_id)
        elif action == "die":
            self._on_die(container_id)
            stopped = self._end_of(container_id, event)  # here, in event order: after its start event
            try:
                self._pool.submit(self._died, client, container_id, stopped)
            except RuntimeError:  # the pool is shut down: the executor is closing
                pass

    def _end_of(self, container_id: str, event: dict) -> dict | None:
        """The inspection a container that exited 0 would give, from its die and start events; None when
        only an inspection tells (another exit code, an oom event, a start this stream did not see)."""
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        with self._lock:
            started = self._starts.pop(container_id, None)
            oom = container_id in self._oom
            self._oom.discard(container_id)
        died = int(event.get("timeNano") or 0)
        if attributes.get("exitCode") != "0" or not started or oom or not died:
            return None
        name = attributes.get("name", "")
        labels = {key: value for key, value in attributes.items() if key not in EVENT_ATTRIBUTES}
        return {"Id": container_id, "Name": f"/{name}", "Config": {"Labels": labels},
                "State": {"Status": "exited", "Running": False, "OOMKilled": False, "ExitCode": 0, "Error": "",
                          "StartedAt": timestamp_of_ns(started), "FinishedAt": timestamp_of_ns(died)}}

    def _died(self, client: docker.DockerClient, container_id: str, stopped: dict | None) -> None:
        try:
            self._settle(client, container_id, stopped)
        except Exception:  # the next list of containers finds it (the flag below asks for one)
            log.exception("reading the end of container %s failed", container_id[:12])
            self.died.set()
            self.notify()

    def _settle(self, client: docker.DockerClient, container_id: str, stopped: dict | None) -> None:
        deadline = time.monotonic() + DIE_SETTLE_SECONDS
        while stopped is None and time.monotonic() < deadline and not self._stopping.is_set():
            try:
                attrs = client.api.inspect_container(container_id)
            except NotFound:
                break  # removed already: the next list tells
            if (attrs.get("State") or {}).get("Status") not in LIVE_STATES:
                stopped = attrs
                break
            time.sleep(0.01)  # restarted meanwhile, or an engine that reports "die" before it marks it
        if stopped is not None:  # its last lines, before the scheduler hears of it (they are read once)
            self._last_output(client, container_id, (stopped.get("Config") or {}).get("Labels") or {})
        with self._lock:
            if stopped is not None:
                self._stopped[container_id] = stopped
                while len(self._stopped) > KEPT_INSPECTIONS:
                    del self._stopped[next(iter(self._stopped))]
            self._dead.append(container_id)
        self.notify()
