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
with it. What the definition's node ranges say (and SubmitJob's nodeOverrides) is batchemu.model.node_ranges.
"""

from __future__ import annotations

import copy

from batchemu.config import Config
from batchemu.model import attempts, states, task_definitions
from batchemu.model.node_ranges import range_of, reservation
from batchemu.store import Tx

# What the other nodes of a job are stopped with when its main node has exited (our words: AWS's are
# not documented).
MAIN_NODE_EXITED = "Main node exited"
# What a node takes from its parent's document (the rest is its own).
_NODE_INHERITS = ("jobName", "jobQueue", "jobDefinition", "parameters", "tags", "propagateTags",
                  "platformCapabilities")


def node_id(parent_id: str, index: int) -> str:
    return f"{parent_id}#{index}"


def is_parent(job: dict) -> bool:
    return bool(job.get("nodeProperties"))


def network_of(parent_id: str, attempt: int) -> str:
    """The task network the nodes of one attempt share."""
    return f"{parent_id}-{attempt}"


def node_environment(tx: Tx, node: dict) -> tuple[str, dict[str, str]]:
    """(task network, AWS_BATCH_JOB_* variables) of a node's current attempt."""
    info = states.internal(node)
    parent = tx.jobs.get(info["parentId"]) or {}
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
    tx.jobs.update(node)
    info = states.internal(node)
    parent = tx.jobs.get(info["parentId"])
    if parent is not None and info["nodeIndex"] == parent["nodeProperties"]["mainNode"]:
        states.internal(parent)["mainNodeAddress"] = address
        tx.jobs.update(parent)


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
        tx.jobs.insert(_node_doc(parent, index, now, parent["status"]))


def _walk(node: dict, status: str, now: int) -> None:
    """Move a queued node forward through SUBMITTED, PENDING and RUNNABLE up to `status`."""
    for step in states.QUEUED[states.QUEUED.index(node["status"]) + 1:states.QUEUED.index(status) + 1]:
        states.transition(node, step, now)


def follow_parents(tx: Tx, now: int) -> None:
    """Queued nodes take their parent's queued status and reason, or end FAILED as their parent did
    (cancelled, terminated, a dependency failed, a time limit of the queue). A parent on a host has its
    nodes RUNNABLE until each begins."""
    parents: dict[str, dict | None] = {}
    for _, node in tx.jobs.query({}, statuses=list(states.QUEUED), nodes=True):
        parent_id = states.internal(node)["parentId"]
        if parent_id not in parents:
            parents[parent_id] = tx.jobs.get(parent_id)
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
            tx.jobs.update(node)


def _requeue(node: dict, now: int) -> None:
    """A node of an earlier attempt back to RUNNABLE, for the parent's next one (it starts over)."""
    if node["status"] == states.RUNNABLE:
        return
    states.transition(node, states.RUNNABLE, now, table=states.NODE_TRANSITIONS)
    node["isTerminated"] = False
    for key in ("statusReason", "startedAt", "stoppedAt"):
        node.pop(key, None)
    _addressed(node).pop("networkInterfaces", None)
    states.internal(node).pop("terminateReason", None)


def _begin_node(tx: Tx, config: Config, parent: dict, compute_environment: dict, index: int, now: int) -> str:
    """A node's attempt for the parent's current one: RUNNABLE, then STARTING with a PLACED attempt."""
    info = states.internal(parent)
    node = tx.jobs.require(node_id(parent["jobId"], index))  # created with its parent (create_nodes)
    if node["status"] in states.QUEUED:
        _walk(node, states.RUNNABLE, now)
    else:
        _requeue(node, now)
    states.internal(node)["attempt"] = info["attempt"] - 1
    states.internal(node)["jobQueueName"] = info.get("jobQueueName", "")
    attempts.begin_attempt(node, config, compute_environment, now)
    tx.jobs.update(node)
    tx.attempts.insert(node["jobId"], info["attempt"], compute_environment["computeEnvironmentArn"], now)
    for group, stream in attempts.log_streams(node):
        tx.logs.ensure_stream(group, stream, now)
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


def progress(tx: Tx, config: Config, now: int) -> tuple[list[dict], list[str]]:
    """One step of every multi-node parent on a host: (the parents whose attempt ended, node ids to start)."""
    ended, to_start = [], []
    for _, parent in tx.jobs.query({"array_size": None, "parent_id": None}, statuses=list(states.ON_HOST)):
        if not is_parent(parent):
            continue
        before = (parent["status"], repr(states.internal(parent)))
        to_start += _step(tx, config, parent, now)
        if parent["status"] not in states.ON_HOST:
            ended.append(parent)
        if (parent["status"], repr(states.internal(parent))) != before:
            tx.jobs.update(parent)
    return ended, to_start


def _step(tx: Tx, config: Config, parent: dict, now: int) -> list[str]:
    info = states.internal(parent)
    attempt, main_index = info["attempt"], parent["nodeProperties"]["mainNode"]
    children = [doc for _, doc in tx.jobs.query({"parent_id": parent["jobId"]})]
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
                tx.jobs.update(node)
        for node in children:
            if node["status"] in states.QUEUED:  # never started in this attempt: ends as the stopped ones do
                states.transition(node, states.FAILED, now, stop_reason)
                tx.jobs.update(node)
    to_start = []
    if parent["status"] == states.STARTING and main is not None and (main["status"] == states.RUNNING or
                                                                      (main_done and main.get("startedAt"))):
        states.transition(parent, states.RUNNING, now)
        parent["startedAt"] = main.get("startedAt") or now
        if not stop_reason:
            ce = tx.resources.get("compute-environment", info["computeEnvironment"])
            if ce is not None:
                to_start = [_begin_node(tx, config, parent, ce, index, now)
                            for index in range(parent["nodeProperties"]["numNodes"]) if index != main_index]
    if main is not None and main_done and not any(node["status"] in states.ON_HOST for node in nodes.values()):
        _finish(parent, main, now)
        if parent["status"] == states.RUNNABLE:  # retried: every node starts over with the next attempt
            for node in children:
                _requeue(node, now)
                tx.jobs.update(node)
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
