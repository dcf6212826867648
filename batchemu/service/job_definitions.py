"""Job definitions: RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition.

One resource per revision (ARN `job-definition/<name>:<revision>`); revisions of a name count up from 1
and are never reused. `resolve_job_definition` is the lookup SubmitJob uses.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model import container_parts
from batchemu.model import eks as eks_resources
from batchemu.model.containers import (
    FARGATE_MEMORY,
    check_environment,
    check_resource_requirements,
    requested_resources,
)
from batchemu.model.containers import invalid_definition as _invalid
from batchemu.model.node_ranges import MAX_NODES, node_bounds
from batchemu.model.resources import JOB_DEFINITION
from batchemu.service import consumable_resources, host_access
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.service.retry_strategies import check_retry_strategy
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

KIND = JOB_DEFINITION
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
PLATFORMS = ("EC2", "FARGATE", "MANAGED_INSTANCES")
STATUSES = ("ACTIVE", "INACTIVE")
MAX_TASK_CONTAINERS = 10
TASK_DEPENDENCY_CONDITIONS = ("START", "COMPLETE", "SUCCESS")
FARGATE_LOG_DRIVERS = ("awslogs", "splunk", "awsfirelens")
FARGATE_UNSUPPORTED_LINUX = ("devices", "maxSwap", "sharedMemorySize", "swappiness", "tmpfs")
# Lists AWS returns as [] in containerProperties when they were not given.
CONTAINER_LIST_DEFAULTS = ("command", "volumes", "environment", "mountPoints", "ulimits", "resourceRequirements",
                           "secrets")


# -- lookups ---------------------------------------------------------------------------------------------

def _split_reference(ctx: Context, ref: str) -> tuple[str, int | None] | None:
    """(name, revision or None) of a name, name:revision or ARN; None when `ref` is none of them."""
    prefix = ctx.arn(f"{KIND}/")
    if ref.startswith("arn:"):
        if not ref.startswith(prefix):
            return None
        ref = ref[len(prefix):]
    name, sep, revision = ref.partition(":")
    if not NAME_PATTERN.fullmatch(name):
        return None
    if not sep:
        return name, None
    if not revision.isdigit():
        return None
    return name, int(revision)


def _revision(tx: Tx, ctx: Context, name: str, revision: int) -> dict | None:
    return tx.resources.get(KIND, ctx.arn(f"{KIND}/{name}:{revision}"))


def _latest_active(tx: Tx, name: str) -> dict | None:
    active = [d for d in tx.resources.find(KIND, name) if d["status"] == "ACTIVE"]
    return max(active, key=lambda d: d["revision"]) if active else None


def resolve_job_definition(tx: Tx, ctx: Context, ref: str) -> dict | None:
    """The job definition SubmitJob names: `name` (latest ACTIVE revision), `name:revision`, or an ARN
    with or without revision. An explicit revision is returned whatever its status; None if unknown."""
    parts = _split_reference(ctx, ref)
    if parts is None:
        return None
    name, revision = parts
    if revision is None:
        return _latest_active(tx, name)
    return _revision(tx, ctx, name, revision)


# -- validation ------------------------------------------------------------------------------------------

def _check_fargate_container(container: dict) -> None:
    if not container.get("executionRoleArn"):
        raise _invalid("Execution role is required for Fargate.")
    if container.get("privileged"):
        raise _invalid("privileged is not applicable for Fargate.")
    for field in ("instanceType", "ulimits"):
        if container.get(field):
            raise _invalid(f"{field} is not applicable for Fargate.")
    for field in FARGATE_UNSUPPORTED_LINUX:
        if (container.get("linuxParameters") or {}).get(field) is not None:
            raise _invalid(f"linuxParameters.{field} is not applicable for Fargate.")
    driver = (container.get("logConfiguration") or {}).get("logDriver")
    if driver is not None and driver not in FARGATE_LOG_DRIVERS:
        raise _invalid(f"logDriver {driver} is not supported for Fargate.")


def _check_container(container: dict, *, fargate: bool) -> dict:
    """A validated ECS containerProperties with AWS's defaults filled in."""
    if not container.get("image"):
        raise _invalid("Container image is not provided.")
    vcpus, memory = requested_resources(container, fargate=fargate)
    if vcpus is None:
        raise _invalid("vCPU is not provided.")
    if memory is None:
        raise _invalid("Memory is not provided.")
    check_environment(container.get("environment") or [], "containerProperties")
    container = copy.deepcopy(container)
    if fargate:
        _check_fargate_container(container)
        if memory not in FARGATE_MEMORY.get(vcpus, set()):
            raise _invalid(f"Fargate resource requirements VCPU {vcpus} with MEMORY {memory} is not a supported "
                           "combination.")
        container.setdefault("networkConfiguration", {"assignPublicIp": "DISABLED"})
        container.setdefault("fargatePlatformConfiguration", {"platformVersion": "LATEST"})
    else:
        for field in ("networkConfiguration", "fargatePlatformConfiguration"):
            if container.get(field) is not None:
                raise _invalid(f"{field} not applicable for EC2.")
    container_parts.check_container_parts(container, fargate=fargate)
    for field in CONTAINER_LIST_DEFAULTS:
        container.setdefault(field, [])
    return container


def _check_ecs_properties(ecs: dict, platform: str) -> dict:
    fargate = platform == "FARGATE"
    tasks = ecs["taskProperties"]
    if len(tasks) != 1:
        raise _invalid("ecsProperties must contain exactly one taskProperties entry.")
    containers = tasks[0]["containers"]
    if not containers:
        raise _invalid("taskProperties must contain at least one container.")
    names = [c.get("name") for c in containers]
    if len(containers) > 1 and (None in names or len(set(names)) != len(names)):
        raise _invalid("Each container of a multi-container job must have a unique name.")
    if len(containers) > MAX_TASK_CONTAINERS:
        raise _invalid(f"taskProperties can contain at most {MAX_TASK_CONTAINERS} containers.")
    essential = {c.get("name") for c in containers if c.get("essential", True)}
    for index, container in enumerate(containers):
        check_resource_requirements(container.get("resourceRequirements"), fargate=fargate)
        check_environment(container.get("environment") or [], f"ecsProperties.taskProperties[0].containers[{index}]")
        for dependency in container.get("dependsOn") or []:
            _check_task_dependency(dependency, container, names, essential)
    if not essential:
        raise _invalid("At least one container must be essential.")
    if fargate:
        _check_fargate_task(containers)
    container_parts.check_task(tasks[0], platform)
    return copy.deepcopy(ecs)


def _check_fargate_task(containers: list[dict]) -> None:
    """A Fargate task asks for one of Fargate's VCPU and MEMORY combinations in all (its containers' sum)."""
    vcpus = sum((requested_resources(c, fargate=True)[0] or Decimal(0) for c in containers), Decimal(0))
    memory = sum(requested_resources(c, fargate=True)[1] or 0 for c in containers)
    if memory not in FARGATE_MEMORY.get(vcpus, set()):
        raise _invalid(f"Fargate resource requirements VCPU {vcpus} with MEMORY {memory} is not a supported "
                       "combination.")
    for container in containers:
        if container.get("privileged"):
            raise _invalid("privileged is not applicable for Fargate.")
        for field in FARGATE_UNSUPPORTED_LINUX:
            if (container.get("linuxParameters") or {}).get(field) is not None:
                raise _invalid(f"linuxParameters.{field} is not applicable for Fargate.")


def _check_task_dependency(dependency: dict, container: dict, names: list, essential: set) -> None:
    target, condition = dependency.get("containerName"), dependency.get("condition")
    if target not in names or target == container.get("name"):
        raise _invalid(f"Container {container.get('name')} depends on container {target}, which is not another "
                       "container of the task.")
    if condition not in TASK_DEPENDENCY_CONDITIONS:
        raise _invalid(f"dependsOn condition {condition} is not valid; valid conditions are "
                       f"{', '.join(TASK_DEPENDENCY_CONDITIONS)}.")
    if condition in ("COMPLETE", "SUCCESS") and target in essential:
        raise _invalid(f"The {condition} condition can't be set on an essential container: {target}.")


def _check_eks_properties(eks: dict) -> dict:
    pod = eks.get("podProperties") or {}
    if not pod.get("containers"):
        raise _invalid("eksProperties.podProperties.containers must contain at least one container.")
    for kind in ("containers", "initContainers"):
        containers = pod.get(kind) or []
        if len(containers) > MAX_TASK_CONTAINERS:
            raise _invalid(f"podProperties.{kind} can contain at most {MAX_TASK_CONTAINERS} containers.")
        for index, container in enumerate(containers):
            where = f"eksProperties.podProperties.{kind}[{index}]"
            check_environment(container.get("env") or [], where, "env")
            eks_resources.check(container.get("resources"), f"{where}.resources")
    container_parts.check_eks_pod(pod)
    names = [c.get("name") or "Default" for kind in ("initContainers", "containers") for c in pod.get(kind) or []]
    if len(set(names)) != len(names):
        raise _invalid("Each container of a pod must have a unique name.")
    return copy.deepcopy(eks)


def _check_node_properties(nodes: dict) -> dict:
    num_nodes, main_node = nodes["numNodes"], nodes["mainNode"]
    if not 1 <= num_nodes <= MAX_NODES:
        raise _invalid(f"numNodes must be between 1 and {MAX_NODES}.")
    if not 0 <= main_node < num_nodes:
        raise _invalid("mainNode must be less than numNodes.")
    ranges = nodes["nodeRangeProperties"]
    if not ranges:
        raise _invalid("nodeRangeProperties must contain at least one node range.")
    nodes = copy.deepcopy(nodes)
    covered: set[int] = set()
    for node_range in nodes["nodeRangeProperties"]:
        low, high = node_bounds(node_range["targetNodes"], num_nodes)
        covered.update(range(low, high + 1))
        given = [k for k in ("container", "ecsProperties", "eksProperties") if node_range.get(k) is not None]
        if len(given) != 1:
            raise _invalid("Each node range must specify exactly one of container, ecsProperties or eksProperties.")
        if given[0] == "container":
            node_range["container"] = _check_container(node_range["container"], fargate=False)
        elif given[0] == "ecsProperties":
            node_range["ecsProperties"] = _check_ecs_properties(node_range["ecsProperties"], "EC2")
        else:
            # AWS's NodeProperties reference: "Node properties can't be specified for Amazon EKS based job
            # definitions" (its NodeRangeProperty has eksProperties all the same; the refusal is the safer reading).
            raise _invalid("Node properties can't be specified for Amazon EKS based job definitions "
                           "(eksProperties in a node range).")
        if node_range.get("consumableResourceProperties"):
            raise _invalid("consumableResourceProperties is not supported in node ranges yet.")
    _check_node_instance_types(nodes["nodeRangeProperties"])
    if covered != set(range(num_nodes)):
        missing = min(set(range(num_nodes)) - covered)
        raise _invalid(f"Node ranges must account for all nodes 0:{num_nodes - 1}; node {missing} is not covered.")
    return nodes


def _check_node_instance_types(ranges: list[dict]) -> None:
    """NodeRangeProperty.instanceTypes holds one type for now; all node groups use the same instanceType."""
    for node_range in ranges:
        if len(node_range.get("instanceTypes") or []) > 1:
            raise _invalid(f"instanceTypes of node range {node_range['targetNodes']} is limited to one element.")
    types = {(r.get("container") or {}).get("instanceType") for r in ranges} - {None}
    if len(types) > 1:
        raise _invalid("All node groups in a multi-node parallel job must use the same instance type.")


def _check_platform(request: dict) -> str:
    platforms = request.get("platformCapabilities") or []
    if len(platforms) > 1 or any(p not in PLATFORMS for p in platforms):
        raise _invalid("platformCapabilities must be one of EC2, FARGATE or MANAGED_INSTANCES.")
    return platforms[0] if platforms else "EC2"


def _check_consumables(tx: Tx, ctx: Context, properties: dict) -> dict:
    consumable_resources.held_quantities(tx, ctx, properties)
    return copy.deepcopy(properties)


def _build(tx: Tx, ctx: Context, request: dict) -> dict:
    """The stored document of a new revision, without name, ARN and revision."""
    kind = request["type"]
    platform = _check_platform(request)
    fargate = platform == "FARGATE"
    container, ecs, eks = (request.get(k) for k in ("containerProperties", "ecsProperties", "eksProperties"))
    nodes = request.get("nodeProperties")
    doc: dict = {"status": "ACTIVE", "type": kind, "parameters": dict(request.get("parameters") or {}),
                 "containerOrchestrationType": "EKS" if eks is not None else "ECS"}
    if kind == "container":
        given = [v for v in (container, ecs, eks) if v is not None]
        if len(given) != 1:
            raise _invalid("Exactly one of containerProperties, ecsProperties or eksProperties must be specified "
                           "for container type job definitions.")
        if nodes is not None:
            raise _invalid("nodeProperties can't be specified for container type job definitions.")
    else:
        if nodes is None:
            raise _invalid("nodeProperties must be specified for multinode type job definitions.")
        if any(v is not None for v in (container, ecs, eks)):
            raise _invalid("containerProperties, ecsProperties and eksProperties can't be specified for multinode "
                           "type job definitions; use nodeProperties.nodeRangeProperties.")
        if fargate:
            raise _invalid("multinode type job definitions are not supported on Fargate.")
    if eks is not None:
        if request.get("platformCapabilities"):
            raise _invalid("platformCapabilities can't be specified for EKS job definitions.")
        if request.get("propagateTags") is not None:
            raise _invalid("propagateTags can't be specified for EKS job definitions.")
        doc["eksProperties"] = _check_eks_properties(eks)
    if platform == "MANAGED_INSTANCES" and (container is not None or nodes is not None):
        raise _invalid("MANAGED_INSTANCES job definitions must use ecsProperties.")
    if container is not None:
        doc["containerProperties"] = _check_container(container, fargate=fargate)
    if ecs is not None:
        doc["ecsProperties"] = _check_ecs_properties(ecs, platform)
    if nodes is not None:
        doc["nodeProperties"] = _check_node_properties(nodes)
    if request.get("retryStrategy") is not None:
        doc["retryStrategy"] = check_retry_strategy(request["retryStrategy"])
    timeout = request.get("timeout")
    if timeout is not None:
        seconds = timeout.get("attemptDurationSeconds")
        if seconds is not None and seconds < 60:
            raise _invalid("The minimum value for the timeout is 60 seconds.")
        doc["timeout"] = dict(timeout)
    priority = request.get("schedulingPriority")
    if priority is not None:
        if not 0 <= priority <= 9999:
            raise _invalid("schedulingPriority must be between 0 and 9999.")
        doc["schedulingPriority"] = priority
    if request.get("consumableResourceProperties") is not None:
        doc["consumableResourceProperties"] = _check_consumables(tx, ctx, request["consumableResourceProperties"])
    if request.get("platformCapabilities"):
        doc["platformCapabilities"] = [platform]
    if request.get("propagateTags") is not None:
        doc["propagateTags"] = request["propagateTags"]
    tags = validate_tags(request.get("tags"))
    if tags:
        doc["tags"] = tags
    return doc


# -- operations ------------------------------------------------------------------------------------------

def register_job_definition(ctx: Context, request: dict) -> dict:
    name = request["jobDefinitionName"]
    if not NAME_PATTERN.fullmatch(name):
        raise ClientException(f"Provided name {name} is not supported pattern[a-zA-Z_0-9-]{{1,128}}")
    with ctx.store.transaction() as tx:
        doc = _build(tx, ctx, request)
        host_access.check(doc, ctx.config)
        revision = tx.counters.next_value(f"job-definition-revision:{name}")
        arn = ctx.arn(f"{KIND}/{name}:{revision}")
        doc = {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision, **doc}
        tx.resources.put(KIND, arn, name, doc)
    return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision}


def _scan(tx: Tx, after_seq: int):
    """(seq, doc) of every job definition after `after_seq`, in registration order, read in chunks."""
    while True:
        chunk = tx.resources.of_kind(KIND, after_seq, 200)
        yield from chunk
        if len(chunk) < 200:
            return
        after_seq = chunk[-1][0]


def describe_job_definitions(ctx: Context, request: dict) -> dict:
    status = request.get("status")
    refs = request.get("jobDefinitions")
    size = page_size(request.get("maxResults"), default=100, limit=100)
    after = decode_token(request.get("nextToken"))
    with ctx.store.transaction() as tx:
        if refs:
            if len(refs) > 100:
                raise ClientException("jobDefinitions can contain at most 100 entries")
            found: dict[str, dict] = {}
            for ref in refs:
                name, revision = _split_reference(ctx, ref) or (None, None)
                # Entries name job definitions by name:revision or ARN; a bare name matches nothing.
                if name is None or revision is None:
                    continue
                doc = _revision(tx, ctx, name, revision)
                if doc is not None and (status is None or doc["status"] == status):
                    found[doc["jobDefinitionArn"]] = doc
            return {"jobDefinitions": list(found.values())}
        name = request.get("jobDefinitionName")
        if name is not None:
            # One name's revisions page by revision number, which grows with registration order.
            docs = sorted(tx.resources.find(KIND, name), key=lambda d: d["revision"])
            rows = [(d["revision"], d) for d in docs
                    if d["revision"] > after and (status is None or d["status"] == status)]
        else:
            rows = [(seq, d) for seq, d in _scan(tx, after) if status is None or d["status"] == status]
    page = rows[:size]
    result: dict = {"jobDefinitions": [doc for _, doc in page]}
    if len(rows) > size:
        result["nextToken"] = encode_token(page[-1][0])
    return result


def deregister_job_definition(ctx: Context, request: dict) -> dict:
    ref = request["jobDefinition"]
    name, revision = _split_reference(ctx, ref) or (None, None)
    if name is not None and revision is None:
        raise ClientException(f"A revision is required to deregister a job definition; specify {ref}:<revision> "
                              "or the job definition ARN")
    with ctx.store.transaction() as tx:
        doc = _revision(tx, ctx, name, revision) if name is not None and revision is not None else None
        if doc is None:
            raise ClientException(f"Job definition {ref} does not exist")
        if doc["status"] != "INACTIVE":
            doc["status"] = "INACTIVE"
            tx.resources.put(KIND, doc["jobDefinitionArn"], doc["jobDefinitionName"], doc)
    return {}


OPERATIONS = {
    "RegisterJobDefinition": register_job_definition,
    "DescribeJobDefinitions": describe_job_definitions,
    "DeregisterJobDefinition": deregister_job_definition,
}
