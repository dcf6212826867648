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
# The main node serves one line to each of the two other nodes, which find it by its address.
MAIN = ENV + "; for i in 1 2; do echo hello-$i | nc -l -p 7000; done"
WORKER = ENV + '; until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000; do sleep 0.2; done'


def container(command: str, vcpus: str = "1", **extra) -> dict:
    return {"image": TEST_IMAGE, "command": ["sh", "-c", command],
            "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": "64"}], **extra}


def register_mnp(batch_client, ranges: list[tuple[str, dict]], num_nodes: int, main_node: int = 0, **extra) -> dict:
    return batch_client.register_job_definition(
        jobDefinitionName=unique("mnp"), type="multinode", nodeProperties={
            "numNodes": num_nodes, "mainNode": main_node,
            "nodeRangeProperties": [{"targetNodes": target, "container": c} for target, c in ranges]}, **extra)


def nodes_of(batch_client, job_id: str) -> list[dict]:
    """ListJobs(multiNodeJobId) in every status, by node index."""
    found = [s for status in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED")
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
    assert nodes_of(batch_client, job_id) == []
    done = wait_for_status(batch_client, job_id, timeout=90)
    assert done["status"] == "SUCCEEDED"
    first_stopped = describe(batch_client, first)["stoppedAt"]
    assert done["startedAt"] >= first_stopped
    assert min(n["startedAt"] for n in nodes_of(batch_client, job_id)) >= first_stopped


@needs_docker
def test_node_overrides_change_the_number_of_nodes_and_a_range(batch_client, logs_client):
    queue = make_queue(batch_client, max_vcpus=4)
    serve = "echo main; for i in 1 2; do echo hello | nc -l -p 7000 >/dev/null; done"
    definition = register_mnp(batch_client, [("0", container(serve)), ("1:", container(ENV))], 2)
    worker = 'echo worker-$MARK; until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 >/dev/null; do sleep 0.2; done'
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
