"""Scheduling policy operations against a real server."""

from __future__ import annotations

from tests.conftest import client_error

FAIRSHARE = {"shareDecaySeconds": 3600, "computeReservation": 10,
             "shareDistribution": [{"shareIdentifier": "A*", "weightFactor": 0.5},
                                   {"shareIdentifier": "B1", "weightFactor": 1.0}]}


def test_create_describe_update(batch_client, batchemu_server):
    created = batch_client.create_scheduling_policy(name="fair", fairsharePolicy=FAIRSHARE, tags={"k": "v"})
    config = batchemu_server.config
    assert created == {"name": "fair", "arn": f"arn:aws:batch:{config.region}:{config.account_id}:"
                                              "scheduling-policy/fair", "ResponseMetadata": created["ResponseMetadata"]}
    [policy] = batch_client.describe_scheduling_policies(arns=[created["arn"]])["schedulingPolicies"]
    assert policy["name"] == "fair" and policy["arn"] == created["arn"]
    assert policy["fairsharePolicy"] == FAIRSHARE and policy["tags"] == {"k": "v"}
    updated = {"shareDecaySeconds": 0, "computeReservation": 0, "shareDistribution": [{"shareIdentifier": "C"}]}
    batch_client.update_scheduling_policy(arn=created["arn"], fairsharePolicy=updated)
    [policy] = batch_client.describe_scheduling_policies(arns=[created["arn"]])["schedulingPolicies"]
    assert policy["fairsharePolicy"] == updated and policy["tags"] == {"k": "v"}


def test_describe_skips_unknown_arns(batch_client):
    arn = batch_client.create_scheduling_policy(name="one")["arn"]
    policies = batch_client.describe_scheduling_policies(arns=[arn, arn.replace("one", "two")])
    assert [p["name"] for p in policies["schedulingPolicies"]] == ["one"]


def test_quota_share_policy_cannot_become_fair_share(batch_client):
    arn = batch_client.create_scheduling_policy(
        name="quota", quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"})["arn"]
    [policy] = batch_client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]
    assert policy["quotaSharePolicy"] == {"idleResourceAssignmentStrategy": "FIFO"}
    assert "can't be changed" in client_error(batch_client.update_scheduling_policy, arn=arn,
                                              fairsharePolicy=FAIRSHARE)


def test_list_pages_through_arns(batch_client):
    arns = [batch_client.create_scheduling_policy(name=f"p{i}")["arn"] for i in range(5)]
    page = batch_client.list_scheduling_policies(maxResults=2)
    assert [p["arn"] for p in page["schedulingPolicies"]] == arns[:2] and page["nextToken"]
    pages = batch_client.get_paginator("list_scheduling_policies").paginate(PaginationConfig={"PageSize": 3})
    assert [p["arn"] for page in pages for p in page["schedulingPolicies"]] == arns
    assert "maxResults" in client_error(batch_client.list_scheduling_policies, maxResults=0)


def test_delete(batch_client):
    arn = batch_client.create_scheduling_policy(name="gone")["arn"]
    batch_client.delete_scheduling_policy(arn=arn)
    assert batch_client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"] == []
    assert "does not exist" in client_error(batch_client.delete_scheduling_policy, arn=arn)
    assert "does not exist" in client_error(batch_client.update_scheduling_policy, arn=arn,
                                            fairsharePolicy=FAIRSHARE)


def test_delete_refused_while_a_job_queue_uses_it(batchemu_server, batch_client):
    arn = batch_client.create_scheduling_policy(name="used")["arn"]
    # A job queue document as the job queues module stores it (that module is tested on its own).
    queue_arn = batchemu_server.ctx.arn("job-queue/q")
    with batchemu_server.store.transaction() as tx:
        tx.resources.put("job-queue", queue_arn, "q", {"jobQueueName": "q", "jobQueueArn": queue_arn,
                                                       "schedulingPolicyArn": arn})
    assert client_error(batch_client.delete_scheduling_policy, arn=arn) == \
        "Cannot delete, found existing JobQueue relationship"
    assert len(batch_client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]) == 1


CREATE_CASES = [
    ({"name": "bad name"}, "is not supported pattern"),
    ({"fairsharePolicy": FAIRSHARE, "quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}},
     "Only one of"),
    ({"fairsharePolicy": {"shareDecaySeconds": 604801}}, "shareDecaySeconds"),
    ({"fairsharePolicy": {"computeReservation": 100}}, "computeReservation"),
    ({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a-b"}]}}, "Invalid shareIdentifier"),
    ({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "A", "weightFactor": 1000.0}]}},
     "weightFactor"),
    ({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "UserA*"}, {"shareIdentifier": "UserA1"}]}},
     "overlap"),
    ({"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "X"}, {"shareIdentifier": "X"}]}},
     "overlap"),
    ({"tags": {"aws:x": "1"}}, "reserved"),
]


def test_create_validation(batch_client):
    for kwargs, fragment in CREATE_CASES:
        kwargs = {"name": "bad", **kwargs}
        message = client_error(batch_client.create_scheduling_policy, **kwargs)
        assert fragment in message, (kwargs, message)
    assert batch_client.list_scheduling_policies()["schedulingPolicies"] == []
    batch_client.create_scheduling_policy(name="dup")
    assert "already exists" in client_error(batch_client.create_scheduling_policy, name="dup")
