"""Consumable resources gating jobs (resource-aware-scheduling-how-to-for-jobs.html,
resource-aware-scheduling-how-to-check-resources-check-resources.html): a job waits in RUNNABLE until the
quantity it needs is available, holds it from STARTING until it ends; a REPLENISHABLE quantity comes
back, a NON_REPLENISHABLE one is used up. AWS may report quantities up to 30 s late, so end states are
polled for."""

from __future__ import annotations

import pytest

from conformance.harness import wait_for

covers = pytest.mark.covers

QUANTITY_LAG_SECONDS = 30  # "the quantities reported may lag by up to 30 seconds"


def quantities(batch, name: str) -> tuple[int, int, int]:
    """(totalQuantity, inUseQuantity, availableQuantity)."""
    found = batch.describe_consumable_resource(consumableResource=name)
    return found["totalQuantity"], found["inUseQuantity"], found["availableQuantity"]


def quantities_become(batch, name: str, expected: tuple[int, int, int]) -> None:
    wait_for(lambda: quantities(batch, name), lambda seen: seen == expected,
             f"consumable resource {name}: (total, inUse, available) of {expected}", QUANTITY_LAG_SECONDS)


def consumable_resource(batch, resources, total: int, kind: str) -> dict:
    name = resources.name("cr")
    created = batch.create_consumable_resource(consumableResourceName=name, totalQuantity=total, resourceType=kind)
    resources.consumable_resources.append(name)
    return created


@pytest.mark.runs_commands
@covers("CreateConsumableResource", "RegisterJobDefinition", "SubmitJob", "DescribeJobs",
        "DescribeConsumableResource", "ListJobsByConsumableResource", group="consumable-resources")
def test_replenishable_resource_runs_jobs_one_at_a_time_and_comes_back(batch, resources, shared_env, jobdef,
                                                                        jobs, prefix):
    resource = consumable_resource(batch, resources, 1, "REPLENISHABLE")
    name = resource["consumableResourceName"]
    definition = jobdef(command=["sleep", "2"], consumableResourceProperties={
        "consumableResourceList": [{"consumableResource": name, "quantity": 1}]})
    ids = [jobs.submit(f"{prefix}-cr-{i}", shared_env.queue, definition["jobDefinitionArn"]) for i in range(2)]
    most_holding, while_one_runs, by_resource = 0, [], []

    def watch(found: dict) -> None:
        nonlocal most_holding
        statuses = sorted(job["status"] for job in found.values())
        most_holding = max(most_holding, sum(s in ("STARTING", "RUNNING") for s in statuses))
        if statuses == ["RUNNABLE", "RUNNING"]:
            while_one_runs.append(quantities(batch, name))
            if not by_resource:
                by_resource.extend(batch.list_jobs_by_consumable_resource(consumableResource=name)["jobs"])

    runs = jobs.wait(ids, observe=watch)
    assert [runs[j].last["status"] for j in ids] == ["SUCCEEDED"] * 2, [runs[j].statuses for j in ids]
    assert most_holding == 1, "both jobs held the single unit of the resource at once"
    earlier, later = sorted((runs[j].last for j in ids), key=lambda job: job["startedAt"])
    assert later["startedAt"] >= earlier["stoppedAt"]
    assert "RUNNABLE" in runs[later["jobId"]].statuses
    assert while_one_runs, "never saw one job running while the other waited"
    assert (1, 1, 0) in while_one_runs, f"(total, inUse, available) while one job ran: {while_one_runs}"
    assert {j["jobArn"].rsplit("/", 1)[1] for j in by_resource} == set(ids)
    assert all(j["quantity"] == 1 for j in by_resource)
    quantities_become(batch, name, (1, 0, 1))


@covers("CreateConsumableResource", "UpdateConsumableResource", "SubmitJob", "DescribeJobs",
        "DescribeConsumableResource", "ListJobs", group="consumable-resources")
@covers(group="arrays")
def test_non_replenishable_quantity_is_used_up_and_the_next_job_waits_for_more(batch, resources, shared_env,
                                                                               jobdef, jobs, prefix):
    resource = consumable_resource(batch, resources, 1, "NON_REPLENISHABLE")
    arn = resource["consumableResourceArn"]
    definition = jobdef(command=["echo", "token used"], consumableResourceProperties={
        "consumableResourceList": [{"consumableResource": arn, "quantity": 2}]})
    # Each child needs one unit (the override replaces the definition's 2); there is one unit in all.
    parent = jobs.submit(f"{prefix}-cr-tok", shared_env.queue, definition["jobDefinitionArn"],
                         arrayProperties={"size": 2}, consumableResourcePropertiesOverride={
                             "consumableResourceList": [{"consumableResource": arn, "quantity": 1}]})
    jobs.wait_one(parent, until=lambda job: job["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 1)
    quantities_become(batch, arn, (0, 0, 0))
    waiting = batch.list_jobs(arrayJobId=parent, jobStatus="RUNNABLE")["jobSummaryList"]
    assert len(waiting) == 1, "the second child should wait in RUNNABLE for the used-up quantity"
    assert jobs.describe([parent])[parent]["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 1

    assert batch.update_consumable_resource(consumableResource=arn, operation="ADD", quantity=1)["totalQuantity"] == 1
    run = jobs.wait_one(parent)
    assert run.last["status"] == "SUCCEEDED", run.last.get("statusReason")
    quantities_become(batch, arn, (0, 0, 0))
