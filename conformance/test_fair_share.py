"""Fair-share queues (fair-share-scheduling.html, API_SubmitJob.html, API_GetJobQueueSnapshot.html): the
shareIdentifier rule, the order jobs will be dispatched in, and listing jobs by share.

The queues sit on the DISABLED compute environment of `held_env`, so their jobs wait in RUNNABLE and the
snapshot shows them all."""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from conformance.harness import client_error_code

covers = pytest.mark.covers


def fair_share_queue(batch, resources, held_env, shares: list[str]) -> str:
    policy = batch.create_scheduling_policy(
        name=resources.name("fs"),
        fairsharePolicy={"shareDistribution": [{"shareIdentifier": s, "weightFactor": 1.0} for s in shares]})
    resources.scheduling_policies.append(policy["arn"])
    return resources.job_queue([held_env.compute_environment], schedulingPolicyArn=policy["arn"])["jobQueueName"]


# API_SubmitJob.html, shareIdentifier: required on a fair-share queue, not allowed on any other.
@covers("CreateSchedulingPolicy", "CreateJobQueue", "SubmitJob", group="fair-share")
@covers(group="request-rules")
@pytest.mark.rule("SubmitJob.shareIdentifier.fair-share")
def test_share_identifier_is_required_on_fair_share_queues_only(batch, resources, held_env, jobdef, prefix):
    queue = fair_share_queue(batch, resources, held_env, ["alpha"])
    definition = jobdef(command=["echo", "x"], schedulingPriority=1)
    with pytest.raises(ClientError) as caught:
        batch.submit_job(jobName=f"{prefix}-fs-noshare", jobQueue=queue,
                         jobDefinition=definition["jobDefinitionArn"])
    assert client_error_code(caught.value) == "ClientException"
    assert "shareIdentifier must be specified" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        batch.submit_job(jobName=f"{prefix}-fifo-share", jobQueue=held_env.queue,
                         jobDefinition=definition["jobDefinitionArn"], shareIdentifier="alpha")
    assert client_error_code(caught.value) == "ClientException"


# API_GetJobQueueSnapshot.html: the front of a fair-share queue in dispatch order. With equal weights and
# no usage yet the shares take turns; within a share a higher schedulingPriorityOverride goes first.
# API_ListJobs.html: SHARE_IDENTIFIER is the one filter that combines with jobStatus.
@covers("SubmitJob", "GetJobQueueSnapshot", "ListJobs", group="fair-share")
@covers(group="listing")
def test_snapshot_alternates_shares_and_list_jobs_filters_by_share(batch, resources, held_env, jobdef, jobs, prefix):
    queue = fair_share_queue(batch, resources, held_env, ["alpha", "beta"])
    definition = jobdef(command=["echo", "x"], schedulingPriority=1)["jobDefinitionArn"]
    alpha = [jobs.submit(f"{prefix}-fs-a{i}", queue, definition, shareIdentifier="alpha") for i in range(3)]
    beta = [jobs.submit(f"{prefix}-fs-b{i}", queue, definition, shareIdentifier="beta") for i in range(2)]
    urgent = jobs.submit(f"{prefix}-fs-b-urgent", queue, definition, shareIdentifier="beta",
                         schedulingPriorityOverride=90)
    every = alpha + beta + [urgent]
    runs = jobs.wait(every, until=lambda job: job["status"] == "RUNNABLE")
    assert runs[urgent].last["schedulingPriority"] == 90
    assert {runs[j].last["shareIdentifier"] for j in alpha} == {"alpha"}

    snapshot = batch.get_job_queue_snapshot(jobQueue=queue)["frontOfQueue"]
    order = [job["jobArn"].rsplit("/", 1)[1] for job in snapshot.get("jobs", [])]
    assert sorted(order) == sorted(every), f"snapshot lists {order}, expected the 6 RUNNABLE jobs"
    share_of = {**dict.fromkeys(alpha, "alpha"), **dict.fromkeys(beta + [urgent], "beta")}
    shares = [share_of[job_id] for job_id in order]
    # Three jobs in each share: they take turns all the way.
    assert all(a != b for a, b in itertools.pairwise(shares)), f"shares do not take turns: {shares}"
    assert [j for j in order if share_of[j] == "beta"] == [urgent, *beta]
    assert [j for j in order if share_of[j] == "alpha"] == alpha

    listed = [j for page in batch.get_paginator("list_jobs").paginate(
                  jobQueue=queue, jobStatus="RUNNABLE", filters=[{"name": "SHARE_IDENTIFIER", "values": ["beta"]}])
              for j in page["jobSummaryList"]]
    assert sorted(j["jobId"] for j in listed) == sorted(beta + [urgent])
    assert {j["shareIdentifier"] for j in listed} == {"beta"}
