"""Attempts of jobs of many containers (ecsProperties tasks, eksProperties pods): the task an attempt runs,
one ContainerSpec per container, and what each container's end records on the job.

ECS: each container keeps the image's entrypoint (`command` replaces its command), `essential` and
`dependsOn` as given. EKS: init containers first, in order; the pod's containers are none of them essential
(a pod runs until every container has ended, and fails when any one fails); `command` replaces the
entrypoint and `args` the image's command, with Kubernetes' `$(VAR)` expansion. Pure functions;
batchemu.model.attempts calls them for these jobs, and model.task_definitions shapes what DescribeJobs shows.
"""

from __future__ import annotations

import uuid

from batchemu.config import Config
from batchemu.executors import DEFAULT_CONTAINER, ContainerSpec, TaskSpec
from batchemu.model import eks, states, task_definitions
from batchemu.model.containers import gpus_of, linux_parameters, memory_mib_of, requirement
from batchemu.model.environment import container_environment

DEFAULT_LOG_GROUP = "/aws/batch/job"


def begin(job: dict, config: Config, compute_environment: dict, task_arn: str, instance_arn: str) -> None:
    """Name the attempt's task (ECS) or pod (EKS, in the compute environment's cluster and namespace) and
    each container's log stream."""
    info = states.internal(job)
    definition_name = info.get("definitionName") or job["jobName"]
    task_id = task_arn.rsplit("/", 1)[-1]
    if task_definitions.kind_of(job) == task_definitions.ECS:
        task_definitions.begin_ecs_attempt(job, task_arn, instance_arn, definition_name)
        return
    # An EKS pod has no log stream in DescribeJobs: its containers' streams are ours to name, as for ECS.
    names = [task_definitions.eks_name(c) for kind in task_definitions.EKS_KINDS
             for c in task_definitions.eks_pod(job).get(kind) or []]
    info["logStreams"] = {name: f"{definition_name}/{name}/{task_id}" for name in names}
    cluster = compute_environment.get("eksConfiguration") or {}
    info["eksClusterArn"], info["podNamespace"] = cluster.get("eksClusterArn"), cluster.get("kubernetesNamespace")
    info["nodeUid"] = str(uuid.uuid4())
    octets = uuid.UUID(info["nodeUid"]).bytes
    node = f"ip-10-{octets[0]}-{octets[1]}-{octets[2] or 1}.{config.region}.compute.internal"
    task_definitions.begin_eks_attempt(job, f"aws-batch.{uuid.uuid4()}", node)


def log_streams(job: dict) -> list[tuple[str, str]]:
    """(group, stream) of each container of the current attempt."""
    if task_definitions.kind_of(job) == task_definitions.ECS:
        task_id = job["ecsProperties"]["taskProperties"][0]["taskArn"].rsplit("/", 1)[-1]
        definition_name = states.internal(job).get("definitionName") or job["jobName"]
        return [task_definitions.ecs_log_stream(c, task_id, definition_name)
                for c in task_definitions.ecs_containers(job)]
    return [(DEFAULT_LOG_GROUP, stream) for stream in states.internal(job).get("logStreams", {}).values()]


def _ecs_container(container: dict, environment: dict[str, str], task_id: str, definition_name: str) -> ContainerSpec:
    group, stream = task_definitions.ecs_log_stream(container, task_id, definition_name)
    vcpus = requirement(container, "VCPU")
    return ContainerSpec(
        name=container.get("name") or DEFAULT_CONTAINER, image=container["image"],
        command=list(container.get("command") or []),
        environment=container_environment(container.get("environment") or [], environment),
        vcpus=float(vcpus) if vcpus else 0.0, memory_mib=memory_mib_of(container), gpus=gpus_of(container),
        log_group=group, log_stream=stream, essential=container.get("essential", True),
        depends_on=[(d["containerName"], d["condition"]) for d in container.get("dependsOn") or []],
        user=container.get("user"), privileged=bool(container.get("privileged")),
        readonly_root_filesystem=bool(container.get("readonlyRootFilesystem")),
        ulimits=container.get("ulimits") or [], linux_parameters=linux_parameters(container),
        mount_points=container.get("mountPoints") or [])


def _user(context: dict) -> str | None:
    if context.get("runAsUser") is None:
        return None
    group = context.get("runAsGroup")
    return f"{context['runAsUser']}:{group}" if group is not None else str(context["runAsUser"])


def _eks_container(container: dict, pod: dict, environment: dict[str, str], stream: str, *,
                   init: bool) -> ContainerSpec:
    variables = container_environment(container.get("env") or [], environment)
    resources = eks.check(container.get("resources"), task_definitions.eks_name(container))
    cpu = resources.cpu_limit if resources.cpu_limit is not None else resources.cpu_request
    context = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
    command = container.get("command")
    return ContainerSpec(
        name=task_definitions.eks_name(container), image=container["image"], init=init, essential=False,
        entrypoint=task_definitions.expand_kubernetes(command, variables) if command is not None else None,
        command=task_definitions.expand_kubernetes(container.get("args") or [], variables), environment=variables,
        vcpus=float(cpu or 0), memory_mib=resources.memory_mib, gpus=resources.gpus,
        log_group=DEFAULT_LOG_GROUP, log_stream=stream, user=_user(context),
        privileged=bool(context.get("privileged")), readonly_root_filesystem=bool(context.get("readOnlyRootFilesystem")),
        mount_points=task_definitions.eks_mount_points(container))


def task_spec(job: dict, environment: dict[str, str], labels: dict[str, str],
              network: str | None = None) -> TaskSpec:
    """The task of the current attempt on `network` (None: the executor's default); `environment` is what
    AWS Batch sets in every container."""
    info = states.internal(job)
    if task_definitions.kind_of(job) == task_definitions.ECS:
        task = job["ecsProperties"]["taskProperties"][0]
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        definition_name = info.get("definitionName") or job["jobName"]
        containers = [_ecs_container(c, environment, task_id, definition_name) for c in task["containers"]]
        volumes = task.get("volumes") or []
    else:
        pod = task_definitions.eks_pod(job)
        environment = {**environment, "AWS_BATCH_JOB_KUBERNETES_NODE_UID": info["nodeUid"]}
        streams = info["logStreams"]
        containers = [_eks_container(c, pod, environment, streams[task_definitions.eks_name(c)],
                                     init=kind == "initContainers")
                      for kind in task_definitions.EKS_KINDS for c in pod.get(kind) or []]
        volumes = task_definitions.eks_task_volumes(pod)
    return TaskSpec(job_id=job["jobId"], attempt=info["attempt"], containers=containers, volumes=volumes,
                    network=network, labels=labels)


def end(job: dict, containers: list[dict] | None, started_at: int, stopped_at: int, status_reason: str) -> None:
    """Record how each container ended (`containers`: [{name, exitCode, reason, containerId}], None when the
    engine told nothing) on the job and in its attempts."""
    names = ([c.get("name") or DEFAULT_CONTAINER for c in task_definitions.ecs_containers(job)]
             if task_definitions.kind_of(job) == task_definitions.ECS else
             [task_definitions.eks_name(c) for kind in task_definitions.EKS_KINDS
              for c in task_definitions.eks_pod(job).get(kind) or []])
    containers = containers or []
    if len(names) == 1 and len(containers) == 1:
        # An executor may name a task's only container by the default name, not the job's.
        containers = [{**containers[0], "name": names[0]}]
    results = {c["name"]: (c.get("exitCode"), c.get("reason")) for c in containers}
    if task_definitions.kind_of(job) == task_definitions.ECS:
        task_definitions.end_ecs_attempt(job, results, started_at, stopped_at, status_reason)
        return
    ids = {c["name"]: c["containerId"] for c in containers if c.get("containerId")}
    info = states.internal(job)
    task_definitions.end_eks_attempt(job, results, ids, info.get("eksClusterArn"), info.get("podNamespace"),
                                     started_at, stopped_at, status_reason)
