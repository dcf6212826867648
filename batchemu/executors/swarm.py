"""Runs job attempts on a Docker Swarm: one `replicated-job` service (one replica, no restart) per attempt.

The Docker client points at a manager node (DOCKER_HOST or the local socket). Swarm places each task on a
node whose free reservations fit the job's vCPUs and memory; batchemu still caps what runs at once by the
compute environment's maxvCpus. Everything Swarm-specific lives here; the log pump (cursors that ship new
lines to CloudWatch Logs) is DockerExecutor's, reading service logs instead of container logs.

What the engine reports, in AWS's words (batchemu.attempts turns exits into reasons as for plain Docker):

    task complete / failed        the container's exit code; OOM from the container when it ran on the
                                  manager's own node, else exit 137 under a memory limit that we did not stop
    task rejected (no container)  a start failure: `CannotPullContainerError: ...` for a missing image
    node down or gone, orphaned   the host is lost: `Host EC2 (instance <node id>) terminated.`
    swarm unreachable             after LOST_SWARM_SECONDS every attempt we knew of ends as a lost host

A replicated-job cannot be stopped in place: stop() stops the container when the task runs on the manager's
node, else removes the service (its exit code is then unknown). Services carry the labels containers carry
under Docker, so a restarted server adopts the running ones and records those that ended meanwhile.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from docker.errors import APIError, DockerException, NotFound
from docker.types import ContainerSpec as SwarmContainerSpec
from docker.types import (
    DriverConfig,
    Mount,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)

from batchemu.executors import (
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    LABEL_JOB_ID,
    LABEL_MANAGED,
    ContainerExit,
    ContainerSpec,
    EngineUnavailable,
    faults,
    images,
)
from batchemu.executors.docker import (
    _UNREACHABLE,
    LABEL_LOG_GROUP,
    LABEL_LOG_STREAM,
    MIN_MEMORY_MIB,
    ContainerStartError,
    DockerExecutor,
    _attempt_key,
    _explain,
    container_name,
    parse_timestamp_ns,
)

log = logging.getLogger("batchemu.executors.swarm")

WATCH_SECONDS = 0.5            # how often the watcher lists our tasks to wake the scheduler on an end
START_WAIT_SECONDS = 120.0     # longest start() waits for an assigned task to run (its node may pull)
PENDING_WAIT_SECONDS = 2.0     # a task still unassigned after this waits for capacity after start() returns
STOP_GRACE_NS = 10 * 1_000_000_000
# Seconds the swarm may be unreachable before the attempts on it end as lost hosts.
LOST_SWARM_SECONDS = float(os.environ.get("BATCHEMU_SWARM_LOST_SECONDS", "60"))
ENDED_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
UNASSIGNED_STATES = frozenset({"new", "pending", "allocated"})
GPU_KINDS = ("NVIDIA-GPU", "GPU")
PULL_WORDS = ("No such image", "pull", "manifest", "repository")
LOG_READ_SECONDS = 10.0        # longest read of one service's logs


@dataclass
class _Task:
    """The newest task of one of our services, as listed by the manager."""

    service_id: str
    key: tuple[str, int]
    labels: dict
    state: str
    node_id: str
    container_id: str
    exit_code: int | None
    error: str
    timestamp: str
    memory_limited: bool


class SwarmExecutor(DockerExecutor):
    """The Executor of batchemu.executors on the Docker Swarm of the manager the client points at."""

    name = "swarm"

    def __init__(self, config) -> None:
        self._stopped: dict[str, tuple[tuple[str, int], dict]] = {}  # removed by stop(): service -> key, labels
        self._known: dict[tuple[str, int], tuple[str, str]] = {}      # live attempt -> (service id, node id)
        self._unreachable_since: float | None = None
        self._local_node = ""
        super().__init__(config)

    # -- connection -------------------------------------------------------------------------------------

    def status(self) -> tuple[bool, str]:
        try:
            client = self._engine()
            info = client.info()
        except EngineUnavailable as exc:
            return self._swarm_down(str(exc))
        except _UNREACHABLE as exc:
            return self._swarm_down(str(self._unreachable(exc)))
        except DockerException as exc:
            return self._swarm_down(f"Docker Engine error: {exc}")
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            return self._swarm_down(f"the Docker Engine at {client.api.base_url} is not a swarm manager "
                                    f"(swarm state {swarm.get('LocalNodeState') or 'inactive'}; "
                                    "run `docker swarm init` or point DOCKER_HOST at a manager)")
        self._unreachable_since = None
        self._local_node = swarm.get("NodeID") or ""
        return True, (f"Docker Swarm of {swarm.get('Nodes')} node(s), {swarm.get('Managers')} manager(s), "
                      f"manager engine {info.get('ServerVersion')} (API {client.api.api_version})")

    def _swarm_down(self, detail: str) -> tuple[bool, str]:
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
        if self._lost_swarm() and self._known:
            # Reachable enough for the scheduler to collect the lost attempts' exits (collect_exits ends them).
            return True, f"{detail}; ending {len(self._known)} attempt(s) as lost hosts"
        return False, detail

    def _lost_swarm(self) -> bool:
        since = self._unreachable_since
        return since is not None and time.monotonic() - since >= LOST_SWARM_SECONDS

    def cluster(self) -> dict:
        """The swarm's nodes with their capacity and what our and others' running tasks reserve on them."""
        try:
            client = self._engine()
            nodes = client.api.nodes()
            tasks = client.api.tasks(filters={"desired-state": "running"})
        except (EngineUnavailable, DockerException, *_UNREACHABLE) as exc:
            return {"nodes": [], "error": str(exc)}
        reserved: dict[str, list[int]] = {}
        for task in tasks:
            if task.get("Status", {}).get("State") in ENDED_STATES or not task.get("NodeID"):
                continue
            reservation = (task.get("Spec", {}).get("Resources") or {}).get("Reservations") or {}
            used = reserved.setdefault(task["NodeID"], [0, 0, 0])
            used[0] += int(reservation.get("NanoCPUs") or 0)
            used[1] += int(reservation.get("MemoryBytes") or 0)
            used[2] += 1
        result = []
        for node in nodes:
            resources = node.get("Description", {}).get("Resources") or {}
            cpus, memory = int(resources.get("NanoCPUs") or 0), int(resources.get("MemoryBytes") or 0)
            used = reserved.get(node["ID"], [0, 0, 0])
            result.append({
                "id": node["ID"], "hostname": node.get("Description", {}).get("Hostname", ""),
                "role": node.get("Spec", {}).get("Role", ""), "state": node.get("Status", {}).get("State", ""),
                "availability": node.get("Spec", {}).get("Availability", ""),
                "address": node.get("Status", {}).get("Addr", ""),
                "vcpus": cpus / 1e9, "memoryMiB": memory // 2**20,
                "freeVcpus": max(cpus - used[0], 0) / 1e9, "freeMemoryMiB": max(memory - used[1], 0) // 2**20,
                "runningTasks": used[2], "gpus": _gpus(resources)})
        return {"nodes": result}

    # -- starting ---------------------------------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        client = self._engine()
        if self._faults.take_pull_failure(spec.job_id):
            raise ContainerStartError(faults.pull_failure_reason(spec.image))
        name = container_name(spec)
        try:
            nodes = client.api.nodes()
            template, labels = self._task_template(client, spec, nodes)
            try:
                service = client.api.create_service(
                    template, name=name, labels=labels, mode=ServiceMode("replicated-job", replicas=1))
                service_id = service["ID"]
            except APIError as exc:
                if exc.status_code == 503:
                    raise _not_managing(exc) from exc
                if exc.status_code != 409:
                    raise ContainerStartError(
                        f"CannotCreateContainerError: Error response from daemon: {_explain(exc)}") from exc
                service_id = self._resume(client, spec, name, exc)
            self._track(service_id, labels)
            self._await_start(client, spec, service_id)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except APIError as exc:
            raise _not_managing(exc) from exc
        log.debug("started service %s (%s) for job %s attempt %d", name, service_id[:12], spec.job_id, spec.attempt)
        return service_id

    def _resume(self, client, spec: ContainerSpec, name: str, conflict: APIError) -> str:
        """The attempt's service exists already (a start that timed out, a restart): carry on with it."""
        service = client.api.inspect_service(name)
        labels = service.get("Spec", {}).get("Labels") or {}
        if _attempt_key(labels) != (spec.job_id, spec.attempt):
            raise ContainerStartError(
                f"CannotCreateContainerError: Error response from daemon: {_explain(conflict)}") from conflict
        return service["ID"]

    def _await_start(self, client, spec: ContainerSpec, service_id: str) -> None:
        """Wait until the task runs or ends; a task that never got a container is a start failure (removed).
        A task no node has room for yet is left pending: it starts when capacity frees up."""
        began = time.monotonic()
        while not self._stopping.is_set():
            task = self._newest_tasks(client, {service_id: (spec.job_id, spec.attempt)}).get(service_id)
            elapsed = time.monotonic() - began
            if task is not None:
                if task.state in ENDED_STATES:
                    failure = _start_failure(task)
                    if failure:
                        self._forget(service_id)
                        _remove_service_quietly(client, service_id)
                        raise ContainerStartError(failure)
                    return
                if task.state == "running":
                    return
                if task.state in UNASSIGNED_STATES and elapsed >= PENDING_WAIT_SECONDS:
                    log.info("job %s attempt %d waits for a swarm node with room", spec.job_id, spec.attempt)
                    return
            if elapsed >= START_WAIT_SECONDS:
                return
            time.sleep(0.1)

    def _task_template(self, client, spec: ContainerSpec, nodes: list[dict]) -> tuple[TaskTemplate, dict]:
        labels = {**spec.labels, LABEL_JOB_ID: spec.job_id, LABEL_ATTEMPT: str(spec.attempt), LABEL_MANAGED: "1",
                  LABEL_LOG_GROUP: spec.log_group, LABEL_LOG_STREAM: spec.log_stream}
        if self.config.instance_label:
            labels[LABEL_INSTANCE] = self.config.instance_label
        linux = spec.linux_parameters or {}
        if spec.privileged:
            raise ContainerStartError("CannotStartContainerError: privileged containers cannot run as Docker "
                                      "Swarm services; run this job with --executor docker")
        if linux.get("devices"):
            raise ContainerStartError("CannotStartContainerError: host devices cannot be given to Docker Swarm "
                                      "services; run this job with --executor docker")
        image = self._choose_image(client, spec.image)
        container = SwarmContainerSpec(
            image, args=list(spec.command) or None, env=[f"{k}={v}" for k, v in spec.environment.items()],
            user=spec.user or None, labels=labels, mounts=_mounts(spec) or None,
            read_only=bool(spec.readonly_root_filesystem) or None, init=bool(linux.get("initProcessEnabled")) or None,
            stop_grace_period=STOP_GRACE_NS)
        if spec.ulimits:
            container["Ulimits"] = [{"Name": u["name"], "Soft": int(u["softLimit"]), "Hard": int(u["hardLimit"])}
                                    for u in spec.ulimits]
        largest_cpus = max((_node_resource(n, "NanoCPUs") for n in nodes), default=0)
        largest_memory = max((_node_resource(n, "MemoryBytes") for n in nodes), default=0)
        resources: dict = {}
        if spec.vcpus and spec.vcpus > 0:
            # A reservation larger than every node would wait forever: as on Docker, cap it at the largest.
            nano = int(float(spec.vcpus) * 1e9)
            nano = min(nano, largest_cpus) if largest_cpus else nano
            resources.update(cpu_reservation=nano, cpu_limit=nano)
        if spec.memory_mib:
            memory = max(int(spec.memory_mib), MIN_MEMORY_MIB) * 2**20
            resources.update(mem_limit=memory,
                             mem_reservation=min(memory, largest_memory) if largest_memory else memory)
        if spec.gpus:
            kind = next((k for n in nodes for k in _gpus(n.get("Description", {}).get("Resources") or {})), None)
            if kind is None:
                raise ContainerStartError(f"CannotStartContainerError: the job needs {spec.gpus} GPU(s) and no "
                                          "node of the swarm advertises a GPU generic resource")
            resources["generic_resources"] = {kind: int(spec.gpus)}
        network = self.config.network or "host"
        template = TaskTemplate(container, resources=Resources(**resources) if resources else None,
                                restart_policy=RestartPolicy(condition="none", max_attempts=0),
                                log_driver=DriverConfig("json-file"), networks=[network])
        return template, labels

    def _choose_image(self, client, image: str) -> str:
        """The first name images.candidates offers that the manager has locally, else the last: the node that
        runs the task must have it (or reach a registry that has it)."""
        *local_only, last = images.candidates(image, self.config.image_map)
        for candidate in local_only:
            if self._present(client, candidate):
                return candidate
        return last

    # -- state of our services --------------------------------------------------------------------------

    def _our_services(self, client) -> dict[str, tuple[str, int]]:
        services = client.api.services(filters={"label": self._label_filters()})
        result = {}
        for service in services:
            key = _attempt_key(service.get("Spec", {}).get("Labels") or {})
            if key is not None:
                result[service["ID"]] = key
        return result

    def _newest_tasks(self, client, services: dict[str, tuple[str, int]]) -> dict[str, _Task]:
        if not services:
            return {}
        try:
            listed = client.api.tasks(filters={"service": list(services)})
        except NotFound:  # one of them was removed meanwhile: the filter refuses names it does not know
            listed = client.api.tasks()
        newest: dict[str, dict] = {}
        for task in listed:
            known = newest.get(task.get("ServiceID"))
            if task.get("ServiceID") in services and (known is None or task.get("CreatedAt", "") > known.get("CreatedAt", "")):
                newest[task["ServiceID"]] = task
        return {service_id: _task_of(service_id, services[service_id], task) for service_id, task in newest.items()}

    def _node_states(self, client) -> dict[str, str]:
        return {node["ID"]: node.get("Status", {}).get("State", "") for node in client.api.nodes()}

    def _survey(self, client) -> tuple[dict[str, tuple[str, int]], dict[str, _Task], dict[str, str]]:
        services = self._our_services(client)
        tasks = self._newest_tasks(client, services)
        nodes = self._node_states(client) if tasks else {}
        known = {}
        for service_id, key in services.items():
            task = tasks.get(service_id)
            if task is not None and _lost(task, nodes):
                self._forget(service_id)
            elif task is None or task.state not in ENDED_STATES:
                known[key] = (service_id, task.node_id if task else "")
                if task is not None:  # the log pump follows live tasks only (ended ones ship their last lines once)
                    self._track(service_id, task.labels)
        self._known = known
        return services, tasks, nodes

    def running(self) -> dict[tuple[str, int], str]:
        """Raises EngineUnavailable rather than answer "none" when the swarm cannot be asked, unless it has been
        unreachable long enough that its attempts are lost."""
        if self._lost_swarm():
            return {}
        client = self._engine()
        try:
            self._survey(client)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except APIError as exc:
            raise _not_managing(exc) from exc
        return {key: service_id for key, (service_id, _) in self._known.items()}

    def collect_exits(self) -> list[ContainerExit]:
        if self._lost_swarm():
            return self._lost_attempts()
        client = self._engine()
        try:
            with self._lock:
                reported = set(self._reported)
            services, tasks, nodes = self._survey(client)
            exits = self._stopped_exits(services)
            for service_id in services:
                if service_id in reported:
                    if not self.config.keep_containers:
                        self._remove_service_later(service_id)
                    continue
                task = tasks.get(service_id)
                if task is None:
                    continue
                exit = _exit_of(task, nodes, self._local_node, client)
                if exit is None:
                    continue
                exit = self._faults.settle(exit)
                if _lost(task, nodes):
                    self._forget(service_id)  # its node cannot give its logs; lines shipped so far stay
                else:
                    self._ship_last_lines(client, service_id, task.labels)
                exits.append(exit)
            with self._lock:
                self._reported &= set(services)
                self._reported |= {e.container_id for e in exits if e.container_id in services}
            return exits
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except APIError as exc:
            raise _not_managing(exc) from exc

    def _ship_last_lines(self, client, service_id: str, labels: dict) -> None:
        try:
            self._ship_final_lines(client, service_id, labels)
        except _UNREACHABLE as exc:  # a slow node must not hold up the exit
            log.warning("could not read the last output of service %s: %s", service_id[:12], exc)
            self._forget(service_id)

    def _stopped_exits(self, services: dict) -> list[ContainerExit]:
        """Attempts whose service stop() removed (its node was not the manager's): ended, exit code unknown."""
        with self._lock:
            gone = {sid: entry for sid, entry in self._stopped.items() if sid not in services}
            for service_id in gone:
                del self._stopped[service_id]
        exits = []
        for service_id, (key, _labels) in gone.items():
            exits.append(self._faults.settle(ContainerExit(job_id=key[0], attempt=key[1], container_id=service_id,
                                                           exit_code=None, finished_at=int(time.time() * 1000))))
            self._forget(service_id)
        return exits

    def _lost_attempts(self) -> list[ContainerExit]:
        known, self._known = self._known, {}
        with self._lock:  # removed once the swarm answers again
            self._reported |= {service_id for service_id, _ in known.values()}
        log.warning("swarm unreachable for %.0f s: ending %d attempt(s) as lost hosts", LOST_SWARM_SECONDS, len(known))
        return [ContainerExit(job_id=key[0], attempt=key[1], container_id=service_id, exit_code=None,
                              error=_lost_reason(node_id or "unknown"))
                for key, (service_id, node_id) in known.items()]

    def _remove_service_later(self, service_id: str) -> None:
        with self._lock:
            if service_id in self._removing:
                return
            self._removing.add(service_id)

        def remove() -> None:
            try:
                _remove_service_quietly(self._engine(), service_id)
            finally:
                with self._lock:
                    self._removing.discard(service_id)
        try:
            self._removals.submit(remove)
        except RuntimeError:  # closing: the next server's pass removes it
            with self._lock:
                self._removing.discard(service_id)

    def _end_task(self, client, service_id: str, kill: bool, timeout: float) -> bool:
        """Stop (or kill) the task's container when it runs on the manager's node, else remove the service.
        Whether there was a task to end."""
        task = self._newest_tasks(client, {service_id: ("", 0)}).get(service_id)
        if task is not None and task.state in ENDED_STATES:
            return False
        labels = task.labels if task is not None else self._labels_of(client, service_id)
        if labels is None:
            return False
        if task is not None and task.node_id == self._local_node and task.container_id:
            try:
                if kill:
                    client.api.kill(task.container_id)
                else:
                    client.api.stop(task.container_id, timeout=max(0, math.ceil(timeout)))
                return True
            except NotFound:
                pass
        with self._lock:
            self._stopped[service_id] = (_attempt_key(labels) or ("", 0), labels)
        _remove_service_quietly(client, service_id)
        return True

    @staticmethod
    def _labels_of(client, service_id: str) -> dict | None:
        try:
            return client.api.inspect_service(service_id).get("Spec", {}).get("Labels") or {}
        except NotFound:
            return None

    def stop(self, container_id: str, timeout: float = 10.0) -> None:
        client = self._engine()
        try:
            self._end_task(client, container_id, kill=False, timeout=timeout)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except APIError as exc:
            if exc.status_code == 503:
                raise _not_managing(exc) from exc
            log.warning("could not stop service %s: %s", container_id[:12], _explain(exc))

    def inject_fault(self, job_id: str, attempt: int, container_id: str | None, fault: str) -> None:
        if fault == faults.PULL_FAILURE:
            self._faults.arm_pull_failure(job_id)
            return
        client = self._engine()
        self._faults.mark(container_id, fault)
        try:
            ended = self._end_task(client, container_id, kill=True, timeout=0)
        except _UNREACHABLE as exc:
            self._faults.unmark(container_id)
            raise self._unreachable(exc) from exc
        if not ended:
            self._faults.unmark(container_id)
            raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")

    def remove_all(self) -> None:
        try:
            client = self._engine()
            services = client.api.services(filters={"label": self._label_filters()})
        except (EngineUnavailable, DockerException, *_UNREACHABLE) as exc:
            log.warning("could not list services to remove: %s", exc)
            return
        for service in services:
            self._forget(service["ID"])
            _remove_service_quietly(client, service["ID"])

    # -- watching ---------------------------------------------------------------------------------------

    def _follow_events(self) -> None:
        """Swarm has no event for a task's end: list our tasks every WATCH_SECONDS and wake the scheduler when
        one ended (or its node was lost) since the last look."""
        seen: set[str] = set()
        while not self._stopping.wait(WATCH_SECONDS):
            if self._listener is None:
                continue
            try:
                client = self._engine()
                services, tasks, nodes = self._survey(client)
            except (EngineUnavailable, DockerException, *_UNREACHABLE):
                if self._lost_swarm() and self._known:
                    self._notify()
                continue
            except Exception:
                log.exception("swarm watch pass failed")
                continue
            ended = {sid for sid, task in tasks.items() if task.state in ENDED_STATES or _lost(task, nodes)}
            with self._lock:
                ended |= {sid for sid in self._stopped if sid not in services}
            for service_id in ended - seen:
                with self._lock:
                    cursor = self._cursors.get(service_id)
                if cursor is not None:
                    cursor.exited = True
            if ended - seen:
                self._notify()
            seen = ended

    # -- logs -------------------------------------------------------------------------------------------

    @staticmethod
    def _log_frames(client, container_id: str, since: float | None, tail: int | str) -> Iterator[tuple[int, bytes]]:
        """(timestamp ns, line) of the service's output; the manager gathers it from whichever node ran it.

        Read whole with a timeout, not streamed: the SDK's stream has no timeout, and the manager never ends
        the answer for a task on a node that went away."""
        api = client.api
        response = api._get(api._url("/services/{0}/logs", container_id), timeout=LOG_READ_SECONDS, params={
            "stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "since": since or 0, "tail": tail})
        api._raise_for_status(response)
        for frame in _demultiplex(response.content):
            stamp, _, raw = frame.partition(b" ")
            ns = parse_timestamp_ns(stamp.decode("ascii", errors="replace"))
            if ns is not None:
                yield ns, raw


def _not_managing(exc: APIError) -> Exception:
    """A 503 means the engine answers but its swarm does not (it left, lost quorum or is shutting down)."""
    if exc.status_code == 503:
        return EngineUnavailable(f"the swarm does not answer: {_explain(exc)}")
    return exc


def _task_of(service_id: str, key: tuple[str, int], task: dict) -> _Task:
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    spec = task.get("Spec", {})
    limits = (spec.get("Resources") or {}).get("Limits") or {}
    labels = (spec.get("ContainerSpec") or {}).get("Labels") or {}
    exit_code = container.get("ExitCode") if container.get("ContainerID") else None
    return _Task(service_id=service_id, key=key, labels=labels, state=status.get("State", ""),
                 node_id=task.get("NodeID") or "", container_id=container.get("ContainerID") or "",
                 exit_code=exit_code, error=status.get("Err") or "", timestamp=status.get("Timestamp") or "",
                 memory_limited=bool(limits.get("MemoryBytes")))


def _lost(task: _Task, nodes: dict[str, str]) -> bool:
    """The task was placed on a node that is down or has left the swarm (Swarm then rejects it: "assigned
    node no longer meets constraints"), or Swarm gave it up as orphaned. An exit reported before the node
    went away stands."""
    if task.state == "orphaned":
        return True
    if task.state in ("complete", "failed", "shutdown", "remove") or not task.node_id:
        return False
    return nodes.get(task.node_id, "down") in ("down", "disconnected")


def _demultiplex(body: bytes) -> Iterator[bytes]:
    """The messages of a multiplexed stdout/stderr body: 8-byte headers (stream, 0, 0, 0, big-endian size)."""
    at = 0
    while at + 8 <= len(body):
        size = int.from_bytes(body[at + 4:at + 8], "big")
        yield body[at + 8:at + 8 + size]
        at += 8 + size


def _lost_reason(node_id: str) -> str:
    return f"Host EC2 (instance {node_id}) terminated."


def _start_failure(task: _Task) -> str | None:
    """AWS's container reason for a task that ended without ever running a container, else None."""
    if task.state not in ("rejected", "failed"):
        return None
    if task.container_id and not task.error.startswith("starting container failed"):
        return None
    error = task.error or task.state
    kind = "CannotPullContainerError" if any(word in error for word in PULL_WORDS) else "CannotStartContainerError"
    return f"{kind}: Error response from daemon: {error}"


def _exit_of(task: _Task, nodes: dict[str, str], local_node: str, client) -> ContainerExit | None:
    if _lost(task, nodes):
        return ContainerExit(job_id=task.key[0], attempt=task.key[1], container_id=task.service_id, exit_code=None,
                             error=_lost_reason(task.node_id))
    if task.state not in ENDED_STATES:
        return None
    exit = ContainerExit(job_id=task.key[0], attempt=task.key[1], container_id=task.service_id,
                         exit_code=task.exit_code, finished_at=_epoch_ms(task.timestamp))
    failure = _start_failure(task)
    if failure:
        exit.error = failure
        return exit
    state = _local_container_state(client, task) if task.node_id == local_node else None
    if state is not None:
        exit.oom_killed = bool(state.get("OOMKilled"))
        exit.started_at = _epoch_ms(state.get("StartedAt"))
        if exit.started_at is not None and exit.finished_at is not None:
            exit.finished_at = max(exit.finished_at, exit.started_at)
    else:
        # The container ran on another node: killed by SIGKILL under a memory limit is the kernel's OOM killer
        # (a stop() of ours removed the service instead, and a fault marks its own outcome).
        exit.oom_killed = task.exit_code == faults.OOM_EXIT_CODE and task.memory_limited
    return exit


def _local_container_state(client, task: _Task) -> dict | None:
    if not task.container_id:
        return None
    try:
        return client.api.inspect_container(task.container_id).get("State") or {}
    except (NotFound, APIError):
        return None


def _epoch_ms(text: str | None) -> int | None:
    ns = parse_timestamp_ns(text or "")
    return None if ns is None else ns // 1_000_000


def _node_resource(node: dict, name: str) -> int:
    return int((node.get("Description", {}).get("Resources") or {}).get(name) or 0)


def _gpus(resources: dict) -> dict[str, int]:
    """GPU generic resources a node advertises (`node-generic-resources` in its daemon.json), by kind."""
    result: dict[str, int] = {}
    for entry in resources.get("GenericResources") or []:
        discrete = entry.get("DiscreteResourceSpec") or {}
        named = entry.get("NamedResourceSpec") or {}
        kind = discrete.get("Kind") or named.get("Kind") or ""
        if any(word in kind.upper() for word in GPU_KINDS):
            result[kind] = result.get(kind, 0) + int(discrete.get("Value") or 1)
    return result


def _mounts(spec: ContainerSpec) -> list[Mount]:
    """Bind mounts for volumes with a host sourcePath (the path must exist on the node that runs the task), an
    anonymous volume for the others, and tmpfs mounts (also /dev/shm for sharedMemorySize)."""
    volumes = {volume.get("name"): volume for volume in spec.volumes}
    mounts: list[Mount] = []
    for point in spec.mount_points:
        volume = volumes.get(point.get("sourceVolume"))
        target = point.get("containerPath")
        if volume is None or not target:
            continue
        source = (volume.get("host") or {}).get("sourcePath")
        mounts.append(Mount(target=target, source=source or None, type="bind" if source else "volume",
                            read_only=bool(point.get("readOnly"))))
    linux = spec.linux_parameters or {}
    for tmpfs in linux.get("tmpfs") or []:
        mounts.append(Mount(target=tmpfs["containerPath"], source=None, type="tmpfs",
                            tmpfs_size=int(tmpfs["size"]) * 2**20))
    if linux.get("sharedMemorySize"):
        mounts.append(Mount(target="/dev/shm", source=None, type="tmpfs",
                            tmpfs_size=int(linux["sharedMemorySize"]) * 2**20))
    return mounts


def _remove_service_quietly(client, service_id: str) -> None:
    try:
        client.api.remove_service(service_id)
    except NotFound:
        pass
    except (DockerException, *_UNREACHABLE) as exc:
        log.warning("could not remove service %s: %s", service_id[:12], exc)

