"""Jobs of many containers: `ecsProperties` (one ECS task of up to 10 containers) and `eksProperties` (one
Kubernetes pod with init containers) definitions.

What such a job runs after SubmitJob's overrides (`ecsPropertiesOverride`, `eksPropertiesOverride`) and
parameter substitution, what it reserves on a compute environment, and its DescribeJobs shape: AWS shows
these jobs without `container`, under `ecsProperties.taskProperties[].containers[]` (with `attempts[]
.taskProperties[]`) or `eksProperties.podProperties` (with `eksAttempts[]`). Pure functions on wire-form
documents; `Outcome` results of an attempt come in as {container name: (exitCode, reason)}.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from decimal import Decimal

from batchemu.errors import ClientException, NotBuiltError
from batchemu.model import container_parts, eks
from batchemu.model.containers import (
    DEFAULT_VCPUS,
    check_environment,
    check_fargate_combination,
    check_resource_requirements,
    gpus_of,
    memory_mib_of,
    merge_by_key,
    requirement,
    substitute_parameters,
)

ECS, EKS = "ecs", "eks"
EKS_DEFAULT_NAME = "Default"  # EksContainer.name when none is given
EKS_KINDS = ("initContainers", "containers")
ECS_OVERRIDE = "ecsPropertiesOverride.taskProperties[0]"
EKS_OVERRIDE = "eksPropertiesOverride.podProperties"
EKS_NAMESPACE = "default"
# Kubernetes expands `$(NAME)` in command and args from the container's environment; `$$` is a `$`.
KUBERNETES_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")

# {container name: (exitCode or None, reason or None)}: how each container of an attempt ended.
Results = dict[str, tuple[int | None, str | None]]


def kind_of(job_or_definition: dict) -> str | None:
    """ECS or EKS for a job (or definition) of many containers, None for a containerProperties one."""
    if job_or_definition.get("ecsProperties"):
        return ECS
    if job_or_definition.get("eksProperties"):
        return EKS
    return None


def _by_name(containers: list[dict], overrides: list[dict], where: str, name_of) -> Iterator[tuple[int, dict, dict]]:
    """(index, container, override) for each override, which names a container of the definition."""
    seen: set = set()
    for index, override in enumerate(overrides):
        name = name_of(override)
        if name in seen:
            raise ClientException(f"{where}[{index}]: container {name} is overridden more than once")
        seen.add(name)
        found = [c for c in containers if name_of(c) == name]
        if not found:
            known = ", ".join(str(name_of(c)) for c in containers)
            raise ClientException(f"{where}[{index}]: container {name} is not a container of the job "
                                  f"definition (its containers: {known})")
        yield index, found[0], override


# -- ecsProperties ---------------------------------------------------------------------------------------

def resolve_ecs(ecs: dict, override: dict | None, parameters: dict[str, str], *, fargate: bool) -> dict:
    """The job's EcsPropertiesDetail before any attempt: the definition's task with `ecsPropertiesOverride`
    applied (containers by name: command, environment by name, resourceRequirements by type)."""
    task = copy.deepcopy(ecs["taskProperties"][0])
    task_overrides = (override or {}).get("taskProperties") or []
    if len(task_overrides) > 1:
        raise ClientException("ecsPropertiesOverride.taskProperties can contain at most one entry")
    container_overrides = (task_overrides[0].get("containers") or []) if task_overrides else []
    for index, container, given in _by_name(task["containers"], container_overrides, f"{ECS_OVERRIDE}.containers",
                                            lambda c: c.get("name")):
        where = f"{ECS_OVERRIDE}.containers[{index}]"
        if given.get("command") is not None:
            if any(arg == "" for arg in given["command"]):
                raise ClientException(f"{where}.command can't contain an empty string")
            container["command"] = list(given["command"])
        check_environment(given.get("environment") or [], where)
        if given.get("environment"):
            container["environment"] = merge_by_key(container.get("environment") or [], given["environment"], "name")
        if given.get("resourceRequirements"):
            requirements = merge_by_key(container.get("resourceRequirements") or [], given["resourceRequirements"],
                                   "type")
            check_resource_requirements(requirements, fargate=fargate)
            container["resourceRequirements"] = requirements
    if fargate and container_overrides:
        check_fargate_combination(task["containers"])
    for container in task["containers"]:
        container["command"] = substitute_parameters(container.get("command") or [], parameters)
    return {"taskProperties": [task]}


def ecs_containers(job: dict) -> list[dict]:
    return job["ecsProperties"]["taskProperties"][0]["containers"]


# -- eksProperties ---------------------------------------------------------------------------------------

def eks_name(container: dict) -> str:
    return container.get("name") or EKS_DEFAULT_NAME


def _override_eks_container(container: dict, given: dict, where: str) -> None:
    for field in ("image", "command", "args"):
        if given.get(field) is not None:
            container[field] = copy.deepcopy(given[field])
    check_environment(given.get("env") or [], where, "env")
    if given.get("env"):
        container["env"] = merge_by_key(container.get("env") or [], given["env"], "name")
    if given.get("resources"):
        # A resource the override names replaces the definition's in both limits and requests, so that a
        # new memory limit does not clash with the old memory request.
        named = {n for part in ("limits", "requests") for n in (given["resources"].get(part) or {})}
        resources = {}
        for part in ("limits", "requests"):
            kept = {n: v for n, v in ((container.get("resources") or {}).get(part) or {}).items() if n not in named}
            kept.update(given["resources"].get(part) or {})
            if kept:
                resources[part] = kept
        container["resources"] = resources


def resolve_eks(properties: dict, override: dict | None, parameters: dict[str, str]) -> dict:
    """The job's EksPropertiesDetail before any attempt: the definition's pod with `eksPropertiesOverride`
    applied (containers and init containers by name: image, command, args, env by name, resources; metadata
    labels and annotations merged)."""
    pod = copy.deepcopy(properties["podProperties"])
    given = (override or {}).get("podProperties") or {}
    for kind in EKS_KINDS:
        containers = pod.get(kind) or []
        for index, container, container_override in _by_name(containers, given.get(kind) or [],
                                                             f"{EKS_OVERRIDE}.{kind}", eks_name):
            _override_eks_container(container, container_override, f"{EKS_OVERRIDE}.{kind}[{index}]")
        for index, container in enumerate(containers):
            eks.check(container.get("resources"), f"eksProperties.podProperties.{kind}[{index}].resources")
            for field in ("command", "args"):
                if container.get(field) is not None:
                    container[field] = substitute_parameters(container[field], parameters)
    check_runnable_pod(pod)
    metadata = given.get("metadata")
    if metadata:
        merged = copy.deepcopy(pod.get("metadata") or {})
        for part in ("labels", "annotations"):
            if metadata.get(part):
                merged[part] = {**(merged.get(part) or {}), **metadata[part]}
        if metadata.get("namespace"):
            container_parts.check_eks_metadata(metadata, EKS_OVERRIDE)
            merged["namespace"] = metadata["namespace"]
        pod["metadata"] = merged
    return {"podProperties": pod}


def eks_pod(job: dict) -> dict:
    return job["eksProperties"]["podProperties"]


def check_runnable_pod(pod: dict) -> None:
    """Refuse what a pod asks for that batchemu cannot give it (Kubernetes secrets and claims, subPath
    mounts), and mounts of volumes the pod lacks."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for volume in volumes.values():
        if volume.get("secret") or volume.get("persistentVolumeClaim"):
            raise NotBuiltError("SubmitJob of an eksProperties pod with secret or persistentVolumeClaim volumes")
    for kind in EKS_KINDS:
        for index, container in enumerate(pod.get(kind) or []):
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    raise ClientException(f"eksProperties.podProperties.{kind}[{index}].volumeMounts: volume "
                                          f"{mount.get('name')} is not a volume of the pod")
                if mount.get("subPath"):
                    raise NotBuiltError("SubmitJob of an eksProperties pod with subPath volume mounts")


def expand_kubernetes(args: list[str], environment: dict[str, str]) -> list[str]:
    """`$(NAME)` replaced by the variable's value where the container has it, `$$` by `$`, as Kubernetes does."""
    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return environment.get(match.group(1), match.group(0))
    return [KUBERNETES_REFERENCE.sub(one, arg) for arg in args]


def eks_task_volumes(pod: dict) -> list[dict]:
    """The pod's volumes as task volumes (wire form of Volume): a hostPath binds the host's directory, an
    emptyDir is a volume of the task that lives as long as the pod."""
    return [{"name": v["name"], "host": {"sourcePath": v["hostPath"]["path"]}} if v.get("hostPath") else
            {"name": v["name"]} for v in pod.get("volumes") or []]


def eks_mount_points(container: dict) -> list[dict]:
    """A pod container's volumeMounts as task mount points (wire form of MountPoint)."""
    return [{"sourceVolume": m["name"], "containerPath": m["mountPath"], "readOnly": bool(m.get("readOnly"))}
            for m in container.get("volumeMounts") or []]


# -- what a job reserves ---------------------------------------------------------------------------------

def reservation(job: dict) -> tuple[float, int | None, int]:
    """(vCPUs, memory MiB or None, GPUs) a job of many containers reserves on its compute environment: the
    sum over its containers (for a pod, at least what its largest init container asks, as Kubernetes counts)."""
    if kind_of(job) == ECS:
        containers = ecs_containers(job)
        vcpus = sum(Decimal(requirement(c, "VCPU") or 0) for c in containers)
        memories = [mib for c in containers if (mib := memory_mib_of(c)) is not None]
        return float(vcpus) or DEFAULT_VCPUS, sum(memories) if memories else None, sum(gpus_of(c) for c in containers)
    pod = eks_pod(job)
    sums: list[tuple[list[Decimal], list[int], list[int]]] = []
    for kind in EKS_KINDS:
        read = [eks.check(c.get("resources"), kind) for c in pod.get(kind) or []]
        cpus = [r.cpu or Decimal(0) for r in read]
        memories = [r.memory_mib for r in read if r.memory_mib is not None]
        gpus = [r.gpus for r in read]
        sums.append((cpus, memories, gpus))
    (init_cpu, init_memory, init_gpus), (cpu, memory, gpus) = sums
    vcpus = max(sum(cpu, Decimal(0)), max(init_cpu, default=Decimal(0)))
    memory_mib = max(sum(memory), max(init_memory, default=0)) if memory or init_memory else None
    return float(vcpus) or DEFAULT_VCPUS, memory_mib, max(sum(gpus), max(init_gpus, default=0))


# -- DescribeJobs shape of attempts ----------------------------------------------------------------------

def ecs_log_stream(container: dict, task_id: str, definition_name: str) -> tuple[str, str]:
    """(group, stream) of one task container: the awslogs options of its logConfiguration, else AWS's
    default group and `<definition name>/<container name>/<task id>` (ECS names awslogs streams
    `<prefix>/<container>/<task id>`)."""
    config = container.get("logConfiguration") or {}
    options = (config.get("options") or {}) if config.get("logDriver", "awslogs") == "awslogs" else {}
    prefix = options.get("awslogs-stream-prefix") or definition_name
    return options.get("awslogs-group") or "/aws/batch/job", f"{prefix}/{container.get('name') or 'default'}/{task_id}"


def begin_ecs_attempt(job: dict, task_arn: str, instance_arn: str, definition_name: str) -> None:
    """Name the new attempt's task and each container's log stream; forget the last attempt's exits."""
    task = job["ecsProperties"]["taskProperties"][0]
    task["taskArn"], task["containerInstanceArn"] = task_arn, instance_arn
    task_id = task_arn.rsplit("/", 1)[-1]
    for container in task["containers"]:
        container["logStreamName"] = ecs_log_stream(container, task_id, definition_name)[1]
        container.pop("exitCode", None)
        container.pop("reason", None)


def _apply(container: dict, result: tuple[int | None, str | None] | None) -> dict:
    """`container` with its exitCode and reason set from `result` (absent when it has none)."""
    exit_code, reason = result or (None, None)
    container.pop("exitCode", None)
    container.pop("reason", None)
    if exit_code is not None:
        container["exitCode"] = exit_code
    if reason:
        container["reason"] = reason
    return container


def end_ecs_attempt(job: dict, results: Results, started_at: int, stopped_at: int, status_reason: str) -> None:
    """Record each container's end on the task and append the attempt to `attempts[]`."""
    task = job["ecsProperties"]["taskProperties"][0]
    attempt_containers = []
    for container in task["containers"]:
        result = results.get(container.get("name") or "default")
        _apply(container, result)
        attempt_containers.append(_apply({"name": container.get("name"),
                                          "logStreamName": container.get("logStreamName")}, result))
    job.setdefault("attempts", []).append({
        "taskProperties": [{"containerInstanceArn": task.get("containerInstanceArn"), "taskArn": task.get("taskArn"),
                            "containers": attempt_containers}],
        "startedAt": started_at, "stoppedAt": stopped_at, "statusReason": status_reason,
    })


def begin_eks_attempt(job: dict, pod_name: str, node_name: str) -> None:
    pod = eks_pod(job)
    pod["podName"], pod["nodeName"] = pod_name, node_name
    for kind in EKS_KINDS:
        for container in pod.get(kind) or []:
            _apply(container, None)


def end_eks_attempt(job: dict, results: Results, container_ids: dict[str, str], cluster_arn: str | None,
                    namespace: str | None, started_at: int, stopped_at: int, status_reason: str) -> None:
    """Record each container's end on the pod and append the attempt to `eksAttempts[]`; the pod ran in
    `namespace` (its compute environment's), else in its metadata's."""
    pod = eks_pod(job)
    attempt: dict = {}
    for kind in EKS_KINDS:
        ended = []
        for container in pod.get(kind) or []:
            name = eks_name(container)
            _apply(container, results.get(name))
            detail = {"name": name}
            if container_ids.get(name):
                detail["containerID"] = container_ids[name]
            ended.append(_apply(detail, results.get(name)))
        attempt[kind] = ended
    namespace = namespace or (pod.get("metadata") or {}).get("namespace") or EKS_NAMESPACE
    attempt.update({"podName": pod.get("podName"), "podNamespace": namespace, "nodeName": pod.get("nodeName"),
                    "startedAt": started_at, "stoppedAt": stopped_at, "statusReason": status_reason})
    if cluster_arn:
        attempt["eksClusterArn"] = cluster_arn
    job.setdefault("eksAttempts", []).append(attempt)
