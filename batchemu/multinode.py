"""Multi-node parallel jobs: a parent placed as one (all-or-nothing capacity) and node children `<id>#<i>`.

The parent is an ordinary row in its queue: RUNNABLE until a compute environment has room for every node
at once, then STARTING, RUNNING and SUCCEEDED or FAILED with its main node. Its attempts are the main
node's; it holds every node's vCPUs while on a host, its nodes hold none of their own. Node children are
plain rows (parent_id) with documents of their own, made when the parent's attempt needs them: the main
node when the parent is placed, the others once the main node is RUNNING. On a host a node is a job like
any other (batchemu.scheduler.on_host starts, watches and ends its one-container task); `progress` here
does what belongs to the job as a whole: the parent's status, stopping the other nodes when the main node
has exited or the job timed out or was terminated, and the parent's attempt once every node has stopped.
A node never retries; a parent whose main node failed does, by its retryStrategy.
"""

from __future__ import annotations

import copy

from batchemu import attempts
from batchemu import job_states as states
from batchemu.config import Config
from batchemu.errors import ClientException, NotBuiltError
from batchemu.scheduler import usage
from batchemu.service import job_definitions
from batchemu.service.job_container import gpus_of, memory_mib_of, resolve_container, vcpus_of
from batchemu.store import Tx

# What the other nodes of a job are stopped with when its main node has exited (our words: AWS's are
# not documented).
MAIN_NODE_EXITED = "Main node exited"
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
    for override in overrides.get("nodePropertyOverrides") or []:
        node_range = targets.get(override["targetNodes"])
        if node_range is None:
            raise ClientException("NodeOverride targets should match job definition. Non matching targets - "
                                  f"{override['targetNodes']}")
        if override.get("ecsPropertiesOverride") or override.get("eksPropertiesOverride"):
            raise NotBuiltError("SubmitJob with ecsPropertiesOverride or eksPropertiesOverride in nodeOverrides")
        if node_range.get("container") is None:
            raise NotBuiltError("SubmitJob of a multinode job definition with ecsProperties node ranges")
        node_range["container"] = resolve_container(node_range["container"],
                                                    override.get("containerOverrides") or {}, {})
    for node_range in nodes["nodeRangeProperties"]:
        if node_range.get("container") is None:
            raise NotBuiltError("SubmitJob of a multinode job definition with ecsProperties node ranges")
        node_range["container"] = resolve_container(node_range["container"], {}, parameters)
    for index in range(nodes["numNodes"]):
        range_of(nodes, index)
    return nodes


def totals(nodes: dict) -> dict:
    """What the job holds while on a host: the sum over its nodes (capacity is all-or-nothing)."""
    containers = [range_of(nodes, i)["container"] for i in range(nodes["numNodes"])]
    memory = [memory_mib_of(c) for c in containers]
    return {"vcpus": sum(vcpus_of(c) for c in containers), "gpus": sum(gpus_of(c) for c in containers),
            "memoryMib": sum(m for m in memory if m) or None}


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


def started(tx: Tx, node: dict, address: str | None) -> None:
    """Record the address a node's task has on the job's network; the main node's is the parent's."""
    if not address:
        return
    node["container"]["networkInterfaces"] = [{"privateIpv4Address": address}]
    tx.update_job(node)
    info = states.internal(node)
    parent = tx.get_job(info["parentId"])
    if parent is not None and info["nodeIndex"] == parent["nodeProperties"]["mainNode"]:
        states.internal(parent)["mainNodeAddress"] = address
        tx.update_job(parent)


def _node_doc(parent: dict, index: int, now: int) -> dict:
    nodes = parent["nodeProperties"]
    container = copy.deepcopy(range_of(nodes, index)["container"])
    parent_info = states.internal(parent)
    doc = {key: copy.deepcopy(parent[key]) for key in _NODE_INHERITS if key in parent}
    doc.update(jobId=node_id(parent["jobId"], index), jobArn=f"{parent['jobArn']}#{index}", status=states.RUNNABLE,
               createdAt=now, container=container, attempts=[], dependsOn=[], isCancelled=False,
               isTerminated=False, nodeDetails={"nodeIndex": index, "isMainNode": index == nodes["mainNode"]})
    doc["batchemu"] = {"transitions": [[states.RUNNABLE, now]], "parentId": parent["jobId"], "nodeIndex": index,
                       "numNodes": nodes["numNodes"],
                       "vcpus": vcpus_of(container), "memoryMib": memory_mib_of(container),
                       "gpus": gpus_of(container), "platform": parent_info.get("platform", "EC2"),
                       "definitionName": parent_info.get("definitionName"), "attempt": 0}
    return doc


def _begin_node(tx: Tx, config: Config, parent: dict, compute_environment: dict, index: int, now: int) -> str:
    """A node's attempt for the parent's current one: its document made, or reset if an earlier attempt
    ran it (a node of a retried job starts over), then STARTING with a PLACED attempt."""
    info = states.internal(parent)
    node = tx.get_job(node_id(parent["jobId"], index))
    fresh = node is None
    if fresh:
        node = _node_doc(parent, index, now)
    else:
        node.update(status=states.RUNNABLE, isTerminated=False)
        for key in ("statusReason", "startedAt", "stoppedAt"):
            node.pop(key, None)
        node["container"].pop("networkInterfaces", None)
        states.internal(node).pop("terminateReason", None)
        states.internal(node)["transitions"].append([states.RUNNABLE, now])
    states.internal(node)["attempt"] = info["attempt"] - 1
    states.internal(node)["jobQueueName"] = info.get("jobQueueName", "")
    attempts.begin_attempt(node, config, compute_environment, now)
    if fresh:
        tx.insert_job(node)
    else:
        tx.update_job(node)
    tx.insert_attempt(node["jobId"], info["attempt"], compute_environment["computeEnvironmentArn"], now)
    tx.ensure_log_stream(states.internal(node)["logGroup"], node["container"]["logStreamName"], now)
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
    nodes = {states.internal(doc)["nodeIndex"]: doc
             for _, doc in tx.query_jobs({"parent_id": parent["jobId"]})
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
    return to_start


def _finish(parent: dict, main: dict, now: int) -> None:
    """The parent's attempt ends as its main node's did."""
    info = states.internal(parent)
    container = main.get("container") or {}
    last = (main.get("attempts") or [{}])[-1]
    attempts.finish_attempt(parent, now, exit_code=container.get("exitCode"), reason=container.get("reason"),
                            status_reason=main.get("statusReason") or last.get("statusReason") or "",
                            timed_out=bool(info.get("timedOut")),
                            attempt_container={key: container.get(key) for key in
                                               ("containerInstanceArn", "taskArn", "logStreamName")})
