"""The documented rules of compute environments, job queues, scheduling policies and quota shares
(batchemu/model/documented_rules/resource_rules.py), each shown through a real boto3 client: the refusal with
its code and message, the default filled in, or what batchemu does instead where it relaxes a rule."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from batchemu.scheduler.placement import FairShare
from batchemu.scheduler.usage import DEFAULT_DECAY_SECONDS
from tests.conftest import client_error, make_queue, unique, wait_for_compute_environment, wait_for_job_queue
from tests.test_quota_shares import create_share, quota_queue, wait_share
from tests.test_service_jobs import payload

rule = pytest.mark.rule
EC2 = {"type": "EC2", "maxvCpus": 16, "instanceTypes": ["optimal"], "subnets": ["subnet-1"],
       "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"}
SPOT = {**EC2, "type": "SPOT"}
FARGATE = {"type": "FARGATE", "maxvCpus": 8, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}
EKS = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c", "kubernetesNamespace": "batch"}
EKS_EC2 = {**EC2, "allocationStrategy": "BEST_FIT_PROGRESSIVE"}
ROLE = "arn:aws:iam::123456789012:role/Batch"
CANCEL = {"reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "state": "RUNNABLE", "maxTimeSeconds": 600,
          "action": "CANCEL"}


def create_ce(client, resources: dict | None = None, name: str | None = None, **extra) -> str:
    extra.setdefault("type", "MANAGED")
    if extra["type"] == "MANAGED":
        extra["computeResources"] = resources or EC2
    return client.create_compute_environment(computeEnvironmentName=name or unique("ce"),
                                             **extra)["computeEnvironmentName"]


def valid_ce(client, resources: dict | None = None, **extra) -> dict:
    return wait_for_compute_environment(client, create_ce(client, resources, **extra), "VALID")


def without(resources: dict, member: str) -> dict:
    return {k: v for k, v in resources.items() if k != member}


CREATE_REFUSALS = [
    pytest.param({"type": "MANAGED"}, "computeResources must be specified for a MANAGED compute environment",
                 marks=rule("CreateComputeEnvironment.computeResources.required_for_managed"), id="managed-no-cr"),
    pytest.param({"type": "UNMANAGED", "computeResources": EC2}, "computeResources can't be specified for an UNMANAGED",
                 marks=rule("CreateComputeEnvironment.computeResources.refused_for_unmanaged"), id="unmanaged-cr"),
    pytest.param({"computeResources": EC2, "unmanagedvCpus": 4}, "unmanagedvCpus can only be specified for an UNMANAGED",
                 marks=rule("CreateComputeEnvironment.unmanagedvCpus.unmanaged_only"), id="managed-unmanagedvcpus"),
    pytest.param({"computeResources": {**FARGATE, "instanceRole": "r"}},
                 "computeResources.instanceRole is not applicable to FARGATE compute environments",
                 marks=rule("ComputeResource.fargate.not_applicable"), id="fargate-instance-role"),
    pytest.param({"computeResources": SPOT}, "computeResources.spotIamFleetRole is required for a SPOT compute "
                 "environment with the BEST_FIT allocation strategy (the default)",
                 marks=rule("ComputeResource.spotIamFleetRole.required_for_spot_best_fit"), id="spot-no-fleet-role"),
    pytest.param({"computeResources": {**SPOT, "allocationStrategy": "BEST_FIT"}}, "spotIamFleetRole is required",
                 marks=rule("ComputeResource.spotIamFleetRole.required_for_spot_best_fit"), id="spot-best-fit"),
    pytest.param({"computeResources": without(FARGATE, "securityGroupIds")},
                 "computeResources.securityGroupIds must contain at least one security group for a FARGATE",
                 marks=rule("ComputeResource.securityGroupIds.required_for_fargate"), id="fargate-no-sg"),
    pytest.param({"computeResources": {**FARGATE, "subnets": [f"subnet-{i}" for i in range(17)]}},
                 "computeResources.subnets can contain at most 16 subnets for Fargate compute resources",
                 marks=rule("ComputeResource.subnets.fargate_limit"), id="fargate-17-subnets"),
    pytest.param({"computeResources": {**FARGATE, "securityGroupIds": [f"sg-{i}" for i in range(6)]}},
                 "computeResources.securityGroupIds can contain at most 5 security groups for Fargate",
                 marks=rule("ComputeResourceUpdate.securityGroupIds.fargate_limit"), id="fargate-6-sgs"),
    pytest.param({"computeResources": EC2, "eksConfiguration": EKS},
                 "computeResources.allocationStrategy is required for Amazon EKS compute environments",
                 marks=rule("ComputeResource.allocationStrategy.required_for_eks"), id="eks-no-strategy"),
    pytest.param({"computeResources": {**EC2, "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED"}},
                 "allocationStrategy SPOT_CAPACITY_OPTIMIZED is only available for SPOT compute resources, not EC2",
                 marks=rule("ComputeResource.allocationStrategy.type_only"), id="spot-strategy-on-ec2"),
    pytest.param({"computeResources": {**SPOT, "spotIamFleetRole": "arn:aws:iam::1:role/f",
                                       "allocationStrategy": "BEST_FIT_PROGRESSIVE_ORDERED"}},
                 "allocationStrategy BEST_FIT_PROGRESSIVE_ORDERED is only available for EC2 compute resources",
                 marks=rule("ComputeResource.allocationStrategy.type_only"), id="ordered-on-spot"),
    pytest.param({"computeResources": {**EC2, "minvCpus": 4, "desiredvCpus": 2}},
                 "desiredvCpus (2) must be between minvCpus (4) and maxvCpus (16)",
                 marks=rule("ComputeResource.desiredvCpus.between_min_and_max"), id="desired-below-min"),
    pytest.param({"computeResources": {**EC2, "minvCpus": 20}}, "minvCpus (20) must be less than or equal to maxvCpus",
                 marks=rule("ComputeResource.desiredvCpus.between_min_and_max"), id="min-above-max"),
    pytest.param({"computeResources": {**EC2, "scalingPolicy": {"minScaleDownDelayMinutes": 19}}},
                 "scalingPolicy.minScaleDownDelayMinutes (19) must be between 20 and 10080, or 0 to unset it",
                 marks=rule("ComputeScalingPolicy.minScaleDownDelayMinutes.range"), id="scale-down-19"),
    pytest.param({"computeResources": {**EC2, "launchTemplate": {"launchTemplateId": "lt-1",
                                                                 "launchTemplateName": "lt"}}},
                 "Specify either launchTemplateId or launchTemplateName in a launch template, not both",
                 marks=rule("LaunchTemplateSpecification.id_or_name"), id="lt-id-and-name"),
    pytest.param({"computeResources": {**EC2, "launchTemplate": {"launchTemplateId": "lt-1", "overrides": [
        {"launchTemplateId": f"lt-{i}", "targetInstanceTypes": [f"m{i}"]} for i in range(11)]}}},
                 "launchTemplate.overrides can contain at most 10 launch template overrides",
                 marks=rule("LaunchTemplateSpecification.overrides.limit"), id="lt-11-overrides"),
    pytest.param({"computeResources": {**EC2, "ec2Configuration": [{"imageType": "ECS_AL2023"}] * 3}},
                 "computeResources.ec2Configuration can contain at most 2 values",
                 marks=rule("ComputeResource.ec2Configuration.limit"), id="three-ec2-configurations"),
    pytest.param({"computeResources": {**EC2, "capacityTags": {"team": "x"}}},
                 "computeResources.capacityTags is only valid for ECS_MANAGED_INSTANCES compute environments, not EC2",
                 marks=rule("ComputeResource.managed_instances_members.type_only"), id="capacity-tags-on-ec2"),
    pytest.param({"computeResources": EKS_EC2, "eksConfiguration": {**EKS, "kubernetesNamespace": "default"}},
                 "Invalid kubernetesNamespace default", marks=rule("EksConfiguration.kubernetesNamespace.form"),
                 id="namespace-default"),
    pytest.param({"computeResources": EKS_EC2, "eksConfiguration": {**EKS, "kubernetesNamespace": "kube-jobs"}},
                 "Invalid kubernetesNamespace kube-jobs", marks=rule("EksConfiguration.kubernetesNamespace.form"),
                 id="namespace-kube"),
    pytest.param({"computeResources": EKS_EC2, "eksConfiguration": {**EKS, "kubernetesNamespace": "Batch_Jobs"}},
                 "Invalid kubernetesNamespace Batch_Jobs", marks=rule("EksConfiguration.kubernetesNamespace.form"),
                 id="namespace-form"),
]


@pytest.mark.parametrize(("request_members", "message"), CREATE_REFUSALS)
def test_create_compute_environment_refusals(batch_client, request_members, message):
    request = {"type": "MANAGED", **request_members}
    refusal = client_error(batch_client.create_compute_environment, computeEnvironmentName=unique("ce"), **request)
    assert message in refusal
    assert batch_client.describe_compute_environments()["computeEnvironments"] == []


@rule("ComputeResource.spotIamFleetRole.required_for_spot_best_fit", "ComputeResource.allocationStrategy.default")
def test_spot_takes_a_fleet_role_or_a_spot_strategy_and_ec2_defaults_to_best_fit(batch_client):
    with_role = valid_ce(batch_client, {**SPOT, "spotIamFleetRole": "arn:aws:iam::123456789012:role/fleet"})
    spot_strategy = valid_ce(batch_client, {**SPOT, "allocationStrategy": "SPOT_PRICE_CAPACITY_OPTIMIZED"})
    assert with_role["computeResources"]["allocationStrategy"] == "BEST_FIT"
    assert spot_strategy["computeResources"]["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert valid_ce(batch_client)["computeResources"]["allocationStrategy"] == "BEST_FIT"


@rule("CreateComputeEnvironment.eks_cluster.limit")
def test_at_most_five_compute_environments_per_eks_cluster(batch_client):
    for _ in range(5):
        create_ce(batch_client, EKS_EC2, eksConfiguration=EKS)
    other_cluster = {**EKS, "eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/other"}
    create_ce(batch_client, EKS_EC2, eksConfiguration=other_cluster)
    assert client_error(create_ce, client=batch_client, resources=EKS_EC2, eksConfiguration=EKS) == (
        f"Amazon EKS cluster {EKS['eksClusterArn']} already has the maximum of 5 compute environments")


@rule("CreateComputeEnvironment.state.enabled_at_create", "CreateComputeEnvironment.serviceRole.required_for_unmanaged",
      "CreateComputeEnvironment.serviceRole.default", "ComputeResource.subnets.required",
      "ComputeResource.instanceRole.required_for_ec2")
def test_relaxed_create_rules_keep_what_batchemu_accepts(batch_client):
    disabled = valid_ce(batch_client, state="DISABLED")
    assert disabled["state"] == "DISABLED"  # relaxed: AWS documents creation in the ENABLED state only
    unmanaged = valid_ce(batch_client, type="UNMANAGED")  # relaxed: no serviceRole given
    bare = valid_ce(batch_client, without(without(EC2, "subnets"), "instanceRole"))  # relaxed: no VPC, no instances
    service_linked = "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
    assert unmanaged["serviceRole"] == bare["serviceRole"] == service_linked
    assert "subnets" not in bare["computeResources"] and "instanceRole" not in bare["computeResources"]


@rule("CreateComputeEnvironment.computeEnvironmentName.form")
def test_compute_environment_name_form(batch_client):
    assert "computeEnvironmentName must be 1-128 characters" in client_error(create_ce, client=batch_client,
                                                                             name="a.b")
    assert "computeEnvironmentName must be 1-128" in client_error(create_ce, client=batch_client, name="a" * 129)
    assert create_ce(batch_client, name="A-b_9" + "c" * 123) == "A-b_9" + "c" * 123


@rule("ComputeResource.fargate.not_applicable", "ComputeResourceUpdate.securityGroupIds.fargate_limit",
      "ComputeResource.subnets.fargate_limit", "ComputeResourceUpdate.fargate_empty_lists.no_change",
      "UpdatePolicy.fargate_ignored")
def test_fargate_updates(batch_client):
    ce = valid_ce(batch_client, FARGATE)
    name = ce["computeEnvironmentName"]
    update = batch_client.update_compute_environment
    assert "computeResources.minvCpus is not applicable to FARGATE" in client_error(
        update, computeEnvironment=name, computeResources={"minvCpus": 0})
    assert "at most 5 security groups" in client_error(
        update, computeEnvironment=name, computeResources={"securityGroupIds": [f"sg-{i}" for i in range(6)]})
    assert "at most 16 subnets" in client_error(
        update, computeEnvironment=name, computeResources={"subnets": [f"s-{i}" for i in range(17)]})
    update(computeEnvironment=name, computeResources={"subnets": [], "securityGroupIds": [], "maxvCpus": 4},
           updatePolicy={"terminateJobsOnUpdate": True, "jobExecutionTimeoutMinutes": 60})
    after = wait_for_compute_environment(batch_client, name, "VALID")
    assert after["computeResources"] == {**FARGATE, "maxvCpus": 4}  # empty lists change nothing
    assert after["updatePolicy"] == ce["updatePolicy"]  # ignored for Fargate


@rule("ComputeResource.allocationStrategy.type_only", "ComputeResourceUpdate.desiredvCpus.no_decrease",
      "ComputeResource.desiredvCpus.between_min_and_max", "LaunchTemplateSpecification.id_or_name",
      "ComputeResource.ec2Configuration.limit", "ComputeResource.managed_instances_members.type_only",
      "CreateComputeEnvironment.unmanagedvCpus.unmanaged_only",
      "UpdateComputeEnvironment.eksConfiguration.eks_only", "LaunchTemplateSpecification.overrides.limit",
      "ComputeScalingPolicy.minScaleDownDelayMinutes.range", "CreateComputeEnvironment.computeResources.refused_for_unmanaged")
def test_ec2_update_refusals(batch_client):
    name = valid_ce(batch_client, {**EC2, "desiredvCpus": 4})["computeEnvironmentName"]
    unmanaged = valid_ce(batch_client, type="UNMANAGED")["computeEnvironmentName"]

    def refused(**request) -> str:
        return client_error(batch_client.update_compute_environment, computeEnvironment=name, **request)

    assert "allocationStrategy SPOT_CAPACITY_OPTIMIZED is only available for SPOT" in refused(
        computeResources={"allocationStrategy": "SPOT_CAPACITY_OPTIMIZED"})
    assert refused(computeResources={"desiredvCpus": 2}).startswith("Manually scaling down compute environment is "
                                                                    "not supported.")
    assert "desiredvCpus (17) must be between minvCpus (0) and maxvCpus (16)" in refused(
        computeResources={"desiredvCpus": 17})
    assert "not both" in refused(computeResources={"launchTemplate": {"launchTemplateId": "a",
                                                                      "launchTemplateName": "b"}})
    assert "at most 10 launch template overrides" in refused(computeResources={"launchTemplate": {
        "launchTemplateName": "a", "overrides": [{"launchTemplateName": f"o{i}"} for i in range(11)]}})
    assert "at most 2 values" in refused(computeResources={"ec2Configuration": [{"imageType": "ECS_AL2"}] * 3})
    assert "capacityTags is only valid for ECS_MANAGED_INSTANCES" in refused(computeResources={"capacityTags": {"a": "b"}})
    assert "must be between 20 and 10080" in refused(computeResources={"scalingPolicy": {"minScaleDownDelayMinutes": 10081}})
    assert "unmanagedvCpus can only be specified for an UNMANAGED" in refused(unmanagedvCpus=2)
    assert f"Compute environment {name} is not an Amazon EKS compute environment" in refused(
        eksConfiguration={"accessEntry": {"desiredState": "ENABLED"}})
    assert "computeResources can't be specified for an UNMANAGED" in client_error(
        batch_client.update_compute_environment, computeEnvironment=unmanaged, computeResources={"maxvCpus": 2})
    assert wait_for_compute_environment(batch_client, name, "VALID")["computeResources"]["desiredvCpus"] == 4


@rule("ComputeResourceUpdate.desiredvCpus.not_for_eks")
def test_eks_desired_vcpus_cannot_be_updated(batch_client):
    name = valid_ce(batch_client, EKS_EC2, eksConfiguration=EKS)["computeEnvironmentName"]
    assert client_error(batch_client.update_compute_environment, computeEnvironment=name,
                        computeResources={"desiredvCpus": 4}) == \
        "computeResources.desiredvCpus can't be updated for Amazon EKS compute environments"
    batch_client.update_compute_environment(computeEnvironment=name, computeResources={"maxvCpus": 32})
    assert wait_for_compute_environment(batch_client, name, "VALID")["computeResources"]["maxvCpus"] == 32


@rule("UpdateComputeEnvironment.serviceRole.kind_kept")
def test_service_role_keeps_its_kind(batch_client):
    linked = valid_ce(batch_client)["computeEnvironmentName"]
    regular = valid_ce(batch_client, serviceRole=ROLE)["computeEnvironmentName"]
    message = "serviceRole can't change between the AWSServiceRoleForBatch service-linked role and a regular IAM role"
    assert client_error(batch_client.update_compute_environment, computeEnvironment=linked, serviceRole=ROLE) == message
    service_linked = "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
    assert client_error(batch_client.update_compute_environment, computeEnvironment=regular,
                        serviceRole=service_linked) == message
    batch_client.update_compute_environment(computeEnvironment=regular, serviceRole=ROLE + "2")
    assert wait_for_compute_environment(batch_client, regular, "VALID")["serviceRole"] == ROLE + "2"


@rule("UpdatePolicy.defaults")
def test_update_policy_defaults(batch_client):
    assert valid_ce(batch_client)["updatePolicy"] == {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 30}


@rule("DeleteComputeEnvironment.state.disabled_first", "DeleteComputeEnvironment.job_queues.disassociated_first",
      "DeleteJobQueue.state.disabled_first", "DeleteJobQueue.compute_environments.stay_associated")
def test_delete_rules_of_compute_environments_and_queues(batch_client):
    queue = make_queue(batch_client)
    ce, name = queue["ce"], queue["name"]
    assert client_error(batch_client.delete_compute_environment, computeEnvironment=ce) == \
        f"Cannot delete, compute environment {ce} must be DISABLED first"
    batch_client.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    wait_for_compute_environment(batch_client, ce, "VALID")
    assert client_error(batch_client.delete_compute_environment, computeEnvironment=ce) == \
        "Cannot delete, found existing JobQueue relationship"
    assert client_error(batch_client.delete_job_queue, jobQueue=name) == \
        f"Cannot delete, job queue {name} must be DISABLED first"
    batch_client.update_job_queue(jobQueue=name, state="DISABLED")
    wait_for_job_queue(batch_client, name, "VALID")
    batch_client.delete_job_queue(jobQueue=name)  # its compute environment still associated
    wait_for_job_queue(batch_client, name, None)
    batch_client.delete_compute_environment(computeEnvironment=ce)
    wait_for_compute_environment(batch_client, ce, None)


@rule("DescribeComputeEnvironments.computeEnvironments.limit", "DescribeComputeEnvironments.maxResults.range",
      "DescribeComputeEnvironments.unknown.left_out", "DescribeJobQueues.jobQueues.limit",
      "DescribeJobQueues.maxResults.range")
def test_describe_limits_and_unknown_names(batch_client):
    known = create_ce(batch_client)
    found = batch_client.describe_compute_environments(computeEnvironments=["nope", known])["computeEnvironments"]
    assert [ce["computeEnvironmentName"] for ce in found] == [known]
    assert batch_client.describe_job_queues(jobQueues=["nope"])["jobQueues"] == []
    many = [f"n{i}" for i in range(101)]
    assert client_error(batch_client.describe_compute_environments, computeEnvironments=many) == \
        "computeEnvironments can contain at most 100 names or ARNs"
    assert client_error(batch_client.describe_job_queues, jobQueues=many) == \
        "jobQueues can contain at most 100 names or ARNs"
    for size in (0, 101):
        assert client_error(batch_client.describe_compute_environments, maxResults=size) == \
            "maxResults must be between 1 and 100"
        assert client_error(batch_client.describe_job_queues, maxResults=size) == "maxResults must be between 1 and 100"


def order(*names: str) -> list[dict]:
    return [{"order": i + 1, "computeEnvironment": name} for i, name in enumerate(names)]


@rule("CreateJobQueue.priority.range")
def test_job_queue_priority_is_0_to_1000(batch_client):
    ce = create_ce(batch_client)
    for priority in (-1, 1001):
        assert client_error(batch_client.create_job_queue, jobQueueName=unique("jq"), priority=priority,
                            computeEnvironmentOrder=order(ce)) == "priority must be between 0 and 1000"
    name = unique("jq")
    batch_client.create_job_queue(jobQueueName=name, priority=1000, computeEnvironmentOrder=order(ce))
    assert wait_for_job_queue(batch_client, name)["priority"] == 1000
    assert client_error(batch_client.update_job_queue, jobQueue=name, priority=1001) == \
        "priority must be between 0 and 1000"
    batch_client.update_job_queue(jobQueue=name, priority=0)
    assert wait_for_job_queue(batch_client, name)["priority"] == 0


@rule("CreateJobQueue.jobQueueName.form", "CreateJobQueue.computeEnvironmentOrder.limit",
      "CreateJobQueue.computeEnvironmentOrder.no_mixing", "CreateJobQueue.schedulingPolicyArn.exists",
      "JobStateTimeLimitAction.maxTimeSeconds.range", "JobStateTimeLimitAction.action.by_queue_type",
      "CreateJobQueue.serviceEnvironmentOrder.exclusive")
def test_create_job_queue_refusals(batch_client):
    ec2 = [create_ce(batch_client) for _ in range(4)]
    fargate = create_ce(batch_client, FARGATE)

    def refused(**request) -> str:
        request = {"jobQueueName": unique("jq"), "priority": 1, "computeEnvironmentOrder": order(ec2[0]), **request}
        return client_error(batch_client.create_job_queue, **request)

    assert "jobQueueName must be 1-128 characters" in refused(jobQueueName="a b")
    assert refused(computeEnvironmentOrder=order(*ec2)) == \
        "computeEnvironmentOrder can contain at most 3 compute environments"
    assert "EC2 and Fargate compute environments can't be mixed" in refused(computeEnvironmentOrder=order(ec2[0],
                                                                                                         fargate))
    missing = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/nope"
    assert refused(schedulingPolicyArn=missing) == f"Scheduling policy {missing} does not exist"
    for seconds in (599, 86401):
        assert refused(jobStateTimeLimitActions=[{**CANCEL, "maxTimeSeconds": seconds}]) == \
            "jobStateTimeLimitActions maxTimeSeconds must be between 600 and 86400"
    assert refused(jobStateTimeLimitActions=[{**CANCEL, "action": "TERMINATE"}]) == (
        "jobStateTimeLimitActions action TERMINATE is not supported for a ECS job queue: the only supported action "
        "is CANCEL")
    assert "mutually exclusive" in refused(serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "se"}])
    assert batch_client.describe_job_queues()["jobQueues"] == []


@rule("JobStateTimeLimitAction.action.by_queue_type", "JobStateTimeLimitAction.maxTimeSeconds.range")
def test_time_limit_actions_by_queue_type_on_update(batch_client):
    ecs = make_queue(batch_client)["name"]
    sagemaker = quota_queue(batch_client)["jobQueueName"]
    update = batch_client.update_job_queue
    assert "the only supported action is CANCEL" in client_error(
        update, jobQueue=ecs, jobStateTimeLimitActions=[{**CANCEL, "action": "TERMINATE"}])
    assert "action CANCEL is not supported for a SAGEMAKER_TRAINING job queue: the only supported action is " \
           "TERMINATE" in client_error(update, jobQueue=sagemaker, jobStateTimeLimitActions=[CANCEL])
    assert "between 600 and 86400" in client_error(update, jobQueue=ecs,
                                                   jobStateTimeLimitActions=[{**CANCEL, "maxTimeSeconds": 86401}])
    terminate = {**CANCEL, "reason": "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE", "action": "TERMINATE"}
    update(jobQueue=sagemaker, jobStateTimeLimitActions=[terminate])
    assert wait_for_job_queue(batch_client, sagemaker)["jobStateTimeLimitActions"] == [terminate]


@rule("JobStateTimeLimitAction.reason.values")
def test_time_limit_reason_is_free_text(batch_client):
    free = {**CANCEL, "reason": "stuck for too long"}
    queue = make_queue(batch_client, jobStateTimeLimitActions=[free])
    assert wait_for_job_queue(batch_client, queue["name"])["jobStateTimeLimitActions"] == [free]


@rule("CreateJobQueue.serviceEnvironmentOrder.limit")
def test_a_job_queue_orders_at_most_one_service_environment(batch_client):
    environments = [batch_client.create_service_environment(
        serviceEnvironmentName=unique("se"), serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}])["serviceEnvironmentArn"] for _ in range(2)]
    assert client_error(batch_client.create_job_queue, jobQueueName=unique("jq"), priority=1, serviceEnvironmentOrder=[
        {"order": i + 1, "serviceEnvironment": arn} for i, arn in enumerate(environments)]) == \
        "serviceEnvironmentOrder can contain at most 1 service environment"


@rule("ComputeResource.instanceTypes.same_architecture", "CreateJobQueue.computeEnvironmentOrder.same_architecture")
def test_architectures_are_not_checked(batch_client):
    mixed = valid_ce(batch_client, {**EC2, "instanceTypes": ["m6i", "m6g"]})  # not followed: x86 with ARM
    arm = valid_ce(batch_client, {**EC2, "instanceTypes": ["default_arm64"]})
    x86 = valid_ce(batch_client, {**EC2, "instanceTypes": ["default_x86_64"]})
    assert mixed["computeResources"]["instanceTypes"] == ["m6i", "m6g"]
    name = unique("jq")
    batch_client.create_job_queue(jobQueueName=name, priority=1, computeEnvironmentOrder=order(
        arm["computeEnvironmentName"], x86["computeEnvironmentName"]))
    assert len(wait_for_job_queue(batch_client, name)["computeEnvironmentOrder"]) == 2


@rule("CreateComputeEnvironment.count.limit", "CreateJobQueue.count.limit")
def test_no_region_quota_on_compute_environments_and_queues(batch_client):
    names = [create_ce(batch_client) for _ in range(51)]  # not followed: AWS stops at 50
    for i in range(51):
        batch_client.create_job_queue(jobQueueName=f"jq-{i}", priority=1, computeEnvironmentOrder=order(names[i]))
    assert len(batch_client.describe_compute_environments()["computeEnvironments"]) == 51
    assert len(batch_client.describe_job_queues()["jobQueues"]) == 51


@rule("CreateJobQueue.computeEnvironmentOrder.valid_state")
def test_a_creating_compute_environment_can_be_ordered(batch_client):
    ce = create_ce(batch_client)  # not waited for: still CREATING or already VALID
    name = unique("jq")
    batch_client.create_job_queue(jobQueueName=name, priority=1, computeEnvironmentOrder=order(ce))
    assert wait_for_job_queue(batch_client, name)["status"] == "VALID"


@rule("UpdateJobQueue.schedulingPolicyArn.fifo_stays_fifo", "UpdateJobQueue.schedulingPolicyArn.replace_not_remove")
def test_scheduling_policy_attachment(batch_client):
    first = batch_client.create_scheduling_policy(name=unique("sp"), fairsharePolicy={})["arn"]
    second = batch_client.create_scheduling_policy(name=unique("sp"), fairsharePolicy={})["arn"]
    fifo = make_queue(batch_client)["name"]
    fair = make_queue(batch_client, schedulingPolicyArn=first)["name"]
    assert client_error(batch_client.update_job_queue, jobQueue=fifo, schedulingPolicyArn=first) == \
        f"Job queue {fifo} has no scheduling policy: a FIFO job queue can't have one added"
    assert "does not exist" in client_error(batch_client.update_job_queue, jobQueue=fair, schedulingPolicyArn="")
    batch_client.update_job_queue(jobQueue=fair, schedulingPolicyArn=second)
    assert wait_for_job_queue(batch_client, fair)["schedulingPolicyArn"] == second


POLICY_REFUSALS = [
    pytest.param({"fairsharePolicy": {"shareDecaySeconds": 604801}}, "shareDecaySeconds must be between 0 and 604800",
                 marks=rule("FairsharePolicy.shareDecaySeconds.range"), id="decay"),
    pytest.param({"fairsharePolicy": {"computeReservation": 100}}, "computeReservation must be between 0 and 99",
                 marks=rule("FairsharePolicy.computeReservation.range"), id="reservation"),
    pytest.param({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 0.00001}]}},
                 "weightFactor of a must be between 0.0001 and 999.9999",
                 marks=rule("ShareAttributes.weightFactor.range"), id="weight-low"),
    pytest.param({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 1000}]}},
                 "weightFactor of a must be between 0.0001 and 999.9999",
                 marks=rule("ShareAttributes.weightFactor.range"), id="weight-high"),
    pytest.param({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "user-a"}]}},
                 "Invalid shareIdentifier user-a", marks=rule("ShareAttributes.shareIdentifier.form"), id="form"),
    pytest.param({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a" * 256}]}},
                 "Invalid shareIdentifier", marks=rule("ShareAttributes.shareIdentifier.form"), id="256"),
    pytest.param({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "UserA*"},
                                                            {"shareIdentifier": "UserA1"}]}},
                 "Share identifiers UserA* and UserA1 overlap", marks=rule("ShareAttributes.shareIdentifier.no_overlap"),
                 id="overlap"),
    pytest.param({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": f"s{i}"} for i in range(501)]}},
                 "shareDistribution can contain at most 500 share identifiers",
                 marks=rule("ShareAttributes.shareIdentifier.limit"), id="501"),
    pytest.param({"fairsharePolicy": {}, "quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}},
                 "Only one of fairsharePolicy or quotaSharePolicy can be set",
                 marks=rule("CreateSchedulingPolicy.policy.one_of"), id="both"),
]


@pytest.mark.parametrize(("policy", "message"), POLICY_REFUSALS)
def test_scheduling_policy_refusals_on_create_and_update(batch_client, policy, message):
    assert message in client_error(batch_client.create_scheduling_policy, name=unique("sp"), **policy)
    arn = batch_client.create_scheduling_policy(name=unique("sp"), fairsharePolicy={})["arn"]
    assert message in client_error(batch_client.update_scheduling_policy, arn=arn, **policy)


@rule("CreateSchedulingPolicy.name.form", "UpdateSchedulingPolicy.policy.type_kept", "DeleteSchedulingPolicy.in_use",
      "DescribeSchedulingPolicies.arns.limit", "DescribeSchedulingPolicies.unknown.left_out",
      "ListSchedulingPolicies.maxResults.range")
def test_scheduling_policy_operations(batch_client):
    assert "is not supported pattern" in client_error(batch_client.create_scheduling_policy, name="a b")
    fair = batch_client.create_scheduling_policy(name=unique("sp"), fairsharePolicy={})["arn"]
    assert client_error(batch_client.update_scheduling_policy, arn=fair,
                        quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"}) == \
        "A fairsharePolicy can't be changed to a quotaSharePolicy"
    make_queue(batch_client, schedulingPolicyArn=fair)
    assert client_error(batch_client.delete_scheduling_policy, arn=fair) == \
        "Cannot delete, found existing JobQueue relationship"
    assert client_error(batch_client.describe_scheduling_policies, arns=[fair] * 101) == \
        "arns can contain at most 100 scheduling policy ARNs"
    found = batch_client.describe_scheduling_policies(arns=[fair, fair + "-nope"])["schedulingPolicies"]
    assert [policy["arn"] for policy in found] == [fair]
    for size in (0, 101):
        assert client_error(batch_client.list_scheduling_policies, maxResults=size) == \
            "maxResults must be between 1 and 100"


@rule("FairsharePolicy.shareDecaySeconds.zero_default", "ShareAttributes.weightFactor.default",
      "ShareAttributes.shareIdentifier.prefix")
def test_fair_share_defaults_and_prefix_weights():
    assert DEFAULT_DECAY_SECONDS == 600
    fair = FairShare(weights=[("UserA*", 0.5), ("UserAB*", 0.25), ("exact", 2.0)])
    assert fair.weight("unlisted") == 1.0
    assert fair.weight("UserA1") == 0.5 and fair.weight("UserAB7") == 0.25  # the longest prefix wins
    assert fair.weight("exact") == 2.0 and fair.weight("exactly") == 1.0


@rule("UpdateQuotaShare.state.disabled_takes_no_jobs")
def test_a_disabled_quota_share_takes_no_new_jobs(batch_client):
    queue = quota_queue(batch_client)["jobQueueName"]
    arn = create_share(batch_client, queue, "qs-off", state="DISABLED")["quotaShareArn"]
    wait_share(batch_client, arn)

    def submit():
        return batch_client.submit_service_job(jobName=unique("sj"), jobQueue=queue, serviceJobType="SAGEMAKER_TRAINING",
                                               serviceRequestPayload=payload(), quotaShareName="qs-off")

    assert client_error(submit) == "quotaShare qs-off is DISABLED: a disabled quota share accepts no new jobs"
    batch_client.update_quota_share(quotaShareArn=arn, state="ENABLED")
    wait_share(batch_client, arn)
    assert submit()["jobId"]


@rule("ComputeResourceUpdate.type.managed_instances_fixed", "ComputeResourceUpdate.empty_string.removes",
      "Ec2Configuration.default")
def test_ec2_update_members_and_image_defaults(batch_client):
    ce = valid_ce(batch_client, {**EC2, "ec2KeyPair": "key", "imageId": "ami-1",
                                 "launchTemplate": {"launchTemplateName": "lt", "version": "$Latest"}})
    name = ce["computeEnvironmentName"]
    assert ce["computeResources"]["ec2Configuration"] == [{"imageType": "ECS_AL2023"}]
    eks = valid_ce(batch_client, EKS_EC2, eksConfiguration=EKS)
    assert eks["computeResources"]["ec2Configuration"] == [{"imageType": "EKS_AL2023"}]
    assert client_error(batch_client.update_compute_environment, computeEnvironment=name,
                        computeResources={"type": "ECS_MANAGED_INSTANCES"}) == (
        "computeResources.type can't change from EC2 to ECS_MANAGED_INSTANCES: the type can't change to or from "
        "ECS_MANAGED_INSTANCES")
    batch_client.update_compute_environment(computeEnvironment=name, computeResources={
        "ec2KeyPair": "", "imageId": "", "launchTemplate": {"launchTemplateName": ""}})
    resources = wait_for_compute_environment(batch_client, name, "VALID")["computeResources"]
    assert not {"ec2KeyPair", "imageId", "launchTemplate"} & set(resources)


@rule("ComputeResource.type.ecs_managed_instances")
def test_ecs_managed_instances_are_not_built(batch_client):
    with pytest.raises(ClientError) as caught:
        create_ce(batch_client, {"type": "ECS_MANAGED_INSTANCES", "maxvCpus": 4})
    assert caught.value.response["Error"]["Code"] == "NotImplemented"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


@rule("ComputeEnvironmentDetail.orchestration.present_when", "EksConfiguration.accessEntry.present_when_given")
def test_orchestration_members(batch_client):
    ecs = valid_ce(batch_client)
    assert ecs["containerOrchestrationType"] == "ECS" and "eksConfiguration" not in ecs
    assert ecs["ecsClusterArn"].startswith("arn:aws:ecs:")
    eks = valid_ce(batch_client, EKS_EC2, eksConfiguration=EKS)
    assert eks["containerOrchestrationType"] == "EKS" and eks["eksConfiguration"] == EKS  # no accessEntry made up
    entry = {**EKS, "accessEntry": {"desiredState": "ENABLED"}}
    cluster = {**entry, "eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/with-entry"}
    assert valid_ce(batch_client, EKS_EC2, eksConfiguration=cluster)["eksConfiguration"]["accessEntry"][
        "desiredState"] == "ENABLED"


@rule("CreateJobQueue.jobQueueType.derived")
def test_job_queue_type_follows_its_compute_environments(batch_client):
    kinds = {"ECS": create_ce(batch_client), "ECS_FARGATE": create_ce(batch_client, FARGATE),
             "EKS": create_ce(batch_client, EKS_EC2, eksConfiguration=EKS)}
    for kind, ce in kinds.items():
        name = unique("jq")
        batch_client.create_job_queue(jobQueueName=name, priority=1, computeEnvironmentOrder=order(ce))
        assert wait_for_job_queue(batch_client, name)["jobQueueType"] == kind
    assert wait_for_job_queue(batch_client, quota_queue(batch_client)["jobQueueName"])["jobQueueType"] == \
        "SAGEMAKER_TRAINING"


@rule("CreateJobQueue.serviceEnvironmentOrder.quota_managed_alone")
def test_a_quota_managed_service_environment_takes_one_job_queue(batch_client):
    queue = quota_queue(batch_client)
    environment = batch_client.describe_job_queues(jobQueues=[queue["jobQueueName"]])[
        "jobQueues"][0]["serviceEnvironmentOrder"][0]["serviceEnvironment"]
    assert client_error(batch_client.create_job_queue, jobQueueName=unique("jq"), priority=1,
                        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": environment}]) == (
        f"serviceEnvironment {environment} already has a job queue: a service environment with quota management "
        "takes one job queue only")
    plain = batch_client.create_service_environment(
        serviceEnvironmentName=unique("se"), serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}])["serviceEnvironmentArn"]
    for _ in range(2):  # without quota management a service environment takes several queues
        name = unique("jq")
        batch_client.create_job_queue(jobQueueName=name, priority=1,
                                      serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": plain}])
        wait_for_job_queue(batch_client, name)


@rule("ComputeResource.tags.not_resource_tags")
def test_compute_resource_tags_are_not_the_resource_tags(batch_client):
    arn = valid_ce(batch_client, {**EC2, "tags": {"Name": "Batch Instance"}}, tags={"team": "x"})["computeEnvironmentArn"]
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "x"}
    described = batch_client.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"][0]
    assert described["computeResources"]["tags"] == {"Name": "Batch Instance"}
