"""Follows the engine's event stream so the scheduler wakes the moment a container of ours dies."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import docker
import urllib3
from docker.errors import DockerException

from batchemu.executors import EngineUnavailable
from batchemu.executors.docker.engine import UNREACHABLE, Engine

log = logging.getLogger("batchemu.executors.docker")

RECONNECT_SECONDS = 1.0
DIE_SETTLE_SECONDS = 2.0   # longest wait for a dead container to show as stopped before waking anyway
STOPPED_STATES = ["exited", "dead", "created"]


class DieEvents:
    def __init__(self, engine: Engine, stopping: threading.Event, on_die: Callable[[str], None]) -> None:
        self._engine = engine
        self._stopping = stopping
        self._on_die = on_die       # told the container id first (the log pump's last read)
        self.listener: Callable[[], None] | None = None
        self._events = None
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
            # Containers may have died while nobody listened.
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
            self._stopping.wait(RECONNECT_SECONDS / 10)

    def _died(self, client: docker.DockerClient, container_id: str) -> None:
        self._on_die(container_id)
        # The engine sends "die" a moment before its container list shows the container stopped; waking the
        # scheduler earlier would make collect_exits() miss it until the next tick.
        deadline = time.monotonic() + DIE_SETTLE_SECONDS
        while time.monotonic() < deadline and not self._stopping.is_set():
            if client.api.containers(all=True, filters={"id": container_id, "status": STOPPED_STATES}):
                break
            time.sleep(0.01)
        self.notify()
