"""What the consumable resource, service environment, service job and tagging operations accept and refuse, as
the API reference and user guide state it in words (batchemu/model/documented_rules/service_job_rules.py).
None of these scenarios starts a job: they run on any endpoint without a training role and cost nothing."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conformance.harness import client_error_code

covers = pytest.mark.covers
rule = pytest.mark.rule


def refused(call, **kwargs) -> str:
    """The message of the ClientException `call(**kwargs)` must raise."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert client_error_code(caught.value) == "ClientException", caught.value.response
    return caught.value.response["Error"]["Message"]


def consumable(batch, resources, **extra) -> dict:
    name = resources.name("cr")
    created = batch.create_consumable_resource(consumableResourceName=name, **extra)
    resources.consumable_resources.append(name)
    return created


# tag-restrictions.html: "Don't use aws:, AWS:, or any upper or lowercase combination of such as a prefix for
# either keys or values, as it is reserved for AWS use. You can't edit or delete tag keys or values with this
# prefix."
@covers("TagResource", "UntagResource", "ListTagsForResource", "CreateConsumableResource", group="tags")
@rule("Tags.prefix.reserved")
def test_aws_prefix_is_reserved_for_tag_keys_and_values(batch, resources):
    arn = consumable(batch, resources, tags={"team": "a"})["consumableResourceArn"]
    for tags in ({"aws:team": "x"}, {"AWS:team": "x"}, {"team": "aws:x"}):
        refused(batch.tag_resource, resourceArn=arn, tags=tags)
    refused(batch.untag_resource, resourceArn=arn, tagKeys=["aws:team"])
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "a"}


# tag-restrictions.html: "Tag keys and values are case sensitive." API_TagResource.html: tags not named in the
# request aren't changed.
@covers("TagResource", "UntagResource", "ListTagsForResource", group="tags")
@rule("Tags.case_sensitive", "TagResource.tags.merge")
def test_tag_keys_are_case_sensitive_and_tagging_merges(batch, resources):
    arn = consumable(batch, resources, tags={"Team": "A"})["consumableResourceArn"]
    batch.tag_resource(resourceArn=arn, tags={"team": "b", "other": "1"})
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"Team": "A", "team": "b", "other": "1"}
    batch.untag_resource(resourceArn=arn, tagKeys=["TEAM", "other"])
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"Team": "A", "team": "b"}


# API_TagResource.html: "When a resource is deleted, the tags that are associated with that resource are deleted
# as well." resource-aware-scheduling-how-to-delete.html: re-created with the same name, it is the same resource.
@covers("CreateConsumableResource", "DeleteConsumableResource", "ListTagsForResource", group="tags")
@rule("TagResource.deleted_with_resource", "DeleteConsumableResource.recreate.same_resource")
def test_tags_are_deleted_with_their_resource(batch, resources):
    created = consumable(batch, resources, tags={"team": "a"})
    name, arn = created["consumableResourceName"], created["consumableResourceArn"]
    batch.delete_consumable_resource(consumableResource=name)
    assert batch.create_consumable_resource(consumableResourceName=name)["consumableResourceArn"] == arn
    assert batch.list_tags_for_resource(resourceArn=arn).get("tags", {}) == {}


# API_CreateConsumableResource.html, totalQuantity: "Must be non-negative."; API_UpdateConsumableResource.html,
# quantity: "Must be a non-negative value."
@covers("CreateConsumableResource", "UpdateConsumableResource", "DescribeConsumableResource",
        group="request-rules")
@rule("CreateConsumableResource.totalQuantity.non_negative", "UpdateConsumableResource.quantity.non_negative")
def test_consumable_quantities_are_non_negative(batch, resources):
    refused(batch.create_consumable_resource, consumableResourceName=resources.name("cr"), totalQuantity=-1)
    name = consumable(batch, resources, totalQuantity=2)["consumableResourceName"]
    refused(batch.update_consumable_resource, consumableResource=name, operation="ADD", quantity=-1)
    assert batch.describe_consumable_resource(consumableResource=name)["totalQuantity"] == 2


# API_ListConsumableResources.html: CONSUMABLE_RESOURCE_NAME values are case-insensitive, and one ending in '*'
# matches the names that begin with the rest; API_KeyValuesPair.html: "Filter names are case sensitive."
@covers("ListConsumableResources", group="request-rules")
@rule("ListConsumableResources.filters.name", "KeyValuesPair.name.case_sensitive")
def test_consumable_name_filter_forms(batch, resources):
    names = [consumable(batch, resources)["consumableResourceName"] for _ in range(2)]
    stem = names[0].rsplit("-", 1)[0]

    def listed(value: str) -> set[str]:
        found = batch.list_consumable_resources(filters=[{"name": "CONSUMABLE_RESOURCE_NAME", "values": [value]}])
        return {r["consumableResourceName"] for r in found["consumableResources"]}
    assert set(names) <= listed(stem.upper() + "*")
    assert listed(names[1].upper()) == {names[1]}
    refused(batch.list_consumable_resources, filters=[{"name": "consumable_resource_name", "values": [names[0]]}])


# resource-aware-scheduling-how-to-for-jobs.html: SubmitJob's consumableResourcePropertiesOverride updates the
# quantities RegisterJobDefinition's consumableResourceProperties gives; both take a quantity that is needed.
@covers("RegisterJobDefinition", "SubmitJob", group="request-rules")
@covers(group="consumable-resources")
@rule("ConsumableResourceRequirement.same_checks")
def test_a_zero_quantity_is_refused_at_register_and_at_submit(batch, resources, held_env, jobdef, prefix):
    name = consumable(batch, resources, totalQuantity=1)["consumableResourceName"]
    zero = {"consumableResourceList": [{"consumableResource": name, "quantity": 0}]}
    refused(batch.register_job_definition, jobDefinitionName=f"{prefix}-cr-zero", type="container",
            containerProperties={"image": "busybox", "command": ["true"], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]},
            consumableResourceProperties=zero)
    definition = jobdef(command=["true"], consumableResourceProperties={
        "consumableResourceList": [{"consumableResource": name, "quantity": 1}]})
    refused(batch.submit_job, jobName=f"{prefix}-cr-zero", jobQueue=held_env.queue,
            jobDefinition=definition["jobDefinitionArn"], consumableResourcePropertiesOverride=zero)


# API_DescribeServiceEnvironments.html and API_ListServiceJobs.html, maxResults: "This value can be between 1
# and 100."
@covers("DescribeServiceEnvironments", "ListServiceJobs", "ListConsumableResources", group="request-rules")
@rule("DescribeServiceEnvironments.maxResults.range", "ListServiceJobs.maxResults.range",
      "ListConsumableResources.maxResults.range")
def test_page_sizes_between_1_and_100(batch):
    for size in (0, 101):
        refused(batch.describe_service_environments, maxResults=size)
        refused(batch.list_service_jobs, maxResults=size)
        refused(batch.list_consumable_resources, maxResults=size)


# API_ListServiceJobs.html, filters: "Only one filter can be used at a time."
@covers("ListServiceJobs", group="request-rules")
@rule("ListServiceJobs.filters.one")
def test_list_service_jobs_takes_one_filter(batch, prefix):
    refused(batch.list_service_jobs, filters=[{"name": "JOB_NAME", "values": [f"{prefix}*"]},
                                              {"name": "AFTER_CREATED_AT", "values": ["0"]}])


# API_TerminateServiceJobs.html: "Service jobs that can't be found are treated as successfully processed", with
# HTTP 200; up to 50 IDs.
@covers("TerminateServiceJobs", group="cancel-terminate")
@rule("TerminateServiceJobs.unknown.successful", "TerminateServiceJobs.jobs.limit")
def test_terminate_service_jobs_counts_unknown_ids_as_processed(batch):
    unknown = ["00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001"]
    answer = batch.terminate_service_jobs(jobs=unknown, reason="conformance")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(answer["successful"]) == unknown and answer["errors"] == []
    refused(batch.terminate_service_jobs, jobs=[unknown[0]] * 51, reason="conformance")
