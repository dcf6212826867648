"""Quota shares on quota-managed SAGEMAKER_TRAINING job queues end to end: real boto3 against a real server."""

from __future__ import annotations

import pytest

from batchemu.config import Config
from tests.conftest import client_error, make_queue, unique, wait_for_job_queue, wait_until

LIMITS = [{"maxCapacity": 2, "capacityUnit": "ml.m5.large"}]
RESERVE = {"strategy": "RESERVE"}
NO_PREEMPTION = {"inSharePreemption": "DISABLED"}


def quota_queue(client, *, quota_managed: bool = True) -> dict:
    """A VALID SAGEMAKER_TRAINING job queue on a new service environment, with a quotaSharePolicy."""
    env = client.create_service_environment(serviceEnvironmentName=unique("se"),
                                            serviceEnvironmentType="SAGEMAKER_TRAINING", capacityLimits=LIMITS)
    policy = {"quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}} if quota_managed else {}
    policy_arn = client.create_scheduling_policy(name=unique("sp"), **policy)["arn"]
    name = unique("qjq")
    queue = client.create_job_queue(
        jobQueueName=name, priority=1, schedulingPolicyArn=policy_arn,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env["serviceEnvironmentArn"]}])
    wait_for_job_queue(client, name)
    return queue


def create_share(client, queue: str, name: str | None = None, **extra) -> dict:
    arguments = {"quotaShareName": name or unique("qs"), "jobQueue": queue, "capacityLimits": LIMITS,
                 "resourceSharingConfiguration": RESERVE, "preemptionConfiguration": NO_PREEMPTION, **extra}
    return client.create_quota_share(**arguments)


def describe_share(client, arn: str) -> dict:
    detail = client.describe_quota_share(quotaShareArn=arn)
    detail.pop("ResponseMetadata", None)
    return detail


def wait_share(client, arn: str, status: str = "VALID") -> dict:
    return wait_until(lambda: (d := describe_share(client, arn))["status"] == status and d, 10)


@pytest.mark.rule("QuotaShareResourceSharingConfiguration.borrowLimit.default", "CreateQuotaShare.state.default")
def test_create_reaches_valid_and_describes_everything(batch_client):
    queue = quota_queue(batch_client)
    created = create_share(batch_client, queue["jobQueueName"], "qs-a", tags={"team": "ml"},
                           resourceSharingConfiguration={"strategy": "LEND_AND_BORROW"})
    assert created["quotaShareArn"] == (f"arn:aws:batch:us-east-1:123456789012:job-queue/{queue['jobQueueName']}/"
                                        "quota-share/qs-a")
    assert wait_share(batch_client, created["quotaShareArn"]) == {
        "quotaShareName": "qs-a", "quotaShareArn": created["quotaShareArn"], "jobQueueArn": queue["jobQueueArn"],
        "capacityLimits": LIMITS, "resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": -1},
        "preemptionConfiguration": NO_PREEMPTION, "state": "ENABLED", "status": "VALID", "tags": {"team": "ml"}}
    assert batch_client.list_tags_for_resource(resourceArn=created["quotaShareArn"])["tags"] == {"team": "ml"}


@pytest.mark.rule("CreateQuotaShare.quotaShareName.form", "QuotaShareCapacityLimits.limit",
                  "QuotaShareResourceSharingConfiguration.borrowLimit.lend_and_borrow_only")
def test_create_rules(batch_client):
    queue = quota_queue(batch_client)["jobQueueName"]
    name = create_share(batch_client, queue)["quotaShareName"]
    assert client_error(create_share, client=batch_client, queue=queue, name=name) == "Object already exists"
    assert "quotaShareName must be 1-128" in client_error(create_share, client=batch_client, queue=queue, name="a b")
    assert client_error(create_share, client=batch_client, queue="jq-none") == "jobQueue jq-none does not exist"
    assert "borrowLimit can only be specified with the LEND_AND_BORROW strategy, not LEND" in client_error(
        create_share, client=batch_client, queue=queue, resourceSharingConfiguration={"strategy": "LEND",
                                                                                      "borrowLimit": 50})
    assert "borrowLimit must be a percentage" in client_error(
        create_share, client=batch_client, queue=queue,
        resourceSharingConfiguration={"strategy": "LEND_AND_BORROW", "borrowLimit": -2})
    six = [{"maxCapacity": 1, "capacityUnit": f"ml.m5.{size}"}
           for size in ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge")]
    assert "at most 5 capacity limits" in client_error(create_share, client=batch_client, queue=queue,
                                                       capacityLimits=six)


@pytest.mark.rule("CreateQuotaShare.jobQueue.valid_and_quota_managed")
def test_only_quota_managed_queues_take_shares(batch_client):
    fifo = make_queue(batch_client)["name"]
    plain = quota_queue(batch_client, quota_managed=False)["jobQueueName"]
    for queue in (fifo, plain):
        assert f"jobQueue {queue} is not quota managed" in client_error(create_share, client=batch_client,
                                                                         queue=queue)


@pytest.mark.rule("CreateQuotaShare.count.limit")
def test_at_most_20_shares_per_queue(batch_client):
    queue = quota_queue(batch_client)["jobQueueArn"]
    for _ in range(20):
        create_share(batch_client, queue)
    assert "already has the maximum of 20 quota shares" in client_error(create_share, client=batch_client,
                                                                        queue=queue)


@pytest.mark.rule("DescribeQuotaShare.unknown.refused")
def test_update_goes_through_updating_to_valid(batch_client):
    arn = create_share(batch_client, quota_queue(batch_client)["jobQueueName"])["quotaShareArn"]
    wait_share(batch_client, arn)
    limits = [{"maxCapacity": 8, "capacityUnit": "ml.g5.xlarge"}]
    updated = batch_client.update_quota_share(
        quotaShareArn=arn, capacityLimits=limits, state="DISABLED",
        resourceSharingConfiguration={"strategy": "LEND_AND_BORROW", "borrowLimit": 200},
        preemptionConfiguration={"inSharePreemption": "ENABLED"})
    assert updated["quotaShareArn"] == arn
    detail = wait_share(batch_client, arn)
    assert (detail["capacityLimits"], detail["state"], detail["resourceSharingConfiguration"],
            detail["preemptionConfiguration"]) == (limits, "DISABLED", {"strategy": "LEND_AND_BORROW",
                                                                        "borrowLimit": 200},
                                                   {"inSharePreemption": "ENABLED"})
    missing = arn + "-none"
    assert client_error(batch_client.update_quota_share, quotaShareArn=missing, state="ENABLED") == \
        f"quotaShare {missing} does not exist"


@pytest.mark.rule("DeleteQuotaShare.state.disabled_first", "DescribeQuotaShare.unknown.refused")
def test_delete_needs_disabled_then_it_is_gone(batch_client):
    queue = quota_queue(batch_client)["jobQueueName"]
    created = create_share(batch_client, queue)
    arn, name = created["quotaShareArn"], created["quotaShareName"]
    wait_share(batch_client, arn)
    assert client_error(batch_client.delete_quota_share, quotaShareArn=arn) == \
        f"Cannot delete, quota share {name} must be DISABLED first"
    batch_client.update_quota_share(quotaShareArn=arn, state="DISABLED")
    batch_client.delete_quota_share(quotaShareArn=arn)
    wait_until(lambda: not batch_client.list_quota_shares(jobQueue=queue)["quotaShares"], 10)
    assert client_error(batch_client.describe_quota_share, quotaShareArn=arn) == f"quotaShare {arn} does not exist"
    assert create_share(batch_client, queue, name)["quotaShareArn"] == arn


@pytest.mark.rule("ListQuotaShares.maxResults.range", "ListQuotaShares.jobQueue.name_or_arn")
def test_list_pages_through_the_queue_shares_only(batch_client):
    queue, other = quota_queue(batch_client)["jobQueueName"], quota_queue(batch_client)["jobQueueName"]
    arns = [create_share(batch_client, queue)["quotaShareArn"] for _ in range(5)]
    create_share(batch_client, other)
    seen, token = [], None
    while True:
        page = batch_client.list_quota_shares(jobQueue=queue, maxResults=2, **({"nextToken": token} if token else {}))
        assert len(page["quotaShares"]) <= 2
        assert all("tags" not in share for share in page["quotaShares"])
        seen += [share["quotaShareArn"] for share in page["quotaShares"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == arns
    assert client_error(batch_client.list_quota_shares, jobQueue="jq-none") == "jobQueue jq-none does not exist"
    assert "between 1 and 100" in client_error(batch_client.list_quota_shares, jobQueue=queue, maxResults=0)


def test_shares_go_with_their_deleted_queue(batch_client):
    queue = quota_queue(batch_client)["jobQueueName"]
    arn = create_share(batch_client, queue)["quotaShareArn"]
    batch_client.update_job_queue(jobQueue=queue, state="DISABLED")
    batch_client.delete_job_queue(jobQueue=queue)
    wait_for_job_queue(batch_client, queue, None)
    wait_until(lambda: "does not exist" in client_error(batch_client.describe_quota_share, quotaShareArn=arn), 10)


class TestWithDwell:
    @pytest.fixture
    def batchemu_config(self) -> Config:
        return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, state_dwell=30)

    @pytest.mark.rule("CreateQuotaShare.jobQueue.valid_and_quota_managed")
    def test_a_creating_queue_takes_no_quota_share(self, batch_client):
        env = batch_client.create_service_environment(serviceEnvironmentName="se", capacityLimits=LIMITS,
                                                      serviceEnvironmentType="SAGEMAKER_TRAINING")
        policy = batch_client.create_scheduling_policy(
            name="sp", quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"})["arn"]
        batch_client.create_job_queue(jobQueueName="q", priority=1, schedulingPolicyArn=policy,
                                      serviceEnvironmentOrder=[{"order": 1,
                                                                "serviceEnvironment": env["serviceEnvironmentArn"]}])
        assert client_error(create_share, client=batch_client, queue="q") == \
            "jobQueue q must be VALID to have quota shares, it is CREATING"
