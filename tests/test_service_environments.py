"""Service environments and SAGEMAKER_TRAINING job queues end to end: real boto3 against a real server."""

from __future__ import annotations

import pytest

from batchemu.config import Config
from tests.conftest import client_error, make_queue, register, unique, wait_for_job_queue, wait_until

LIMITS = [{"maxCapacity": 4, "capacityUnit": "NUM_INSTANCES"}]


def create_env(client, name: str | None = None, **extra) -> dict:
    name = name or unique("se")
    return client.create_service_environment(serviceEnvironmentName=name, serviceEnvironmentType="SAGEMAKER_TRAINING",
                                             capacityLimits=extra.pop("capacityLimits", LIMITS), **extra)


def describe_env(client, ref: str) -> dict | None:
    found = client.describe_service_environments(serviceEnvironments=[ref])["serviceEnvironments"]
    return found[0] if found else None


def wait_env(client, ref: str, status: str = "VALID") -> dict:
    return wait_until(lambda: (d := describe_env(client, ref)) and d["status"] == status and d, 10)


def service_queue(client, env_arn: str, **extra) -> dict:
    name = unique("sjq")
    created = client.create_job_queue(jobQueueName=name, priority=1, jobQueueType="SAGEMAKER_TRAINING",
                                      serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env_arn}], **extra)
    wait_for_job_queue(client, name)
    return created


@pytest.mark.rule("CreateServiceEnvironment.state.default")
def test_create_reaches_valid_with_defaults(batch_client, batchemu_server):
    created = create_env(batch_client, "se-basic", tags={"team": "ml"})
    assert created == {"serviceEnvironmentName": "se-basic",
                       "serviceEnvironmentArn": "arn:aws:batch:us-east-1:123456789012:service-environment/se-basic",
                       "ResponseMetadata": created["ResponseMetadata"]}
    detail = wait_env(batch_client, "se-basic")
    detail.pop("ResponseMetadata", None)
    assert detail == {"serviceEnvironmentName": "se-basic", "serviceEnvironmentArn": created["serviceEnvironmentArn"],
                      "serviceEnvironmentType": "SAGEMAKER_TRAINING", "state": "ENABLED", "status": "VALID",
                      "capacityLimits": LIMITS, "tags": {"team": "ml"}}
    assert describe_env(batch_client, created["serviceEnvironmentArn"])["serviceEnvironmentName"] == "se-basic"


@pytest.mark.rule("CreateServiceEnvironment.serviceEnvironmentName.pattern", "CapacityLimit.capacityUnit.forms")
def test_duplicate_and_bad_names_and_limits_are_rejected(batch_client):
    name = create_env(batch_client)["serviceEnvironmentName"]
    assert client_error(create_env, client=batch_client, name=name) == "Object already exists"
    assert "serviceEnvironmentName must be 1-128" in client_error(create_env, client=batch_client, name="a b")
    assert "at least one" in client_error(create_env, client=batch_client, capacityLimits=[])
    assert "capacityUnit lots is not supported" in client_error(
        create_env, client=batch_client, capacityLimits=[{"maxCapacity": 1, "capacityUnit": "lots"}])
    assert "maxCapacity of NUM_INSTANCES must be at least 1" in client_error(
        create_env, client=batch_client, capacityLimits=[{"maxCapacity": 0, "capacityUnit": "NUM_INSTANCES"}])
    assert "more than once" in client_error(
        create_env, client=batch_client, capacityLimits=[{"maxCapacity": 1, "capacityUnit": "ml.m5.large"}] * 2)


def test_update_goes_through_updating_to_valid(batch_client):
    name = create_env(batch_client)["serviceEnvironmentName"]
    wait_env(batch_client, name)
    limits = [{"maxCapacity": 2, "capacityUnit": "ml.m5.large"}, {"maxCapacity": 1, "capacityUnit": "ml.p4d.24xlarge"}]
    updated = batch_client.update_service_environment(serviceEnvironment=name, state="DISABLED", capacityLimits=limits)
    assert updated["serviceEnvironmentName"] == name
    detail = wait_env(batch_client, name)
    assert (detail["state"], detail["capacityLimits"]) == ("DISABLED", limits)
    assert client_error(batch_client.update_service_environment,
                        serviceEnvironment="se-none") == "serviceEnvironment se-none does not exist"


@pytest.mark.rule("DeleteServiceEnvironment.disabled_and_unused")
def test_delete_rules_then_gone_and_name_reusable(batch_client):
    created = create_env(batch_client)
    name, arn = created["serviceEnvironmentName"], created["serviceEnvironmentArn"]
    wait_env(batch_client, name)
    assert client_error(batch_client.delete_service_environment, serviceEnvironment=name) == \
        f"Cannot delete, service environment {name} must be DISABLED first"
    queue = service_queue(batch_client, arn)
    batch_client.update_service_environment(serviceEnvironment=name, state="DISABLED")
    wait_env(batch_client, name)
    assert client_error(batch_client.delete_service_environment, serviceEnvironment=arn) == \
        "Cannot delete, found existing JobQueue relationship"
    batch_client.update_job_queue(jobQueue=queue["jobQueueArn"], serviceEnvironmentOrder=[])
    batch_client.delete_service_environment(serviceEnvironment=arn)
    wait_until(lambda: describe_env(batch_client, name) is None, 10)
    assert client_error(batch_client.delete_service_environment,
                        serviceEnvironment=name) == f"serviceEnvironment {name} does not exist"
    assert create_env(batch_client, name)["serviceEnvironmentArn"] == arn


@pytest.mark.rule("DescribeServiceEnvironments.maxResults.range")
def test_describe_pages_and_rules(batch_client):
    names = [create_env(batch_client)["serviceEnvironmentName"] for _ in range(5)]
    seen, token = [], None
    while True:
        page = batch_client.describe_service_environments(maxResults=2, **({"nextToken": token} if token else {}))
        assert len(page["serviceEnvironments"]) <= 2
        seen += [env["serviceEnvironmentName"] for env in page["serviceEnvironments"]]
        token = page.get("nextToken")
        if not token:
            break
    assert [n for n in seen if n in names] == names
    assert len(seen) == len(set(seen))
    assert batch_client.describe_service_environments(serviceEnvironments=["se-nope"])["serviceEnvironments"] == []
    assert "between 1 and 100" in client_error(batch_client.describe_service_environments, maxResults=101)
    assert client_error(batch_client.describe_service_environments, nextToken="garbage") == "Invalid nextToken"
    assert "cannot both be set" in client_error(batch_client.describe_service_environments,
                                                serviceEnvironments=[names[0]], maxResults=1)


def test_tags_on_its_arn(batch_client):
    arn = create_env(batch_client)["serviceEnvironmentArn"]
    batch_client.tag_resource(resourceArn=arn, tags={"a": "1"})
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "1"}
    batch_client.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    assert "tags" not in describe_env(batch_client, arn)


def test_sagemaker_queue_orders_one_service_environment(batch_client):
    env = create_env(batch_client)
    created = service_queue(batch_client, env["serviceEnvironmentArn"])
    queue = batch_client.describe_job_queues(jobQueues=[created["jobQueueName"]])["jobQueues"][0]
    assert queue["jobQueueType"] == "SAGEMAKER_TRAINING"
    assert queue["computeEnvironmentOrder"] == []
    assert queue["serviceEnvironmentOrder"] == [{"order": 1, "serviceEnvironment": env["serviceEnvironmentArn"]}]
    # serviceEnvironmentOrder names the environment by ARN even when given by name, and alone implies the type.
    name = unique("sjq")
    batch_client.create_job_queue(jobQueueName=name, priority=1, serviceEnvironmentOrder=[
        {"order": 1, "serviceEnvironment": env["serviceEnvironmentName"]}])
    queue = batch_client.describe_job_queues(jobQueues=[name])["jobQueues"][0]
    assert queue["jobQueueType"] == "SAGEMAKER_TRAINING"
    assert queue["serviceEnvironmentOrder"][0]["serviceEnvironment"] == env["serviceEnvironmentArn"]


def test_sagemaker_queue_rules(batch_client):
    env_arn = create_env(batch_client)["serviceEnvironmentArn"]
    other_arn = create_env(batch_client)["serviceEnvironmentArn"]
    ce_queue = make_queue(batch_client)

    def create(**extra):
        return batch_client.create_job_queue(jobQueueName=unique("sjq"), priority=1, **extra)

    order = [{"order": 1, "serviceEnvironment": env_arn}]
    assert "mutually exclusive" in client_error(create, serviceEnvironmentOrder=order, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": ce_queue["ceArn"]}])
    assert "at most 1 service environment" in client_error(
        create, serviceEnvironmentOrder=order + [{"order": 2, "serviceEnvironment": other_arn}])
    assert client_error(create, serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "se-none"}]) == \
        "serviceEnvironment se-none does not exist"
    assert "must contain a service environment" in client_error(create, jobQueueType="SAGEMAKER_TRAINING")
    assert "jobQueueType ECS can't order service environments" in client_error(
        create, jobQueueType="ECS", serviceEnvironmentOrder=order)
    queue = service_queue(batch_client, env_arn)["jobQueueName"]
    assert "orders a service environment, not compute environments" in client_error(
        batch_client.update_job_queue, jobQueue=queue,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_queue["ceArn"]}])
    assert "only SAGEMAKER_TRAINING job queues order service environments" in client_error(
        batch_client.update_job_queue, jobQueue=ce_queue["name"], serviceEnvironmentOrder=order)
    batch_client.update_job_queue(jobQueue=queue, serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": other_arn}])
    detail = batch_client.describe_job_queues(jobQueues=[queue])["jobQueues"][0]
    assert detail["serviceEnvironmentOrder"] == [{"order": 1, "serviceEnvironment": other_arn}]


def test_container_jobs_are_refused_there(batch_client):
    queue = service_queue(batch_client, create_env(batch_client)["serviceEnvironmentArn"])["jobQueueName"]
    definition = register(batch_client)["jobDefinitionArn"]
    assert client_error(batch_client.submit_job, jobName="j", jobQueue=queue, jobDefinition=definition) == \
        (f"jobQueue {queue} is a SAGEMAKER_TRAINING job queue: it takes service jobs (SubmitServiceJob), not "
         "container jobs")


class TestWithDwell:
    """With state_dwell, CREATING and DELETING last long enough to be seen and to refuse a delete."""

    @pytest.fixture
    def batchemu_config(self) -> Config:
        return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, state_dwell=30)

    def test_creating_is_visible_and_delete_while_modifying_is_rejected(self, batch_client):
        create_env(batch_client, "se-slow", state="DISABLED")
        assert describe_env(batch_client, "se-slow")["status"] == "CREATING"
        assert client_error(batch_client.delete_service_environment, serviceEnvironment="se-slow") == \
            "Cannot delete, resource is being modified"



class TestWithShortDwell:
    @pytest.fixture
    def batchemu_config(self) -> Config:
        return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, state_dwell=3)

    def test_deleting_is_visible_and_deleting_again_is_a_no_op(self, batch_client):
        create_env(batch_client, "se-going", state="DISABLED")
        wait_env(batch_client, "se-going")
        batch_client.delete_service_environment(serviceEnvironment="se-going")
        assert describe_env(batch_client, "se-going")["status"] == "DELETING"
        batch_client.delete_service_environment(serviceEnvironment="se-going")
        wait_until(lambda: describe_env(batch_client, "se-going") is None, 10)
