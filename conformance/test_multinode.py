"""Multi-node parallel jobs (multi-node-parallel-jobs.html, mnp-env-vars.html, job_definition_parameters.html
#nodeProperties): node children `<job>#<index>`, the AWS_BATCH_JOB_* variables and the main node's address
in the other nodes, the main node's exit deciding the job, nodeOverrides, ListJobs(multiNodeJobId), and
the requests SubmitJob refuses."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conformance.harness import client_error_code
from conformance.test_jobs import log_lines

covers = pytest.mark.covers

ENV = ('echo "index=$AWS_BATCH_JOB_NODE_INDEX num=$AWS_BATCH_JOB_NUM_NODES main=$AWS_BATCH_JOB_MAIN_NODE_INDEX '
       'addr=${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-none}"')
# The main node serves one line to the other node, which finds it by the address it is given.
SERVE = ENV + "; echo hello | nc -l -p 7000 >/dev/null"
CONNECT = ENV + '; until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 2>/dev/null; do sleep 0.2; done'


@pytest.fixture
def mnp_def(batch, target, resources):
    """Registers a multinode definition of (targetNodes, shell command) ranges."""
    def register(ranges: list[tuple[str, str]], num_nodes: int, main_node: int = 0, **extra) -> dict:
        response = batch.register_job_definition(
            jobDefinitionName=resources.name("mnp"), type="multinode", nodeProperties={
                "numNodes": num_nodes, "mainNode": main_node,
                "nodeRangeProperties": [{"targetNodes": target_nodes, "container": {
                    "image": target.image, "command": ["sh", "-c", command],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]}}
                    for target_nodes, command in ranges]}, **extra)
        resources.job_definitions.append(response["jobDefinitionArn"])
        return response
    return register


def node_summaries(batch, job_id: str, status: str) -> list[dict]:
    listed = [job for page in batch.get_paginator("list_jobs").paginate(multiNodeJobId=job_id, jobStatus=status)
              for job in page["jobSummaryList"]]
    return sorted(listed, key=lambda job: job["nodeProperties"]["nodeIndex"])


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", "ListJobs", group="multinode")
@covers(group="job-environment")
def test_the_other_node_reaches_the_main_node_and_the_main_node_decides(batch, shared_env, mnp_def, jobs, logs,
                                                                         prefix):
    definition = mnp_def([("0", SERVE), ("1", CONNECT)], 2)
    job_id = jobs.submit(f"{prefix}-mnp", shared_env.queue, definition["jobDefinitionArn"])
    parent = jobs.wait_one(job_id).last
    assert parent["status"] == "SUCCEEDED", parent.get("statusReason")
    assert parent["nodeProperties"]["numNodes"] == 2 and parent["nodeProperties"]["mainNode"] == 0
    nodes = jobs.describe([f"{job_id}#0", f"{job_id}#1"])
    assert sorted(nodes) == [f"{job_id}#0", f"{job_id}#1"], "DescribeJobs does not answer for node ids"
    main, other = nodes[f"{job_id}#0"], nodes[f"{job_id}#1"]
    assert main["nodeDetails"] == {"nodeIndex": 0, "isMainNode": True}
    assert other["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}
    assert (main["status"], other["status"]) == ("SUCCEEDED", "SUCCEEDED")
    # mnp-env-vars.html: the main node's address only in the other nodes.
    assert log_lines(logs, main["container"]["logStreamName"]) == ["index=0 num=2 main=0 addr=none"]
    lines = log_lines(logs, other["container"]["logStreamName"])
    assert lines[0].startswith("index=1 num=2 main=0 addr=") and not lines[0].endswith("addr=none")
    assert lines[1:] == ["hello"]
    assert other["startedAt"] >= main["startedAt"]  # the others start once the main node runs
    listed = node_summaries(batch, job_id, "SUCCEEDED")
    assert [job["jobId"] for job in listed] == [f"{job_id}#0", f"{job_id}#1"]
    assert [job["nodeProperties"]["isMainNode"] for job in listed] == [True, False]


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="multinode")
def test_a_failed_main_node_fails_the_job_and_a_failed_other_node_does_not(batch, shared_env, mnp_def, jobs,
                                                                           prefix):
    main_fails = mnp_def([("0", "sleep 1; exit 3"), ("1", "sleep 30")], 2)
    other_fails = mnp_def([("0", "sleep 3"), ("1", "exit 5")], 2)
    failed = jobs.submit(f"{prefix}-mnp-main", shared_env.queue, main_fails["jobDefinitionArn"])
    succeeded = jobs.submit(f"{prefix}-mnp-other", shared_env.queue, other_fails["jobDefinitionArn"])
    runs = jobs.wait([failed, succeeded])
    job = runs[failed].last
    assert job["status"] == "FAILED"
    assert job["attempts"][-1]["container"]["exitCode"] == 3
    assert runs[succeeded].last["status"] == "SUCCEEDED", runs[succeeded].last.get("statusReason")
    worker = jobs.describe([f"{succeeded}#1"])[f"{succeeded}#1"]
    assert (worker["status"], worker["container"]["exitCode"]) == ("FAILED", 5)


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="multinode")
@covers(group="job-inputs")
def test_node_overrides_set_the_number_of_nodes_and_a_range_command(batch, shared_env, mnp_def, jobs, logs, prefix):
    definition = mnp_def([("0", "for i in 1 2; do echo hi | nc -l -p 7000 >/dev/null; done"), ("1:", "true")], 2)
    # A node stops trying only once the main node's line reached it: two nodes may both connect while the
    # first listener is up, and the one it does not accept is reset without the line (and tries again).
    connect = 'echo "node $AWS_BATCH_JOB_NODE_INDEX of $AWS_BATCH_JOB_NUM_NODES"; ' \
              'until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 </dev/null 2>/dev/null | grep -q hi; ' \
              'do sleep 0.2; done'
    job_id = jobs.submit(f"{prefix}-mnp-over", shared_env.queue, definition["jobDefinitionArn"], nodeOverrides={
        "numNodes": 3, "nodePropertyOverrides": [
            {"targetNodes": "1:", "containerOverrides": {"command": ["sh", "-c", connect]}}]})
    parent = jobs.wait_one(job_id).last
    assert parent["status"] == "SUCCEEDED", parent.get("statusReason")
    assert parent["nodeProperties"]["numNodes"] == 3
    nodes = jobs.describe([f"{job_id}#{i}" for i in range(3)])
    for i in (1, 2):
        assert log_lines(logs, nodes[f"{job_id}#{i}"]["container"]["logStreamName"]) == [f"node {i} of 3"]


@covers("SubmitJob", "DescribeJobs", "ListJobs", "TerminateJob", group="multinode")
def test_nodes_are_there_while_the_job_waits_and_end_with_it(batch, held_env, mnp_def, jobs, prefix):
    # Clients poll every node from the moment they submit (Metaflow's Batch.wait describes `<id>#<i>`
    # until it is returned): the nodes exist while the job waits, and end when it is terminated there.
    definition = mnp_def([("0", "true"), ("1:", "true")], 2)
    job_id = jobs.submit(f"{prefix}-mnp-held", held_env.queue, definition["jobDefinitionArn"],
                         nodeOverrides={"numNodes": 3})
    jobs.wait_status(job_id, "RUNNABLE")
    node_ids = [f"{job_id}#{i}" for i in range(3)]
    nodes = jobs.wait(node_ids, until=lambda job: job["status"] == "RUNNABLE")
    assert [nodes[n].last["nodeDetails"] for n in node_ids] == [
        {"nodeIndex": i, "isMainNode": i == 0} for i in range(3)]
    assert [job["nodeProperties"] for job in node_summaries(batch, job_id, "RUNNABLE")] == [
        {"isMainNode": i == 0, "numNodes": 3, "nodeIndex": i} for i in range(3)]
    batch.terminate_job(jobId=job_id, reason=f"{prefix} held")
    assert jobs.wait_one(job_id).last["statusReason"] == f"{prefix} held"
    ended = jobs.wait(node_ids)
    assert {(ended[n].last["status"], ended[n].last.get("statusReason")) for n in node_ids} == {
        ("FAILED", f"{prefix} held")}


@covers("SubmitJob", group="multinode")
@covers(group="request-rules")
def test_submit_refuses_what_a_multi_node_job_cannot_take(batch, held_env, mnp_def, prefix):
    definition = mnp_def([("0", "true"), ("1", "true")], 2)
    common = {"jobName": f"{prefix}-mnp-bad", "jobQueue": held_env.queue,
              "jobDefinition": definition["jobDefinitionArn"]}
    refusals = [
        ({"containerOverrides": {"command": ["x"]}, "nodeOverrides": {"numNodes": 2}},
         "Container overrides and node overrides are mutually exclusive, only one can be set."),
        ({"nodeOverrides": {"nodePropertyOverrides": [{"targetNodes": "0:1", "containerOverrides": {}}]}},
         "NodeOverride targets should match job definition. Non matching targets - 0:1"),
        ({"arrayProperties": {"size": 2}}, None),
        ({"nodeOverrides": {"numNodes": 3}}, None),  # no open-ended range to grow
    ]
    for extra, message in refusals:
        with pytest.raises(ClientError) as caught:
            batch.submit_job(**common, **extra)
        assert client_error_code(caught.value) == "ClientException", extra
        if message is not None:
            assert caught.value.response["Error"]["Message"] == message


@pytest.mark.runs_commands
@covers("RegisterJobDefinition", "SubmitJob", "DescribeJobs", group="multinode")
@covers(group="ecs-tasks")
def test_ecs_node_ranges_reach_the_main_node_and_a_sidecar_does_not_decide_a_node(batch, target, shared_env,
                                                                                   resources, jobs, logs, prefix):
    # NodeRangeProperty.ecsProperties: each node is a task of the range's containers; its essential ones decide it.
    def task(command: str) -> dict:
        return {"taskProperties": [{"containers": [
            {"name": "main", "image": target.image, "command": ["sh", "-c", command], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]},
            {"name": "sidecar", "image": target.image, "essential": False, "command": ["sh", "-c", "exit 3"],
             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]}]}]}
    definition = batch.register_job_definition(
        jobDefinitionName=resources.name("mnp-ecs"), type="multinode", nodeProperties={
            "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
                {"targetNodes": "0", "ecsProperties": task(SERVE)}, {"targetNodes": "1", "ecsProperties": task(CONNECT)}]})
    resources.job_definitions.append(definition["jobDefinitionArn"])
    job_id = jobs.submit(f"{prefix}-mnp-ecs", shared_env.queue, definition["jobDefinitionArn"])
    parent = jobs.wait_one(job_id).last
    assert parent["status"] == "SUCCEEDED", parent.get("statusReason")
    nodes = jobs.describe([f"{job_id}#0", f"{job_id}#1"])
    for node in nodes.values():
        assert node["status"] == "SUCCEEDED", node.get("statusReason")
        containers = {c["name"]: c for c in node["ecsProperties"]["taskProperties"][0]["containers"]}
        assert (containers["main"]["exitCode"], containers["sidecar"]["exitCode"]) == (0, 3)
    main, other = (nodes[f"{job_id}#{i}"]["ecsProperties"]["taskProperties"][0]["containers"][0] for i in range(2))
    assert log_lines(logs, main["logStreamName"]) == ["index=0 num=2 main=0 addr=none"]
    lines = log_lines(logs, other["logStreamName"])
    assert lines[0].startswith("index=1 num=2 main=0 addr=") and not lines[0].endswith("addr=none")
    assert lines[1:] == ["hello"]
