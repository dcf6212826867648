"""Follows the engine's event stream so the scheduler wakes the moment a container of ours dies.

Each dead container is inspected once, here: the engine sends "die" after it marked the container stopped
but a moment before its container list shows it so, and the inspection is what collect_exits() would ask
for anyway (DieEvents.inspection()), so the executor neither polls the list until it catches up nor inspects the
container twice."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import docker
import urllib3
from docker.errors import DockerException, NotFound

from batchemu.executors import EngineUnavailable
from batchemu.executors.docker.engine import UNREACHABLE, Engine

log = logging.getLogger("batchemu.executors.docker")

RECONNECT_SECONDS = 1.0
DIE_SETTLE_SECONDS = 2.0   # longest wait for a dead container to inspect as stopped before waking anyway
LIVE_STATES = ("running", "paused", "restarting")
KEPT_INSPECTIONS = 1000    # inspections of dead containers not yet taken, at most (older ones are dropped)


class DieEvents:
    def __init__(self, engine: Engine, stopping: threading.Event, on_die: Callable[[str], None]) -> None:
        self._engine = engine
        self._stopping = stopping
        self._on_die = on_die       # told the container id first (the log pump's last read)
        self.listener: Callable[[], None] | None = None
        self._events = None
        # Set when the stream (re)connects (containers may have died unheard), and by the executor when it
        # wants its containers listed: it lists them only then (or now and then), not on every pass.
        self.died = threading.Event()
        self.died.set()
        self._lock = threading.Lock()
        self._stopped: dict[str, dict] = {}   # container id -> its inspection once stopped, until forgotten
        self._dead: list[str] = []            # containers that died since take_dead()
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
                self._events = client.events(decode=True, filters={
                    "type": "container", "event": ["die"], "label": self._engine.label_filters()})
            except (EngineUnavailable, DockerException, *UNREACHABLE):
                self._stopping.wait(RECONNECT_SECONDS)
                continue
            if self._stopping.is_set():  # close() ran before the stream existed to be cut
                self._events.close()
                break
            self.connected_since = time.monotonic()
            # Containers may have died while nobody listened.
            self.died.set()
            self.notify()
            try:
                for event in self._events:
                    if self._stopping.is_set():
                        break
                    self._died(client, event.get("id") or event.get("Actor", {}).get("ID", ""))
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

    def _died(self, client: docker.DockerClient, container_id: str) -> None:
        self._on_die(container_id)
        stopped = None
        deadline = time.monotonic() + DIE_SETTLE_SECONDS
        while time.monotonic() < deadline and not self._stopping.is_set():
            try:
                attrs = client.api.inspect_container(container_id)
            except NotFound:
                break  # removed already: the next list tells
            if (attrs.get("State") or {}).get("Status") not in LIVE_STATES:
                stopped = attrs
                break
            time.sleep(0.01)  # restarted meanwhile, or an engine that reports "die" before it marks it
        with self._lock:
            if stopped is not None:
                self._stopped[container_id] = stopped
                while len(self._stopped) > KEPT_INSPECTIONS:
                    del self._stopped[next(iter(self._stopped))]
            self._dead.append(container_id)
        self.notify()
