"""The log pump: new stdout/stderr lines of every container of ours, shipped to the log sink every
LOG_POLL_SECONDS under the container's own stream (from its labels, so adopted containers ship on)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from batchemu.executors import EngineUnavailable, LogSink
from batchemu.executors.docker import transport
from batchemu.executors.docker.engine import (
    LABEL_LOG_GROUP,
    LABEL_LOG_STREAM,
    UNREACHABLE,
    Engine,
    parse_timestamp_ns,
)

log = logging.getLogger("batchemu.executors.docker")

LOG_POLL_SECONDS = 0.2
DISCOVER_SECONDS = 2.0     # how often the pump looks for running containers it was not told about
RECONNECT_SECONDS = 1.0
LOG_PAGE = 1000            # new lines asked per read; a full page means more wait, so everything is read
KEPT_FINISHED = 10_000     # objects remembered as read to the end (older ones are forgotten)
# Docker stamps a line before it takes the log file's lock, so stdout and stderr lines can land slightly
# out of timestamp order: each read goes back this far and skips the lines already shipped.
LOG_OVERLAP_NS = 500_000_000
LIVE_STATES = ["running", "paused"]


@dataclass
class _LogCursor:
    """How far the output of one container has been shipped."""

    container_id: str
    log_group: str
    log_stream: str
    last_ns: int = 0
    # (timestamp ns, raw line) of lines shipped within LOG_OVERLAP_NS of last_ns, to skip them on re-read.
    recent: list[tuple[int, bytes]] = field(default_factory=list)
    exited: bool = False   # a die event was seen: the executor's ship_final_lines() reads the rest
    drained: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


# (client, id, since seconds or None, tail) -> (timestamp ns, raw line) of each stdout/stderr message
FrameReader = Callable[[docker.DockerClient, str, "float | None", "int | str"], Iterator[tuple[int, bytes]]]
# (client, id, since seconds or None) -> the same of a dead object, or None when only the engine can tell
DeadFrameReader = Callable[[docker.DockerClient, str, "float | None"], "list[tuple[int, bytes]] | None"]


class LogPump:
    """Cursors over the output of engine objects (containers by default). Another engine's executor passes
    its own `frames` reader (Swarm: service logs) and `discover=False` when it tracks its objects itself."""

    def __init__(self, engine: Engine, stopping: threading.Event, *, frames: FrameReader | None = None,
                 dead_frames: DeadFrameReader | None = None, discover: bool = True,
                 name: str = "batchemu-docker-logs") -> None:
        self._engine = engine
        self._stopping = stopping
        self._frames: FrameReader = frames or _log_frames
        self._dead_frames = dead_frames  # tried first for the last lines of an object that ended
        self._discovers = discover
        self._lock = threading.Lock()
        self._cursors: dict[str, _LogCursor] = {}
        # Objects whose last lines were read -> what that read found: read once, never tracked again (a
        # container list can show one running a moment after its die event, and a second final read from a
        # fresh cursor would ship every line again).
        self._finished: dict[str, bool | None] = {}
        self.sink: LogSink | None = None
        self.thread = threading.Thread(target=self._pump, name=name, daemon=True)

    def track(self, container_id: str, labels: dict) -> _LogCursor | None:
        group, stream = labels.get(LABEL_LOG_GROUP), labels.get(LABEL_LOG_STREAM)
        if not group or not stream:
            return None
        with self._lock:
            if container_id in self._finished:
                return None
            cursor = self._cursors.get(container_id)
            if cursor is None:
                cursor = self._cursors[container_id] = _LogCursor(container_id, group, stream)
            return cursor

    def forget(self, container_id: str) -> None:
        with self._lock:
            self._cursors.pop(container_id, None)

    def exited(self, container_id: str) -> None:
        """A die event: the pump reads no more; the executor's ship_final_lines(), which it calls for every
        object whose end it reports, reads every line left."""
        with self._lock:
            cursor = self._cursors.get(container_id)
        if cursor is not None:
            cursor.exited = True

    def _discover(self, client: docker.DockerClient) -> None:
        for summary in client.api.containers(filters={"label": self._engine.label_filters(), "status": LIVE_STATES}):
            self.track(summary["Id"], summary.get("Labels") or {})

    def _pump(self) -> None:
        next_discovery = 0.0
        while not self._stopping.wait(LOG_POLL_SECONDS):
            if self.sink is None:
                continue
            try:
                client = self._engine.client()
                if self._discovers and time.monotonic() >= next_discovery:
                    next_discovery = time.monotonic() + DISCOVER_SECONDS
                    self._discover(client)
                with self._lock:
                    cursors = [c for c in self._cursors.values() if not c.drained and not c.exited]
                for cursor in cursors:
                    self._ship_new_lines(client, cursor)
            except (EngineUnavailable, *UNREACHABLE):
                self._stopping.wait(RECONNECT_SECONDS)
            except Exception:
                log.exception("log pump pass failed")

    def ship_final_lines(self, client: docker.DockerClient, container_id: str, labels: dict) -> bool | None:
        """Ship every line not shipped yet; whether the engine still had the object (None: not read). Called
        again for the same object, it reads nothing and answers as the first call did."""
        with self._lock:
            if container_id in self._finished:
                return self._finished[container_id]
        found = None
        cursor = self.track(container_id, labels)
        if cursor is not None:
            # Read again even after the pump's last read: the engine may have flushed lines since.
            with cursor.lock:
                cursor.exited, cursor.drained = True, False
            try:
                found = self._ship_new_lines(client, cursor, ended=True)
            except DockerException as exc:
                log.warning("could not read the last output of container %s: %s", container_id[:12], exc)
                return None  # read again by the next call
        with self._lock:
            self._finished[container_id] = found
            while len(self._finished) > KEPT_FINISHED:
                del self._finished[next(iter(self._finished))]
        self.forget(container_id)
        return found

    def _ship_new_lines(self, client: docker.DockerClient, cursor: _LogCursor, *, ended: bool = False) -> bool | None:
        """Whether the engine still had the object (None: not read). The last read of an object that ended
        holds the cursor throughout; a read of a live one does not hold it while the engine answers, so that
        the last read, made on another thread once the object dies, never waits behind it (the engine
        answers about an object that just died only once it has cleaned up after it)."""
        sink = self.sink
        if sink is None:
            return None
        if ended:
            with cursor.lock:
                if cursor.drained:
                    return None
                exited = cursor.exited  # read before the logs: that read then holds every line
                window_start = max(cursor.last_ns - LOG_OVERLAP_NS, 0)
                try:
                    frames = self._fetch(client, cursor, window_start, ended=True)
                except NotFound:
                    return self._gone(cursor)
                self._ship(sink, cursor, frames, window_start)
                cursor.drained = exited
            return True
        with cursor.lock:
            if cursor.drained or cursor.exited:
                return None
            window_start = max(cursor.last_ns - LOG_OVERLAP_NS, 0)
        try:
            frames = self._fetch(client, cursor, window_start)
        except NotFound:
            with cursor.lock:
                return self._gone(cursor)
        with cursor.lock:
            if cursor.drained or cursor.exited:
                return None  # it died meanwhile: its last read ships these lines
            self._ship(sink, cursor, frames, window_start)
        return True

    def _gone(self, cursor: _LogCursor) -> bool:
        cursor.drained = True
        self.forget(cursor.container_id)
        return False

    def _fetch(self, client: docker.DockerClient, cursor: _LogCursor, window_start: int, *,
               ended: bool = False) -> list[tuple[int, bytes]]:
        """The object's messages from `window_start` (epoch ns) on: every one, asked page by page."""
        since = (window_start // 1000) / 1e6 if window_start else None
        frames = None
        if ended and self._dead_frames is not None:
            frames = self._dead_frames(client, cursor.container_id, since)
        if frames is None:
            page = LOG_PAGE + len(cursor.recent)
            frames = list(self._frames(client, cursor.container_id, since, page))
            if len(frames) >= page:
                frames = list(self._frames(client, cursor.container_id, since, "all"))
        return frames

    @staticmethod
    def _ship(sink: LogSink, cursor: _LogCursor, frames: list[tuple[int, bytes]], window_start: int) -> None:
        """Ship the messages not shipped yet, in time order, and move the cursor past them."""
        already = Counter(cursor.recent)
        lines: list[tuple[int, str]] = []
        for stamp, raw in frames:
            if stamp < window_start:
                continue
            if already[(stamp, raw)]:
                already[(stamp, raw)] -= 1
                continue
            cursor.recent.append((stamp, raw))
            cursor.last_ns = max(cursor.last_ns, stamp)
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            if text:  # CloudWatch Logs has no empty events
                lines.append((stamp // 1_000_000, text))
        floor = cursor.last_ns - LOG_OVERLAP_NS
        cursor.recent = [entry for entry in cursor.recent if entry[0] >= floor]
        lines.sort(key=lambda line: line[0])  # stdout and stderr can land a little out of order
        if lines:
            try:
                sink(cursor.log_group, cursor.log_stream, lines)
            except Exception:
                log.exception("log sink failed for %s", cursor.log_stream)


def _log_frames(client: docker.DockerClient, container_id: str, since: float | None,
                tail: int | str) -> Iterator[tuple[int, bytes]]:
    """(timestamp ns, line) of each stdout/stderr message; one multiplexed frame is one message.

    Read as APIClient.logs() reads them, but whole (follow=0: the answer ends) and without the inspection it
    makes first to learn whether the container has a TTY: batchemu creates none with one, so its output is
    always multiplexed."""
    api = client.api
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "tail": tail}
    if since:
        params["since"] = since
    response = api._get(api._url("/containers/{0}/logs", container_id), params=params)
    api._raise_for_status(response)
    yield from timestamped_frames(response.content)


def timestamped_frames(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(timestamp ns, line) of each frame of an engine's multiplexed logs answer read with timestamps=1 (a
    container's or a swarm service's); a frame without a readable timestamp is left out."""
    for frame in transport.demultiplex(body):
        stamp, _, raw = frame.partition(b" ")
        ns = parse_timestamp_ns(stamp.decode("ascii", errors="replace"))
        if ns is not None:
            yield ns, raw


class LogFiles:
    """The output of containers that ended, read from the engine's own json-file logs when this process can
    open them (the same host, a data root it may read; else the engine is asked, as for live ones).

    The engine answers a logs request about a container that just died only once it has cleaned up after
    it (25-60 ms here), which would hold up the scheduler's news of the end. Its log file is whole by then:
    the engine closes a container's log writer before it sends "die"."""

    def __init__(self) -> None:
        self._root: str | None = None   # the engine's data root, asked once
        self._readable = True           # False once a file was refused to this process: the engine is asked

    def frames(self, client: docker.DockerClient, container_id: str,
               since: float | None) -> list[tuple[int, bytes]] | None:
        """(timestamp ns, raw line) of each message at or after `since`, as _log_frames gives them; None
        when the file cannot be read here or was rotated (older messages are in other files)."""
        if not self._readable or not container_id.isalnum():
            return None
        if self._root is None:
            self._root = str(client.info().get("DockerRootDir") or "")
        if not self._root:
            return None
        path = os.path.join(self._root, "containers", container_id, f"{container_id}-json.log")
        if os.path.exists(f"{path}.1") or os.path.exists(f"{path}.1.gz"):
            return None
        try:
            with open(path, "rb") as file:
                data = file.read()
        except PermissionError:
            self._readable = False
            return None
        except OSError:  # not on this host, or removed: the engine tells
            return None
        # `since` holds whole microseconds (as the engine reads it from its decimal form); since * 1e9 is off by up
        # to 256 ns at today's epoch, which left out a message the engine gives.
        floor = round(since * 1_000_000) * 1000 if since else 0
        frames = []
        for line in data.splitlines():
            try:
                entry = json.loads(line)
                stamp = parse_timestamp_ns(entry["time"])
                raw = entry["log"].encode()
            except (ValueError, KeyError, TypeError, AttributeError):
                return None  # not a json-file log as we know it
            if stamp is not None and stamp >= floor:
                frames.append((stamp, raw))
        return frames
