"""Multi-node parallel jobs end to end: boto3 against a real server, every node a real container."""

from __future__ import annotations

import docker
import pytest
from conftest import (
    TEST_IMAGE,
    client_error,
    describe,
    make_queue,
    needs_docker,
    register,
    submit,
    unique,
    wait_for_status,
    wait_until,
)
from test_jobs import log_lines
from test_scheduling import wait_with_clock_ahead

pytestmark = pytest.mark.docker
ENV = 'echo "index=$AWS_BATCH_JOB_NODE_INDEX num=$AWS_BATCH_JOB_NUM_NODES main=$AWS_BATCH_JOB_MAIN_NODE_INDEX ' \
      'addr=${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-none} id=$AWS_BATCH_JOB_ID"'
# The main node serves one line to each of the two other nodes, which find it by its address. A node tries
# until the line reaches it: both may connect while the first listener is up, and the one it does not
# accept is reset without a line (taking that as done would leave the main node waiting for ever).
MAIN = ENV + "; for i in 1 2; do echo hello-$i | nc -l -p 7000; done"
WORKER = ENV + '; until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 </dev/null 2>/dev/null | grep hello; ' \
               'do sleep 0.2; done'


def container(command: str, vcpus: str = "1", **extra) -> dict:
    return {"image": TEST_IMAGE, "command": ["sh", "-c", command],
            "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": "64"}], **extra}


def register_mnp(batch_client, ranges: list[tuple[str, dict]], num_nodes: int, main_node: int = 0, **extra) -> dict:
    return batch_client.register_job_definition(
        jobDefinitionName=unique("mnp"), type="multinode", nodeProperties={
            "numNodes": num_nodes, "mainNode": main_node,
            "nodeRangeProperties": [{"targetNodes": target, "container": c} for target, c in ranges]}, **extra)


def nodes_of(batch_client, job_id: str, statuses=("STARTING", "RUNNING", "SUCCEEDED", "FAILED")) -> list[dict]:
    """ListJobs(multiNodeJobId) in the given statuses, by node index."""
    found = [s for status in statuses
             for s in batch_client.list_jobs(multiNodeJobId=job_id, jobStatus=status)["jobSummaryList"]]
    return sorted(found, key=lambda summary: summary["nodeProperties"]["nodeIndex"])


@needs_docker
def test_nodes_find_the_main_node_by_its_address_and_the_main_node_decides(batch_client, logs_client):
    queue = make_queue(batch_client, max_vcpus=4)
    definition = register_mnp(batch_client, [("0", container(MAIN)), ("1:", container(WORKER))], 3)
    job_id = submit(batch_client, queue, definition)
    parent = wait_for_status(batch_client, job_id, timeout=90)
    assert parent["status"] == "SUCCEEDED", parent
    assert parent["nodeProperties"]["numNodes"] == 3 and parent["nodeProperties"]["mainNode"] == 0
    assert "container" not in parent
    summaries = nodes_of(batch_client, job_id)
    assert [s["jobId"] for s in summaries] == [f"{job_id}#{i}" for i in range(3)]
    assert [s["nodeProperties"] for s in summaries] == [
        {"isMainNode": i == 0, "numNodes": 3, "nodeIndex": i} for i in range(3)]
    nodes = [describe(batch_client, s["jobId"]) for s in summaries]
    assert [n["nodeDetails"] for n in nodes] == [{"nodeIndex": i, "isMainNode": i == 0} for i in range(3)]
    assert [n["status"] for n in nodes] == ["SUCCEEDED"] * 3
    address = nodes[0]["container"]["networkInterfaces"][0]["privateIpv4Address"]
    assert log_lines(logs_client, nodes[0]) == [f"index=0 num=3 main=0 addr=none id={job_id}#0"]
    for i in (1, 2):
        lines = log_lines(logs_client, nodes[i])
        assert lines[0] == f"index={i} num=3 main=0 addr={address} id={job_id}#{i}"
        assert lines[1] in ("hello-1", "hello-2")
        # Other nodes start once the main node is RUNNING.
        assert nodes[i]["startedAt"] >= nodes[0]["startedAt"]
    assert parent["attempts"][0]["container"]["logStreamName"] == nodes[0]["container"]["logStreamName"]
    assert parent["startedAt"] == nodes[0]["startedAt"]
    # The parent is listed with its queue, its nodes are not.
    listed = {s["jobId"]: s for s in batch_client.list_jobs(jobQueue=queue["name"], jobStatus="SUCCEEDED")[
        "jobSummaryList"]}
    assert set(listed) == {job_id} and listed[job_id]["nodeProperties"] == {"numNodes": 3}

    client = docker.from_env()
    try:
        wait_until(lambda: not client.networks.list(filters={"label": f"batchemu.network={job_id}-1"}), 30)
    finally:
        client.close()


@needs_docker
def test_a_failed_main_node_fails_the_job_stops_the_others_and_is_retried(batch_client):
    queue = make_queue(batch_client, max_vcpus=4)
    definition = register_mnp(batch_client, [("0", container("sleep 1; exit 3")), ("1", container("sleep 60"))], 2,
                              retryStrategy={"attempts": 2})
    job_id = submit(batch_client, queue, definition)
    parent = wait_for_status(batch_client, job_id, timeout=90)
    assert (parent["status"], parent["container"]["exitCode"] if "container" in parent else
            parent["attempts"][-1]["container"]["exitCode"]) == ("FAILED", 3)
    assert [a["container"]["exitCode"] for a in parent["attempts"]] == [3, 3]
    assert parent["statusReason"] == "Essential container in task exited"
    worker = describe(batch_client, f"{job_id}#1")
    assert worker["status"] == "FAILED" and worker["statusReason"] == "Main node exited"
    assert len(worker["attempts"]) == 2  # a node runs once per attempt of its job, never retried itself


@needs_docker
def test_a_failed_worker_node_does_not_fail_the_job(batch_client):
    queue = make_queue(batch_client, max_vcpus=4)
    definition = register_mnp(batch_client, [("0", container("sleep 2")), ("1", container("exit 5"))], 2)
    job_id = submit(batch_client, queue, definition)
    assert wait_for_status(batch_client, job_id, timeout=90)["status"] == "SUCCEEDED"
    worker = describe(batch_client, f"{job_id}#1")
    assert (worker["status"], worker["container"]["exitCode"]) == ("FAILED", 5)


@needs_docker
def test_capacity_is_all_or_nothing(batch_client):
    queue = make_queue(batch_client, max_vcpus=4)
    single = batch_client.register_job_definition(
        jobDefinitionName=unique("jd"), type="container", containerProperties=container("sleep 8", vcpus="2"))
    first = submit(batch_client, queue, single)
    wait_for_status(batch_client, first, ("RUNNING",), timeout=30)
    definition = register_mnp(batch_client, [(":", container("true", vcpus="1"))], 3)
    job_id = submit(batch_client, queue, definition)
    # 3 nodes need 3 vCPUs, 2 are free: the job waits, not one node of it starts.
    wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=30)
    assert describe(batch_client, first)["status"] == "RUNNING"
    assert [s["status"] for s in nodes_of(batch_client, job_id, ("RUNNABLE",))] == ["RUNNABLE"] * 3
    done = wait_for_status(batch_client, job_id, timeout=90)
    assert done["status"] == "SUCCEEDED"
    first_stopped = describe(batch_client, first)["stoppedAt"]
    assert done["startedAt"] >= first_stopped
    # The main node may exit before the others start: they then end without starting.
    assert min(n.get("startedAt", first_stopped) for n in nodes_of(batch_client, job_id)) >= first_stopped
    assert nodes_of(batch_client, job_id)[0]["startedAt"] == done["startedAt"]


def test_nodes_exist_from_submission_and_follow_their_queued_parent(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")  # nothing starts
    blocker = submit(batch_client, queue, register(batch_client))
    definition = register_mnp(batch_client, [("0", container("true")), ("1:", container("true"))], 2)
    waiting = submit(batch_client, queue, definition, nodeOverrides={"numNodes": 3},
                     dependsOn=[{"jobId": blocker}])
    runnable = submit(batch_client, queue, definition)
    # Described and listed at once: clients (Metaflow) poll every node from the moment they submit.
    assert [describe(batch_client, f"{waiting}#{i}")["nodeDetails"] for i in range(3)] == [
        {"nodeIndex": i, "isMainNode": i == 0} for i in range(3)]
    wait_for_status(batch_client, waiting, ("PENDING",), timeout=10)
    wait_for_status(batch_client, runnable, ("RUNNABLE",), timeout=10)
    wait_until(lambda: len(nodes_of(batch_client, waiting, ("PENDING",))) == 3, 10)
    assert [s["nodeProperties"] for s in nodes_of(batch_client, waiting, ("PENDING",))] == [
        {"isMainNode": i == 0, "numNodes": 3, "nodeIndex": i} for i in range(3)]
    wait_until(lambda: len(nodes_of(batch_client, runnable, ("RUNNABLE",))) == 2, 10)
    assert batch_client.describe_jobs(jobs=[f"{waiting}#3"])["jobs"] == []
    batch_client.cancel_job(jobId=waiting, reason="not today")
    batch_client.terminate_job(jobId=runnable, reason="nor this one")
    wait_until(lambda: len(nodes_of(batch_client, waiting, ("FAILED",))) == 3, 10)
    wait_until(lambda: len(nodes_of(batch_client, runnable, ("FAILED",))) == 2, 10)
    cancelled = [describe(batch_client, f"{waiting}#{i}") for i in range(3)]
    assert {(n["statusReason"], n["isCancelled"], n["stoppedAt"] > 0) for n in cancelled} == {
        ("not today", True, True)}
    terminated = [describe(batch_client, f"{runnable}#{i}") for i in range(2)]
    assert {(n["statusReason"], n["isTerminated"]) for n in terminated} == {("nor this one", True)}
    # Nodes are never placed on their own: the blocker still waits, the CE had no room for anything.
    assert describe(batch_client, blocker)["status"] == "RUNNABLE"


@needs_docker
def test_nodes_that_never_started_end_with_the_main_node(batch_client):
    queue = make_queue(batch_client, max_vcpus=4)
    main = {**container("true"), "image": "registry.invalid/nothing:1"}
    definition = register_mnp(batch_client, [("0", main), ("1:", container("sleep 60"))], 3)
    job_id = submit(batch_client, queue, definition)
    parent = wait_for_status(batch_client, job_id, timeout=60)
    assert (parent["status"], parent["statusReason"]) == ("FAILED", "Task failed to start")
    assert parent["stoppedAt"] > 0 and "container" not in parent
    assert parent["attempts"][-1]["container"]["reason"].startswith("CannotPullContainerError")
    main_node = describe(batch_client, f"{job_id}#0")
    assert (main_node["status"], main_node["statusReason"]) == ("FAILED", "Task failed to start")
    others = [describe(batch_client, f"{job_id}#{i}") for i in (1, 2)]
    assert [(n["status"], n["statusReason"], "startedAt" in n, n["stoppedAt"] > 0) for n in others] == [
        ("FAILED", "Main node exited", False, True)] * 2


@needs_docker
def test_node_overrides_change_the_number_of_nodes_and_a_range(batch_client, logs_client):
    queue = make_queue(batch_client, max_vcpus=4)
    serve = "echo main; for i in 1 2; do echo hello | nc -l -p 7000 >/dev/null; done"
    definition = register_mnp(batch_client, [("0", container(serve)), ("1:", container(ENV))], 2)
    worker = 'echo worker-$MARK; until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 </dev/null 2>/dev/null | ' \
             'grep -q hello; do sleep 0.2; done'
    job_id = submit(batch_client, queue, definition, nodeOverrides={"numNodes": 3, "nodePropertyOverrides": [
        {"targetNodes": "1:", "containerOverrides": {"command": ["sh", "-c", worker],
                                                     "environment": [{"name": "MARK", "value": "x"}]}}]})
    parent = wait_for_status(batch_client, job_id, timeout=90)
    assert parent["status"] == "SUCCEEDED" and parent["nodeProperties"]["numNodes"] == 3
    nodes = [describe(batch_client, f"{job_id}#{i}") for i in range(3)]
    assert [log_lines(logs_client, n) for n in nodes] == [["main"], ["worker-x"], ["worker-x"]]


@needs_docker
def test_the_timeout_applies_to_the_whole_job(batch_client, batchemu_server):
    queue = make_queue(batch_client, max_vcpus=4)
    definition = register_mnp(batch_client, [("0:1", container("sleep 120"))], 2,
                              timeout={"attemptDurationSeconds": 60}, retryStrategy={"attempts": 2})
    job_id = submit(batch_client, queue, definition)
    wait_until(lambda: [s["status"] for s in nodes_of(batch_client, job_id)] == ["RUNNING"] * 2, 60)
    parent = wait_with_clock_ahead(batch_client, batchemu_server, job_id, 61_000)
    assert (parent["status"], parent["statusReason"]) == ("FAILED", "Job attempt duration exceeded timeout")
    assert len(parent["attempts"]) == 1
    assert [describe(batch_client, f"{job_id}#{i}")["status"] for i in range(2)] == ["FAILED"] * 2


def test_refusals(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register_mnp(batch_client, [("0", container("true")), ("1", container("true"))], 2)
    common = {"jobName": "x", "jobQueue": queue["name"], "jobDefinition": definition["jobDefinitionArn"]}
    assert client_error(batch_client.submit_job, **common, containerOverrides={"command": ["x"]},
                        nodeOverrides={"numNodes": 2}) == (
        "Container overrides and node overrides are mutually exclusive, only one can be set.")
    assert "not supported for multi-node parallel jobs" in client_error(
        batch_client.submit_job, **common, arrayProperties={"size": 2})
    assert "open-ended" in client_error(batch_client.submit_job, **common, nodeOverrides={"numNodes": 3})
    assert client_error(batch_client.submit_job, **common, nodeOverrides={"nodePropertyOverrides": [
        {"targetNodes": "0:1", "containerOverrides": {"command": ["x"]}}]}) == (
        "NodeOverride targets should match job definition. Non matching targets - 0:1")
    open_ended = register_mnp(batch_client, [("0", container("true")), ("1:", container("true"))], 3, main_node=2)
    with_open_range = {**common, "jobDefinition": open_ended["jobDefinitionArn"]}
    assert "lower bound" in client_error(batch_client.submit_job, **with_open_range, nodeOverrides={"numNodes": 1})
    assert "mainNode" in client_error(batch_client.submit_job, **with_open_range, nodeOverrides={"numNodes": 2})
    assert "multi-node" in client_error(batch_client.list_jobs, multiNodeJobId="no-such-job")


@needs_docker
def test_terminate_stops_every_node(batch_client):
    queue = make_queue(batch_client, max_vcpus=4)
    definition = register_mnp(batch_client, [(":", container("sleep 120"))], 2, retryStrategy={"attempts": 3})
    job_id = submit(batch_client, queue, definition)
    wait_until(lambda: [s["status"] for s in nodes_of(batch_client, job_id)] == ["RUNNING"] * 2, 60)
    batch_client.terminate_job(jobId=job_id, reason="stopped by the operator")
    parent = wait_for_status(batch_client, job_id, timeout=60)
    assert (parent["status"], parent["statusReason"], parent["isTerminated"]) == (
        "FAILED", "stopped by the operator", True)
    assert len(parent["attempts"]) == 1  # a terminated job is not retried
    nodes = [describe(batch_client, f"{job_id}#{i}") for i in range(2)]
    assert [(n["status"], n["statusReason"]) for n in nodes] == [("FAILED", "stopped by the operator")] * 2


def ecs_range(*containers: dict) -> dict:
    """An ecsProperties node range's task: containers of the test image, 1 vCPU and 64 MiB each."""
    return {"taskProperties": [{"containers": [
        {"image": TEST_IMAGE, "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                        {"type": "MEMORY", "value": "64"}], **c}
        for c in containers]}]}


def stream_lines(logs_client, stream: str) -> list[str]:
    events = logs_client.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True)
    return [e["message"] for e in events["events"]]


def register_ecs_mnp(batch_client, ranges: list[tuple[str, dict]], num_nodes: int) -> dict:
    return batch_client.register_job_definition(
        jobDefinitionName=unique("mnp-ecs"), type="multinode", nodeProperties={
            "numNodes": num_nodes, "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": target, "ecsProperties": task} for target, task in ranges]})


@needs_docker
def test_ecs_node_ranges_find_the_main_node_and_a_sidecar_does_not_fail_a_node(batch_client, logs_client):
    queue = make_queue(batch_client, max_vcpus=4)
    failing_sidecar = {"name": "sidecar", "essential": False, "command": ["sh", "-c", "exit 3"]}
    definition = register_ecs_mnp(batch_client, [
        ("0", ecs_range({"name": "main", "command": ["sh", "-c", ENV + "; echo hello-node | nc -l -p 7000"]},
                        failing_sidecar)),
        ("1", ecs_range({"name": "main", "command": ["sh", "-c", ENV + '; echo "greeting=$GREETING"; '
                                                      'until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" '
                                                      '7000 2>/dev/null; do sleep 0.2; done']},
                        failing_sidecar))], 2)
    job_id = submit(batch_client, queue, definition, nodeOverrides={"nodePropertyOverrides": [
        {"targetNodes": "1", "ecsPropertiesOverride": {"taskProperties": [{"containers": [
            {"name": "main", "environment": [{"name": "GREETING", "value": "overridden"}]}]}]}}]})
    parent = wait_for_status(batch_client, job_id, timeout=90)
    assert parent["status"] == "SUCCEEDED", parent.get("statusReason")
    main_node, worker = (describe(batch_client, f"{job_id}#{i}") for i in range(2))
    for node in (main_node, worker):
        assert node["status"] == "SUCCEEDED" and "container" not in node
        containers = {c["name"]: c for c in node["ecsProperties"]["taskProperties"][0]["containers"]}
        # The sidecar's failure is shown, and did not fail its node.
        assert (containers["main"]["exitCode"], containers["sidecar"]["exitCode"]) == (0, 3)
        assert all(c["logStreamName"] for c in containers.values())
        assert [c["exitCode"] for c in node["attempts"][-1]["taskProperties"][0]["containers"]] == [0, 3]
    main_container = main_node["ecsProperties"]["taskProperties"][0]["containers"][0]
    address = main_container["networkInterfaces"][0]["privateIpv4Address"]
    worker_stream = worker["ecsProperties"]["taskProperties"][0]["containers"][0]["logStreamName"]
    wait_until(lambda: "hello-node" in stream_lines(logs_client, worker_stream), 20)  # it reached the main node
    lines = stream_lines(logs_client, worker_stream)
    assert f"index=1 num=2 main=0 addr={address} id={job_id}#1" in lines
    assert "greeting=overridden" in lines  # the range's ecsPropertiesOverride, by container name
    main_stream = main_container["logStreamName"]
    assert f"index=0 num=2 main=0 addr=none id={job_id}#0" in stream_lines(logs_client, main_stream)
    assert parent["attempts"][-1]["container"]["exitCode"] == 0


def test_ecs_node_range_overrides_are_validated(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    task = ecs_range({"name": "main", "command": ["echo", "Ref::word"]}, {"name": "side", "essential": False})
    definition = register_ecs_mnp(batch_client, [("0", task), ("1", ecs_range({"name": "main"}))], 2)
    common = {"jobName": "x", "jobQueue": queue["name"], "jobDefinition": definition["jobDefinitionArn"]}

    def refused(override: dict) -> str:
        return client_error(batch_client.submit_job, **common, nodeOverrides={"nodePropertyOverrides": [
            {"targetNodes": "0", **override}]})

    def ecs_override(*containers: dict) -> dict:
        return {"ecsPropertiesOverride": {"taskProperties": [{"containers": list(containers)}]}}

    assert "use ecsPropertiesOverride" in refused({"containerOverrides": {"command": ["x"]}})
    assert "container nope is not a container of the job definition" in refused(
        ecs_override({"name": "nope", "command": ["x"]}))
    assert "AWS_BATCH" in refused(ecs_override({"name": "main", "environment": [{"name": "AWS_BATCH_X", "value": "1"}]}))
    assert "Amazon EKS" in refused({"eksPropertiesOverride": {"podProperties": {"containers": [{"name": "x"}]}}})
    plain = register_mnp(batch_client, [("0:1", container("true"))], 2)
    assert "use containerOverrides" in client_error(
        batch_client.submit_job, **{**common, "jobDefinition": plain["jobDefinitionArn"]},
        nodeOverrides={"nodePropertyOverrides": [{"targetNodes": "0:1", **ecs_override({"name": "main"})}]})
    # A valid override changes the range's container by name; parameters apply; each node shows its task.
    job_id = batch_client.submit_job(**common, parameters={"word": "hi"}, nodeOverrides={"nodePropertyOverrides": [
        {"targetNodes": "0", **ecs_override({"name": "side", "command": ["sleep", "1"]})}]})["jobId"]
    main_node, worker = (describe(batch_client, f"{job_id}#{i}") for i in range(2))
    assert [(c["name"], c.get("command")) for c in main_node["ecsProperties"]["taskProperties"][0]["containers"]] == [
        ("main", ["echo", "hi"]), ("side", ["sleep", "1"])]
    assert [c["name"] for c in worker["ecsProperties"]["taskProperties"][0]["containers"]] == ["main"]
    assert "container" not in main_node and main_node["nodeDetails"] == {"nodeIndex": 0, "isMainNode": True}
    assert "ecsProperties" not in describe(batch_client, job_id)  # the parent shows nodeProperties only
    eks = {"podProperties": {"containers": [{"image": TEST_IMAGE}]}}
    assert "Node properties can't be specified for Amazon EKS based job definitions" in client_error(
        batch_client.register_job_definition, jobDefinitionName=unique("mnp-eks"), type="multinode",
        nodeProperties={"numNodes": 1, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0", "eksProperties": eks}]})
