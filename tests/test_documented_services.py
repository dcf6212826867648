"""The documented rules of consumable resources, service environments and tagging
(batchemu/model/documented_rules/service_job_rules.py) that the operations' own test modules do not already
show: real boto3 against a real server on the simulate executor (no Docker)."""

from __future__ import annotations

import pytest

from batchemu.config import Config
from batchemu.model.consumables import adjust_in_use
from batchemu.service import consumable_resources, service_environments
from tests.conftest import (
    client_error,
    register,
    submit,
    unique,
    wait_for_scheduler_passes,
    wait_for_status,
    wait_until,
)
from tests.test_service_environments import create_env, service_queue, wait_env
from tests.test_service_jobs import describe as describe_service_job
from tests.test_service_jobs import payload

rule = pytest.mark.rule


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2)


def needing(client, resource: str, quantity: int = 1, seconds: float | None = None) -> dict:
    """A job definition that needs `quantity` of `resource` (and runs `seconds` on the simulate executor)."""
    environment = [{"name": "BATCHEMU_SIMULATE_SECONDS", "value": str(seconds)}] if seconds else []
    return register(client, containerProperties={"environment": environment}, consumableResourceProperties={
        "consumableResourceList": [{"consumableResource": resource, "quantity": quantity}]})


def resource_of(client, name: str) -> dict:
    return client.describe_consumable_resource(consumableResource=name)


# ---- consumable resources


@rule("UpdateConsumableResource.quantity.non_negative")
def test_update_quantity_must_be_non_negative(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="neg", totalQuantity=3)
    for operation in ("SET", "ADD", "REMOVE"):
        assert client_error(batch_client.update_consumable_resource, consumableResource="neg", operation=operation,
                            quantity=-1) == "quantity must be non-negative"
    assert resource_of(batch_client, "neg")["totalQuantity"] == 3


@rule("UpdateConsumableResource.clientToken.once")
def test_a_client_token_is_valid_for_8_hours(batchemu_server, batch_client):
    batch_client.create_consumable_resource(consumableResourceName="ttl", totalQuantity=1)
    clock = batchemu_server.ctx.clock
    batch_client.update_consumable_resource(consumableResource="ttl", operation="ADD", quantity=1, clientToken="t")
    try:
        batchemu_server.ctx.clock = lambda: clock() + 8 * 3600 * 1000 - 60_000
        batch_client.update_consumable_resource(consumableResource="ttl", operation="ADD", quantity=1, clientToken="t")
        assert resource_of(batch_client, "ttl")["totalQuantity"] == 2  # the same request: done once
        batchemu_server.ctx.clock = lambda: clock() + 8 * 3600 * 1000 + 60_000
        batch_client.update_consumable_resource(consumableResource="ttl", operation="ADD", quantity=1, clientToken="t")
        assert resource_of(batch_client, "ttl")["totalQuantity"] == 3  # the token expired: a new request
    finally:
        batchemu_server.ctx.clock = clock


@rule("UpdateConsumableResource.totalQuantity.below_in_use")
def test_a_total_below_the_units_in_use_is_reached_as_jobs_finish(batchemu_server, batch_client):
    arn = batch_client.create_consumable_resource(consumableResourceName="seats", totalQuantity=10)[
        "consumableResourceArn"]
    with batchemu_server.store.transaction() as tx:
        adjust_in_use(tx, arn, 8)
    assert batch_client.update_consumable_resource(consumableResource="seats", operation="SET",
                                                   quantity=5)["totalQuantity"] == 5
    now = resource_of(batch_client, "seats")
    assert (now["inUseQuantity"], now["availableQuantity"]) == (8, 0)  # nothing available at once
    with batchemu_server.store.transaction() as tx:
        adjust_in_use(tx, arn, -6)  # jobs finished
    later = resource_of(batch_client, "seats")
    assert (later["totalQuantity"], later["inUseQuantity"], later["availableQuantity"]) == (5, 2, 3)


@rule("DeleteConsumableResource.in_use.allowed", "DeleteConsumableResource.recreate.same_resource",
      "DeleteConsumableResource.release.ignored", "ConsumableResourceProperties.gating")
def test_delete_while_in_use_and_recreate_for_runnable_jobs(batchemu_server, batch_client, queue):
    arn = batch_client.create_consumable_resource(consumableResourceName="lic", totalQuantity=1)[
        "consumableResourceArn"]
    definition = needing(batch_client, "lic", seconds=60)
    holder = submit(batch_client, queue, definition)
    wait_for_status(batch_client, holder, ("RUNNING",))
    assert resource_of(batch_client, "lic")["inUseQuantity"] == 1  # locked from STARTING on
    waiting = submit(batch_client, queue, definition)
    reason = wait_until(lambda: (job := batch_client.describe_jobs(jobs=[waiting])["jobs"][0])["status"] == "RUNNABLE"
                        and job.get("statusReason"), 20)
    assert reason.startswith("CONSUMABLE_RESOURCE:INSUFFICIENT_QUANTITY"), reason
    batch_client.delete_consumable_resource(consumableResource="lic")  # while `holder` runs
    assert "does not exist" in client_error(batch_client.describe_consumable_resource, consumableResource="lic")
    again = batch_client.create_consumable_resource(consumableResourceName="lic", totalQuantity=2)
    assert again["consumableResourceArn"] == arn  # the same resource, which the RUNNABLE job now takes
    wait_for_status(batch_client, waiting, ("RUNNING",))
    assert resource_of(batch_client, "lic")["inUseQuantity"] == 1
    batch_client.terminate_job(jobId=holder, reason="done with it")
    wait_for_status(batch_client, holder, ("FAILED",))
    wait_for_scheduler_passes(batchemu_server)
    # What `holder` held of the deleted resource is not given back to the new one.
    assert resource_of(batch_client, "lic")["inUseQuantity"] == 1
    batch_client.terminate_job(jobId=waiting, reason="done with it")
    wait_for_status(batch_client, waiting, ("FAILED",))
    assert wait_until(lambda: resource_of(batch_client, "lic")["inUseQuantity"] == 0, 10)  # unlocked at FAILED


@rule("CreateConsumableResource.count.limit")
def test_consumable_resources_per_account_are_limited(batch_client, monkeypatch):
    assert consumable_resources.MAX_CONSUMABLE_RESOURCES == 50_000
    monkeypatch.setattr(consumable_resources, "MAX_CONSUMABLE_RESOURCES", 2)  # 50,000 creates would take minutes
    for name in ("one", "two"):
        batch_client.create_consumable_resource(consumableResourceName=name)
    assert client_error(batch_client.create_consumable_resource, consumableResourceName="three") == \
        "Consumable resource limit exceeded: an account can have at most 2 consumable resources"
    batch_client.delete_consumable_resource(consumableResource="one")
    batch_client.create_consumable_resource(consumableResourceName="three")


@rule("KeyValuesPair.name.case_sensitive")
def test_filter_names_are_case_sensitive(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="cs")
    assert "Invalid filter name consumable_resource_name" in client_error(
        batch_client.list_consumable_resources, filters=[{"name": "consumable_resource_name", "values": ["cs"]}])
    assert "Invalid filter name job_name" in client_error(
        batch_client.list_service_jobs, filters=[{"name": "job_name", "values": ["x"]}])


@rule("ConsumableResourceRequirement.same_checks")
def test_submit_job_checks_consumable_overrides_as_register_checks_definitions(batch_client, queue):
    batch_client.create_consumable_resource(consumableResourceName="tok", totalQuantity=4)
    definition = needing(batch_client, "tok")
    for quantity in (0, -2):
        requirement = {"consumableResourceList": [{"consumableResource": "tok", "quantity": quantity}]}
        expected = "Quantity of consumable resource tok must be at least 1"
        assert client_error(batch_client.register_job_definition, jobDefinitionName="jd-q", type="container",
                            containerProperties={"image": "busybox", "vcpus": 1, "memory": 64},
                            consumableResourceProperties=requirement) == expected
        assert client_error(batch_client.submit_job, jobName="q", jobQueue=queue["name"],
                            jobDefinition=definition["jobDefinitionArn"],
                            consumableResourcePropertiesOverride=requirement) == expected
    missing = {"consumableResourceList": [{"consumableResource": "nope", "quantity": 1}]}
    assert client_error(batch_client.submit_job, jobName="q", jobQueue=queue["name"],
                        jobDefinition=definition["jobDefinitionArn"],
                        consumableResourcePropertiesOverride=missing) == "Consumable resource nope does not exist"
    more = {"consumableResourceList": [{"consumableResource": "tok", "quantity": 3}]}
    job_id = submit(batch_client, queue, definition, consumableResourcePropertiesOverride=more)
    job = batch_client.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["consumableResourceProperties"] == more


@rule("ConsumableResourceProperties.console_limit")
def test_more_than_five_consumable_resources_per_definition_are_accepted(batch_client):
    names = [f"r{i}" for i in range(6)]
    for name in names:
        batch_client.create_consumable_resource(consumableResourceName=name, totalQuantity=1)
    requirement = {"consumableResourceList": [{"consumableResource": n, "quantity": 1} for n in names]}
    arn = batch_client.register_job_definition(
        jobDefinitionName="six", type="container", containerProperties={"image": "busybox", "vcpus": 1, "memory": 64},
        consumableResourceProperties=requirement)["jobDefinitionArn"]
    stored = batch_client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]
    assert len(stored["consumableResourceProperties"]["consumableResourceList"]) == 6


@rule("NodeRangeProperty.consumableResourceProperties")
def test_consumable_resources_in_node_ranges_are_refused(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="mnp", totalQuantity=1)
    node_range = {"targetNodes": "0:", "container": {"image": "busybox", "vcpus": 1, "memory": 64},
                  "consumableResourceProperties": {"consumableResourceList": [
                      {"consumableResource": "mnp", "quantity": 1}]}}
    message = client_error(batch_client.register_job_definition, jobDefinitionName="mnp", type="multinode",
                           nodeProperties={"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [node_range]})
    assert "consumableResourceProperties is not supported in node ranges" in message


# ---- service environments


@rule("CreateServiceEnvironment.count.limit")
def test_at_most_50_service_environments(batch_client):
    assert service_environments.MAX_SERVICE_ENVIRONMENTS == 50
    names = [create_env(batch_client)["serviceEnvironmentName"] for _ in range(50)]
    assert client_error(create_env, client=batch_client) == \
        "Service environment limit exceeded: an account can have at most 50 service environments"
    batch_client.update_service_environment(serviceEnvironment=names[0], state="DISABLED")
    wait_env(batch_client, names[0])
    batch_client.delete_service_environment(serviceEnvironment=names[0])
    wait_until(lambda: not batch_client.describe_service_environments(serviceEnvironments=[names[0]])[
        "serviceEnvironments"], 10)
    create_env(batch_client)


@rule("UpdateServiceEnvironment.state.disabled")
def test_a_disabled_service_environment_places_no_new_jobs(batchemu_server, batch_client):
    env = create_env(batch_client, capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}])
    wait_env(batch_client, env["serviceEnvironmentName"])
    queue = service_queue(batch_client, env["serviceEnvironmentArn"])
    batch_client.update_service_environment(serviceEnvironment=env["serviceEnvironmentName"], state="DISABLED")
    wait_env(batch_client, env["serviceEnvironmentName"])
    job_id = batch_client.submit_service_job(jobName="held", jobQueue=queue["jobQueueName"],
                                             serviceJobType="SAGEMAKER_TRAINING",
                                             serviceRequestPayload=payload())["jobId"]
    wait_until(lambda: describe_service_job(batch_client, job_id)["status"] == "RUNNABLE", 20)
    wait_for_scheduler_passes(batchemu_server)
    assert describe_service_job(batch_client, job_id)["status"] == "RUNNABLE"
    batch_client.update_service_environment(serviceEnvironment=env["serviceEnvironmentName"], state="ENABLED")
    assert wait_until(lambda: describe_service_job(batch_client, job_id)["status"] == "SUCCEEDED", 30)


# ---- tags


@rule("TagResource.deleted_with_resource")
def test_tags_go_with_a_deleted_resource(batch_client):
    arn = batch_client.create_consumable_resource(consumableResourceName="gone", tags={"a": "1"})[
        "consumableResourceArn"]
    batch_client.tag_resource(resourceArn=arn, tags={"b": "2"})
    batch_client.delete_consumable_resource(consumableResource="gone")
    assert client_error(batch_client.list_tags_for_resource, resourceArn=arn) == f"Resource {arn} not found"
    batch_client.create_consumable_resource(consumableResourceName="gone")
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {}


@rule("TagResource.resourceArn.taggable")
def test_newer_resources_and_service_jobs_are_taggable(batch_client):
    env = create_env(batch_client)
    wait_env(batch_client, env["serviceEnvironmentName"])
    queue = service_queue(batch_client, env["serviceEnvironmentArn"])
    job = batch_client.submit_service_job(jobName="tagged", jobQueue=queue["jobQueueName"], tags={"run": "1"},
                                          serviceJobType="SAGEMAKER_TRAINING", serviceRequestPayload=payload())
    resource = batch_client.create_consumable_resource(consumableResourceName="tagged")
    for arn in (env["serviceEnvironmentArn"], resource["consumableResourceArn"], job["jobArn"]):
        batch_client.tag_resource(resourceArn=arn, tags={"team": "ml"})
        assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"].get("team") == "ml"
    assert describe_service_job(batch_client, job["jobId"])["tags"] == {"run": "1", "team": "ml"}
    batch_client.untag_resource(resourceArn=job["jobArn"], tagKeys=["run"])
    assert batch_client.list_tags_for_resource(resourceArn=job["jobArn"])["tags"] == {"team": "ml"}


@rule("TagResource.resourceArn.child_jobs")
def test_child_jobs_of_array_and_multi_node_jobs_are_not_taggable(batchemu_server, batch_client):
    ctx = batchemu_server.ctx
    for child in ("abc:0", "abc#0"):
        arn = ctx.arn(f"job/{child}")
        for call, extra in ((batch_client.list_tags_for_resource, {}), (batch_client.tag_resource, {"tags": {"a": "b"}}),
                            (batch_client.untag_resource, {"tagKeys": ["a"]})):
            assert "not supported for child jobs" in client_error(call, resourceArn=arn, **extra)


@rule("Tags.prefix.reserved")
def test_aws_prefix_is_reserved_for_keys_and_values(batch_client):
    arn = batch_client.create_scheduling_policy(name=unique("sp"))["arn"]
    for tags in ({"AWS:team": "x"}, {"team": "aws:x"}, {"team": "Aws:x"}):
        assert "reserved for AWS use" in client_error(batch_client.tag_resource, resourceArn=arn, tags=tags)
        assert "reserved for AWS use" in client_error(batch_client.create_consumable_resource,
                                                      consumableResourceName="r", tags=tags)
    assert "reserved for AWS use" in client_error(batch_client.untag_resource, resourceArn=arn, tagKeys=["aws:x"])
    batch_client.tag_resource(resourceArn=arn, tags={"team": "x-aws:"})  # a prefix only
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "x-aws:"}


@rule("Tags.prefix.reserved")
def test_aws_prefix_is_reserved_on_every_create_that_takes_tags(batch_client, queue):
    definition = register(batch_client)
    order = [{"order": 1, "computeEnvironment": queue["ceArn"]}]
    creates = ((batch_client.create_compute_environment, {"computeEnvironmentName": unique("ce"), "type": "UNMANAGED"}),
               (batch_client.create_job_queue, {"jobQueueName": unique("jq"), "priority": 1,
                                                "computeEnvironmentOrder": order}),
               (batch_client.register_job_definition, {"jobDefinitionName": unique("d"), "type": "container",
                                                       "containerProperties": {"image": "busybox", "resourceRequirements": [
                                                           {"type": "VCPU", "value": "1"},
                                                           {"type": "MEMORY", "value": "64"}]}}),
               (batch_client.submit_job, {"jobName": "j", "jobQueue": queue["arn"],
                                          "jobDefinition": definition["jobDefinitionArn"]}))
    for call, request in creates:
        for tags in ({"AWS:team": "x"}, {"team": "aws:x"}):
            assert "reserved for AWS use" in client_error(call, **request, tags=tags), call
        call(**request, tags={"team": "x"})


@rule("Tags.case_sensitive")
def test_tag_keys_and_values_are_case_sensitive(batch_client):
    arn = batch_client.create_consumable_resource(consumableResourceName="case")["consumableResourceArn"]
    batch_client.tag_resource(resourceArn=arn, tags={"Team": "ML", "team": "ml"})
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"Team": "ML", "team": "ml"}
    batch_client.untag_resource(resourceArn=arn, tagKeys=["TEAM"])
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"Team": "ML", "team": "ml"}
    batch_client.untag_resource(resourceArn=arn, tagKeys=["Team"])
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "ml"}


@rule("Tags.characters.advice")
def test_tags_outside_the_advised_characters_are_accepted(batch_client):
    arn = batch_client.create_consumable_resource(consumableResourceName="chars")["consumableResourceArn"]
    batch_client.tag_resource(resourceArn=arn, tags={"team#1": "ä ö!", "*": ""})
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team#1": "ä ö!", "*": ""}


@rule("Tags.on_create.atomic")
def test_a_create_whose_tags_cannot_be_applied_creates_nothing(batch_client):
    reserved = {"aws:team": "x"}
    assert "reserved" in client_error(batch_client.create_consumable_resource, consumableResourceName="atomic",
                                      tags=reserved)
    assert "does not exist" in client_error(batch_client.describe_consumable_resource, consumableResource="atomic")
    assert "reserved" in client_error(create_env, client=batch_client, name="atomic", tags=reserved)
    assert batch_client.describe_service_environments(serviceEnvironments=["atomic"])["serviceEnvironments"] == []
    env = create_env(batch_client)
    wait_env(batch_client, env["serviceEnvironmentName"])
    queue = service_queue(batch_client, env["serviceEnvironmentArn"])
    assert "reserved" in client_error(batch_client.submit_service_job, jobName="atomic",
                                      jobQueue=queue["jobQueueName"], serviceJobType="SAGEMAKER_TRAINING",
                                      serviceRequestPayload=payload(), tags=reserved)
    assert batch_client.list_service_jobs(jobQueue=queue["jobQueueName"], filters=[
        {"name": "JOB_NAME", "values": ["atomic"]}])["jobSummaryList"] == []
