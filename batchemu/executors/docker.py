"""Runs job attempts as containers on the local Docker Engine through the docker SDK.

Two background threads per executor: one follows the engine's event stream so the scheduler wakes the
moment a container of ours dies, and one pumps new stdout/stderr lines of our containers to the log sink
every LOG_POLL_SECONDS. Every container carries labels (job, attempt, instance, log group and stream), so
a restarted server finds its containers, and where their output goes, again.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import DeviceRequest, LogConfig, Mount, Ulimit
from docker.utils import parse_repository_tag

from batchemu.config import Config
from batchemu.executors import (
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    LABEL_JOB_ID,
    LABEL_MANAGED,
    ContainerExit,
    ContainerSpec,
    EngineUnavailable,
    ImagePullError,
    LogSink,
    faults,
    images,
)

log = logging.getLogger("batchemu.executors.docker")

# Where a container's output goes, so an adopted container ships to the same log stream.
LABEL_LOG_GROUP = "batchemu.log-group"
LABEL_LOG_STREAM = "batchemu.log-stream"

API_TIMEOUT = 15           # seconds for one engine call (stop adds its grace period to it)
LOG_POLL_SECONDS = 0.2
DISCOVER_SECONDS = 2.0     # how often the log pump looks for running containers it was not told about
RECONNECT_SECONDS = 1.0
DIE_SETTLE_SECONDS = 2.0   # longest wait for a dead container to show as stopped before waking anyway
EXIT_SCAN_SECONDS = 2.0    # longest time between two lists of stopped containers without a die event
LOG_PAGE = 1000            # new lines asked per read; a full page means more wait, so everything is read
# Docker stamps a line before it takes the log file's lock, so stdout and stderr lines can land slightly
# out of timestamp order: each read goes back this far and skips the lines already shipped.
LOG_OVERLAP_NS = 500_000_000
MIN_MEMORY_MIB = 6         # the engine refuses smaller limits
STOPPED_STATES = ["exited", "dead", "created"]
LIVE_STATES = ["running", "paused"]
DEVICE_PERMISSIONS = {"READ": "r", "WRITE": "w", "MKNOD": "m"}
_UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class ContainerStartError(ImagePullError):
    """The engine refused to create or start the container; str() is AWS's full statusReason.

    A subclass of ImagePullError because the scheduler handles both alike: the attempt fails with str()."""


def container_name(spec: ContainerSpec) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", f"batchemu-{spec.job_id}-{spec.attempt}")


def parse_timestamp_ns(text: str) -> int | None:
    """Epoch nanoseconds of an engine timestamp (RFC 3339, nanoseconds); None for Go's zero time."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    moment = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    if moment.year <= 1:
        return None
    seconds = int(moment.astimezone(timezone.utc).timestamp())
    return seconds * 1_000_000_000 + int((fraction or "0")[:9].ljust(9, "0"))


def _epoch_ms(text: str | None) -> int | None:
    ns = parse_timestamp_ns(text or "")
    return None if ns is None else ns // 1_000_000


@dataclass
class _LogCursor:
    """How far the output of one container has been shipped."""

    container_id: str
    log_group: str
    log_stream: str
    last_ns: int = 0
    # (timestamp ns, raw line) of lines shipped within LOG_OVERLAP_NS of last_ns, to skip them on re-read.
    recent: list[tuple[int, bytes]] = field(default_factory=list)
    exited: bool = False   # a die event was seen: one more read gets every line
    drained: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class DockerExecutor:
    """The Executor of batchemu.executors on the Docker Engine of DOCKER_HOST (or the local socket)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the dicts and sets below
        self._cursors: dict[str, _LogCursor] = {}
        self._reported: set[str] = set()   # containers whose exit was handed out (removed on the next call)
        self._removing: set[str] = set()   # containers being removed on the removal pool
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchemu-docker-rm")
        self._host_cpus: int | None = None
        self._listener: Callable[[], None] | None = None
        self._sink: LogSink | None = None
        self._events = None
        # Set by every die event (and when the event stream (re)connects): collect_exits() lists the stopped
        # containers only then, or after EXIT_SCAN_SECONDS, instead of on every scheduler pass.
        self._died = threading.Event()
        self._died.set()
        self._last_exit_scan = 0.0
        self._faults = faults.FaultBook()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._follow_events, name="batchemu-docker-events", daemon=True),
                         threading.Thread(target=self._pump_logs, name="batchemu-docker-logs", daemon=True)]
        for thread in self._threads:
            thread.start()

    # -- connection -------------------------------------------------------------------------------------

    def _engine(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = docker.from_env(timeout=API_TIMEOUT)
                except DockerException as exc:
                    raise EngineUnavailable(f"Cannot connect to the Docker Engine: {exc}") from exc
                # docker-py inspects a container before each logs read to learn whether it has a TTY; batchemu
                # creates every container without one, so that extra engine call per read is skipped.
                self._client.api._check_is_tty = _no_tty
            return self._client

    def _unreachable(self, exc: Exception) -> EngineUnavailable:
        where = self._client.api.base_url if self._client is not None else "the Docker Engine"
        return EngineUnavailable(f"Cannot connect to the Docker Engine at {where}: {exc}")

    def _label_filters(self) -> list[str]:
        filters = [f"{LABEL_MANAGED}=1"]
        if self.config.instance_label:
            filters.append(f"{LABEL_INSTANCE}={self.config.instance_label}")
        return filters

    def status(self) -> tuple[bool, str]:
        try:
            client = self._engine()
            version = client.api.version()
        except EngineUnavailable as exc:
            return False, str(exc)
        except _UNREACHABLE as exc:
            return False, str(self._unreachable(exc))
        except DockerException as exc:
            return False, f"Docker Engine error: {exc}"
        return True, f"Docker Engine {version.get('Version')} (API {client.api.api_version})"

    # -- starting ---------------------------------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        client = self._engine()
        name = container_name(spec)
        if self._faults.take_pull_failure(spec.job_id):
            raise ImagePullError(faults.pull_failure_reason(spec.image))
        try:
            image = self._resolve_image(client, spec.image)
            arguments = self._create_arguments(client, spec)
            return self._create_and_start(client, spec, name, image, arguments)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc

    def _resolve_image(self, client: docker.DockerClient, image: str) -> str:
        """The local image to run for the job's `image` (batchemu.executors.images), pulled if need be."""
        *local_only, last = images.candidates(image, self.config.image_map)
        for candidate in local_only:
            if self._present(client, candidate):
                log.debug("image %s runs as the local %s", image, candidate)
                return candidate
        self._ensure_image(client, last)
        return last

    @staticmethod
    def _present(client: docker.DockerClient, image: str) -> bool:
        try:
            client.images.get(image)
            return True
        except (ImageNotFound, NotFound):
            return False
        except APIError as exc:
            raise ImagePullError(f"CannotPullContainerError: Error response from daemon: {_explain(exc)}") from exc

    def _ensure_image(self, client: docker.DockerClient, image: str) -> None:
        if self._present(client, image):
            return
        repository, tag = parse_repository_tag(image)
        log.info("pulling image %s", image)
        try:
            for progress in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(progress, dict) and progress.get("error"):
                    raise ImagePullError(f"CannotPullContainerError: {progress['error']}")
        except APIError as exc:
            raise ImagePullError(f"CannotPullContainerError: Error response from daemon: {_explain(exc)}") from exc

    def _create_and_start(self, client: docker.DockerClient, spec: ContainerSpec, name: str, image: str,
                          arguments: dict) -> str:
        try:
            container = client.containers.create(image, name=name, **arguments)
        except APIError as exc:
            if exc.status_code == 409:
                return self._resume(client, spec, name, exc)
            raise ContainerStartError(
                f"CannotCreateContainerError: Error response from daemon: {_explain(exc)}") from exc
        self._track(container.id, arguments["labels"])
        self._start_or_remove(client, container)
        log.debug("started %s (%s) for job %s attempt %d", name, container.id[:12], spec.job_id, spec.attempt)
        return container.id

    def _resume(self, client: docker.DockerClient, spec: ContainerSpec, name: str, conflict: APIError) -> str:
        """The attempt's container exists already (a start that timed out, a restart): carry on with it."""
        container = client.containers.get(name)
        labels = container.labels
        if labels.get(LABEL_JOB_ID) != spec.job_id or labels.get(LABEL_ATTEMPT) != str(spec.attempt):
            raise ContainerStartError(
                f"CannotCreateContainerError: Error response from daemon: {_explain(conflict)}") from conflict
        self._track(container.id, labels)
        if container.status == "created":
            self._start_or_remove(client, container)
        return container.id

    def _start_or_remove(self, client: docker.DockerClient, container) -> None:
        """Start a created container; one the engine refuses to start is removed, never left behind."""
        try:
            container.start()
        except APIError as exc:
            self._forget(container.id)
            _remove_quietly(client, container.id)
            raise ContainerStartError(
                f"CannotStartContainerError: Error response from daemon: {_explain(exc)}") from exc

    def _create_arguments(self, client: docker.DockerClient, spec: ContainerSpec) -> dict:
        labels = {**spec.labels, LABEL_JOB_ID: spec.job_id, LABEL_ATTEMPT: str(spec.attempt), LABEL_MANAGED: "1",
                  LABEL_LOG_GROUP: spec.log_group, LABEL_LOG_STREAM: spec.log_stream}
        if self.config.instance_label:
            labels[LABEL_INSTANCE] = self.config.instance_label
        linux = spec.linux_parameters or {}
        arguments: dict = {
            "command": list(spec.command) or None,
            "environment": dict(spec.environment),
            "labels": labels,
            "network_mode": self.config.network or "host",
            "user": spec.user or None,
            "privileged": bool(spec.privileged),
            "read_only": bool(spec.readonly_root_filesystem),
            # Read back by the log pump whatever the engine's default driver is.
            "log_config": LogConfig(type="json-file"),
        }
        if spec.memory_mib:
            memory = max(int(spec.memory_mib), MIN_MEMORY_MIB)
            # memory + swap equal to memory: a job over its limit is OOM-killed, as on Batch.
            swap = max(int(linux["maxSwap"]), 0) if linux.get("maxSwap") is not None else 0
            arguments["mem_limit"] = f"{memory}m"
            arguments["memswap_limit"] = f"{memory + swap}m"
            if linux.get("swappiness") is not None:
                arguments["mem_swappiness"] = int(linux["swappiness"])
        if spec.vcpus and spec.vcpus > 0:
            # The engine refuses more CPUs than the host has; Batch's vCPU count is a reservation anyway.
            arguments["nano_cpus"] = int(min(float(spec.vcpus), self._cpu_count(client)) * 1e9)
        if spec.ulimits:
            arguments["ulimits"] = [Ulimit(name=u["name"], soft=int(u["softLimit"]), hard=int(u["hardLimit"]))
                                    for u in spec.ulimits]
        if linux.get("devices"):
            arguments["devices"] = [_device(d) for d in linux["devices"]]
        if linux.get("initProcessEnabled"):
            arguments["init"] = True
        if linux.get("sharedMemorySize"):
            arguments["shm_size"] = f"{int(linux['sharedMemorySize'])}m"
        if linux.get("tmpfs"):
            arguments["tmpfs"] = {t["containerPath"]: ",".join([f"size={int(t['size'])}m", *t.get("mountOptions", [])])
                                  for t in linux["tmpfs"]}
        if spec.gpus:
            arguments["device_requests"] = [DeviceRequest(count=int(spec.gpus), capabilities=[["gpu"]])]
        binds, mounts = _volumes(spec)
        if binds:
            arguments["volumes"] = binds
        if mounts:
            arguments["mounts"] = mounts
        return arguments

    def _cpu_count(self, client: docker.DockerClient) -> int:
        if self._host_cpus is None:
            self._host_cpus = int(client.info().get("NCPU") or 1)
        return self._host_cpus

    # -- state of our containers ------------------------------------------------------------------------

    def running(self) -> dict[tuple[str, int], str]:
        """Raises EngineUnavailable rather than answer "none" when the engine cannot be asked."""
        client = self._engine()
        try:
            summaries = client.api.containers(filters={"label": self._label_filters(), "status": LIVE_STATES})
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        result = {}
        for summary in summaries:
            labels = summary.get("Labels") or {}
            key = _attempt_key(labels)
            if key is not None:
                result[key] = summary["Id"]
                self._track(summary["Id"], labels)
        # The scheduler takes a container missing from this list and from the next collect_exits() for one the
        # engine lost: that call must list the stopped containers, even before the die event of one is handled.
        self._died.set()
        return result

    def collect_exits(self) -> list[ContainerExit]:
        """Containers reported by an earlier call are removed now (in the background), once the scheduler
        has recorded them; only containers not yet reported are inspected. The engine is asked only after a
        die event, while reported containers wait for removal, or EXIT_SCAN_SECONDS after it was last asked."""
        with self._lock:
            removals_due = bool(self._reported)
        if not (removals_due or self._died.is_set() or time.monotonic() - self._last_exit_scan >= EXIT_SCAN_SECONDS):
            return []
        self._died.clear()  # before the list: a container that dies during it is looked for next time
        self._last_exit_scan = time.monotonic()
        try:
            return self._scan_exits()
        except BaseException:
            self._died.set()
            raise

    def _scan_exits(self) -> list[ContainerExit]:
        client = self._engine()
        try:
            summaries = client.api.containers(all=True, filters={"label": self._label_filters(),
                                                                 "status": STOPPED_STATES})
            exits = []
            with self._lock:
                reported = set(self._reported)
            for summary in summaries:
                container_id = summary["Id"]
                if container_id in reported:
                    if not self.config.keep_containers:
                        self._remove_later(container_id)
                    continue
                if summary.get("State") == "created":
                    # Being started right now (start() removes what it fails to start), or left by a server
                    # that died mid-start, which the restarted scheduler resumes by name: not an exit.
                    continue
                try:
                    container = client.containers.get(container_id)
                except NotFound:
                    continue
                if container.status == "created" or container.status not in STOPPED_STATES:
                    # Listed as stopped, but started by the time it was inspected: not an exit.
                    continue
                exit = _exit_of(container.attrs)
                if exit is None:
                    continue
                exit = self._faults.settle(exit)
                self._ship_final_lines(client, container.id, container.labels)
                exits.append(exit)
                with self._lock:
                    self._reported.add(container.id)
            with self._lock:
                # Forget ids the engine no longer lists (removed), so the set stays small.
                self._reported &= {s["Id"] for s in summaries}
                self._reported |= {e.container_id for e in exits}
            return exits
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc

    def _remove_later(self, container_id: str) -> None:
        """Remove a reported container on the removal pool, so the scheduler's pass does not wait for it."""
        with self._lock:
            if container_id in self._removing:
                return
            self._removing.add(container_id)

        def remove() -> None:
            try:
                _remove_quietly(self._engine(), container_id)
            finally:
                with self._lock:
                    self._removing.discard(container_id)
        try:
            self._removals.submit(remove)
        except RuntimeError:  # closing: the next server's pass removes it
            with self._lock:
                self._removing.discard(container_id)

    def stop(self, container_id: str, timeout: float = 10.0) -> None:
        """A container already gone is fine; an engine that refuses is logged (the exit is what counts)."""
        client = self._engine()
        try:
            client.api.stop(container_id, timeout=max(0, math.ceil(timeout)))
        except NotFound:
            pass
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except APIError as exc:
            log.warning("could not stop container %s: %s", container_id[:12], _explain(exc))

    def inject_fault(self, job_id: str, attempt: int, container_id: str | None, fault: str) -> None:
        """Kill the container (SIGKILL, as a host that vanishes) and report the fault's outcome as its exit."""
        if fault == faults.PULL_FAILURE:
            self._faults.arm_pull_failure(job_id)
            return
        client = self._engine()
        self._faults.mark(container_id, fault)
        try:
            client.api.kill(container_id)
        except NotFound:
            self._faults.unmark(container_id)
            raise faults.FaultRefused(f"the container of attempt {attempt} of job {job_id} is gone") from None
        except APIError as exc:
            self._faults.unmark(container_id)
            if exc.status_code == 409:  # not running
                raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already") from None
            raise
        except _UNREACHABLE as exc:
            self._faults.unmark(container_id)
            raise self._unreachable(exc) from exc

    def remove_all(self) -> None:
        try:
            client = self._engine()
            summaries = client.api.containers(all=True, filters={"label": self._label_filters()})
        except (EngineUnavailable, DockerException, *_UNREACHABLE) as exc:
            log.warning("could not list containers to remove: %s", exc)
            return
        for summary in summaries:
            self._forget(summary["Id"])
            _remove_quietly(client, summary["Id"])

    def set_listener(self, on_event: Callable[[], None]) -> None:
        self._listener = on_event

    def set_log_sink(self, sink: LogSink) -> None:
        self._sink = sink

    def close(self) -> None:
        self._stopping.set()
        self._removals.shutdown(wait=True)
        events = self._events
        if events is not None:
            try:
                events.close()
            except (OSError, AttributeError, DockerException) as exc:  # an already broken stream
                log.debug("closing the docker event stream: %s", exc)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    # -- events -----------------------------------------------------------------------------------------

    def _notify(self) -> None:
        listener = self._listener
        if listener is not None:
            try:
                listener()
            except Exception:
                log.exception("container event listener failed")

    def _follow_events(self) -> None:
        while not self._stopping.is_set():
            try:
                client = self._engine()
                self._events = client.events(decode=True, filters={
                    "type": "container", "event": ["die"], "label": self._label_filters()})
            except (EngineUnavailable, DockerException, *_UNREACHABLE):
                self._stopping.wait(RECONNECT_SECONDS)
                continue
            if self._stopping.is_set():  # close() ran before the stream existed to be cut
                self._events.close()
                break
            # Containers may have died while nobody listened.
            self._died.set()
            self._notify()
            try:
                for event in self._events:
                    if self._stopping.is_set():
                        break
                    self._on_die(client, event.get("id") or event.get("Actor", {}).get("ID", ""))
            except (OSError, ValueError, AttributeError, DockerException, urllib3.exceptions.HTTPError) as exc:
                # The engine went away or close() cut the stream: reconnect, or leave.
                log.debug("docker event stream ended: %s", exc)
            finally:
                self._events = None
            self._stopping.wait(RECONNECT_SECONDS / 10)

    def _on_die(self, client: docker.DockerClient, container_id: str) -> None:
        with self._lock:
            cursor = self._cursors.get(container_id)
        if cursor is not None:
            cursor.exited = True
        # The engine sends "die" a moment before its container list shows the container stopped; waking the
        # scheduler earlier would make collect_exits() miss it until the next tick.
        deadline = time.monotonic() + DIE_SETTLE_SECONDS
        while time.monotonic() < deadline and not self._stopping.is_set():
            if client.api.containers(all=True, filters={"id": container_id, "status": STOPPED_STATES}):
                break
            time.sleep(0.01)
        self._died.set()
        self._notify()

    # -- logs -------------------------------------------------------------------------------------------

    def _track(self, container_id: str, labels: dict) -> _LogCursor | None:
        group, stream = labels.get(LABEL_LOG_GROUP), labels.get(LABEL_LOG_STREAM)
        if not group or not stream:
            return None
        with self._lock:
            cursor = self._cursors.get(container_id)
            if cursor is None:
                cursor = self._cursors[container_id] = _LogCursor(container_id, group, stream)
            return cursor

    def _forget(self, container_id: str) -> None:
        with self._lock:
            self._cursors.pop(container_id, None)

    def _pump_logs(self) -> None:
        next_discovery = 0.0
        while not self._stopping.wait(LOG_POLL_SECONDS):
            if self._sink is None:
                continue
            try:
                if time.monotonic() >= next_discovery:
                    next_discovery = time.monotonic() + DISCOVER_SECONDS
                    self.running()
                client = self._engine()
                with self._lock:
                    cursors = [c for c in self._cursors.values() if not c.drained]
                for cursor in cursors:
                    self._ship_new_lines(client, cursor)
            except (EngineUnavailable, *_UNREACHABLE):
                self._stopping.wait(RECONNECT_SECONDS)
            except Exception:
                log.exception("log pump pass failed")

    def _ship_final_lines(self, client: docker.DockerClient, container_id: str, labels: dict) -> None:
        cursor = self._track(container_id, labels)
        if cursor is not None:
            # Read again even after the pump's last read: the engine may have flushed lines since.
            with cursor.lock:
                cursor.exited, cursor.drained = True, False
            try:
                self._ship_new_lines(client, cursor)
            except DockerException as exc:
                log.warning("could not read the last output of container %s: %s", container_id[:12], exc)
        self._forget(container_id)

    def _ship_new_lines(self, client: docker.DockerClient, cursor: _LogCursor) -> None:
        sink = self._sink
        if sink is None:
            return
        with cursor.lock:
            if cursor.drained:
                return
            exited = cursor.exited  # read before the logs: that read then holds every line
            try:
                lines = self._read_new_lines(client, cursor)
            except NotFound:
                cursor.drained = True
                self._forget(cursor.container_id)
                return
            if lines:
                try:
                    sink(cursor.log_group, cursor.log_stream, lines)
                except Exception:
                    log.exception("log sink failed for %s", cursor.log_stream)
            cursor.drained = exited

    def _read_new_lines(self, client: docker.DockerClient, cursor: _LogCursor) -> list[tuple[int, str]]:
        window_start = max(cursor.last_ns - LOG_OVERLAP_NS, 0)
        since = (window_start // 1000) / 1e6 if window_start else None
        page = LOG_PAGE + len(cursor.recent)
        frames = list(self._log_frames(client, cursor.container_id, since, page))
        if len(frames) >= page:
            frames = list(self._log_frames(client, cursor.container_id, since, "all"))
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
        return lines

    @staticmethod
    def _log_frames(client: docker.DockerClient, container_id: str, since: float | None,
                    tail: int | str) -> Iterator[tuple[int, bytes]]:
        """(timestamp ns, line) of each stdout/stderr message; one multiplexed frame is one message."""
        for frame in client.api.logs(container_id, stdout=True, stderr=True, timestamps=True, stream=True,
                                     follow=False, since=since, tail=tail):
            stamp, _, raw = frame.partition(b" ")
            ns = parse_timestamp_ns(stamp.decode("ascii", errors="replace"))
            if ns is not None:
                yield ns, raw


def _no_tty(container: str) -> bool:
    return False


def _explain(exc: APIError) -> str:
    return str(exc.explanation or exc)


def _remove_quietly(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, v=True, force=True)
    except NotFound:
        pass
    except (DockerException, *_UNREACHABLE) as exc:
        log.warning("could not remove container %s: %s", container_id[:12], exc)


def _attempt_key(labels: dict) -> tuple[str, int] | None:
    try:
        return labels[LABEL_JOB_ID], int(labels[LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None


def _exit_of(attrs: dict) -> ContainerExit | None:
    key = _attempt_key(attrs.get("Config", {}).get("Labels") or {})
    if key is None:
        return None
    state = attrs.get("State", {})
    exit = ContainerExit(job_id=key[0], attempt=key[1], container_id=attrs["Id"], exit_code=None,
                         started_at=_epoch_ms(state.get("StartedAt")), finished_at=_epoch_ms(state.get("FinishedAt")))
    if exit.started_at is None and state.get("Error"):
        exit.error = f"CannotStartContainerError: Error response from daemon: {state['Error']}"
    else:
        exit.exit_code = state.get("ExitCode")
        if exit.started_at is not None and exit.finished_at is not None:
            # The engine stamps StartedAt after the process runs: a quick one can "finish" before it started.
            exit.finished_at = max(exit.finished_at, exit.started_at)
        exit.oom_killed = bool(state.get("OOMKilled"))
    return exit


def _device(device: dict) -> str:
    host_path = device["hostPath"]
    permissions = device.get("permissions") or list(DEVICE_PERMISSIONS)
    modes = "".join(DEVICE_PERMISSIONS[p] for p in DEVICE_PERMISSIONS if p in permissions)
    return f"{host_path}:{device.get('containerPath') or host_path}:{modes}"


def _volumes(spec: ContainerSpec) -> tuple[list[str], list[Mount]]:
    """Binds for volumes with a host sourcePath; an anonymous engine volume for the others (as ECS does)."""
    volumes = {volume.get("name"): volume for volume in spec.volumes}
    binds: list[str] = []
    mounts: list[Mount] = []
    for point in spec.mount_points:
        volume = volumes.get(point.get("sourceVolume"))
        target = point.get("containerPath")
        if volume is None or not target:
            continue
        read_only = bool(point.get("readOnly"))
        source = (volume.get("host") or {}).get("sourcePath")
        if source:
            binds.append(f"{source}:{target}:{'ro' if read_only else 'rw'}")
        else:
            mounts.append(Mount(target=target, source=None, type="volume", read_only=read_only))
    return binds, mounts
