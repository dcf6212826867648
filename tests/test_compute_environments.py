"""Compute environments end to end: a real boto3 client against a real batchemu server."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from batchemu.config import Config
from batchemu.model.compute_capacity import capacity_vcpus
from tests.conftest import wait_for_compute_environment

EC2 = {"type": "EC2", "maxvCpus": 16, "instanceTypes": ["optimal"], "subnets": ["subnet-1"],
       "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"}
FARGATE = {"type": "FARGATE", "maxvCpus": 8, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}


def create(client, name: str, resources: dict | None = None, **extra) -> dict:
    if "type" not in extra:
        extra["type"] = "MANAGED"
    if extra["type"] == "MANAGED":
        extra["computeResources"] = resources or EC2
    return client.create_compute_environment(computeEnvironmentName=name, **extra)


def describe(client, ref: str) -> dict | None:
    found = client.describe_compute_environments(computeEnvironments=[ref])["computeEnvironments"]
    return found[0] if found else None


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_create_returns_name_and_arn(batch_client):
    result = create(batch_client, "ce-1")
    assert result["computeEnvironmentName"] == "ce-1"
    assert result["computeEnvironmentArn"] == "arn:aws:batch:us-east-1:123456789012:compute-environment/ce-1"


def test_managed_ec2_detail_reaches_valid_with_defaults(batch_client):
    arn = create(batch_client, "ce-ec2", tags={"team": "x"})["computeEnvironmentArn"]
    ce = wait_for_compute_environment(batch_client, arn, "VALID")
    assert ce["statusReason"] == "ComputeEnvironment Healthy"
    assert ce["computeEnvironmentName"] == "ce-ec2"
    assert ce["type"] == "MANAGED"
    assert ce["state"] == "ENABLED"
    assert ce["containerOrchestrationType"] == "ECS"
    assert ce["tags"] == {"team": "x"}
    assert ce["serviceRole"] == ("arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/"
                                 "AWSServiceRoleForBatch")
    assert ce["ecsClusterArn"].startswith("arn:aws:ecs:us-east-1:123456789012:cluster/ce-ec2_Batch_")
    assert ce["uuid"]
    assert ce["updatePolicy"] == {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 30}
    resources = ce["computeResources"]
    assert resources["type"] == "EC2"  # Metaflow reads this of the queue's first CE
    assert (resources["minvCpus"], resources["maxvCpus"], resources["desiredvCpus"]) == (0, 16, 0)
    assert resources["instanceTypes"] == ["optimal"]
    assert resources["subnets"] == ["subnet-1"]
    assert "batchemu" not in ce


def test_fargate_detail_keeps_what_was_given(batch_client):
    create(batch_client, "ce-fargate", FARGATE, serviceRole="arn:aws:iam::123456789012:role/Batch")
    ce = wait_for_compute_environment(batch_client, "ce-fargate", "VALID")
    assert ce["computeResources"] == {"type": "FARGATE", "maxvCpus": 8, "subnets": ["subnet-1"],
                                      "securityGroupIds": ["sg-1"]}
    assert ce["serviceRole"] == "arn:aws:iam::123456789012:role/Batch"


def test_unmanaged_detail(batch_client):
    create(batch_client, "ce-unmanaged", type="UNMANAGED", unmanagedvCpus=4, state="DISABLED")
    ce = wait_for_compute_environment(batch_client, "ce-unmanaged", "VALID")
    assert ce["type"] == "UNMANAGED"
    assert ce["unmanagedvCpus"] == 4
    assert ce["state"] == "DISABLED"
    assert "computeResources" not in ce


def test_eks_compute_environment(batch_client):
    eks = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c", "kubernetesNamespace": "batch"}
    create(batch_client, "ce-eks", {**EC2, "allocationStrategy": "BEST_FIT_PROGRESSIVE"}, eksConfiguration=eks)
    ce = wait_for_compute_environment(batch_client, "ce-eks", "VALID")
    assert ce["containerOrchestrationType"] == "EKS"
    assert ce["eksConfiguration"] == eks
    assert "ecsClusterArn" not in ce


def test_duplicate_name_is_rejected(batch_client):
    create(batch_client, "dup")
    code, message = error_of(create, client=batch_client, name="dup")
    assert (code, message) == ("ClientException", "Object already exists")


@pytest.mark.parametrize("name", ["has space", "x" * 129, "dot.ted", ""])
def test_bad_names_are_rejected(batch_client, name):
    code, message = error_of(create, client=batch_client, name=name)
    assert code == "ClientException"
    assert "computeEnvironmentName" in message or "constraint" in message


def test_name_of_128_characters_is_accepted(batch_client):
    assert create(batch_client, "A-_9" * 32)["computeEnvironmentName"] == "A-_9" * 32


@pytest.mark.parametrize("resources, fragment", [
    ({**EC2, "minvCpus": 8, "maxvCpus": 4}, "minvCpus (8) must be less than or equal to maxvCpus (4)"),
    ({**EC2, "minvCpus": 2, "desiredvCpus": 1}, "desiredvCpus (1) must be between"),
    ({**EC2, "desiredvCpus": 17}, "desiredvCpus (17) must be between"),
    ({**FARGATE, "instanceTypes": ["optimal"]}, "computeResources.instanceTypes is not applicable to FARGATE"),
    ({**FARGATE, "type": "FARGATE_SPOT", "minvCpus": 0}, "computeResources.minvCpus is not applicable"),
    ({**FARGATE, "desiredvCpus": 0}, "computeResources.desiredvCpus is not applicable"),
    ({**FARGATE, "scalingPolicy": {"minScaleDownDelayMinutes": 20}}, "computeResources.scalingPolicy is not applicable"),
])
def test_bad_compute_resources_are_rejected(batch_client, resources, fragment):
    code, message = error_of(create, client=batch_client, name="bad", resources=resources)
    assert code == "ClientException"
    assert fragment in message


def test_managed_needs_compute_resources(batch_client):
    code, message = error_of(batch_client.create_compute_environment, computeEnvironmentName="m",
                             type="MANAGED")
    assert (code, message) == ("ClientException",
                               "computeResources must be specified for a MANAGED compute environment")


def test_unmanaged_takes_no_compute_resources(batch_client):
    code, message = error_of(batch_client.create_compute_environment, computeEnvironmentName="u",
                             type="UNMANAGED", computeResources=EC2)
    assert code == "ClientException"
    assert "UNMANAGED" in message


def test_missing_max_vcpus_is_rejected_by_the_server(batchemu_server):
    unchecked = boto3.client("batch", endpoint_url=batchemu_server.url, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing",
                             config=BotoConfig(parameter_validation=False))
    code, message = error_of(create, client=unchecked, name="nomax", resources={"type": "EC2"})
    assert code == "ClientException"
    assert "maxvCpus" in message


def test_update_state_and_vcpus_goes_through_updating_to_valid(batch_client):
    # A regular role can be replaced by another (not by the service-linked role: API_UpdateComputeEnvironment).
    create(batch_client, "upd", {**EC2, "minvCpus": 1, "desiredvCpus": 2}, serviceRole="arn:aws:iam::123456789012:role/Batch")
    wait_for_compute_environment(batch_client, "upd", "VALID")
    result = batch_client.update_compute_environment(
        computeEnvironment="upd", state="DISABLED", computeResources={"maxvCpus": 64, "minvCpus": 4},
        serviceRole="arn:aws:iam::123456789012:role/Other",
        updatePolicy={"terminateJobsOnUpdate": True})
    assert result["computeEnvironmentArn"].endswith(":compute-environment/upd")
    ce = wait_for_compute_environment(batch_client, result["computeEnvironmentArn"], "VALID")
    assert ce["state"] == "DISABLED"
    resources = ce["computeResources"]
    assert (resources["minvCpus"], resources["maxvCpus"], resources["desiredvCpus"]) == (4, 64, 4)
    assert resources["instanceTypes"] == ["optimal"]  # untouched members survive
    assert ce["serviceRole"] == "arn:aws:iam::123456789012:role/Other"
    assert ce["updatePolicy"] == {"terminateJobsOnUpdate": True, "jobExecutionTimeoutMinutes": 30}


def test_update_unmanaged_vcpus(batch_client):
    create(batch_client, "um", type="UNMANAGED")
    batch_client.update_compute_environment(computeEnvironment="um", unmanagedvCpus=12)
    assert wait_for_compute_environment(batch_client, "um", "VALID")["unmanagedvCpus"] == 12


def test_update_rejects_scaling_down_desired_and_bad_bounds(batch_client):
    create(batch_client, "scale", {**EC2, "desiredvCpus": 4})
    code, message = error_of(batch_client.update_compute_environment, computeEnvironment="scale",
                             computeResources={"desiredvCpus": 2})
    assert code == "ClientException"
    assert message == ("Manually scaling down compute environment is not supported. Disconnecting job queues from "
                       "compute environment will cause it to scale-down to minvCpus.")
    code, message = error_of(batch_client.update_compute_environment, computeEnvironment="scale",
                             computeResources={"desiredvCpus": 17})
    assert (code, message) == ("ClientException", "desiredvCpus (17) must be between minvCpus (0) and maxvCpus (16)")
    code, message = error_of(batch_client.update_compute_environment, computeEnvironment="scale",
                             computeResources={"maxvCpus": 2, "minvCpus": 3})
    assert "minvCpus (3) must be less than or equal to maxvCpus (2)" in message
    assert describe(batch_client, "scale")["computeResources"]["desiredvCpus"] == 4  # refused updates change nothing


def test_update_may_scale_desired_up_by_hand(batch_client):
    create(batch_client, "up", {**EC2, "desiredvCpus": 4})
    batch_client.update_compute_environment(computeEnvironment="up", computeResources={"desiredvCpus": 6})
    assert wait_for_compute_environment(batch_client, "up", "VALID")["computeResources"]["desiredvCpus"] == 6


@pytest.mark.parametrize("minutes", [1, 19, 10081, -5])
def test_scale_down_delay_outside_its_range_is_rejected(batch_client, minutes):
    code, message = error_of(create, client=batch_client, name="delay",
                             resources={**EC2, "scalingPolicy": {"minScaleDownDelayMinutes": minutes}})
    assert code == "ClientException"
    assert message == f"scalingPolicy.minScaleDownDelayMinutes ({minutes}) must be between 20 and 10080, or 0 to unset it"


def test_scale_down_delay_is_stored_and_zero_unsets_it(batch_client):
    create(batch_client, "delay", {**EC2, "scalingPolicy": {"minScaleDownDelayMinutes": 20}})
    assert wait_for_compute_environment(batch_client, "delay", "VALID")["computeResources"]["scalingPolicy"] == {
        "minScaleDownDelayMinutes": 20}
    batch_client.update_compute_environment(computeEnvironment="delay",
                                            computeResources={"scalingPolicy": {"minScaleDownDelayMinutes": 0}})
    assert wait_for_compute_environment(batch_client, "delay", "VALID")["computeResources"]["scalingPolicy"] == {
        "minScaleDownDelayMinutes": 0}


def test_update_cannot_turn_fargate_into_ec2(batch_client):
    create(batch_client, "fg", FARGATE)
    code, message = error_of(batch_client.update_compute_environment, computeEnvironment="fg",
                             computeResources={"type": "EC2"})
    assert code == "ClientException"
    assert "FARGATE to EC2" in message


def test_update_unknown_compute_environment(batch_client):
    code, message = error_of(batch_client.update_compute_environment, computeEnvironment="nope",
                             state="DISABLED")
    assert (code, message) == ("ClientException", "computeEnvironment nope does not exist")


def test_delete_while_enabled_is_rejected(batch_client):
    create(batch_client, "en")
    code, message = error_of(batch_client.delete_compute_environment, computeEnvironment="en")
    assert (code, message) == ("ClientException", "Cannot delete, compute environment en must be DISABLED first")
    assert describe(batch_client, "en") is not None


def test_delete_unknown_compute_environment(batch_client):
    code, message = error_of(batch_client.delete_compute_environment, computeEnvironment="ghost")
    assert (code, message) == ("ClientException", "computeEnvironment ghost does not exist")


def test_disable_then_delete_removes_it_and_frees_the_name(batch_client):
    arn = create(batch_client, "gone")["computeEnvironmentArn"]
    batch_client.update_compute_environment(computeEnvironment="gone", state="DISABLED")
    assert batch_client.delete_compute_environment(computeEnvironment=arn)["ResponseMetadata"][
        "HTTPStatusCode"] == 200
    wait_for_compute_environment(batch_client, arn, None)
    assert create(batch_client, "gone")["computeEnvironmentArn"] == arn


def test_delete_while_a_queue_uses_it_is_rejected(batch_client):
    arn = create(batch_client, "used")["computeEnvironmentArn"]
    batch_client.create_job_queue(jobQueueName="q", priority=1,
                                  computeEnvironmentOrder=[{"order": 1, "computeEnvironment": arn}])
    batch_client.update_compute_environment(computeEnvironment="used", state="DISABLED")
    code, message = error_of(batch_client.delete_compute_environment, computeEnvironment="used")
    assert (code, message) == ("ClientException", "Cannot delete, found existing JobQueue relationship")


def test_describe_by_name_and_by_arn_and_unknown_names_are_absent(batch_client):
    arn_a = create(batch_client, "a")["computeEnvironmentArn"]
    arn_b = create(batch_client, "b")["computeEnvironmentArn"]
    found = batch_client.describe_compute_environments(computeEnvironments=["a", arn_b, "missing"])
    assert [ce["computeEnvironmentArn"] for ce in found["computeEnvironments"]] == [arn_a, arn_b]
    assert "nextToken" not in found


def test_describe_pages_through_everything(batch_client):
    names = [f"page-{i}" for i in range(7)]
    for name in names:
        create(batch_client, name)
    first = batch_client.describe_compute_environments(maxResults=3)
    assert [ce["computeEnvironmentName"] for ce in first["computeEnvironments"]] == names[:3]
    seen = []
    paginator = batch_client.get_paginator("describe_compute_environments")
    for page in paginator.paginate(PaginationConfig={"PageSize": 3}):
        assert len(page["computeEnvironments"]) <= 3
        seen += [ce["computeEnvironmentName"] for ce in page["computeEnvironments"]]
    assert seen == names


@pytest.mark.parametrize("max_results", [0, 101])
def test_describe_max_results_bounds(batch_client, max_results):
    code, message = error_of(batch_client.describe_compute_environments, maxResults=max_results)
    assert (code, message) == ("ClientException", "maxResults must be between 1 and 100")


def test_describe_rejects_names_with_max_results_and_bad_tokens(batch_client):
    code, message = error_of(batch_client.describe_compute_environments, computeEnvironments=["a"],
                             maxResults=5)
    assert (code, message) == ("ClientException", "ComputeEnvironments and MaxResults cannot both be set")
    code, message = error_of(batch_client.describe_compute_environments, nextToken="garbage")
    assert (code, message) == ("ClientException", "Invalid nextToken")
    code, message = error_of(batch_client.describe_compute_environments,
                             computeEnvironments=[f"n{i}" for i in range(101)])
    assert code == "ClientException"


def test_capacity_vcpus():
    assert capacity_vcpus({"type": "MANAGED", "computeResources": {"type": "EC2", "maxvCpus": 16}}, 256) == 16
    assert capacity_vcpus({"type": "MANAGED", "computeResources": {"type": "FARGATE", "maxvCpus": 4}}, 256) == 4
    assert capacity_vcpus({"type": "UNMANAGED", "unmanagedvCpus": 8}, 256) == 8
    assert capacity_vcpus({"type": "UNMANAGED"}, 256) == 256


class TestWithDwell:
    """With state_dwell, transitions are slow enough to see AWS's 'being modified' rejection."""

    @pytest.fixture
    def batchemu_config(self) -> Config:
        return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, state_dwell=30)

    def test_creating_is_visible_and_delete_while_modifying_is_rejected(self, batch_client):
        create(batch_client, "slow", state="DISABLED")
        assert describe(batch_client, "slow")["status"] == "CREATING"
        code, message = error_of(batch_client.delete_compute_environment, computeEnvironment="slow")
        assert (code, message) == ("ClientException", "Cannot delete, resource is being modified")
