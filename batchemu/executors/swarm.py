"""Runs tasks on a Docker Swarm: one `replicated-job` service (one replica, no restart) per container.

The Docker client points at a manager node (DOCKER_HOST or the local socket). batchemu places each task on
a node itself (_choose_node: no Swarm reservations, which Swarm 20.10's constraint enforcer counts for ever
once a job task completed); what runs at once is capped by the compute environment's maxvCpus. A task of several containers, and every task that names a shared
network (the nodes of a multi-node job), joins an attachable overlay network (labelled, removed once no
service of ours uses it), so its containers reach each other by address on whichever node they run;
StartedTask.address is the first container's address on it (the contract asks for the first essential
one's: the same unless a task lists a sidecar first). The containers of one task are placed on the
node of its first one, as ECS places a task on one instance (task volumes are node-local). Init containers,
dependsOn and essential flags are batchemu.executors.tasks.step: a container is a service once it may start.

What the engine reports, in engine terms (batchemu.model.attempts turns them into AWS's reasons):

    task complete / failed        the container's exit code; OOM from the container when it ran on the
                                  manager's own node, else exit 137 under a memory limit that we did not stop
    task rejected (no container)  a start failure (PULL_FAILED for a missing image), unless the
                                  constraint enforcer rejected it (made again, or followed through
                                  its container on the manager's node: _as_run_locally)
    node down or gone, orphaned   HOST_LOST, detail `Host EC2 (instance <node id>) terminated.`
    swarm unreachable             after LOST_SWARM_SECONDS every task we knew of ends as a lost host

A replicated-job cannot be stopped in place: stopping a container stops it when its task runs on the
manager's node, else removes its service (its exit code is then unknown). Services carry the labels
containers carry under Docker, so a restarted server adopts running tasks and records those that ended
meanwhile; the plan of a task with containers still to start is a label of its network, and the results
of containers that ended while their task went on are swarm configs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.types import ContainerSpec as SwarmContainerSpec
from docker.types import DriverConfig, Mount, Resources, RestartPolicy, ServiceMode, TaskTemplate

from batchemu.config import Config
from batchemu.executors import (
    HOST_ALIAS,
    LABEL_MANAGED,
    ContainerResult,
    ContainerSpec,
    EngineUnavailable,
    LogSink,
    Outcome,
    StartedTask,
    StartFailure,
    TaskExit,
    TaskSpec,
    faults,
    images,
    tasks,
)
from batchemu.executors.docker import transport
from batchemu.executors.docker.arguments import MIN_MEMORY_MIB, labels_of
from batchemu.executors.docker.engine import (
    LABEL_CONTAINER,
    LABEL_DEPENDS_ON,
    LABEL_ESSENTIAL,
    LABEL_INDEX,
    LABEL_INIT,
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
    Engine,
    attempt_key,
    container_name,
    explain,
    network_name,
    parse_timestamp_ns,
    remove_container_quietly,
    task_name,
    task_of,
)
from batchemu.executors.docker.logs import LogPump

log = logging.getLogger("batchemu.executors.swarm")

WATCH_SECONDS = 0.5            # how often the watcher lists our tasks to wake the scheduler on an end
START_WAIT_SECONDS = 120.0     # longest start() waits for an assigned task to run (its node may pull)
BUMP_SETTLE_SECONDS = 2.0      # a task rejected without a container is made again only after this
PENDING_WAIT_SECONDS = 2.0     # a task still unassigned after this waits for capacity after start() returns
STOP_GRACE_NS = 10 * 1_000_000_000
# Seconds the swarm may be unreachable before the attempts on it end as lost hosts.
LOST_SWARM_SECONDS = float(os.environ.get("BATCHEMU_SWARM_LOST_SECONDS", "60"))
ENDED_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
UNASSIGNED_STATES = frozenset({"new", "pending", "allocated"})
GPU_KINDS = ("NVIDIA-GPU", "GPU")
PULL_WORDS = ("No such image", "pull", "manifest", "repository")
LOG_READ_SECONDS = 10.0        # longest read of one service's logs
LABEL_PLAN = "batchemu.plan"   # on a task's own network: JSON of every container's service, to start later
LABEL_DONE = "batchemu.done"   # on a swarm config: the result of a container that ended while its task went on


@dataclass
class _Task:
    """The newest swarm task of one of our services, as listed by the manager."""

    service_id: str
    labels: dict
    state: str
    node_id: str
    container_id: str
    exit_code: int | None
    error: str
    timestamp: str
    memory_limited: bool
    addresses: dict[str, str]   # network name -> IPv4 address
    swarm_id: str = ""
    nano_cpus: int = 0          # its limits: what it takes of its node (see SwarmExecutor._choose_node)
    memory_bytes: int = 0


@dataclass
class _Service:
    """What to create for one container of a task: the service's name, labels and task template."""

    name: str
    container: str
    labels: dict
    template: dict

    def view(self, state: str, exit_code: int | None = None) -> tasks.Seen:
        labels = self.labels
        return tasks.Seen(name=self.container, state=state, exit_code=exit_code,
                          essential=labels.get(LABEL_ESSENTIAL, "1") == "1", init=LABEL_INIT in labels,
                          depends_on=[tuple(d) for d in json.loads(labels.get(LABEL_DEPENDS_ON) or "[]")])


class SwarmExecutor:
    """The Executor of batchemu.executors on the Docker Swarm of the manager the client points at."""

    name = "swarm"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._engine = Engine(config)
        self._lock = threading.Lock()
        self._choosing = threading.Lock()
        self._plans: dict[str, list[_Service]] = {}   # task id -> its services, in the task's order
        self._starting: set[str] = set()              # tasks inside start()
        self._placing: dict[str, tuple[str, int, int]] = {}   # task inside start() -> (node, nano CPUs, bytes)
        self._groups_in_use: dict[str, int] = {}      # network group -> starts under way that join it
        self._reported: set[str] = set()              # tasks handed out (their services removed next)
        self._removing: set[str] = set()
        self._ending: set[str] = set()                # services being stopped on the pool
        self._stopped: dict[str, str] = {}            # service name removed by a stop -> its task id
        # task id -> container -> (result, view) of containers that ended while their task went on (their
        # services are removed at once)
        self._done: dict[str, dict[str, tuple[ContainerResult, tasks.Seen]]] = {}
        self._done_loaded: set[str] = set()           # tasks whose kept results (_save_done) were read
        self._known: dict[tuple[str, int], tuple[str, str]] = {}   # live attempt -> (task id, node id)
        self._unreachable_since: float | None = None
        self._local_node = ""
        self._sweep = True                            # idle networks to remove on the next pass
        self._faults = faults.FaultBook()
        self._stopping = threading.Event()
        self._listener: Callable[[], None] | None = None
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchemu-swarm-rm")
        self._logs = LogPump(self._engine, self._stopping, frames=_service_log_frames, discover=False,
                             name="batchemu-swarm-logs")
        self._watcher = threading.Thread(target=self._watch, name="batchemu-swarm-watch", daemon=True)
        for thread in (self._watcher, self._logs.thread):
            thread.start()

    # -- connection -------------------------------------------------------------------------------------

    def status(self) -> tuple[bool, str]:
        try:
            client = self._engine.client()
            info = client.info()
        except EngineUnavailable as exc:
            return self._swarm_down(str(exc))
        except UNREACHABLE as exc:
            return self._swarm_down(str(self._engine.unreachable(exc)))
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
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
        if self._lost_swarm() and self._known:
            # Reachable enough for the scheduler to collect the lost attempts' exits (collect_exits ends them).
            return True, f"{detail}; ending {len(self._known)} attempt(s) as lost hosts"
        return False, detail

    def _lost_swarm(self) -> bool:
        since = self._unreachable_since
        return since is not None and time.monotonic() - since >= LOST_SWARM_SECONDS

    def _client(self) -> docker.DockerClient:
        return self._engine.client()

    def _local(self, client: docker.DockerClient) -> str:
        """The node id of the manager the client talks to (whose containers we can inspect and stop)."""
        if not self._local_node:
            self._local_node = (client.info().get("Swarm") or {}).get("NodeID") or ""
        return self._local_node

    def cluster(self) -> dict:
        """The swarm's nodes with their capacity and what batchemu's running tasks take of it."""
        try:
            client = self._client()
            nodes = client.api.nodes()
            used = self._node_use(client)
        except (EngineUnavailable, DockerException, *UNREACHABLE) as exc:
            return {"nodes": [], "error": str(exc)}
        result = []
        for node in nodes:
            resources = node.get("Description", {}).get("Resources") or {}
            cpus, memory = int(resources.get("NanoCPUs") or 0), int(resources.get("MemoryBytes") or 0)
            taken = used.get(node["ID"], [0, 0, 0])
            result.append({
                "id": node["ID"], "hostname": node.get("Description", {}).get("Hostname", ""),
                "role": node.get("Spec", {}).get("Role", ""), "state": node.get("Status", {}).get("State", ""),
                "availability": node.get("Spec", {}).get("Availability", ""),
                "address": node.get("Status", {}).get("Addr", ""),
                "vcpus": cpus / 1e9, "memoryMiB": memory // 2**20,
                "freeVcpus": max(cpus - taken[0], 0) / 1e9, "freeMemoryMiB": max(memory - taken[1], 0) // 2**20,
                "runningTasks": taken[2], "gpus": _gpus(resources)})
        return {"nodes": result}

    def _node_use(self, client: docker.DockerClient) -> dict[str, list[int]]:
        """node id -> [nano CPUs, memory bytes, tasks] that the live tasks of batchemu's services take."""
        services = client.api.services(filters={"label": [f"{LABEL_MANAGED}=1"]})
        with self._lock:  # tasks being started: counted from what they were given, listed or not yet
            placing = dict(self._placing)
        used: dict[str, list[int]] = {}
        for node_id, cpus, memory in placing.values():
            taken = used.setdefault(node_id, [0, 0, 0])
            taken[0], taken[1], taken[2] = taken[0] + cpus, taken[1] + memory, taken[2] + 1
        for task in self._newest_tasks(client, [service["ID"] for service in services]).values():
            key = attempt_key(task.labels)
            if task.node_id and task.state not in ENDED_STATES and (key is None or task_name(*key) not in placing):
                taken = used.setdefault(task.node_id, [0, 0, 0])
                taken[0] += task.nano_cpus
                taken[1] += task.memory_bytes
                taken[2] += 1
        return used

    def _choose_node(self, client: docker.DockerClient, nodes: list[dict], task: TaskSpec,
                     task_id: str | None = None) -> str | None:
        """The node a task runs on: of the ready, active nodes, one whose CPUs and memory that batchemu's live
        tasks leave free hold the task's, the freest (most vCPUs, then memory); with none free enough, the
        freest anyway, as a busy Docker host runs one more container. Swarm is not asked to place by
        reservations: its constraint enforcer (Docker 20.10) counts the reservations of every completed job
        task, for ever (also once its service is removed), and rejects tasks, running ones included, when they
        add up past a node's capacity. None (Swarm places the task) for GPU jobs and when no node is ready.
        Starts run side by side: the choice is counted (`_placing`) until start() returns."""
        if any(c.gpus for c in task.containers):
            return None
        ready = [n for n in nodes if n.get("Status", {}).get("State") == "ready"
                 and n.get("Spec", {}).get("Availability") == "active"]
        if len(ready) < 2:
            return ready[0]["ID"] if ready else None
        cpus = sum(int(float(c.vcpus or 0) * 1e9) for c in task.containers)
        memory = sum(max(int(c.memory_mib or 0), MIN_MEMORY_MIB) * 2**20 for c in task.containers)
        with self._choosing:  # one choice at a time, each counted before the next
            used = self._node_use(client)
            chosen = max(ready, key=lambda node: _room(node, used, cpus, memory))["ID"]
            if task_id is not None:
                with self._lock:
                    self._placing[task_id] = (chosen, cpus, memory)
        return chosen

    # -- starting ---------------------------------------------------------------------------------------

    def start(self, task: TaskSpec) -> StartedTask:
        client = self._client()
        if self._faults.take_pull_failure(task.job_id):
            raise StartFailure(Outcome.PULL_FAILED, faults.pull_failure_detail(task.containers[0].image))
        task_id = task_name(task.job_id, task.attempt)
        group = task.network or (task_id if len(task.containers) > 1 else None)
        with self._lock:
            self._starting.add(task_id)
            if group:
                self._groups_in_use[group] = self._groups_in_use.get(group, 0) + 1
        try:
            return self._start(client, task, task_id, group)
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        except APIError as exc:
            raise _not_managing(exc) from exc
        finally:
            with self._lock:
                self._starting.discard(task_id)
                self._placing.pop(task_id, None)
                if group:
                    self._groups_in_use[group] -= 1
                    if not self._groups_in_use[group]:
                        del self._groups_in_use[group]
                self._sweep = True

    def _start(self, client: docker.DockerClient, task: TaskSpec, task_id: str, group: str | None) -> StartedTask:
        nodes = client.api.nodes()
        network = network_name(group) if group else (self.config.network or "host")
        plan = [self._service_of(client, task, task_id, c, nodes, network, group) for c in task.containers]
        if group:
            self._ensure_network(client, group, task_id, plan if group == task_id else None)
        with self._lock:
            self._plans[task_id] = plan
        by_name = {s.container: s for s in plan}
        first_node = self._choose_node(client, nodes, task, task_id)
        started: list[str] = []
        try:
            for name in tasks.step([s.view(tasks.PENDING) for s in plan]).start:
                service_id = self._create(client, by_name[name], first_node)
                started.append(service_id)
                service_id, swarm_task = self._await_start(client, service_id, by_name[name].container,
                                                           hold_pending=task.network is not None)
                started[-1] = service_id
                if swarm_task is not None and swarm_task.node_id:
                    first_node = first_node or swarm_task.node_id
        except StartFailure:
            for service_id in started:
                self._logs.forget(service_id)
                _remove_service_quietly(client, service_id)
            with self._lock:
                self._plans.pop(task_id, None)
            raise
        address = None
        if group:
            head = self._find_service(client, plan[0].name)
            if head is not None:
                address = self._address(client, head, network)
        with self._lock:  # live from now on: a swarm lost before any look at its tasks still ends it
            self._known.setdefault((task.job_id, task.attempt), (task_id, first_node or ""))
        log.debug("started task %s of job %s attempt %d", task_id, task.job_id, task.attempt)
        return StartedTask(task_id=task_id, address=address)

    def _ensure_network(self, client: docker.DockerClient, group: str, task_id: str,
                        plan: list[_Service] | None) -> str:
        """The group's attachable overlay network, made if absent; a task's own network carries its plan, so
        a restarted server can start the containers that had not started yet."""
        name = network_name(group)
        if not client.api.networks(names=[name]):
            labels = {**self._engine.own_labels(), LABEL_NETWORK: group}
            if plan is not None:
                labels[LABEL_TASK] = task_id
                labels[LABEL_PLAN] = json.dumps([[s.name, s.container, s.labels, s.template] for s in plan])
            try:
                client.api.create_network(name, driver="overlay", attachable=True, check_duplicate=True,
                                          labels=labels)
            except APIError as exc:
                if exc.status_code == 503:
                    raise
                if exc.status_code != 409:  # made meanwhile by another node of the job
                    raise StartFailure(Outcome.CREATE_FAILED, f"Error response from daemon: {explain(exc)}") from exc
        return name

    def _service_of(self, client: docker.DockerClient, task: TaskSpec, task_id: str, spec: ContainerSpec,
                    nodes: list[dict], network: str, group: str | None) -> _Service:
        labels = labels_of(task, spec, task_id, self._engine.own_labels())
        if group:
            labels[LABEL_NETWORK] = group
        linux = spec.linux_parameters or {}
        if spec.privileged:
            raise StartFailure(Outcome.START_FAILED, "privileged containers cannot run as Docker Swarm services; "
                               "run this job with --executor docker", spec.name)
        if linux.get("devices"):
            raise StartFailure(Outcome.START_FAILED, "host devices cannot be given to Docker Swarm services; "
                               "run this job with --executor docker", spec.name)
        image = self._choose_image(client, spec.image)
        hosts = None
        if group:
            gateway = _gwbridge_gateway(client)
            hosts = {HOST_ALIAS: gateway} if gateway else None
        container = SwarmContainerSpec(
            image, command=list(spec.entrypoint) if spec.entrypoint is not None else None,
            args=list(spec.command) or None, env=[f"{k}={v}" for k, v in spec.environment.items()],
            user=spec.user or None, labels=labels, mounts=_mounts(task, spec, task_id, self._engine.own_labels()) or None,
            read_only=bool(spec.readonly_root_filesystem) or None, init=bool(linux.get("initProcessEnabled")) or None,
            stop_grace_period=STOP_GRACE_NS, hosts=hosts,
            hostname=spec.hostname if spec.hostname and network != "host" else None)
        if spec.ulimits:
            container["Ulimits"] = [{"Name": u["name"], "Soft": int(u["softLimit"]), "Hard": int(u["hardLimit"])}
                                    for u in spec.ulimits]
        largest_cpus = max((_node_resource(n, "NanoCPUs") for n in nodes), default=0)
        resources: dict = {}
        if spec.vcpus and spec.vcpus > 0:
            # A reservation larger than every node would wait forever: as on Docker, cap it at the largest.
            nano = int(float(spec.vcpus) * 1e9)
            nano = min(nano, largest_cpus) if largest_cpus else nano
            resources.update(cpu_limit=nano)
        if spec.memory_mib:
            memory = max(int(spec.memory_mib), MIN_MEMORY_MIB) * 2**20
            resources.update(mem_limit=memory)
        if spec.gpus:
            kind = next((k for n in nodes for k in _gpus(n.get("Description", {}).get("Resources") or {})), None)
            if kind is None:
                raise StartFailure(Outcome.START_FAILED, f"the job needs {spec.gpus} GPU(s) and no node of the "
                                   "swarm advertises a GPU generic resource", spec.name)
            resources["generic_resources"] = {kind: int(spec.gpus)}
        template = TaskTemplate(container, resources=Resources(**resources) if resources else None,
                                restart_policy=RestartPolicy(condition="none", max_attempts=0),
                                log_driver=DriverConfig("json-file"),
                                networks=[{"Target": network, "Aliases": [spec.hostname]}
                                          if spec.hostname and group else network])
        return _Service(name=container_name(task_id, spec.name), container=spec.name, labels=labels,
                        template=json.loads(json.dumps(template)))

    def _choose_image(self, client: docker.DockerClient, image: str) -> str:
        """The first name images.candidates offers that the manager has locally, else the last: the node that
        runs the task must have it (or reach a registry that has it)."""
        *local_only, last = images.candidates(image, self.config.image_map)
        for candidate in local_only:
            try:
                client.images.get(candidate)
                return candidate
            except (NotFound, APIError):
                continue
        return last

    def _create(self, client: docker.DockerClient, service: _Service, node: str | None) -> str:
        template = json.loads(json.dumps(service.template))
        if node:  # the containers of one task share a node, as on one ECS instance
            template.setdefault("Placement", {}).setdefault("Constraints", []).append(f"node.id=={node}")
        try:
            created = client.api.create_service(template, name=service.name, labels=service.labels,
                                                mode=ServiceMode("replicated-job", replicas=1))
            service_id = created["ID"]
        except APIError as exc:
            if exc.status_code == 503:
                raise
            if exc.status_code != 409:
                raise StartFailure(Outcome.CREATE_FAILED, f"Error response from daemon: {explain(exc)}",
                                   service.container) from exc
            # The service exists already (a start that timed out, a restart): carry on with it.
            existing = client.api.inspect_service(service.name)
            if attempt_key(existing.get("Spec", {}).get("Labels") or {}) != attempt_key(service.labels):
                raise StartFailure(Outcome.CREATE_FAILED, f"Error response from daemon: {explain(exc)}",
                                   service.container) from exc
            service_id = existing["ID"]
        self._logs.track(service_id, service.labels)
        return service_id

    def _await_start(self, client: docker.DockerClient, service_id: str, name: str, *,
                     hold_pending: bool = False) -> tuple[str, _Task | None]:
        """(service id, swarm task) once the task runs or ends; one that never got a container is a start
        failure. A task no node has room for yet is left pending: it starts when capacity frees up. With
        `hold_pending` (a task on a shared network: a multi-node job's node, whose address the other nodes are
        given) it is waited for until it runs, as a service made again gets a new address."""
        began = time.monotonic()
        task = None
        while not self._stopping.is_set():
            task = self._newest_tasks(client, [service_id]).get(service_id)
            elapsed = time.monotonic() - began
            if task is not None:
                if _bumped(task) and self._node_states(client).get(task.node_id) == "ready":
                    service_id, task = self._requeue(client, service_id), None
                elif task.state in ENDED_STATES:
                    failure = _start_failure(task)
                    if failure:
                        raise StartFailure(*failure, name)
                    return service_id, task
                elif task.state == "running":
                    return service_id, task
                elif task.state in UNASSIGNED_STATES and elapsed >= PENDING_WAIT_SECONDS and not hold_pending:
                    log.info("service %s waits for a swarm node with room", service_id[:12])
                    return service_id, task
            if elapsed >= START_WAIT_SECONDS:
                return service_id, task
            time.sleep(0.1)
        return service_id, task

    def _requeue(self, client: docker.DockerClient, service_id: str) -> str:
        """A task Swarm's constraint enforcer rejected ("assigned node no longer meets constraints") before a
        container of it started never ran: its service is made again."""
        attrs = client.api.inspect_service(service_id)
        spec = attrs["Spec"]
        self._logs.forget(service_id)
        _remove_service_quietly(client, service_id)
        log.info("service %s was rejected for room it has: made again", spec["Name"])
        created = client.api.create_service(spec["TaskTemplate"], name=spec["Name"], labels=spec.get("Labels"),
                                            mode=ServiceMode("replicated-job", replicas=1))
        self._logs.track(created["ID"], spec.get("Labels") or {})
        return created["ID"]

    @staticmethod
    def _find_service(client: docker.DockerClient, name: str) -> str | None:
        found = [s["ID"] for s in client.api.services(filters={"name": name}) if s["Spec"].get("Name") == name]
        return found[0] if found else None

    def _address(self, client: docker.DockerClient, service_id: str, network: str) -> str | None:
        """The service's task address on the network (allocated before the task is placed)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self._stopping.is_set():
            task = self._newest_tasks(client, [service_id]).get(service_id)
            if task is not None and task.addresses.get(network):
                return task.addresses[network]
            time.sleep(0.1)
        return None

    # -- state of our tasks -----------------------------------------------------------------------------

    def _our_services(self, client: docker.DockerClient) -> dict[str, dict[str, str]]:
        """task id -> {service name: service id} of this server's services."""
        out: dict[str, dict[str, str]] = {}
        for service in client.api.services(filters={"label": self._engine.label_filters()}):
            labels = service.get("Spec", {}).get("Labels") or {}
            if attempt_key(labels) is not None:
                out.setdefault(task_of(labels, service["ID"]), {})[service["Spec"]["Name"]] = service["ID"]
        return out

    def _newest_tasks(self, client: docker.DockerClient, service_ids: list[str]) -> dict[str, _Task]:
        if not service_ids:
            return {}
        wanted = set(service_ids)
        try:
            listed = client.api.tasks(filters={"service": list(wanted)})
        except NotFound:  # one of them was removed meanwhile: the filter refuses names it does not know
            listed = client.api.tasks()
        newest: dict[str, dict] = {}
        for task in listed:
            known = newest.get(task.get("ServiceID"))
            if task.get("ServiceID") in wanted and (known is None or task.get("CreatedAt", "") > known.get("CreatedAt", "")):
                newest[task["ServiceID"]] = task
        found = {service_id: _task_of(service_id, task) for service_id, task in newest.items()}
        for service_id, task in found.items():
            if _enforced(task) and task.node_id == self._local(client):
                task = found[service_id] = _as_run_locally(client, task)
            if _enforced(task) and not task.container_id and not _bumped(task):
                found[service_id] = replace(task, state="pending")  # its agent may be starting it yet
        return found

    def _plan(self, client: docker.DockerClient, task_id: str, services: dict[str, str]) -> list[_Service]:
        """The task's services in order: ours from start(), else its network's plan label, else what the
        services' own labels say (a task whose every container was created)."""
        with self._lock:
            plan = self._plans.get(task_id)
        if plan is not None:
            return plan
        try:
            found = client.api.networks(names=[network_name(task_id)])
            raw = (found[0].get("Labels") or {}).get(LABEL_PLAN) if found else None
        except APIError:
            raw = None
        if raw:
            plan = [_Service(*entry) for entry in json.loads(raw)]
        else:
            plan = []
            for service_name, service_id in services.items():
                spec = client.api.inspect_service(service_id)["Spec"]
                labels = spec.get("Labels") or {}
                plan.append(_Service(service_name, labels.get(LABEL_CONTAINER) or "default", labels,
                                     spec.get("TaskTemplate") or {}))
            plan.sort(key=lambda s: int(s.labels.get(LABEL_INDEX) or 0))
        with self._lock:
            self._plans[task_id] = plan
        return plan

    def _survey(self, client: docker.DockerClient):
        """(task id -> services, service id -> newest swarm task, node id -> state); notes live tasks."""
        services = self._our_services(client)
        ids = [sid for members in services.values() for sid in members.values()]
        swarm_tasks = self._newest_tasks(client, ids)
        nodes = self._node_states(client) if swarm_tasks else {}
        known = {}
        for task_id, members in services.items():
            live, key, node = False, None, ""
            for service_id in members.values():
                task = swarm_tasks.get(service_id)
                if task is None:  # just created: no swarm task listed yet
                    live = True
                elif task.state not in ENDED_STATES and not _lost(task, nodes):
                    live, key, node = True, attempt_key(task.labels), node or task.node_id
                    # The log pump follows live tasks (ended ones ship their last lines once).
                    self._logs.track(service_id, task.labels)
            if live and key is not None:
                known[key] = (task_id, node)
        # A task leaves `known` once its exit is read (_advance) or ended as lost, not when it merely looks
        # ended or lost here, nor is it missing while its swarm task is not listed yet (it is known from its
        # start): a swarm that goes away meanwhile would leave it RUNNING for ever.
        with self._lock:
            kept = {key: entry for key, entry in self._known.items()
                    if entry[0] in services and entry[0] not in self._reported}
            self._known = {**kept, **known}
        return services, swarm_tasks, nodes

    @staticmethod
    def _node_states(client: docker.DockerClient) -> dict[str, str]:
        return {node["ID"]: node.get("Status", {}).get("State", "") for node in client.api.nodes()}

    def running(self) -> dict[tuple[str, int], str]:
        """Tasks of ours not yet reported. Raises EngineUnavailable rather than answer "none" when the swarm
        cannot be asked, unless it has been unreachable long enough that its attempts are lost."""
        if self._lost_swarm():
            return {}
        client = self._client()
        try:
            services = client.api.services(filters={"label": self._engine.label_filters()})
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        except APIError as exc:
            raise _not_managing(exc) from exc
        with self._lock:
            reported = set(self._reported)
        out = {}
        for service in services:
            labels = service.get("Spec", {}).get("Labels") or {}
            key = attempt_key(labels)
            if key is not None and task_of(labels, service["ID"]) not in reported:
                out[key] = task_of(labels, service["ID"])
        return out

    def collect_exits(self) -> list[TaskExit]:
        if self._lost_swarm():
            return self._lost_attempts()
        client = self._client()
        try:
            with self._lock:
                reported, starting = set(self._reported), set(self._starting)
            services, swarm_tasks, nodes = self._survey(client)
            exits = []
            for task_id, members in services.items():
                if task_id in reported:
                    if not self.config.keep_containers:
                        self._remove_later(task_id, list(members.values()))
                    continue
                if task_id in starting:
                    continue
                exit = self._advance(client, task_id, members, swarm_tasks, nodes)
                if exit is not None:
                    exits.append(exit)
            exits += self._stopped_exits(services)
            if self._sweep:
                self._remove_idle_networks(client)
            with self._lock:
                self._reported &= set(services)
                self._reported |= {e.task_id for e in exits if e.task_id in services}
            return exits
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        except APIError as exc:
            raise _not_managing(exc) from exc

    def _advance(self, client: docker.DockerClient, task_id: str, members: dict[str, str],
                 swarm_tasks: dict[str, _Task], nodes: dict[str, str]) -> TaskExit | None:
        """Create the services that may start, stop the ones that must; the task's exit once it is over."""
        plan = self._plan(client, task_id, members)
        self._load_done(client, task_id, plan)
        with self._lock:
            stopped = {name for name, owner in self._stopped.items() if owner == task_id}
            done = dict(self._done.get(task_id) or {})
        views, found = [], []
        for service in plan:
            service_id = members.get(service.name)
            task = swarm_tasks.get(service_id) if service_id else None
            if service_id is not None and task is not None and _bumped(task) and nodes.get(task.node_id) == "ready":
                service_id, task = self._requeue(client, service_id), None
            found.append((service_id, task))
            if service.container in done:
                views.append(done[service.container][1])
            elif service_id is None:
                views.append(service.view(tasks.EXITED if service.name in stopped else tasks.PENDING))
            elif task is not None and _lost(task, nodes):
                views.append(service.view(tasks.EXITED))
            elif task is None or task.state not in ENDED_STATES:
                views.append(service.view(tasks.RUNNING if task is not None and task.state == "running"
                                          else tasks.PENDING))
            elif _start_failure(task):
                views.append(service.view(tasks.FAILED_TO_START))
            else:
                views.append(service.view(tasks.EXITED, task.exit_code))
        step = tasks.step(views)
        node = next((t.node_id for _, t in found if t is not None and t.node_id), None)
        if not step.over:  # before any start, so that Swarm places the next ones without these
            for service, (service_id, task), view in zip(plan, found, views):
                if view.state == tasks.EXITED and task is not None and service.container not in done \
                        and not _lost(task, nodes):
                    # Ended while the task goes on: read and keep its result, and remove its service now.
                    result = self._result(client, service, service_id, task, view, nodes, never=False)
                    self._save_done(client, task_id, service, result)
                    with self._lock:
                        self._done.setdefault(task_id, {})[service.container] = (result, view)
                    _remove_service_quietly(client, service_id)
        by_name = {s.container: s for s in plan}
        for name in step.start:
            index = [s.container for s in plan].index(name)
            if found[index][0] is not None:
                continue  # created already, waiting for a node with room
            try:
                self._create(client, by_name[name], node if len(plan) > 1 else None)
            except StartFailure as exc:
                log.info("container %s of task %s did not start: %s", name, task_id, exc)
        if step.stop:
            for (service_id, task), view in zip(found, views):
                if service_id is not None and view.state in (tasks.RUNNING, tasks.PENDING):
                    self._end_later(service_id)
        if not step.over:
            return None
        key = attempt_key(plan[0].labels)
        results = []
        for service, (service_id, task), view in zip(plan, found, views):
            if service.container in done:
                results.append(done[service.container][0])
                continue
            results.append(self._result(client, service, service_id, task, view, nodes,
                                        never=view.name in step.never))
        with self._lock:
            self._known.pop(key, None)
        if not self.config.keep_containers:
            # At once, not after the scheduler recorded the exit as under Docker: a service left until then
            # would be listed by every look at the swarm meanwhile.
            for service_id in members.values():
                self._logs.forget(service_id)
                _remove_service_quietly(client, service_id)
            self._remove_task_volumes(client, task_id)
            with self._lock:
                self._plans.pop(task_id, None)
                self._sweep = True
        if len(plan) > 1:
            self._remove_done(client, task_id)
        with self._lock:  # its stops and ended containers are part of this exit
            self._stopped = {name: owner for name, owner in self._stopped.items() if owner != task_id}
            self._done.pop(task_id, None)
        return self._faults.settle(TaskExit(job_id=key[0], attempt=key[1], task_id=task_id, containers=results))

    def _result(self, client: docker.DockerClient, service: _Service, service_id: str | None, task: _Task | None,
                view: tasks.Seen, nodes: dict[str, str], *, never: bool) -> ContainerResult:
        result = ContainerResult(name=service.container, outcome=Outcome.EXITED, essential=view.essential,
                                 container_id=service_id)
        if service_id is None or task is None or never and view.state == tasks.PENDING:
            if view.state == tasks.EXITED:  # its service was removed by a stop: exit code unknown
                result.finished_at = int(time.time() * 1000)
            else:
                result.outcome = Outcome.NOT_STARTED
            return result
        if _lost(task, nodes):
            self._logs.forget(service_id)  # its node cannot give its logs; lines shipped so far stay
            result.outcome, result.detail = Outcome.HOST_LOST, _lost_reason(task.node_id)
            return result
        result.finished_at = _epoch_ms(task.timestamp)
        failure = _start_failure(task)
        if failure:
            result.outcome, result.detail = failure
            result.finished_at = None
            self._logs.forget(service_id)
            return result
        self._ship_last_lines(client, service_id, task.labels)
        result.exit_code = task.exit_code
        state = _local_container_state(client, task) if task.node_id == self._local(client) else None
        if state is not None:
            result.started_at = _epoch_ms(state.get("StartedAt"))
            if result.started_at is not None and result.finished_at is not None:
                result.finished_at = max(result.finished_at, result.started_at)
            if state.get("OOMKilled"):
                result.outcome = Outcome.OOM_KILLED
        elif task.exit_code == faults.OOM_EXIT_CODE and task.memory_limited:
            # The container ran on another node: killed by SIGKILL under a memory limit is the kernel's OOM
            # killer (a stop of ours removed the service instead, and a fault marks its own outcome).
            result.outcome = Outcome.OOM_KILLED
        return result

    def _ship_last_lines(self, client: docker.DockerClient, service_id: str, labels: dict) -> None:
        try:
            self._logs.ship_final_lines(client, service_id, labels)
        except UNREACHABLE as exc:  # a slow node must not hold up the exit
            log.warning("could not read the last output of service %s: %s", service_id[:12], exc)
            self._logs.forget(service_id)

    def _stopped_exits(self, services: dict[str, dict[str, str]]) -> list[TaskExit]:
        """Tasks whose every service a stop removed (their nodes were not the manager's): ended, exit codes
        unknown."""
        with self._lock:
            gone = {owner for owner in self._stopped.values() if owner not in services}
            plans = {task_id: self._plans.get(task_id) for task_id in gone}
            self._stopped = {name: owner for name, owner in self._stopped.items() if owner not in gone}
        exits = []
        for task_id, plan in plans.items():
            if not plan:
                continue
            key = attempt_key(plan[0].labels)
            now = int(time.time() * 1000)
            results = [ContainerResult(name=s.container, outcome=Outcome.EXITED, finished_at=now,
                                       essential=s.view(tasks.EXITED).essential) for s in plan]
            exits.append(self._faults.settle(TaskExit(job_id=key[0], attempt=key[1], task_id=task_id,
                                                      containers=results)))
            with self._lock:
                self._plans.pop(task_id, None)
        return exits

    def _lost_attempts(self) -> list[TaskExit]:
        with self._lock:  # removed once the swarm answers again
            known, self._known = self._known, {}
            self._reported |= {task_id for task_id, _ in known.values()}
        log.warning("swarm unreachable for %.0f s: ending %d attempt(s) as lost hosts", LOST_SWARM_SECONDS, len(known))
        return [TaskExit(job_id=key[0], attempt=key[1], task_id=task_id, containers=[
                    ContainerResult(name=s.container, outcome=Outcome.HOST_LOST, detail=_lost_reason(node_id or "unknown"),
                                    essential=s.view(tasks.EXITED).essential)
                    for s in (self._plans.get(task_id) or [_Service("", "default", {}, {})])])
                for key, (task_id, node_id) in known.items()]

    # -- ending and removing ----------------------------------------------------------------------------

    # -- containers that ended while their task went on -------------------------------------------------

    def _save_done(self, client: docker.DockerClient, task_id: str, service: _Service, result: ContainerResult) -> None:
        """Keep the result in the swarm (a config object) before the service goes: a restarted server must not
        start that container again."""
        data = json.dumps({**asdict(result), "outcome": result.outcome.name}).encode()
        name = "batchemu-done-" + hashlib.sha256(service.name.encode()).hexdigest()[:32]
        try:
            client.api.create_config(name, data, labels={**self._engine.own_labels(), LABEL_TASK: task_id,
                                                         LABEL_DONE: service.container})
        except APIError as exc:
            if exc.status_code != 409:  # 409: kept already by an earlier pass
                log.warning("could not keep the result of %s: %s", service.name, explain(exc))

    def _load_done(self, client: docker.DockerClient, task_id: str, plan: list[_Service]) -> None:
        """Once per task and server: the results kept by _save_done (a server that ran before this one)."""
        with self._lock:
            if task_id in self._done_loaded or len(plan) < 2:
                return
        by_name = {s.container: s for s in plan}
        found = {}
        for config in self._done_configs(client, task_id):
            labels = config.get("Spec", {}).get("Labels") or {}
            service = by_name.get(labels.get(LABEL_DONE, ""))
            try:
                raw = json.loads(base64.b64decode(config["Spec"].get("Data") or b""))
                result = ContainerResult(**{**raw, "outcome": Outcome[raw["outcome"]]})
            except (ValueError, KeyError, TypeError):
                continue
            if service is not None:
                found[service.container] = (result, service.view(tasks.EXITED, result.exit_code))
        with self._lock:
            self._done_loaded.add(task_id)
            if found:
                self._done.setdefault(task_id, {}).update(found)

    def _done_configs(self, client: docker.DockerClient, task_id: str | None) -> list[dict]:
        wanted = self._engine.label_filters(LABEL_DONE)
        if task_id is not None:
            wanted.append(f"{LABEL_TASK}={task_id}")
        try:
            return client.api.configs(filters={"label": wanted})
        except APIError as exc:
            log.warning("could not list kept results: %s", explain(exc))
            return []

    def _remove_done(self, client: docker.DockerClient, task_id: str | None) -> None:
        for config in self._done_configs(client, task_id):
            try:
                client.api.remove_config(config["ID"])
            except APIError:
                pass
        with self._lock:
            if task_id is None:
                self._done_loaded.clear()
            else:
                self._done_loaded.discard(task_id)

    def _end_later(self, service_id: str) -> None:
        with self._lock:
            if service_id in self._ending:
                return
            self._ending.add(service_id)

        def end() -> None:
            try:
                self._end_service(self._client(), service_id, kill=False, timeout=10.0)
            except (DockerException, *UNREACHABLE) as exc:
                log.warning("could not stop service %s: %s", service_id[:12], exc)
            finally:
                with self._lock:
                    self._ending.discard(service_id)
        try:
            self._removals.submit(end)
        except RuntimeError:  # closing
            with self._lock:
                self._ending.discard(service_id)

    def _remove_later(self, task_id: str, service_ids: list[str]) -> None:
        with self._lock:
            if task_id in self._removing:
                return
            self._removing.add(task_id)

        def remove() -> None:
            try:
                client = self._client()
                for service_id in service_ids:
                    self._logs.forget(service_id)
                    _remove_service_quietly(client, service_id)
                self._remove_task_volumes(client, task_id)
                with self._lock:
                    self._plans.pop(task_id, None)
                    self._sweep = True
            finally:
                with self._lock:
                    self._removing.discard(task_id)
        try:
            self._removals.submit(remove)
        except RuntimeError:  # closing: the next server's pass removes it
            with self._lock:
                self._removing.discard(task_id)

    def _remove_task_volumes(self, client: docker.DockerClient, task_id: str) -> None:
        """The task's shared volumes on the manager's node (a worker's stay until its engine prunes them). The
        swarm leaves the ended containers of a removed service on the node for a while, and a volume they
        mounted cannot go before them: those are removed first (only ended ones; the services are gone)."""
        try:
            volumes = (client.api.volumes(filters={"label": f"{LABEL_TASK}={task_id}"}) or {}).get("Volumes") or []
            if not volumes:
                return  # most tasks: no call more
            for ended in client.api.containers(all=True, filters={"label": f"{LABEL_TASK}={task_id}",
                                                                  "status": ["exited", "created", "dead"]}):
                remove_container_quietly(client, ended["Id"])
            for volume in volumes:
                client.api.remove_volume(volume["Name"], force=True)
        except (DockerException, *UNREACHABLE) as exc:
            log.debug("could not remove the volumes of task %s: %s", task_id, exc)

    def _remove_idle_networks(self, client: docker.DockerClient) -> None:
        """Our overlay networks that no service of ours uses and no start is about to join."""
        try:
            networks = client.api.networks(filters={"label": self._engine.label_filters()})
            if not networks:
                self._sweep = False
                return
            used = set()
            for service in client.api.services(filters={"label": self._engine.label_filters()}):
                used.add((service.get("Spec", {}).get("Labels") or {}).get(LABEL_NETWORK))
            left = False
            for network in networks:
                group = (network.get("Labels") or {}).get(LABEL_NETWORK)
                with self._lock:
                    if group in used or group in self._groups_in_use:
                        continue
                try:
                    client.api.remove_network(network["Id"])
                except NotFound:
                    pass
                except APIError as exc:  # its last containers are still detaching: the next pass
                    left = True
                    log.debug("task network %s stays for now: %s", network.get("Name"), explain(exc))
            self._sweep = left
        except (DockerException, *UNREACHABLE) as exc:
            log.warning("could not remove idle task networks: %s", exc)

    def _end_service(self, client: docker.DockerClient, service_id: str, kill: bool, timeout: float) -> bool:
        """Stop (or kill) the service's container when it runs on the manager's node, else remove the
        service. Whether there was a task to end."""
        task = self._newest_tasks(client, [service_id]).get(service_id)
        if task is not None and task.state in ENDED_STATES:
            return False
        try:
            spec = client.api.inspect_service(service_id)["Spec"]
        except NotFound:
            return False
        if task is not None and task.node_id == self._local(client) and task.container_id:
            try:
                if kill:
                    client.api.kill(task.container_id)
                else:
                    client.api.stop(task.container_id, timeout=max(0, math.ceil(timeout)))
                return True
            except NotFound:
                pass
            except APIError as exc:
                if "is not running" in explain(exc):
                    return True
                raise
        labels = spec.get("Labels") or {}
        with self._lock:
            self._stopped[spec["Name"]] = task_of(labels, service_id)
        self._logs.forget(service_id)
        _remove_service_quietly(client, service_id)
        return True

    def _task_services(self, client: docker.DockerClient, task_id: str) -> list[str]:
        return list(self._our_services(client).get(task_id, {}).values())

    def stop(self, task_id: str, timeout: float = 10.0) -> None:
        client = self._client()
        try:
            for service_id in self._task_services(client, task_id):
                self._end_service(client, service_id, kill=False, timeout=timeout)
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        except APIError as exc:
            if exc.status_code == 503:
                raise _not_managing(exc) from exc
            log.warning("could not stop task %s: %s", task_id, explain(exc))

    def inject_fault(self, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
        if fault == faults.PULL_FAILURE:
            self._faults.arm_pull_failure(job_id)
            return
        client = self._client()
        task_id = task_id or ""
        self._faults.mark(task_id, fault)
        try:
            ended = [self._end_service(client, sid, kill=True, timeout=0) for sid in self._task_services(client, task_id)]
        except UNREACHABLE as exc:
            self._faults.unmark(task_id)
            raise self._engine.unreachable(exc) from exc
        if not any(ended):
            self._faults.unmark(task_id)
            raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")

    def remove_all(self) -> None:
        try:
            client = self._client()
            services = client.api.services(filters={"label": self._engine.label_filters()})
        except (EngineUnavailable, DockerException, *UNREACHABLE) as exc:
            log.warning("could not list services to remove: %s", exc)
            return
        task_ids = set()
        for service in services:
            self._logs.forget(service["ID"])
            task_ids.add(task_of(service.get("Spec", {}).get("Labels") or {}, service["ID"]))
            _remove_service_quietly(client, service["ID"])
        for task_id in task_ids:
            self._remove_task_volumes(client, task_id)
        self._remove_done(client, None)
        deadline = time.monotonic() + 15
        self._sweep = True
        while self._sweep and time.monotonic() < deadline:  # tasks detach from their networks a moment later
            self._remove_idle_networks(client)
            if self._sweep:
                time.sleep(0.2)

    # -- watching ---------------------------------------------------------------------------------------

    def set_listener(self, on_event: Callable[[], None]) -> None:
        self._listener = on_event

    def set_log_sink(self, sink: LogSink) -> None:
        self._logs.sink = sink

    def _notify(self) -> None:
        listener = self._listener
        if listener is not None:
            try:
                listener()
            except Exception:
                log.exception("executor listener failed")

    def _watch(self) -> None:
        """Swarm has no event for a task's end: list our tasks every WATCH_SECONDS and wake the scheduler when
        one ended (or its node was lost) since the last look."""
        seen: set[str] = set()
        while not self._stopping.wait(WATCH_SECONDS):
            if self._listener is None:
                continue
            try:
                client = self._client()
                services = self._our_services(client)
                ids = [sid for members in services.values() for sid in members.values()]
                swarm_tasks = self._newest_tasks(client, ids)
                nodes = self._node_states(client) if swarm_tasks else {}
            except (EngineUnavailable, DockerException, *UNREACHABLE):
                if self._lost_swarm() and self._known:
                    self._notify()
                continue
            except Exception:
                log.exception("swarm watch pass failed")
                continue
            ended = {sid for sid, task in swarm_tasks.items() if task.state in ENDED_STATES or _lost(task, nodes)}
            with self._lock:
                ended |= {f"stopped:{owner}" for owner in self._stopped.values() if owner not in services}
            for service_id in ended - seen:
                self._logs.exited(service_id)
            if ended - seen:
                self._notify()
            seen = ended

    def close(self) -> None:
        self._stopping.set()
        self._removals.shutdown(wait=True)
        for thread in (self._watcher, self._logs.thread):
            if thread is not threading.current_thread():
                thread.join(timeout=5)


def _service_log_frames(client: docker.DockerClient, service_id: str, since: float | None,
                        tail: int | str) -> Iterator[tuple[int, bytes]]:
    """(timestamp ns, line) of the service's output; the manager gathers it from whichever node ran it.

    Read whole with a timeout, not streamed: the SDK's stream has no timeout, and the manager never ends
    the answer for a task on a node that went away."""
    api = client.api
    response = api._get(api._url("/services/{0}/logs", service_id), timeout=LOG_READ_SECONDS, params={
        "stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "since": since or 0, "tail": tail})
    api._raise_for_status(response)
    for frame in transport.demultiplex(response.content):
        stamp, _, raw = frame.partition(b" ")
        ns = parse_timestamp_ns(stamp.decode("ascii", errors="replace"))
        if ns is not None:
            yield ns, raw


def _not_managing(exc: APIError) -> Exception:
    """A 503 means the engine answers but its swarm does not (it left, lost quorum or is shutting down)."""
    if exc.status_code == 503:
        return EngineUnavailable(f"the swarm does not answer: {explain(exc)}")
    return exc


def _gwbridge_gateway(client: docker.DockerClient) -> str | None:
    """The manager's address on docker_gwbridge, through which overlay containers reach their host."""
    try:
        configs = (client.api.inspect_network("docker_gwbridge").get("IPAM") or {}).get("Config") or []
    except (NotFound, APIError):
        return None
    return next((c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"]), None)


def _task_of(service_id: str, task: dict) -> _Task:
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    spec = task.get("Spec", {})
    limits = (spec.get("Resources") or {}).get("Limits") or {}
    labels = (spec.get("ContainerSpec") or {}).get("Labels") or {}
    exit_code = container.get("ExitCode") if container.get("ContainerID") else None
    addresses = {}
    for attachment in task.get("NetworksAttachments") or []:
        name = (attachment.get("Network") or {}).get("Spec", {}).get("Name")
        address = next((a.split("/")[0] for a in attachment.get("Addresses") or [] if ":" not in a), None)
        if name and address:
            addresses[name] = address
    return _Task(service_id=service_id, labels=labels, state=status.get("State", ""),
                 node_id=task.get("NodeID") or "", container_id=container.get("ContainerID") or "",
                 exit_code=exit_code, error=status.get("Err") or "", timestamp=status.get("Timestamp") or "",
                 memory_limited=bool(limits.get("MemoryBytes")), addresses=addresses, swarm_id=task.get("ID") or "",
                 nano_cpus=int(limits.get("NanoCPUs") or 0), memory_bytes=int(limits.get("MemoryBytes") or 0))


def _enforced(task: _Task) -> bool:
    """Rejected by Swarm's constraint enforcer, which may happen before or after its container started."""
    return task.state == "rejected" and "no longer meets constraints" in task.error


def _bumped(task: _Task) -> bool:
    """Rejected by Swarm's constraint enforcer before it ran (see SwarmExecutor._requeue): no container, and
    none appeared for a while (the node's agent may still be creating one it was given just before)."""
    if not _enforced(task) or task.container_id:
        return False
    rejected_ns = parse_timestamp_ns(task.timestamp)
    return rejected_ns is None or time.time_ns() - rejected_ns >= BUMP_SETTLE_SECONDS * 1e9


def _as_run_locally(client: docker.DockerClient, task: _Task) -> _Task:
    """The enforcer's "rejected" only changes the manager's record: the node's agent runs the container on to
    its end and reports nothing more. On the local engine its container tells the truth: running, or ended
    with its exit code. A rejected task with no container stays as it is (see _bumped)."""
    try:
        found = client.api.containers(all=True, filters={"label": f"com.docker.swarm.task.id={task.swarm_id}"})
        state = client.api.inspect_container(found[0]["Id"]).get("State") or {} if found else None
    except (NotFound, APIError):
        return task
    if not found or state is None:
        return task
    if state.get("Running") or state.get("Status") in ("created", "restarting"):
        return replace(task, state="running", container_id=found[0]["Id"], exit_code=None, error="")
    code = int(state.get("ExitCode") or 0)
    return replace(task, state="complete" if code == 0 else "failed", container_id=found[0]["Id"], exit_code=code,
                   error="" if code == 0 else f"task: non-zero exit ({code})", timestamp=state.get("FinishedAt") or "")


def _lost(task: _Task, nodes: dict[str, str]) -> bool:
    """The task was placed on a node that is down or has left the swarm (Swarm then rejects it: "assigned
    node no longer meets constraints"), or Swarm gave it up as orphaned. An exit reported before the node
    went away stands."""
    if task.state == "orphaned":
        return True
    if task.state in ("complete", "failed", "shutdown", "remove") or not task.node_id:
        return False
    return nodes.get(task.node_id, "down") in ("down", "disconnected")


def _lost_reason(node_id: str) -> str:
    return f"Host EC2 (instance {node_id}) terminated."


def _start_failure(task: _Task) -> tuple[Outcome, str] | None:
    """(outcome, engine's words) of a task that ended without ever running a container, else None."""
    if task.state not in ("rejected", "failed"):
        return None
    if task.container_id and not task.error.startswith("starting container failed"):
        return None
    error = task.error or task.state
    outcome = Outcome.PULL_FAILED if any(word in error for word in PULL_WORDS) else Outcome.START_FAILED
    return outcome, f"Error response from daemon: {error}"


def _local_container_state(client: docker.DockerClient, task: _Task) -> dict | None:
    if not task.container_id:
        return None
    try:
        return client.api.inspect_container(task.container_id).get("State") or {}
    except (NotFound, APIError):
        return None


def _epoch_ms(text: str | None) -> int | None:
    ns = parse_timestamp_ns(text or "")
    return None if ns is None else ns // 1_000_000


def _room(node: dict, used: dict[str, list[int]], cpus: int, memory: int) -> tuple[bool, int, int]:
    """(whether the node's free CPUs and memory hold the task's, free CPUs, free memory)."""
    taken = used.get(node["ID"], [0, 0, 0])
    free_cpus = _node_resource(node, "NanoCPUs") - taken[0]
    free_memory = _node_resource(node, "MemoryBytes") - taken[1]
    return free_cpus >= cpus and free_memory >= memory, free_cpus, free_memory


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


def _mounts(task: TaskSpec, spec: ContainerSpec, task_id: str, own: dict[str, str]) -> list[Mount]:
    """Bind mounts for volumes with a host sourcePath (the path must exist on the node that runs the task), a
    volume of the task (on its node) for the others, and tmpfs mounts (also /dev/shm for sharedMemorySize)."""
    volumes = {volume.get("name"): volume for volume in task.volumes}
    mounts: list[Mount] = []
    for point in spec.mount_points:
        volume = volumes.get(point.get("sourceVolume"))
        target = point.get("containerPath")
        if volume is None or not target:
            continue
        source = (volume.get("host") or {}).get("sourcePath")
        if source:
            mounts.append(Mount(target=target, source=source, type="bind", read_only=bool(point.get("readOnly"))))
        else:
            mounts.append(Mount(target=target, source=container_name(task_id, f"volume-{volume.get('name')}"),
                                type="volume", read_only=bool(point.get("readOnly")),
                                labels={**own, LABEL_TASK: task_id}))
    linux = spec.linux_parameters or {}
    for tmpfs in linux.get("tmpfs") or []:
        mounts.append(Mount(target=tmpfs["containerPath"], source=None, type="tmpfs",
                            tmpfs_size=int(tmpfs["size"]) * 2**20))
    if linux.get("sharedMemorySize"):
        mounts.append(Mount(target="/dev/shm", source=None, type="tmpfs",
                            tmpfs_size=int(linux["sharedMemorySize"]) * 2**20))
    return mounts


def _remove_service_quietly(client: docker.DockerClient, service_id: str) -> None:
    try:
        client.api.remove_service(service_id)
    except NotFound:
        pass
    except (DockerException, *UNREACHABLE) as exc:
        log.warning("could not remove service %s: %s", service_id[:12], exc)

