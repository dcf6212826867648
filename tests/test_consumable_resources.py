"""Consumable resource operations against a real server."""

from __future__ import annotations

import boto3
import pytest

from batchemu.config import Config
from tests.conftest import client_error


@pytest.mark.rule("CreateConsumableResource.resourceType.default")
def test_create_and_describe_every_field(batch_client, batchemu_server):
    created = batch_client.create_consumable_resource(consumableResourceName="lic", totalQuantity=10,
                                                      tags={"team": "x"})
    config = batchemu_server.config
    arn = f"arn:aws:batch:{config.region}:{config.account_id}:consumable-resource/lic"
    assert (created["consumableResourceName"], created["consumableResourceArn"]) == ("lic", arn)
    for ref in ("lic", arn):
        described = batch_client.describe_consumable_resource(consumableResource=ref)
        assert described["consumableResourceName"] == "lic" and described["consumableResourceArn"] == arn
        assert (described["totalQuantity"], described["inUseQuantity"], described["availableQuantity"]) == (10, 0, 10)
        assert described["resourceType"] == "REPLENISHABLE"
        assert described["tags"] == {"team": "x"}
        assert isinstance(described["createdAt"], int) and described["createdAt"] > 1_600_000_000_000
    batch_client.create_consumable_resource(consumableResourceName="once", resourceType="NON_REPLENISHABLE")
    once = batch_client.describe_consumable_resource(consumableResource="once")
    assert once["resourceType"] == "NON_REPLENISHABLE" and once["totalQuantity"] == 0


@pytest.mark.rule("UpdateConsumableResource.operation.quantities")
def test_update_set_add_remove(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="pool", totalQuantity=5)
    assert batch_client.update_consumable_resource(consumableResource="pool", operation="ADD",
                                                   quantity=3)["totalQuantity"] == 8
    assert batch_client.update_consumable_resource(consumableResource="pool", operation="REMOVE",
                                                   quantity=6)["totalQuantity"] == 2
    result = batch_client.update_consumable_resource(consumableResource="pool", operation="SET", quantity=20)
    assert result["totalQuantity"] == 20 and result["consumableResourceName"] == "pool"
    assert batch_client.describe_consumable_resource(consumableResource="pool")["availableQuantity"] == 20
    assert "Cannot remove" in client_error(batch_client.update_consumable_resource, consumableResource="pool",
                                           operation="REMOVE", quantity=21)
    assert "operation" in client_error(batch_client.update_consumable_resource, consumableResource="pool",
                                       operation="MULTIPLY", quantity=2)


@pytest.mark.rule("UpdateConsumableResource.clientToken.once")
def test_update_with_client_token_happens_once(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="tok", totalQuantity=1)
    for _ in range(2):
        result = batch_client.update_consumable_resource(consumableResource="tok", operation="ADD", quantity=4,
                                                         clientToken="t-1")
        assert result["totalQuantity"] == 5
    assert batch_client.describe_consumable_resource(consumableResource="tok")["totalQuantity"] == 5
    assert "clientToken" in client_error(batch_client.update_consumable_resource, consumableResource="tok",
                                         operation="ADD", quantity=9, clientToken="t-1")


@pytest.mark.rule("DescribeConsumableResource.availableQuantity")
def test_in_use_quantity_for_the_scheduler(batchemu_server, batch_client):
    from batchemu.model.consumables import adjust_in_use
    arn = batch_client.create_consumable_resource(consumableResourceName="gpu", totalQuantity=4)[
        "consumableResourceArn"]
    with batchemu_server.store.transaction() as tx:
        assert adjust_in_use(tx, arn, 3)["inUseQuantity"] == 3
    described = batch_client.describe_consumable_resource(consumableResource="gpu")
    assert (described["inUseQuantity"], described["availableQuantity"]) == (3, 1)
    with batchemu_server.store.transaction() as tx:
        assert adjust_in_use(tx, arn, -5)["inUseQuantity"] == 0
        assert adjust_in_use(tx, arn + "x", 1) is None
    listed = batch_client.list_consumable_resources()["consumableResources"]
    assert listed == [{"consumableResourceArn": arn, "consumableResourceName": "gpu", "totalQuantity": 4,
                       "inUseQuantity": 0, "resourceType": "REPLENISHABLE"}]


@pytest.mark.rule("DescribeConsumableResource.availableQuantity")
def test_delete(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="del", totalQuantity=1)
    batch_client.delete_consumable_resource(consumableResource="del")
    assert "does not exist" in client_error(batch_client.describe_consumable_resource, consumableResource="del")
    assert "does not exist" in client_error(batch_client.delete_consumable_resource, consumableResource="del")
    assert "does not exist" in client_error(batch_client.update_consumable_resource, consumableResource="del",
                                            operation="SET", quantity=1)


@pytest.mark.rule("ListConsumableResources.filters.name", "ListConsumableResources.maxResults.range")
def test_list_filters_and_pages(batch_client):
    for name in ("alpha-1", "Alpha-2", "beta", "alphabet"):
        batch_client.create_consumable_resource(consumableResourceName=name, totalQuantity=1)
    by_prefix = batch_client.list_consumable_resources(
        filters=[{"name": "CONSUMABLE_RESOURCE_NAME", "values": ["ALPHA-*"]}])["consumableResources"]
    assert [r["consumableResourceName"] for r in by_prefix] == ["alpha-1", "Alpha-2"]
    exact = batch_client.list_consumable_resources(
        filters=[{"name": "CONSUMABLE_RESOURCE_NAME", "values": ["BETA"]}])["consumableResources"]
    assert [r["consumableResourceName"] for r in exact] == ["beta"]
    page = batch_client.list_consumable_resources(maxResults=3)
    assert len(page["consumableResources"]) == 3
    rest = batch_client.list_consumable_resources(maxResults=3, nextToken=page["nextToken"])
    assert [r["consumableResourceName"] for r in rest["consumableResources"]] == ["alphabet"]
    assert "nextToken" not in rest
    assert "Invalid filter" in client_error(batch_client.list_consumable_resources,
                                            filters=[{"name": "COLOR", "values": ["x"]}])
    assert "maxResults" in client_error(batch_client.list_consumable_resources, maxResults=101)


def test_list_jobs_by_consumable_resource_without_jobs(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="idle", totalQuantity=1)
    assert batch_client.list_jobs_by_consumable_resource(consumableResource="idle")["jobs"] == []
    filtered = batch_client.list_jobs_by_consumable_resource(
        consumableResource="idle", filters=[{"name": "JOB_STATUS", "values": ["RUNNING"]}])
    assert filtered["jobs"] == []
    assert "does not exist" in client_error(batch_client.list_jobs_by_consumable_resource,
                                            consumableResource="missing")
    assert "Invalid filter" in client_error(batch_client.list_jobs_by_consumable_resource,
                                            consumableResource="idle", filters=[{"name": "X", "values": ["y"]}])


def _job(ctx, job_id: str, name: str, status: str, resource: str, quantity: int, created: int) -> dict:
    """A job document in the DescribeJobs wire form, as the jobs module stores it."""
    return {"jobId": job_id, "jobArn": ctx.arn(f"job/{job_id}"), "jobName": name, "status": status,
            "jobQueue": ctx.arn("job-queue/q"), "jobDefinition": ctx.arn("job-definition/d:1"),
            "createdAt": created, "consumableResourceProperties": {
                "consumableResourceList": [{"consumableResource": resource, "quantity": quantity}]}}


@pytest.fixture
def unscheduled():
    """A server without a scheduler, and a batch client of it: the job documents a test writes behind the
    scheduler's back stay as written (a scheduler fails a RUNNING job that has no container as lost)."""
    from batchemu.http.server import Server
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:"), with_scheduler=False).start()
    try:
        yield server, boto3.client("batch", endpoint_url=server.url, region_name=server.config.region,
                                   aws_access_key_id="x", aws_secret_access_key="x")
    finally:
        server.stop()


@pytest.mark.rule("ListJobsByConsumableResource.filters", "ListJobsByConsumableResource.maxResults")
def test_list_jobs_by_consumable_resource_reads_job_documents(unscheduled):
    batchemu_server, batch_client = unscheduled
    ctx = batchemu_server.ctx
    arn = batch_client.create_consumable_resource(consumableResourceName="seats", totalQuantity=9)[
        "consumableResourceArn"]
    with ctx.store.transaction() as tx:
        tx.jobs.insert(_job(ctx, "j1", "Train-1", "RUNNING", "seats", 2, 1))
        tx.jobs.insert(_job(ctx, "j2", "eval", "RUNNABLE", arn, 1, 2))
        tx.jobs.insert(_job(ctx, "j3", "train-2", "SUCCEEDED", "other", 1, 3))
        tx.jobs.insert(_job(ctx, "j4", "train-3", "SUCCEEDED", "seats", 4, 4))
    jobs = batch_client.list_jobs_by_consumable_resource(consumableResource="seats")["jobs"]
    assert [(j["jobName"], j["jobStatus"], j["quantity"]) for j in jobs] == \
        [("Train-1", "RUNNING", 2), ("eval", "RUNNABLE", 1), ("train-3", "SUCCEEDED", 4)]
    assert jobs[0]["jobArn"] == ctx.arn("job/j1") and jobs[0]["jobQueueArn"] == ctx.arn("job-queue/q")
    assert jobs[0]["consumableResourceProperties"]["consumableResourceList"][0]["quantity"] == 2
    named = batch_client.list_jobs_by_consumable_resource(
        consumableResource=arn, filters=[{"name": "JOB_NAME", "values": ["TRAIN*"]}])["jobs"]
    assert [j["jobName"] for j in named] == ["Train-1", "train-3"]
    running = batch_client.list_jobs_by_consumable_resource(
        consumableResource=arn, filters=[{"name": "JOB_STATUS", "values": ["SUCCEEDED"]}])["jobs"]
    assert [j["jobName"] for j in running] == ["train-3"]
    first = batch_client.list_jobs_by_consumable_resource(consumableResource="seats", maxResults=2)
    assert len(first["jobs"]) == 2
    rest = batch_client.list_jobs_by_consumable_resource(consumableResource="seats", maxResults=2,
                                                         nextToken=first["nextToken"])
    assert [j["jobName"] for j in rest["jobs"]] == ["train-3"] and "nextToken" not in rest


CREATE_CASES = [
    ({"consumableResourceName": "bad name"}, "is not supported pattern"),
    ({"totalQuantity": -1}, "non-negative"),
    ({"resourceType": "SOMETIMES"}, "resourceType"),
    ({"tags": {"aws:k": "v"}}, "reserved"),
]


@pytest.mark.rule("CreateConsumableResource.totalQuantity.non_negative",
                  "CreateConsumableResource.consumableResourceName.unique")
def test_create_validation(batch_client):
    for kwargs, fragment in CREATE_CASES:
        kwargs = {"consumableResourceName": "bad", **kwargs}
        message = client_error(batch_client.create_consumable_resource, **kwargs)
        assert fragment in message, (kwargs, message)
    batch_client.create_consumable_resource(consumableResourceName="dup")
    assert "already exists" in client_error(batch_client.create_consumable_resource, consumableResourceName="dup")
