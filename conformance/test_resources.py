"""Resources users create and look up: compute environments, job queues, job definitions, scheduling
policies and consumable resources; their ARNs, revisions, delete rules, paging and tags."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conformance.harness import arn_pattern, client_error_code

covers = pytest.mark.covers


@covers("CreateComputeEnvironment", "DescribeComputeEnvironments", group="resources")
@covers(group="arns")
def test_compute_environment_create_and_describe(batch, target, resources):
    created = resources.compute_environment(max_vcpus=4, wait=False)
    name = created["computeEnvironmentName"]
    assert arn_pattern(target, "compute-environment", name).fullmatch(created["computeEnvironmentArn"])
    detail = resources.wait_compute_environment(name)
    assert detail["computeEnvironmentArn"] == created["computeEnvironmentArn"]
    assert detail["type"] == "MANAGED"
    assert detail["state"] == "ENABLED"
    assert detail["status"] == "VALID"
    assert detail["computeResources"]["type"] == "EC2"
    assert detail["computeResources"]["maxvCpus"] == 4
    by_arn = batch.describe_compute_environments(computeEnvironments=[created["computeEnvironmentArn"]])
    assert [ce["computeEnvironmentName"] for ce in by_arn["computeEnvironments"]] == [name]


@covers("CreateComputeEnvironment", group="resources")
def test_compute_environment_name_must_be_unique(batch, resources):
    created = resources.compute_environment(wait=False)
    with pytest.raises(ClientError) as caught:
        batch.create_compute_environment(computeEnvironmentName=created["computeEnvironmentName"],
                                         type="MANAGED", computeResources=resources.compute_resources(2))
    assert client_error_code(caught.value) == "ClientException"


@covers("UpdateComputeEnvironment", "DescribeComputeEnvironments", group="resources")
def test_compute_environment_update_state_and_max_vcpus(batch, resources):
    name = resources.compute_environment(max_vcpus=4)["computeEnvironmentName"]
    updated = batch.update_compute_environment(computeEnvironment=name, state="DISABLED",
                                               computeResources={"maxvCpus": 8})
    assert updated["computeEnvironmentName"] == name
    detail = resources.wait_compute_environment(name)
    assert detail["state"] == "DISABLED"
    assert detail["computeResources"]["maxvCpus"] == 8


@covers("DescribeComputeEnvironments", "DescribeJobQueues", "DescribeJobs", group="resources")
def test_describing_unknown_names_answers_empty_lists(batch, prefix):
    assert batch.describe_compute_environments(computeEnvironments=[f"{prefix}-nope"])["computeEnvironments"] == []
    assert batch.describe_job_queues(jobQueues=[f"{prefix}-nope"])["jobQueues"] == []
    assert batch.describe_jobs(jobs=["00000000-0000-0000-0000-000000000000"])["jobs"] == []


@covers("CreateJobQueue", "DescribeJobQueues", group="resources")
@covers(group="arns")
def test_job_queue_create_and_describe(batch, target, resources):
    ce = resources.compute_environment()
    created = resources.job_queue([ce["computeEnvironmentName"]], priority=7, wait=False)
    name = created["jobQueueName"]
    match = arn_pattern(target, "job-queue", name).fullmatch(created["jobQueueArn"])
    assert match
    ce_account = arn_pattern(target, "compute-environment", ce["computeEnvironmentName"]).fullmatch(
        ce["computeEnvironmentArn"]).group(1)
    assert match.group(1) == ce_account, "queue and compute environment ARNs name different accounts"
    detail = resources.wait_job_queue(name)
    assert detail["jobQueueArn"] == created["jobQueueArn"]
    assert detail["state"] == "ENABLED"
    assert detail["priority"] == 7
    assert detail["computeEnvironmentOrder"] == [{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}]
    by_arn = batch.describe_job_queues(jobQueues=[created["jobQueueArn"]])["jobQueues"]
    assert [q["jobQueueName"] for q in by_arn] == [name]


@covers("CreateJobQueue", group="resources")
def test_job_queue_with_unknown_compute_environment_is_rejected(batch, prefix):
    with pytest.raises(ClientError) as caught:
        batch.create_job_queue(jobQueueName=f"{prefix}-orphan", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": f"{prefix}-nope"}])
    assert client_error_code(caught.value) == "ClientException"


@covers("UpdateJobQueue", "DescribeJobQueues", group="resources")
def test_job_queue_update_state_and_priority(batch, resources):
    ce = resources.compute_environment()
    name = resources.job_queue([ce["computeEnvironmentName"]])["jobQueueName"]
    batch.update_job_queue(jobQueue=name, state="DISABLED", priority=3)
    detail = resources.wait_job_queue(name)
    assert (detail["state"], detail["priority"]) == ("DISABLED", 3)


# API_DeleteJobQueue.html: a queue must be DISABLED before it is deleted.
@covers("DeleteJobQueue", "UpdateJobQueue", group="delete-rules")
def test_job_queue_delete_requires_disabled(batch, resources):
    ce = resources.compute_environment()
    name = resources.job_queue([ce["computeEnvironmentName"]])["jobQueueName"]
    with pytest.raises(ClientError) as caught:
        batch.delete_job_queue(jobQueue=name)
    assert client_error_code(caught.value) == "ClientException"
    batch.update_job_queue(jobQueue=name, state="DISABLED")
    resources.wait_job_queue(name)
    batch.delete_job_queue(jobQueue=name)
    resources.wait_gone("queue", name)


# API_DeleteComputeEnvironment.html: DISABLED first, and no job queue may still use it.
@covers("DeleteComputeEnvironment", "UpdateComputeEnvironment", "UpdateJobQueue", group="delete-rules")
def test_compute_environment_delete_rules(batch, resources):
    ce = resources.compute_environment()["computeEnvironmentName"]
    other = resources.compute_environment()["computeEnvironmentName"]
    queue = resources.job_queue([ce])["jobQueueName"]
    with pytest.raises(ClientError) as enabled:
        batch.delete_compute_environment(computeEnvironment=ce)
    assert client_error_code(enabled.value) == "ClientException"
    batch.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    resources.wait_compute_environment(ce)
    with pytest.raises(ClientError) as in_use:
        batch.delete_compute_environment(computeEnvironment=ce)
    assert client_error_code(in_use.value) == "ClientException"
    batch.update_job_queue(jobQueue=queue, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": other}])
    resources.wait_job_queue(queue)
    batch.delete_compute_environment(computeEnvironment=ce)
    resources.wait_gone("compute environment", ce)


@covers("RegisterJobDefinition", "DescribeJobDefinitions", "DeregisterJobDefinition", group="revisions")
@covers(group="arns")
def test_job_definition_revisions(batch, target, resources):
    first = resources.job_definition(command=["echo", "one"])
    name = first["jobDefinitionName"]
    second = resources.job_definition(command=["echo", "two"], name=name)
    assert (first["revision"], second["revision"]) == (1, 2)
    assert arn_pattern(target, "job-definition", f"{name}:1").fullmatch(first["jobDefinitionArn"])
    assert arn_pattern(target, "job-definition", f"{name}:2").fullmatch(second["jobDefinitionArn"])

    described = batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    assert sorted(d["revision"] for d in described) == [1, 2]
    assert {d["status"] for d in described} == {"ACTIVE"}
    one = batch.describe_job_definitions(jobDefinitions=[f"{name}:1"])["jobDefinitions"]
    assert [(d["revision"], d["containerProperties"]["command"]) for d in one] == [(1, ["echo", "one"])]
    assert one[0]["type"] == "container"
    assert one[0]["containerProperties"]["image"] == target.image

    batch.deregister_job_definition(jobDefinition=first["jobDefinitionArn"])
    by_arn = batch.describe_job_definitions(jobDefinitions=[first["jobDefinitionArn"]])["jobDefinitions"]
    assert [d["status"] for d in by_arn] == ["INACTIVE"]
    active = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
    assert [d["revision"] for d in active] == [2]
    # A deregistered revision's number is never reused.
    assert resources.job_definition(name=name)["revision"] == 3


@covers("DescribeJobDefinitions", group="pagination")
def test_describe_job_definitions_pages(batch, resources):
    name = resources.job_definition()["jobDefinitionName"]
    for _ in range(3):
        resources.job_definition(name=name)
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = batch.describe_job_definitions(jobDefinitionName=name, maxResults=2, **kwargs)
        assert len(page["jobDefinitions"]) <= 2
        seen += [d["revision"] for d in page["jobDefinitions"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert sorted(seen) == [1, 2, 3, 4], f"pages lost or repeated revisions: {seen}"
    assert pages >= 2


@covers("DescribeComputeEnvironments", "DescribeJobQueues", group="pagination")
def test_describe_compute_environments_and_queues_page(batch, resources):
    names = [resources.compute_environment(wait=False)["computeEnvironmentName"] for _ in range(3)]
    for name in names:
        resources.wait_compute_environment(name)
    queues = [resources.job_queue([names[0]], wait=False)["jobQueueName"] for _ in range(3)]
    paged_ces = [ce["computeEnvironmentName"] for page in batch.get_paginator("describe_compute_environments")
                 .paginate(PaginationConfig={"PageSize": 2}) for ce in page["computeEnvironments"]]
    assert len(paged_ces) == len(set(paged_ces)), "a compute environment was listed twice"
    assert set(names) <= set(paged_ces)
    paged_queues = [q["jobQueueName"] for page in batch.get_paginator("describe_job_queues")
                    .paginate(PaginationConfig={"PageSize": 2}) for q in page["jobQueues"]]
    assert len(paged_queues) == len(set(paged_queues)), "a job queue was listed twice"
    assert set(queues) <= set(paged_queues)


@covers("CreateSchedulingPolicy", "DescribeSchedulingPolicies", "UpdateSchedulingPolicy",
        "ListSchedulingPolicies", "DeleteSchedulingPolicy", group="resources")
@covers(group="arns")
def test_scheduling_policy_lifecycle(batch, target, resources):
    name = resources.name("sp")
    fairshare = {"shareDecaySeconds": 3600, "computeReservation": 1,
                 "shareDistribution": [{"shareIdentifier": "blue", "weightFactor": 0.5}]}
    created = batch.create_scheduling_policy(name=name, fairsharePolicy=fairshare)
    resources.scheduling_policies.append(created["arn"])
    assert created["name"] == name
    assert arn_pattern(target, "scheduling-policy", name).fullmatch(created["arn"])
    described = batch.describe_scheduling_policies(arns=[created["arn"]])["schedulingPolicies"]
    assert [p["name"] for p in described] == [name]
    assert described[0]["fairsharePolicy"]["shareDistribution"] == fairshare["shareDistribution"]
    assert described[0]["fairsharePolicy"]["shareDecaySeconds"] == 3600

    batch.update_scheduling_policy(arn=created["arn"], fairsharePolicy={**fairshare, "shareDecaySeconds": 60})
    updated = batch.describe_scheduling_policies(arns=[created["arn"]])["schedulingPolicies"][0]
    assert updated["fairsharePolicy"]["shareDecaySeconds"] == 60

    listed = [p["arn"] for page in batch.get_paginator("list_scheduling_policies").paginate()
              for p in page["schedulingPolicies"]]
    assert created["arn"] in listed

    batch.delete_scheduling_policy(arn=created["arn"])
    assert batch.describe_scheduling_policies(arns=[created["arn"]])["schedulingPolicies"] == []


@covers("CreateConsumableResource", "DescribeConsumableResource", "UpdateConsumableResource",
        "ListConsumableResources", "DeleteConsumableResource", "ListJobsByConsumableResource", group="resources")
@covers(group="arns")
def test_consumable_resource_lifecycle(batch, target, resources):
    name = resources.name("cr")
    created = batch.create_consumable_resource(consumableResourceName=name, totalQuantity=10,
                                               resourceType="REPLENISHABLE")
    resources.consumable_resources.append(name)
    assert created["consumableResourceName"] == name
    assert arn_pattern(target, "consumable-resource", name).fullmatch(created["consumableResourceArn"])
    detail = batch.describe_consumable_resource(consumableResource=name)
    assert (detail["totalQuantity"], detail["inUseQuantity"], detail["availableQuantity"]) == (10, 0, 10)
    assert detail["resourceType"] == "REPLENISHABLE"

    # API_UpdateConsumableResource.html: SET replaces, ADD and REMOVE change the total.
    assert batch.update_consumable_resource(consumableResource=name, operation="ADD",
                                            quantity=5)["totalQuantity"] == 15
    assert batch.update_consumable_resource(consumableResource=name, operation="REMOVE",
                                            quantity=3)["totalQuantity"] == 12
    assert batch.update_consumable_resource(consumableResource=name, operation="SET",
                                            quantity=4)["totalQuantity"] == 4

    listed = [r["consumableResourceName"] for page in batch.get_paginator("list_consumable_resources").paginate()
              for r in page["consumableResources"]]
    assert name in listed

    # API_ListJobsByConsumableResource.html: a resource no job uses lists no jobs.
    assert batch.list_jobs_by_consumable_resource(consumableResource=name)["jobs"] == []

    batch.delete_consumable_resource(consumableResource=name)
    listed = [r["consumableResourceName"] for page in batch.get_paginator("list_consumable_resources").paginate()
              for r in page["consumableResources"]]
    assert name not in listed


@covers("TagResource", "UntagResource", "ListTagsForResource", "CreateComputeEnvironment", group="tags")
def test_tags_on_create_and_after(batch, resources):
    ce = resources.compute_environment(tags={"team": "conformance", "tier": "1"})
    arn = ce["computeEnvironmentArn"]
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "conformance", "tier": "1"}
    batch.tag_resource(resourceArn=arn, tags={"tier": "2", "extra": "yes"})
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "conformance", "tier": "2",
                                                                      "extra": "yes"}
    batch.untag_resource(resourceArn=arn, tagKeys=["team", "extra"])
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"tier": "2"}
    described = batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"][0]
    assert described.get("tags") == {"tier": "2"}


@covers("TagResource", "ListTagsForResource", "RegisterJobDefinition", "CreateJobQueue", group="tags")
def test_tags_on_job_definitions_and_queues(batch, resources):
    definition = resources.job_definition(tags={"owner": "conformance"})
    assert batch.list_tags_for_resource(resourceArn=definition["jobDefinitionArn"])["tags"] == {
        "owner": "conformance"}
    described = batch.describe_job_definitions(jobDefinitions=[definition["jobDefinitionArn"]])["jobDefinitions"]
    assert described[0].get("tags") == {"owner": "conformance"}
    ce = resources.compute_environment()
    queue = resources.job_queue([ce["computeEnvironmentName"]], tags={"q": "1"})
    batch.tag_resource(resourceArn=queue["jobQueueArn"], tags={"r": "2"})
    assert batch.list_tags_for_resource(resourceArn=queue["jobQueueArn"])["tags"] == {"q": "1", "r": "2"}
