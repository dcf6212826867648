"""TagResource, UntagResource and ListTagsForResource against a real server, through boto3 and raw HTTP."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from tests.conftest import client_error

CONTAINER = {"image": "busybox", "vcpus": 1, "memory": 64}


def _resources(client) -> list[str]:
    """ARNs of one job definition revision, one scheduling policy and one consumable resource."""
    client.register_job_definition(jobDefinitionName="tagged", type="container", containerProperties=CONTAINER)
    revision = client.register_job_definition(jobDefinitionName="tagged", type="container",
                                              containerProperties=CONTAINER, tags={"rev": "2"})
    policy = client.create_scheduling_policy(name="tagged", tags={"p": "1"})
    resource = client.create_consumable_resource(consumableResourceName="tagged", tags={"c": "1"})
    return [revision["jobDefinitionArn"], policy["arn"], resource["consumableResourceArn"]]


@pytest.mark.rule("TagResource.tags.merge")
def test_tag_list_untag_each_resource_family(batch_client):
    arns = _resources(batch_client)
    for arn, initial in zip(arns, ({"rev": "2"}, {"p": "1"}, {"c": "1"})):
        assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == initial
        batch_client.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
        batch_client.tag_resource(resourceArn=arn, tags={"a": "changed"})
        assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {**initial, "a": "changed", "b": "2"}
        batch_client.untag_resource(resourceArn=arn, tagKeys=["a", *initial, "never-set"])
        assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}


def test_tags_show_in_describe_and_are_per_revision(batch_client):
    arns = _resources(batch_client)
    batch_client.tag_resource(resourceArn=arns[0], tags={"x": "y"})
    docs = batch_client.describe_job_definitions(jobDefinitionName="tagged")["jobDefinitions"]
    assert [d.get("tags", {}) for d in docs] == [{}, {"rev": "2", "x": "y"}]
    [policy] = batch_client.describe_scheduling_policies(arns=[arns[1]])["schedulingPolicies"]
    batch_client.tag_resource(resourceArn=arns[2], tags={"z": "1"})
    assert policy["tags"] == {"p": "1"}
    assert batch_client.describe_consumable_resource(consumableResource="tagged")["tags"] == {"c": "1", "z": "1"}


def test_jobs_are_taggable(batchemu_server, batch_client):
    ctx = batchemu_server.ctx
    job = {"jobId": "abc-123", "jobArn": ctx.arn("job/abc-123"), "jobName": "j", "status": "SUBMITTED",
           "jobQueue": ctx.arn("job-queue/q"), "jobDefinition": ctx.arn("job-definition/d:1"), "createdAt": 1}
    with ctx.store.transaction() as tx:
        tx.jobs.insert(job)
    batch_client.tag_resource(resourceArn=job["jobArn"], tags={"run": "7"})
    assert batch_client.list_tags_for_resource(resourceArn=job["jobArn"])["tags"] == {"run": "7"}
    with ctx.store.transaction() as tx:
        assert tx.jobs.get("abc-123")["tags"] == {"run": "7"}
    batch_client.untag_resource(resourceArn=job["jobArn"], tagKeys=["run"])
    assert batch_client.list_tags_for_resource(resourceArn=job["jobArn"])["tags"] == {}
    assert "child jobs" in client_error(batch_client.list_tags_for_resource,
                                        resourceArn=ctx.arn("job/abc-123:0"))


@pytest.mark.rule("ListTagsForResource.resourceArn.unknown")
def test_unknown_and_malformed_arns(batch_client, batchemu_server):
    ctx = batchemu_server.ctx
    for arn in (ctx.arn("job-definition/none:1"), ctx.arn("job/missing"), ctx.arn("scheduling-policy/none")):
        assert client_error(batch_client.list_tags_for_resource, resourceArn=arn) == f"Resource {arn} not found"
        assert "not found" in client_error(batch_client.tag_resource, resourceArn=arn, tags={"a": "b"})
        assert "not found" in client_error(batch_client.untag_resource, resourceArn=arn, tagKeys=["a"])
    for arn in ("not-an-arn", "arn:aws:s3:::bucket/key", "arn:aws:batch:us-east-1:123:job/x"):
        assert client_error(batch_client.list_tags_for_resource, resourceArn=arn) == f"Invalid resource ARN: {arn}"


@pytest.mark.rule("Tags.count.limit", "Tags.prefix.reserved")
def test_tag_limits_and_reserved_prefix(batch_client):
    arn = batch_client.create_scheduling_policy(name="limits")["arn"]
    batch_client.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(40)})
    assert "limit of 50" in client_error(batch_client.tag_resource, resourceArn=arn,
                                         tags={f"n{i}": "v" for i in range(11)})
    assert "reserved" in client_error(batch_client.tag_resource, resourceArn=arn, tags={"aws:team": "x"})
    assert "reserved" in client_error(batch_client.untag_resource, resourceArn=arn, tagKeys=["aws:team"])
    assert "validation error" in client_error(batch_client.tag_resource, resourceArn=arn,
                                              tags={f"m{i}": "v" for i in range(51)})
    assert len(batch_client.list_tags_for_resource(resourceArn=arn)["tags"]) == 40


def test_raw_http_with_percent_encoded_arn_and_repeated_tag_keys(batch_client, batchemu_server):
    arn = batch_client.register_job_definition(jobDefinitionName="raw", type="container",
                                               containerProperties=CONTAINER)["jobDefinitionArn"]
    url = f"{batchemu_server.url}/v1/tags/{quote(arn, safe='')}"
    assert "%2F" in url and "%3A" in url
    response = requests.post(url, json={"tags": {"a": "1", "b": "2", "c": "3"}}, timeout=10)
    assert response.status_code == 200, response.text
    response = requests.delete(url, params=[("tagKeys", "a"), ("tagKeys", "c")], timeout=10)
    assert response.status_code == 200, response.text
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.json() == {"tags": {"b": "2"}}
    missing = requests.get(f"{batchemu_server.url}/v1/tags/{quote(arn + '0', safe='')}", timeout=10)
    assert missing.status_code == 400
    assert missing.headers["x-amzn-ErrorType"] == "ClientException"
    assert missing.json()["message"] == f"Resource {arn}0 not found"
