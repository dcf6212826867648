"""Rules the API reference states in words about compute environments, job queues and scheduling policies
(batchemu/model/documented_rules/resource_rules.py), checked as any endpoint answers them: each refusal is a
ClientException and creates nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from conformance.harness import client_error_code

covers = pytest.mark.covers
rule = pytest.mark.rule
SPOT_BLOCKED = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"


def refused(call: Callable, created: Callable[[dict], None] = lambda response: None, **kwargs) -> ClientError:
    """The ClientException `call(**kwargs)` answers; should it succeed instead, `created` records what it made
    so that the run's cleanup removes it, and the scenario fails."""
    try:
        response = call(**kwargs)
    except ClientError as error:
        assert client_error_code(error) == "ClientException", error.response
        return error
    created(response)
    pytest.fail(f"{call.__name__} accepted {kwargs}")


# API_ComputeResource.html: instanceRole (and the other EC2-only members) "isn't applicable to jobs that are
# running on Fargate resources. Don't specify it."; securityGroupIds is required for Fargate resources.
@covers("CreateComputeEnvironment", group="resources")
@rule("ComputeResource.fargate.not_applicable", "ComputeResource.securityGroupIds.required_for_fargate")
def test_fargate_compute_environment_refuses_ec2_members(batch, resources):
    network = {k: v for k, v in resources.compute_resources(2).items() if k in ("subnets", "securityGroupIds")}
    fargate = {"type": "FARGATE", "maxvCpus": 2, **network}

    def keep(response: dict) -> None:
        resources.compute_environments.append(response["computeEnvironmentName"])

    for given in ({**fargate, "instanceRole": "ecsInstanceRole"}, {**fargate, "minvCpus": 0},
                  {k: v for k, v in fargate.items() if k != "securityGroupIds"}):
        refused(batch.create_compute_environment, keep, computeEnvironmentName=resources.name("ce-fargate"),
                type="MANAGED", computeResources=given)


# API_JobStateTimeLimitAction.html, maxTimeSeconds: "The minimum value is 600 (10 minutes) and the maximum value
# is 86,400 (24 hours)."; create-quota-management-resources.html: a job queue's priority is between 0 and 1000.
@covers("CreateJobQueue", group="resources")
@rule("JobStateTimeLimitAction.maxTimeSeconds.range", "CreateJobQueue.priority.range")
def test_job_queue_ranges_are_refused(batch, held_env, resources):
    order = [{"order": 1, "computeEnvironment": held_env.compute_environment_arn}]

    def keep(response: dict) -> None:
        resources.job_queues.append(response["jobQueueName"])

    for seconds in (599, 86401):
        action = {"reason": SPOT_BLOCKED, "state": "RUNNABLE", "maxTimeSeconds": seconds, "action": "CANCEL"}
        refused(batch.create_job_queue, keep, jobQueueName=resources.name("jq-limit"), priority=1,
                computeEnvironmentOrder=order, jobStateTimeLimitActions=[action])
    for priority in (-1, 1001):
        refused(batch.create_job_queue, keep, jobQueueName=resources.name("jq-priority"), priority=priority,
                computeEnvironmentOrder=order)


# API_FairsharePolicy.html: shareDecaySeconds 0..604800, computeReservation 0..99; API_ShareAttributes.html:
# weightFactor 0.0001..999.9999, identifiers can't overlap (UserA* with UserA1); API_CreateSchedulingPolicy.html:
# "Only one of fairsharePolicy or quotaSharePolicy can be set."
@covers("CreateSchedulingPolicy", group="resources")
@rule("FairsharePolicy.shareDecaySeconds.range", "FairsharePolicy.computeReservation.range",
      "ShareAttributes.weightFactor.range", "ShareAttributes.shareIdentifier.no_overlap",
      "CreateSchedulingPolicy.policy.one_of")
def test_scheduling_policy_ranges_are_refused(batch, resources):
    def keep(response: dict) -> None:
        resources.scheduling_policies.append(response["arn"])

    for policy in ({"fairsharePolicy": {"shareDecaySeconds": 604801}},
                   {"fairsharePolicy": {"computeReservation": 100}},
                   {"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 1000}]}},
                   {"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "UserA*"},
                                                              {"shareIdentifier": "UserA1"}]}},
                   {"fairsharePolicy": {}, "quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}}):
        refused(batch.create_scheduling_policy, keep, name=resources.name("sp-bad"), **policy)


# API_DescribeSchedulingPolicies.html describes the policies named; an ARN that names none is left out.
@covers("CreateSchedulingPolicy", "DescribeSchedulingPolicies", group="resources")
@rule("DescribeSchedulingPolicies.unknown.left_out")
def test_describe_scheduling_policies_leaves_unknown_arns_out(batch, resources):
    arn = batch.create_scheduling_policy(name=resources.name("sp"), fairsharePolicy={})["arn"]
    resources.scheduling_policies.append(arn)
    found = batch.describe_scheduling_policies(arns=[arn, f"{arn}-nope"])["schedulingPolicies"]
    assert [policy["arn"] for policy in found] == [arn]
