"""Job queues end to end: a real boto3 client against a real batchemu server."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from batchemu.config import Config
from tests.conftest import wait_for_compute_environment, wait_for_job_queue

EC2 = {"type": "EC2", "maxvCpus": 16, "instanceTypes": ["optimal"], "subnets": ["subnet-1"],
       "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"}
FARGATE = {"type": "FARGATE", "maxvCpus": 8, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}
EKS = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c", "kubernetesNamespace": "batch"}
TIME_LIMIT = {"reason": "stuck", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "CANCEL"}


def make_ce(client, name: str, resources: dict | None = None, **extra) -> str:
    if extra.get("type") == "UNMANAGED":
        return client.create_compute_environment(computeEnvironmentName=name, **extra)["computeEnvironmentArn"]
    return client.create_compute_environment(computeEnvironmentName=name, type="MANAGED",
                                             computeResources=resources or EC2, **extra)["computeEnvironmentArn"]


def order(*refs: str) -> list[dict]:
    return [{"order": i + 1, "computeEnvironment": ref} for i, ref in enumerate(refs)]


def make_queue(client, name: str, *refs: str, **extra) -> dict:
    extra.setdefault("priority", 1)
    return client.create_job_queue(jobQueueName=name, computeEnvironmentOrder=order(*refs), **extra)


def describe(client, ref: str) -> dict | None:
    found = client.describe_job_queues(jobQueues=[ref])["jobQueues"]
    return found[0] if found else None


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_create_and_describe_a_queue(batch_client):
    ce_arn = make_ce(batch_client, "ce")
    result = make_queue(batch_client, "q", "ce", priority=10, tags={"k": "v"},
                        jobStateTimeLimitActions=[TIME_LIMIT])
    assert result == {"jobQueueName": "q", "jobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
                      "ResponseMetadata": result["ResponseMetadata"]}
    queue = wait_for_job_queue(batch_client, "q", "VALID")
    assert queue["statusReason"] == "JobQueue Healthy"
    assert queue["state"] == "ENABLED"
    assert queue["priority"] == 10
    assert queue["computeEnvironmentOrder"] == [{"order": 1, "computeEnvironment": ce_arn}]  # stored as ARN
    assert queue["jobQueueType"] == "ECS"
    assert queue["tags"] == {"k": "v"}
    assert queue["jobStateTimeLimitActions"] == [TIME_LIMIT]
    assert "schedulingPolicyArn" not in queue


def test_first_compute_environment_of_a_queue_carries_its_type(batch_client):
    """Metaflow reads computeResources.type of the queue's first CE, looked up by ARN."""
    make_ce(batch_client, "ce", FARGATE)
    make_queue(batch_client, "q", "ce")
    first = describe(batch_client, "q")["computeEnvironmentOrder"][0]["computeEnvironment"]
    ce = batch_client.describe_compute_environments(computeEnvironments=[first])["computeEnvironments"][0]
    assert ce["computeResources"]["type"] == "FARGATE"
    assert describe(batch_client, "q")["jobQueueType"] == "ECS_FARGATE"


def test_queue_with_a_scheduling_policy(batch_client):
    make_ce(batch_client, "ce")
    policy = batch_client.create_scheduling_policy(name="fair")["arn"]
    make_queue(batch_client, "q", "ce", schedulingPolicyArn=policy)
    assert describe(batch_client, "q")["schedulingPolicyArn"] == policy


def test_unknown_scheduling_policy_is_rejected(batch_client):
    make_ce(batch_client, "ce")
    missing = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/none"
    code, message = error_of(lambda: make_queue(batch_client, "q", "ce", schedulingPolicyArn=missing))
    assert (code, message) == ("ClientException", f"Scheduling policy {missing} does not exist")


def test_duplicate_name_is_rejected(batch_client):
    make_ce(batch_client, "ce")
    make_queue(batch_client, "q", "ce")
    code, message = error_of(lambda: make_queue(batch_client, "q", "ce"))
    assert (code, message) == ("ClientException", "Object already exists")


def test_unknown_compute_environment_is_rejected(batch_client):
    code, message = error_of(lambda: make_queue(batch_client, "q", "nope"))
    assert (code, message) == ("ClientException", "computeEnvironment nope does not exist")
    assert describe(batch_client, "q") is None


def test_more_than_three_compute_environments_are_rejected(batch_client):
    refs = [make_ce(batch_client, f"ce{i}") for i in range(4)]
    code, message = error_of(batch_client.create_job_queue, jobQueueName="q", priority=1,
                             computeEnvironmentOrder=order(*refs))
    assert (code, message) == ("ClientException",
                               "computeEnvironmentOrder can contain at most 3 compute environments")


def test_three_compute_environments_by_name_and_arn_are_accepted(batch_client):
    arns = [make_ce(batch_client, f"ce{i}") for i in range(3)]
    make_queue(batch_client, "q", "ce0", arns[1], "ce2")
    assert [e["computeEnvironment"] for e in describe(batch_client, "q")["computeEnvironmentOrder"]] == arns


def test_no_compute_environment_is_rejected(batch_client):
    code, message = error_of(batch_client.create_job_queue, jobQueueName="q", priority=1,
                             computeEnvironmentOrder=[])
    assert code == "ClientException"
    assert "at least one" in message


def test_repeated_order_values_are_rejected(batch_client):
    make_ce(batch_client, "a")
    make_ce(batch_client, "b")
    code, message = error_of(batch_client.create_job_queue, jobQueueName="q", priority=1,
                             computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "a"},
                                                      {"order": 1, "computeEnvironment": "b"}])
    assert code == "ClientException"
    assert "same order" in message


@pytest.mark.parametrize("other", [{"resources": EC2}, {"type": "UNMANAGED"},
                                   {"resources": {**EC2, "type": "SPOT", "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED"}}])
def test_mixing_fargate_with_ec2_is_rejected(batch_client, other):
    make_ce(batch_client, "fargate", FARGATE)
    make_ce(batch_client, "other", **other)
    code, message = error_of(batch_client.create_job_queue, jobQueueName="q", priority=1,
                             computeEnvironmentOrder=order("fargate", "other"))
    assert code == "ClientException"
    assert "EC2 and Fargate compute environments can't be mixed" in message


def test_fargate_and_fargate_spot_mix(batch_client):
    make_ce(batch_client, "f", FARGATE)
    make_ce(batch_client, "fs", {**FARGATE, "type": "FARGATE_SPOT"})
    make_queue(batch_client, "q", "f", "fs")
    assert wait_for_job_queue(batch_client, "q", "VALID")["jobQueueType"] == "ECS_FARGATE"


def test_mixing_eks_with_ecs_is_rejected(batch_client):
    make_ce(batch_client, "eks", {**EC2, "allocationStrategy": "BEST_FIT_PROGRESSIVE"}, eksConfiguration=EKS)
    make_ce(batch_client, "ecs")
    code, message = error_of(batch_client.create_job_queue, jobQueueName="q", priority=1,
                             computeEnvironmentOrder=order("eks", "ecs"))
    assert (code, message) == ("ClientException",
                               "Amazon EKS and Amazon ECS compute environments can't be mixed in a job queue")


def test_job_queue_type_must_match_the_compute_environments(batch_client):
    make_ce(batch_client, "ce")
    code, message = error_of(batch_client.create_job_queue, jobQueueName="q", priority=1,
                             computeEnvironmentOrder=order("ce"), jobQueueType="ECS_FARGATE")
    assert code == "ClientException"
    assert "jobQueueType ECS_FARGATE" in message


@pytest.mark.parametrize("seconds", [599, 86401])
def test_time_limit_bounds(batch_client, seconds):
    make_ce(batch_client, "ce")
    code, message = error_of(lambda: make_queue(batch_client, "q", "ce", jobStateTimeLimitActions=[
        {**TIME_LIMIT, "maxTimeSeconds": seconds}]))
    assert (code, message) == ("ClientException",
                               "jobStateTimeLimitActions maxTimeSeconds must be between 600 and 86400")


def test_update_goes_through_updating_to_valid(batch_client):
    make_ce(batch_client, "a")
    b_arn = make_ce(batch_client, "b")
    make_queue(batch_client, "q", "a")
    wait_for_job_queue(batch_client, "q", "VALID")
    result = batch_client.update_job_queue(jobQueue="q", state="DISABLED", priority=5,
                                           computeEnvironmentOrder=[{"order": 2, "computeEnvironment": "b"}],
                                           jobStateTimeLimitActions=[TIME_LIMIT])
    assert result["jobQueueArn"].endswith(":job-queue/q")
    queue = wait_for_job_queue(batch_client, result["jobQueueArn"], "VALID")
    assert (queue["state"], queue["priority"]) == ("DISABLED", 5)
    assert queue["computeEnvironmentOrder"] == [{"order": 2, "computeEnvironment": b_arn}]
    assert queue["jobStateTimeLimitActions"] == [TIME_LIMIT]


def test_update_can_replace_but_not_add_a_scheduling_policy(batch_client):
    make_ce(batch_client, "ce")
    first = batch_client.create_scheduling_policy(name="p1")["arn"]
    second = batch_client.create_scheduling_policy(name="p2")["arn"]
    make_queue(batch_client, "fair", "ce", schedulingPolicyArn=first)
    batch_client.update_job_queue(jobQueue="fair", schedulingPolicyArn=second)
    assert describe(batch_client, "fair")["schedulingPolicyArn"] == second
    make_queue(batch_client, "fifo", "ce")
    code, message = error_of(batch_client.update_job_queue, jobQueue="fifo", schedulingPolicyArn=first)
    assert code == "ClientException"
    assert "FIFO" in message


def test_update_rejects_unknown_queue_and_bad_order(batch_client):
    code, message = error_of(batch_client.update_job_queue, jobQueue="nope", priority=2)
    assert (code, message) == ("ClientException", "jobQueue nope does not exist")
    make_ce(batch_client, "ec2")
    make_ce(batch_client, "fargate", FARGATE)
    make_queue(batch_client, "q", "ec2")
    code, message = error_of(batch_client.update_job_queue, jobQueue="q",
                             computeEnvironmentOrder=order("ec2", "fargate"))
    assert "can't be mixed" in message
    code, message = error_of(batch_client.update_job_queue, jobQueue="q",
                             computeEnvironmentOrder=order("fargate"))
    assert code == "ClientException"
    assert describe(batch_client, "q")["jobQueueType"] == "ECS"


def test_delete_while_enabled_is_rejected(batch_client):
    make_ce(batch_client, "ce")
    make_queue(batch_client, "q", "ce")
    code, message = error_of(batch_client.delete_job_queue, jobQueue="q")
    assert (code, message) == ("ClientException", "Cannot delete, job queue q must be DISABLED first")
    code, message = error_of(batch_client.delete_job_queue, jobQueue="ghost")
    assert (code, message) == ("ClientException", "jobQueue ghost does not exist")


def test_teardown_queue_then_compute_environment(batch_client):
    """The usual teardown, without waits in between: disable and delete the queue, then the CE."""
    make_ce(batch_client, "ce")
    arn = make_queue(batch_client, "q", "ce")["jobQueueArn"]
    batch_client.update_job_queue(jobQueue="q", state="DISABLED")
    batch_client.delete_job_queue(jobQueue=arn)
    batch_client.update_compute_environment(computeEnvironment="ce", state="DISABLED")
    batch_client.delete_compute_environment(computeEnvironment="ce")
    wait_for_job_queue(batch_client, arn, None)
    wait_for_compute_environment(batch_client, "ce", None)
    make_ce(batch_client, "ce")
    assert make_queue(batch_client, "q", "ce")["jobQueueArn"] == arn  # the names are free again


def test_describe_by_name_and_arn_and_pages(batch_client):
    make_ce(batch_client, "ce")
    names = [f"q{i}" for i in range(5)]
    arns = [make_queue(batch_client, name, "ce")["jobQueueArn"] for name in names]
    found = batch_client.describe_job_queues(jobQueues=["q0", arns[3], "missing"])["jobQueues"]
    assert [q["jobQueueArn"] for q in found] == [arns[0], arns[3]]
    first = batch_client.describe_job_queues(maxResults=2)
    assert [q["jobQueueName"] for q in first["jobQueues"]] == names[:2]
    seen = []
    for page in batch_client.get_paginator("describe_job_queues").paginate(PaginationConfig={"PageSize": 2}):
        seen += [q["jobQueueName"] for q in page["jobQueues"]]
    assert seen == names
    code, message = error_of(batch_client.describe_job_queues, maxResults=101)
    assert (code, message) == ("ClientException", "maxResults must be between 1 and 100")


class TestWithDwell:
    """With state_dwell, transitions are slow enough to see AWS's 'being modified' rejection."""

    @pytest.fixture
    def batchemu_config(self) -> Config:
        return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, state_dwell=30)

    def test_creating_queue_cannot_be_deleted_yet(self, batch_client):
        make_ce(batch_client, "ce")
        make_queue(batch_client, "q", "ce", state="DISABLED")
        assert describe(batch_client, "q")["status"] == "CREATING"
        code, message = error_of(batch_client.delete_job_queue, jobQueue="q")
        assert (code, message) == ("ClientException", "Cannot delete, resource is being modified")


@pytest.mark.rule("DeleteJobQueue.jobs.terminated")
def test_deleting_a_queue_terminates_its_jobs(batch_client):
    make_ce(batch_client, "idle", state="DISABLED")  # a disabled CE places nothing: the job stays queued
    make_queue(batch_client, "q", "idle")
    definition = batch_client.register_job_definition(
        jobDefinitionName="jd", type="container",
        containerProperties={"image": "busybox", "command": ["true"], "resourceRequirements": [
            {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]})["jobDefinitionArn"]
    job_id = batch_client.submit_job(jobName="j", jobQueue="q", jobDefinition=definition)["jobId"]
    batch_client.update_job_queue(jobQueue="q", state="DISABLED")
    batch_client.delete_job_queue(jobQueue="q")
    wait_for_job_queue(batch_client, "q", None)
    job = batch_client.describe_jobs(jobs=[job_id])["jobs"][0]
    assert (job["status"], job["statusReason"]) == ("FAILED", "Job queue deleted")
