"""The arguments of `containers.create` for one container of a task: labels, limits, mounts, network."""

from __future__ import annotations

import json

from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

from batchemu.executors import HOST_ALIAS, LABEL_ATTEMPT, LABEL_JOB_ID, ContainerSpec, TaskSpec
from batchemu.executors.docker.engine import (
    LABEL_CONTAINER,
    LABEL_DEPENDS_ON,
    LABEL_ENDS_ON_FAILURE,
    LABEL_ESSENTIAL,
    LABEL_INDEX,
    LABEL_INIT,
    LABEL_LOG_GROUP,
    LABEL_LOG_STREAM,
    LABEL_NETWORK,
    LABEL_TASK,
)

MIN_MEMORY_MIB = 6         # the engine refuses smaller limits
DEVICE_PERMISSIONS = {"READ": "r", "WRITE": "w", "MKNOD": "m"}


def labels_of(task: TaskSpec, container: ContainerSpec, task_id: str, own: dict[str, str]) -> dict[str, str]:
    """Everything a restarted server needs to carry the task on: whose it is, where its output goes, and
    the container's place in the task's order."""
    labels = {**task.labels, LABEL_JOB_ID: task.job_id, LABEL_ATTEMPT: str(task.attempt), **own,
              LABEL_LOG_GROUP: container.log_group, LABEL_LOG_STREAM: container.log_stream}
    if len(task.containers) > 1 or task.network:
        labels.update({LABEL_TASK: task_id, LABEL_CONTAINER: container.name,
                       LABEL_INDEX: str(task.containers.index(container)),
                       LABEL_ESSENTIAL: "1" if container.essential else "0"})
        if container.init:
            labels[LABEL_INIT] = "1"
        if container.ends_task_on_failure:
            labels[LABEL_ENDS_ON_FAILURE] = "1"
        if container.depends_on:
            labels[LABEL_DEPENDS_ON] = json.dumps([list(d) for d in container.depends_on])
        if task.network:
            labels[LABEL_NETWORK] = task.network
    return labels


def create_arguments(task: TaskSpec, container: ContainerSpec, labels: dict[str, str], *, network: str,
                     gateway: str | None, host_cpus: int, task_volumes: dict[str, str]) -> dict:
    """`gateway`: the host's address on a task network; `task_volumes`: engine volume name of each task
    volume shared by several containers."""
    linux = container.linux_parameters or {}
    arguments: dict = {
        "command": list(container.command) or None,
        "environment": dict(container.environment),
        "labels": labels,
        "network_mode": network,
        "user": container.user or None,
        "privileged": bool(container.privileged),
        "read_only": bool(container.readonly_root_filesystem),
        # Read back by the log pump whatever the engine's default driver is.
        "log_config": LogConfig(type="json-file"),
    }
    if task.network:
        # The network's own gateway: the engine's "host-gateway" is docker0's, which may not exist.
        arguments["extra_hosts"] = {HOST_ALIAS: gateway or "host-gateway"}
    if container.hostname and network != "host":  # the engine refuses a host name on the host's network
        arguments["hostname"] = container.hostname
        if task.network:  # the others of the task resolve the name through the engine's DNS
            del arguments["network_mode"]
            arguments["network"] = network
            arguments["networking_config"] = {network: {"Aliases": [container.hostname]}}
    if container.entrypoint is not None:
        arguments["entrypoint"] = list(container.entrypoint)
    if container.memory_mib:
        memory = max(int(container.memory_mib), MIN_MEMORY_MIB)
        # memory + swap equal to memory: a job over its limit is OOM-killed, as on Batch.
        swap = max(int(linux["maxSwap"]), 0) if linux.get("maxSwap") is not None else 0
        arguments["mem_limit"] = f"{memory}m"
        arguments["memswap_limit"] = f"{memory + swap}m"
        if linux.get("swappiness") is not None:
            arguments["mem_swappiness"] = int(linux["swappiness"])
    if container.vcpus and container.vcpus > 0:
        # The engine refuses more CPUs than the host has; Batch's vCPU count is a reservation anyway.
        arguments["nano_cpus"] = int(min(float(container.vcpus), host_cpus) * 1e9)
    if container.ulimits:
        arguments["ulimits"] = [Ulimit(name=u["name"], soft=int(u["softLimit"]), hard=int(u["hardLimit"]))
                                for u in container.ulimits]
    if linux.get("devices"):
        arguments["devices"] = [_device(d) for d in linux["devices"]]
    if linux.get("initProcessEnabled"):
        arguments["init"] = True
    if linux.get("sharedMemorySize"):
        arguments["shm_size"] = f"{int(linux['sharedMemorySize'])}m"
    if linux.get("tmpfs"):
        arguments["tmpfs"] = {t["containerPath"]: ",".join([f"size={int(t['size'])}m", *t.get("mountOptions", [])])
                              for t in linux["tmpfs"]}
    if container.gpus:
        arguments["device_requests"] = [DeviceRequest(count=int(container.gpus), capabilities=[["gpu"]])]
    binds, mounts = _volumes(task, container, task_volumes)
    if binds:
        arguments["volumes"] = binds
    if mounts:
        arguments["mounts"] = mounts
    return arguments


def shared_volumes(task: TaskSpec) -> list[str]:
    """Names of the task volumes without a host path that more than one container mounts: these need an
    engine volume of the task's own (one container's are anonymous volumes, removed with it)."""
    host = {v.get("name") for v in task.volumes if (v.get("host") or {}).get("sourcePath")}
    users: dict[str, int] = {}
    for container in task.containers:
        for name in {p["sourceVolume"] for p in container.mount_points if p.get("sourceVolume")}:
            users[name] = users.get(name, 0) + 1
    known = {v.get("name") for v in task.volumes}
    return sorted(name for name, count in users.items() if count > 1 and name in known and name not in host)


def _device(device: dict) -> str:
    host_path = device["hostPath"]
    permissions = device.get("permissions") or list(DEVICE_PERMISSIONS)
    modes = "".join(DEVICE_PERMISSIONS[p] for p in DEVICE_PERMISSIONS if p in permissions)
    return f"{host_path}:{device.get('containerPath') or host_path}:{modes}"


def _volumes(task: TaskSpec, container: ContainerSpec, task_volumes: dict[str, str]) -> tuple[list[str], list[Mount]]:
    """Binds for volumes with a host sourcePath; the task's engine volume for a shared one; an anonymous
    engine volume for the others (as ECS does)."""
    volumes = {volume.get("name"): volume for volume in task.volumes}
    binds: list[str] = []
    mounts: list[Mount] = []
    for point in container.mount_points:
        volume = volumes.get(point.get("sourceVolume"))
        target = point.get("containerPath")
        if volume is None or not target:
            continue
        read_only = bool(point.get("readOnly"))
        source = (volume.get("host") or {}).get("sourcePath")
        if source:
            binds.append(f"{source}:{target}:{'ro' if read_only else 'rw'}")
        else:
            mounts.append(Mount(target=target, source=task_volumes.get(volume.get("name") or ""), type="volume",
                                read_only=read_only))
    return binds, mounts
