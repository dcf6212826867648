"""Fair-share queues and consumable resources through boto3 against a real server."""

from __future__ import annotations

from conftest import (
    client_error,
    describe,
    make_queue,
    needs_docker,
    register,
    submit,
    unique,
    wait_for_status,
    wait_until,
)


def fair_queue(batch_client, *, ce_state: str = "DISABLED", **policy) -> dict:
    arn = batch_client.create_scheduling_policy(name=unique("fs"), fairsharePolicy=policy)["arn"]
    return make_queue(batch_client, ce_state=ce_state, schedulingPolicyArn=arn)


def test_share_identifier_is_required_on_fair_share_queues_only(batch_client):
    fair, fifo = fair_queue(batch_client), make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["true"])
    assert client_error(batch_client.submit_job, jobName="x", jobQueue=fair["name"],
                        jobDefinition=definition["jobDefinitionArn"]) == "shareIdentifier must be specified."
    assert "fair share" in client_error(batch_client.submit_job, jobName="x", jobQueue=fifo["name"],
                                        jobDefinition=definition["jobDefinitionArn"], shareIdentifier="A")


def test_snapshot_shows_fair_share_dispatch_order_and_list_filters_by_share(batch_client):
    queue = fair_queue(batch_client, shareDistribution=[{"shareIdentifier": "A"}, {"shareIdentifier": "B"}])
    definition = register(batch_client, ["true"])
    a = [submit(batch_client, queue, definition, shareIdentifier="A") for _ in range(3)]
    b = [submit(batch_client, queue, definition, shareIdentifier="B") for _ in range(2)]
    urgent = submit(batch_client, queue, definition, shareIdentifier="B", schedulingPriorityOverride=90)
    wait_until(lambda: all(describe(batch_client, j)["status"] == "RUNNABLE" for j in a + b + [urgent]))
    front = batch_client.get_job_queue_snapshot(jobQueue=queue["name"])["frontOfQueue"]["jobs"]
    order = [j["jobArn"].rsplit("/", 1)[1] for j in front]
    # Shares alternate; within B the higher schedulingPriorityOverride goes first.
    assert order == [a[0], urgent, a[1], b[0], a[2], b[1]]
    listed = batch_client.list_jobs(jobQueue=queue["name"], jobStatus="RUNNABLE",
                                    filters=[{"name": "SHARE_IDENTIFIER", "values": ["B"]}])["jobSummaryList"]
    assert sorted(j["jobId"] for j in listed) == sorted(b + [urgent])
    assert all(j["shareIdentifier"] == "B" for j in listed)


@needs_docker
def test_replenishable_resource_gates_jobs_and_comes_back(batch_client):
    queue = make_queue(batch_client)
    resource = batch_client.create_consumable_resource(consumableResourceName=unique("lic"), totalQuantity=1)
    definition = register(batch_client, ["sleep", "1"], consumableResourceProperties={
        "consumableResourceList": [{"consumableResource": resource["consumableResourceName"], "quantity": 1}]})
    first, second = (submit(batch_client, queue, definition) for _ in range(2))

    def one_running_one_waiting():
        jobs = {j["jobId"]: j for j in batch_client.describe_jobs(jobs=[first, second])["jobs"]}
        statuses = sorted(j["status"] for j in jobs.values())
        return jobs if statuses == ["RUNNABLE", "RUNNING"] and any(
            j.get("statusReason", "").startswith("CONSUMABLE_RESOURCE") for j in jobs.values()) else None
    wait_until(one_running_one_waiting, 20)
    described = batch_client.describe_consumable_resource(consumableResource=resource["consumableResourceArn"])
    assert (described["inUseQuantity"], described["availableQuantity"], described["totalQuantity"]) == (1, 0, 1)
    by_resource = batch_client.list_jobs_by_consumable_resource(
        consumableResource=resource["consumableResourceName"])["jobs"]
    assert {j["jobArn"].rsplit("/", 1)[1] for j in by_resource} == {first, second}
    assert all(j["quantity"] == 1 for j in by_resource)
    jobs = [wait_for_status(batch_client, job_id) for job_id in (first, second)]
    assert [j["status"] for j in jobs] == ["SUCCEEDED", "SUCCEEDED"]
    earlier, later = sorted(jobs, key=lambda j: j["startedAt"])
    assert later["startedAt"] >= earlier["stoppedAt"]
    described = batch_client.describe_consumable_resource(consumableResource=resource["consumableResourceArn"])
    assert (described["inUseQuantity"], described["availableQuantity"]) == (0, 1)


@needs_docker
def test_non_replenishable_quantity_is_used_up_by_each_array_child(batch_client):
    queue = make_queue(batch_client)
    resource = batch_client.create_consumable_resource(consumableResourceName=unique("tok"), totalQuantity=2,
                                                       resourceType="NON_REPLENISHABLE")
    definition = register(batch_client, ["true"], consumableResourceProperties={
        "consumableResourceList": [{"consumableResource": resource["consumableResourceArn"], "quantity": 5}]})
    parent = submit(batch_client, queue, definition, arrayProperties={"size": 3}, consumableResourcePropertiesOverride={
        "consumableResourceList": [{"consumableResource": resource["consumableResourceArn"], "quantity": 1}]})
    wait_until(lambda: describe(batch_client, parent)["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2, 30)
    waiting = wait_until(lambda: [j for j in batch_client.list_jobs(arrayJobId=parent, jobStatus="RUNNABLE")[
        "jobSummaryList"] if j.get("statusReason", "").startswith("CONSUMABLE_RESOURCE")], 10)
    assert len(waiting) == 1
    described = batch_client.describe_consumable_resource(consumableResource=resource["consumableResourceArn"])
    assert (described["totalQuantity"], described["inUseQuantity"], described["availableQuantity"]) == (0, 0, 0)
    batch_client.update_consumable_resource(consumableResource=resource["consumableResourceArn"],
                                            operation="ADD", quantity=1)
    assert wait_for_status(batch_client, parent)["status"] == "SUCCEEDED"
