"""The service of each container of a task: a `replicated-job` of one replica that never restarts, with the
container's labels, limits, mounts and network, and no Swarm reservations (see node_choice)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound
from docker.types import ContainerSpec as SwarmContainerSpec
from docker.types import DriverConfig, Mount, Resources, RestartPolicy, TaskTemplate

from batchemu.config import Config
from batchemu.executors import HOST_ALIAS, ContainerSpec, Outcome, StartFailure, TaskSpec, images, tasks
from batchemu.executors.docker.arguments import MIN_MEMORY_MIB, labels_of
from batchemu.executors.docker.engine import (
    LABEL_DEPENDS_ON,
    LABEL_ESSENTIAL,
    LABEL_INIT,
    LABEL_NETWORK,
    LABEL_TASK,
    container_name,
)
from batchemu.executors.swarm.node_choice import gpus, node_resource

STOP_GRACE_NS = 10 * 1_000_000_000
LABEL_PLAN = "batchemu.plan"   # on a task's own network: JSON of every container's service, to start later


@dataclass
class PlannedService:
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


def service_of(config: Config, own: dict[str, str], client: docker.DockerClient, task: TaskSpec, task_id: str,
               spec: ContainerSpec, nodes: list[dict], network: str, group: str | None) -> PlannedService:
    """The service of one container of the task; StartFailure for what a Swarm service cannot be given."""
    labels = labels_of(task, spec, task_id, own)
    if group:
        labels[LABEL_NETWORK] = group
    linux = spec.linux_parameters or {}
    if spec.privileged:
        raise StartFailure(Outcome.START_FAILED, "privileged containers cannot run as Docker Swarm services; "
                           "run this job with --executor docker", spec.name)
    if linux.get("devices"):
        raise StartFailure(Outcome.START_FAILED, "host devices cannot be given to Docker Swarm services; "
                           "run this job with --executor docker", spec.name)
    image = choose_image(config, client, spec.image)
    hosts = None
    if group:
        gateway = gwbridge_gateway(client)
        hosts = {HOST_ALIAS: gateway} if gateway else None
    container = SwarmContainerSpec(
        image, command=list(spec.entrypoint) if spec.entrypoint is not None else None,
        args=list(spec.command) or None, env=[f"{k}={v}" for k, v in spec.environment.items()],
        user=spec.user or None, labels=labels, mounts=mounts(task, spec, task_id, own) or None,
        read_only=bool(spec.readonly_root_filesystem) or None, init=bool(linux.get("initProcessEnabled")) or None,
        stop_grace_period=STOP_GRACE_NS, hosts=hosts,
        hostname=spec.hostname if spec.hostname and network != "host" else None)
    if spec.ulimits:
        container["Ulimits"] = [{"Name": u["name"], "Soft": int(u["softLimit"]), "Hard": int(u["hardLimit"])}
                                for u in spec.ulimits]
    template = TaskTemplate(container, resources=_resources(spec, nodes),
                            restart_policy=RestartPolicy(condition="none", max_attempts=0),
                            log_driver=DriverConfig("json-file"),
                            networks=[{"Target": network, "Aliases": [spec.hostname]}
                                      if spec.hostname and group else network])
    return PlannedService(name=container_name(task_id, spec.name), container=spec.name, labels=labels,
                          template=json.loads(json.dumps(template)))


def _resources(spec: ContainerSpec, nodes: list[dict]) -> Resources | None:
    """The container's limits (no reservations), and the GPUs it asks of the swarm's advertised kind."""
    largest_cpus = max((node_resource(n, "NanoCPUs") for n in nodes), default=0)
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
        kind = next((k for n in nodes for k in gpus(n.get("Description", {}).get("Resources") or {})), None)
        if kind is None:
            raise StartFailure(Outcome.START_FAILED, f"the job needs {spec.gpus} GPU(s) and no node of the "
                               "swarm advertises a GPU generic resource", spec.name)
        resources["generic_resources"] = {kind: int(spec.gpus)}
    return Resources(**resources) if resources else None


def choose_image(config: Config, client: docker.DockerClient, image: str) -> str:
    """The first name images.candidates offers that the manager has locally, else the last: the node that
    runs the task must have it (or reach a registry that has it)."""
    *local_only, last = images.candidates(image, config.image_map)
    for candidate in local_only:
        try:
            client.images.get(candidate)
            return candidate
        except (NotFound, APIError):
            continue
    return last


def gwbridge_gateway(client: docker.DockerClient) -> str | None:
    """The manager's address on docker_gwbridge, through which overlay containers reach their host."""
    try:
        configs = (client.api.inspect_network("docker_gwbridge").get("IPAM") or {}).get("Config") or []
    except (NotFound, APIError):
        return None
    return next((c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"]), None)


def mounts(task: TaskSpec, spec: ContainerSpec, task_id: str, own: dict[str, str]) -> list[Mount]:
    """Bind mounts for volumes with a host sourcePath (the path must exist on the node that runs the task), a
    volume of the task (on its node) for the others, and tmpfs mounts (also /dev/shm for sharedMemorySize)."""
    volumes = {volume.get("name"): volume for volume in task.volumes}
    found: list[Mount] = []
    for point in spec.mount_points:
        volume = volumes.get(point.get("sourceVolume"))
        target = point.get("containerPath")
        if volume is None or not target:
            continue
        source = (volume.get("host") or {}).get("sourcePath")
        if source:
            found.append(Mount(target=target, source=source, type="bind", read_only=bool(point.get("readOnly"))))
        else:
            found.append(Mount(target=target, source=container_name(task_id, f"volume-{volume.get('name')}"),
                               type="volume", read_only=bool(point.get("readOnly")),
                               labels={**own, LABEL_TASK: task_id}))
    linux = spec.linux_parameters or {}
    for tmpfs in linux.get("tmpfs") or []:
        found.append(Mount(target=tmpfs["containerPath"], source=None, type="tmpfs",
                           tmpfs_size=int(tmpfs["size"]) * 2**20))
    if linux.get("sharedMemorySize"):
        found.append(Mount(target="/dev/shm", source=None, type="tmpfs",
                           tmpfs_size=int(linux["sharedMemorySize"]) * 2**20))
    return found
