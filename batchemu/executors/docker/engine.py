"""The connection to one Docker Engine, our labels and names on it, and the engine's words for errors."""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timezone

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.transport import UnixHTTPAdapter

from batchemu.config import Config
from batchemu.executors import (
    DEFAULT_CONTAINER,
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    LABEL_JOB_ID,
    LABEL_MANAGED,
    EngineUnavailable,
)
from batchemu.executors.docker import transport

log = logging.getLogger("batchemu.executors.docker")

# Where a container's output goes, so an adopted container ships to the same log stream.
LABEL_LOG_GROUP = "batchemu.log-group"
LABEL_LOG_STREAM = "batchemu.log-stream"
# What a restarted server needs to carry a task on from the engine alone.
LABEL_TASK = "batchemu.task"
LABEL_CONTAINER = "batchemu.container"
LABEL_INDEX = "batchemu.index"             # the container's place in its task's list
LABEL_ESSENTIAL = "batchemu.essential"
LABEL_INIT = "batchemu.init"
LABEL_ENDS_ON_FAILURE = "batchemu.ends-task-on-failure"
LABEL_DEPENDS_ON = "batchemu.depends-on"   # JSON [[name, condition], ...]
LABEL_NETWORK = "batchemu.network"         # the shared task network a container or network belongs to

API_TIMEOUT = 15           # seconds for one engine call (stop adds its grace period to it)
POOL_SIZE = 16  # engine connections kept: the scheduler, its 4 start workers, 2 removers, 4 die handlers, logs, events
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


class Engine:
    """A lazily made docker client, and the label filters that select this server's objects."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = docker.from_env(timeout=API_TIMEOUT, max_pool_size=POOL_SIZE)
                except DockerException as exc:
                    raise EngineUnavailable(f"Cannot connect to the Docker Engine: {exc}") from exc
                _lean_calls_on_a_local_socket(self._client.api)
            return self._client

    def unreachable(self, exc: Exception) -> EngineUnavailable:
        where = self._client.api.base_url if self._client is not None else "the Docker Engine"
        return EngineUnavailable(f"Cannot connect to the Docker Engine at {where}: {exc}")

    def label_filters(self, *extra: str) -> list[str]:
        filters = [f"{LABEL_MANAGED}=1", *extra]
        if self.config.instance_label:
            filters.append(f"{LABEL_INSTANCE}={self.config.instance_label}")
        return filters

    def own_labels(self) -> dict[str, str]:
        labels = {LABEL_MANAGED: "1"}
        if self.config.instance_label:
            labels[LABEL_INSTANCE] = self.config.instance_label
        return labels


def _lean_calls_on_a_local_socket(api: docker.APIClient) -> None:
    """A local socket needs no proxy: don't search the environment for one on every call (2 ms each); and
    its plain calls go through transport.LeanRequests, a connection each (one pool for every call was tried
    and dropped: its kept-open connections carried calls to an engine that was shutting down, which answers
    them with errors instead of the refusal that says it is down, tests/test_engine_restart.py)."""
    adapter = api.get_adapter(api.base_url)
    if isinstance(adapter, UnixHTTPAdapter):
        api.trust_env = False
        transport.install(api, adapter.socket_path)


def task_name(job_id: str, attempt: int) -> str:
    return _UNSAFE.sub("-", f"batchemu-{job_id}-{attempt}")


def container_name(task_id: str, name: str) -> str:
    """The task's name for its default container (a one-container task), `<task>-<name>` for the others."""
    return task_id if name == DEFAULT_CONTAINER else _UNSAFE.sub("-", f"{task_id}-{name}")


def network_name(group: str) -> str:
    return _UNSAFE.sub("-", f"batchemu-net-{group}")


def attempt_key(labels: dict) -> tuple[str, int] | None:
    try:
        return labels[LABEL_JOB_ID], int(labels[LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None


def task_of(labels: dict, container_id: str) -> str:
    """The task a container belongs to; a container of an older server (no task label) is its own task."""
    key = attempt_key(labels)
    return labels.get(LABEL_TASK) or (task_name(*key) if key else container_id)


def explain(exc: APIError) -> str:
    return str(exc.explanation or exc)


def daemon_said(exc: APIError) -> str:
    return f"Error response from daemon: {explain(exc)}"


def remove_container_quietly(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, v=True, force=True)
    except NotFound:
        pass
    except (DockerException, *UNREACHABLE) as exc:
        log.warning("could not remove container %s: %s", container_id[:12], exc)


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


def timestamp_of_ns(ns: int) -> str:
    """An engine timestamp (RFC 3339 with nanoseconds, UTC) of epoch nanoseconds: parse_timestamp_ns's inverse."""
    whole = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ns % 1_000_000_000:09d}Z"


def epoch_ms(text: str | None) -> int | None:
    ns = parse_timestamp_ns(text or "")
    return None if ns is None else ns // 1_000_000
