"""Multi-node parallel jobs: a parent placed as one (all-or-nothing capacity) and node children `<id>#<i>`.

The parent is an ordinary row in its queue: RUNNABLE until a compute environment has room for every node
at once, then STARTING, RUNNING and SUCCEEDED or FAILED with its main node. Its attempts are the main
node's; it holds every node's vCPUs while on a host, its nodes hold none of their own. Node children are
plain rows (parent_id) with documents of their own, made with the parent at SubmitJob (clients describe
every node from the start: Metaflow polls each `<id>#<i>` until it is found). While the parent is queued
its nodes follow it (`follow_parents`: SUBMITTED, PENDING, RUNNABLE, or FAILED as it did); placement and
dependencies never look at them. The main node begins when the parent is placed, the others once the main
node is RUNNING. On a host a node is a job like any other (batchemu.scheduler.on_host starts, watches and
ends its task: one container, or those of its range's ecsProperties, decided by the essential ones);
`progress` here does what belongs to the job as a whole: the parent's status, stopping the other nodes
when the main node has exited or the job timed out or was terminated (a node that never started ends
FAILED with the same reason), and the parent's attempt once every node has stopped. A node never
retries; a parent whose main node failed does, by its retryStrategy, and its nodes go back to RUNNABLE
with it.
"""

from __future__ import annotations

import copy

from batchemu.config import Config
from batchemu.errors import ClientException
from batchemu.model import attempts, states, task_definitions
from batchemu.model.containers import gpus_of, memory_mib_of, resolve_container, vcpus_of
from batchemu.scheduler import usage
from batchemu.service import job_definitions
from batchemu.store import Tx

# What the other nodes of a job are stopped with when its main node has exited (our words: AWS's are
# not documented).
MAIN_NODE_EXITED = "Main node exited"
# Why eksProperties node ranges are refused: AWS's NodeProperties reference says so, though its
# NodeRangeProperty has an eksProperties member.
EKS_NODES_REFUSED = "Node properties can't be specified for Amazon EKS based job definitions."
# What a node takes from its parent's document (the rest is its own).
_NODE_INHERITS = ("jobName", "jobQueue", "jobDefinition", "parameters", "tags", "propagateTags",
                  "platformCapabilities")


def node_id(parent_id: str, index: int) -> str:
    return f"{parent_id}#{index}"


def _open_ended(target: str) -> bool:
    """Whether a targetNodes range runs to the last node (`:` or `n:`)."""
    return target.endswith(":")


def range_of(node_properties: dict, index: int) -> dict:
    """The node range that describes node `index`: the narrowest one that holds it (inner ranges win)."""
    best, best_span = None, None
    for node_range in node_properties["nodeRangeProperties"]:
        low, high = job_definitions.node_bounds(node_range["targetNodes"], node_properties["numNodes"])
        if low <= index <= high and (best_span is None or high - low <= best_span):
            best, best_span = node_range, high - low
    if best is None:
        raise ClientException(f"Node ranges must account for all nodes 0:{node_properties['numNodes'] - 1}; "
                              f"node {index} is not covered.")
    return best


def resolve(definition_nodes: dict, overrides: dict | None, parameters: dict[str, str]) -> dict:
    """The job's nodeProperties: the definition's, with nodeOverrides applied (numNodes on an open-ended
    range; containerOverrides per range) and each range's container resolved. ClientException as AWS."""
    nodes = copy.deepcopy(definition_nodes)
    overrides = overrides or {}
    defined = nodes["numNodes"]
    num_nodes = overrides.get("numNodes")
    if num_nodes is not None:
        open_ranges = [r for r in nodes["nodeRangeProperties"] if _open_ended(r["targetNodes"])]
        if not open_ranges:
            raise ClientException("numNodes can only be overridden when a node range of the job definition "
                                  "is open-ended (such as ':' or 'n:').")
        if not 1 <= num_nodes <= job_definitions.MAX_NODES:
            raise ClientException(f"numNodes must be between 1 and {job_definitions.MAX_NODES}, got {num_nodes}.")
        if any(job_definitions.node_bounds(r["targetNodes"], defined)[0] >= num_nodes
                                for r in open_ranges):
            raise ClientException(f"numNodes {num_nodes} must be more than the lower bound of the open-ended "
                                  "node range of the job definition.")
        if nodes["mainNode"] >= num_nodes:
            raise ClientException(f"numNodes {num_nodes} must be more than the mainNode "
                                  f"{nodes['mainNode']} of the job definition.")
        nodes["numNodes"] = num_nodes
        for node_range in nodes["nodeRangeProperties"]:
            job_definitions.node_bounds(node_range["targetNodes"], num_nodes)  # every range within the nodes
    targets = {r["targetNodes"]: r for r in nodes["nodeRangeProperties"]}
    given: dict[str, dict] = {}
    for override in overrides.get("nodePropertyOverrides") or []:
        node_range = targets.get(override["targetNodes"])
        if node_range is None:
            raise ClientException("NodeOverride targets should match job definition. Non matching targets - "
                                  f"{override['targetNodes']}")
        _check_override_kind(node_range, override)
        given[override["targetNodes"]] = override
    for node_range in nodes["nodeRangeProperties"]:
        override = given.get(node_range["targetNodes"]) or {}
        if node_range.get("ecsProperties"):
            node_range["ecsProperties"] = task_definitions.resolve_ecs(node_range["ecsProperties"],
                                                                       override.get("ecsPropertiesOverride"), parameters,
                                                                       fargate=False)
        elif node_range.get("container") is not None:
            node_range["container"] = resolve_container(node_range["container"],
                                                        override.get("containerOverrides") or {}, parameters)
        else:  # eksProperties: refused at RegisterJobDefinition since; a definition stored before is refused here
            raise ClientException(EKS_NODES_REFUSED)
    for index in range(nodes["numNodes"]):
        range_of(nodes, index)
    return nodes


def _check_override_kind(node_range: dict, override: dict) -> None:
    """An override of a node range must be of the range's kind (containerOverrides for a container range,
    ecsPropertiesOverride for an ecsProperties one)."""
    target = override["targetNodes"]
    if override.get("eksPropertiesOverride"):
        raise ClientException(f"nodePropertyOverrides[{target}]: eksPropertiesOverride can't be specified: "
                              + EKS_NODES_REFUSED)
    if override.get("ecsPropertiesOverride") and not node_range.get("ecsProperties"):
        raise ClientException(f"nodePropertyOverrides[{target}]: ecsPropertiesOverride can only override a node "
                              "range of ecsProperties; this range has container properties (use containerOverrides).")
    if override.get("containerOverrides") and node_range.get("ecsProperties"):
        raise ClientException(f"nodePropertyOverrides[{target}]: containerOverrides can't override a node range of "
                              "ecsProperties; use ecsPropertiesOverride.")


def reservation(node_range: dict) -> tuple[float, int | None, int]:
    """(vCPUs, memory MiB or None, GPUs) one node of a range reserves."""
    if node_range.get("ecsProperties"):
        return task_definitions.reservation({"ecsProperties": node_range["ecsProperties"]})
    container = node_range["container"]
    return vcpus_of(container), memory_mib_of(container), gpus_of(container)


def totals(nodes: dict) -> dict:
    """What the job holds while on a host: the sum over its nodes (capacity is all-or-nothing)."""
    held = [reservation(range_of(nodes, i)) for i in range(nodes["numNodes"])]
    return {"vcpus": sum(v for v, _, _ in held), "gpus": sum(g for _, _, g in held),
            "memoryMib": sum(m for _, m, _ in held if m) or None}


def is_parent(job: dict) -> bool:
    return bool(job.get("nodeProperties"))


def network_of(parent_id: str, attempt: int) -> str:
    """The task network the nodes of one attempt share."""
    return f"{parent_id}-{attempt}"


def node_environment(tx: Tx, node: dict) -> tuple[str, dict[str, str]]:
    """(task network, AWS_BATCH_JOB_* variables) of a node's current attempt."""
    info = states.internal(node)
    parent = tx.get_job(info["parentId"]) or {}
    nodes = parent.get("nodeProperties") or {}
    environment = {"AWS_BATCH_JOB_NODE_INDEX": str(info["nodeIndex"]),
                   "AWS_BATCH_JOB_NUM_NODES": str(nodes.get("numNodes", "")),
                   "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(nodes.get("mainNode", ""))}
    address = states.internal(parent).get("mainNodeAddress")
    if info["nodeIndex"] != nodes.get("mainNode") and address:
        environment["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = address
    return network_of(info["parentId"], info["attempt"]), environment


def _addressed(node: dict) -> dict:
    """The container whose address is the node's: its only one, or (ecsProperties) its first essential one."""
    if task_definitions.kind_of(node) == task_definitions.ECS:
        containers = task_definitions.ecs_containers(node)
        return next((c for c in containers if c.get("essential", True)), containers[0])
    return node["container"]


def started(tx: Tx, node: dict, address: str | None) -> None:
    """Record the address a node's task has on the job's network; the main node's is the parent's."""
    if not address:
        return
    _addressed(node)["networkInterfaces"] = [{"privateIpv4Address": address}]
    tx.update_job(node)
    info = states.internal(node)
    parent = tx.get_job(info["parentId"])
    if parent is not None and info["nodeIndex"] == parent["nodeProperties"]["mainNode"]:
        states.internal(parent)["mainNodeAddress"] = address
        tx.update_job(parent)


def _node_doc(parent: dict, index: int, now: int, status: str) -> dict:
    nodes = parent["nodeProperties"]
    node_range = range_of(nodes, index)
    runs = ({"ecsProperties": copy.deepcopy(node_range["ecsProperties"])} if node_range.get("ecsProperties")
            else {"container": copy.deepcopy(node_range["container"])})
    parent_info = states.internal(parent)
    vcpus, memory_mib, gpus = reservation(node_range)
    doc = {key: copy.deepcopy(parent[key]) for key in _NODE_INHERITS if key in parent}
    doc.update(jobId=node_id(parent["jobId"], index), jobArn=f"{parent['jobArn']}#{index}", status=status,
               createdAt=now, **runs, attempts=[], dependsOn=[], isCancelled=False,
               isTerminated=False, nodeDetails={"nodeIndex": index, "isMainNode": index == nodes["mainNode"]})
    doc["batchemu"] = {"transitions": [[status, now]], "parentId": parent["jobId"], "nodeIndex": index,
                       "numNodes": nodes["numNodes"], "vcpus": vcpus, "memoryMib": memory_mib,
                       "gpus": gpus, "platform": parent_info.get("platform", "EC2"),
                       "definitionName": parent_info.get("definitionName"), "attempt": 0}
    return doc


def create_nodes(tx: Tx, parent: dict, now: int) -> None:
    """Every node of a job just submitted, in its parent's status (numNodes after nodeOverrides)."""
    for index in range(parent["nodeProperties"]["numNodes"]):
        tx.insert_job(_node_doc(parent, index, now, parent["status"]))


def _walk(node: dict, status: str, now: int) -> None:
    """Move a queued node forward through SUBMITTED, PENDING and RUNNABLE up to `status`."""
    for step in states.QUEUED[states.QUEUED.index(node["status"]) + 1:states.QUEUED.index(status) + 1]:
        states.transition(node, step, now)


def follow_parents(tx: Tx, now: int) -> None:
    """Queued nodes take their parent's queued status and reason, or end FAILED as their parent did
    (cancelled, terminated, a dependency failed, a time limit of the queue). A parent on a host has its
    nodes RUNNABLE until each begins."""
    parents: dict[str, dict | None] = {}
    for _, node in tx.query_jobs({}, statuses=list(states.QUEUED), nodes=True):
        parent_id = states.internal(node)["parentId"]
        if parent_id not in parents:
            parents[parent_id] = tx.get_job(parent_id)
        parent = parents[parent_id]
        if parent is None:
            continue
        before = (node["status"], node.get("statusReason"))
        if parent["status"] in states.FINISHED:
            states.transition(node, states.FAILED, now, parent.get("statusReason") or "")
            node["isCancelled"], node["isTerminated"] = parent.get("isCancelled"), parent.get("isTerminated")
        elif parent["status"] in states.QUEUED:
            _walk(node, parent["status"], now)
            if parent.get("statusReason"):
                node["statusReason"] = parent["statusReason"]
            else:
                node.pop("statusReason", None)
        else:
            _walk(node, states.RUNNABLE, now)
        if (node["status"], node.get("statusReason")) != before:
            tx.update_job(node)


def _requeue(node: dict, now: int) -> None:
    """A node of an earlier attempt back to RUNNABLE, for the parent's next one (it starts over)."""
    if node["status"] == states.RUNNABLE:
        return
    node.update(status=states.RUNNABLE, isTerminated=False)
    for key in ("statusReason", "startedAt", "stoppedAt"):
        node.pop(key, None)
    _addressed(node).pop("networkInterfaces", None)
    states.internal(node).pop("terminateReason", None)
    states.internal(node)["transitions"].append([states.RUNNABLE, now])


def _begin_node(tx: Tx, config: Config, parent: dict, compute_environment: dict, index: int, now: int) -> str:
    """A node's attempt for the parent's current one: RUNNABLE, then STARTING with a PLACED attempt."""
    info = states.internal(parent)
    node = tx.get_job(node_id(parent["jobId"], index))
    if node["status"] in states.QUEUED:
        _walk(node, states.RUNNABLE, now)
    else:
        _requeue(node, now)
    states.internal(node)["attempt"] = info["attempt"] - 1
    states.internal(node)["jobQueueName"] = info.get("jobQueueName", "")
    attempts.begin_attempt(node, config, compute_environment, now)
    tx.update_job(node)
    tx.insert_attempt(node["jobId"], info["attempt"], compute_environment["computeEnvironmentArn"], now)
    for group, stream in attempts.log_streams(node):
        tx.ensure_log_stream(group, stream, now)
    return node["jobId"]


def begin(tx: Tx, config: Config, parent: dict, compute_environment: dict, now: int) -> list[str]:
    """RUNNABLE -> STARTING of a placed parent, with its main node; the node ids to start."""
    info = states.internal(parent)
    info["attempt"] = info.get("attempt", 0) + 1
    info["computeEnvironment"] = compute_environment["computeEnvironmentArn"]
    info["computeEnvironmentName"] = compute_environment["computeEnvironmentName"]
    for key in ("mainNodeAddress", "timedOut", "stopReason"):
        info.pop(key, None)
    states.transition(parent, states.STARTING, now)
    return [_begin_node(tx, config, parent, compute_environment, parent["nodeProperties"]["mainNode"], now)]


def progress(tx: Tx, ctx, now: int) -> tuple[bool, list[str]]:
    """One step of every multi-node parent on a host: (whether one ended, node ids to start)."""
    ended, to_start = False, []
    for _, parent in tx.query_jobs({"array_size": None, "parent_id": None}, statuses=list(states.ON_HOST)):
        if not is_parent(parent):
            continue
        before = (parent["status"], repr(states.internal(parent)))
        to_start += _step(tx, ctx, parent, now)
        if parent["status"] not in states.ON_HOST:
            usage.attempt_ended(tx, ctx, parent, now)
            ended = True
        if (parent["status"], repr(states.internal(parent))) != before:
            tx.update_job(parent)
    return ended, to_start


def _step(tx: Tx, ctx, parent: dict, now: int) -> list[str]:
    info = states.internal(parent)
    attempt, main_index = info["attempt"], parent["nodeProperties"]["mainNode"]
    children = [doc for _, doc in tx.query_jobs({"parent_id": parent["jobId"]})]
    nodes = {states.internal(doc)["nodeIndex"]: doc for doc in children
             if states.internal(doc).get("attempt") == attempt}
    main = nodes.get(main_index)
    main_done = main is not None and main["status"] in states.FINISHED
    timeout = (parent.get("timeout") or {}).get("attemptDurationSeconds")
    if (parent["status"] == states.RUNNING and timeout and not info.get("timedOut")
            and now - parent.get("startedAt", now) >= timeout * 1000):
        info["timedOut"] = True
    stop_reason = (info.get("terminateReason") or (attempts.TIMEOUT_REASON if info.get("timedOut") else None)
                   or (MAIN_NODE_EXITED if main_done else None))
    if stop_reason:
        for node in nodes.values():
            if node["status"] in states.ON_HOST and not states.internal(node).get("terminateReason"):
                states.internal(node)["terminateReason"] = stop_reason
                tx.update_job(node)
        for node in children:
            if node["status"] in states.QUEUED:  # never started in this attempt: ends as the stopped ones do
                states.transition(node, states.FAILED, now, stop_reason)
                tx.update_job(node)
    to_start = []
    if parent["status"] == states.STARTING and main is not None and (main["status"] == states.RUNNING or
                                                                      (main_done and main.get("startedAt"))):
        states.transition(parent, states.RUNNING, now)
        parent["startedAt"] = main.get("startedAt") or now
        if not stop_reason:
            ce = tx.get_resource("compute-environment", info["computeEnvironment"])
            if ce is not None:
                to_start = [_begin_node(tx, ctx.config, parent, ce, index, now)
                            for index in range(parent["nodeProperties"]["numNodes"]) if index != main_index]
    if main_done and not any(node["status"] in states.ON_HOST for node in nodes.values()):
        _finish(parent, main, now)
        if parent["status"] == states.RUNNABLE:  # retried: every node starts over with the next attempt
            for node in children:
                _requeue(node, now)
                tx.update_job(node)
    return to_start


def _finish(parent: dict, main: dict, now: int) -> None:
    """The parent's attempt ends as its main node's did."""
    info = states.internal(parent)
    last = (main.get("attempts") or [{}])[-1]
    if task_definitions.kind_of(main) == task_definitions.ECS:
        exit_code, reason = states.internal(main).get("taskExit") or (None, None)
        task = main["ecsProperties"]["taskProperties"][0]
        attempt_container = {"containerInstanceArn": task.get("containerInstanceArn"), "taskArn": task.get("taskArn"),
                             "logStreamName": _addressed(main).get("logStreamName")}
    else:
        container = main.get("container") or {}
        exit_code, reason = container.get("exitCode"), container.get("reason")
        attempt_container = {key: container.get(key) for key in ("containerInstanceArn", "taskArn", "logStreamName")}
    attempts.finish_attempt(parent, now, exit_code=exit_code, reason=reason,
                            status_reason=main.get("statusReason") or last.get("statusReason") or "",
                            timed_out=bool(info.get("timedOut")), attempt_container=attempt_container)
