"""Rules of the job operations that the API reference states in words (batchemu/model/documented_rules/
job_rules.py), as any endpoint should show them: SubmitJob's retryStrategy, share and priority checks, the
combined tag limit, ListJobs' filter forms and "only present when true" fields, the bulk cancel and terminate
calls, and the limits of DescribeJobs and of a cancel reason."""

from __future__ import annotations

import pytest

from conformance.harness import refused

covers = pytest.mark.covers
rule = pytest.mark.rule


def fair_share_queue(batch, resources, held_env) -> str:
    policy = batch.create_scheduling_policy(name=resources.name("fs"), fairsharePolicy={"shareDecaySeconds": 0})
    resources.scheduling_policies.append(policy["arn"])
    return resources.job_queue([held_env.compute_environment], schedulingPolicyArn=policy["arn"])["jobQueueName"]


# API_RetryStrategy.html: "between 1 and 10 attempts", evaluateOnExit "up to 5 objects", and attempts must be
# given with evaluateOnExit; SubmitJob takes the same shape as RegisterJobDefinition.
@covers("SubmitJob", group="request-rules")
@covers(group="retries-dependencies")
@rule("RetryStrategy.attempts.range", "RetryStrategy.evaluateOnExit.max", "RetryStrategy.evaluateOnExit.needs-attempts")
def test_submit_job_refuses_retry_strategies_outside_the_documented_ranges(batch, held_env, jobdef, prefix):
    definition = jobdef(command=["echo", "x"])
    for strategy in ({"attempts": 0}, {"attempts": 11},
                     {"attempts": 2, "evaluateOnExit": [{"onExitCode": str(i), "action": "EXIT"} for i in range(6)]},
                     {"evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]}):
        refused(batch.submit_job, jobName=f"{prefix}-retry", jobQueue=held_env.queue,
                jobDefinition=definition["jobDefinitionArn"], retryStrategy=strategy)


# API_SubmitJob.html: schedulingPriorityOverride "minimum supported value is 0 and the maximum supported value is
# 9999"; shareIdentifier "limited to 255 alphanumeric characters, and can be followed by an asterisk".
@covers("CreateSchedulingPolicy", "CreateJobQueue", "SubmitJob", "DescribeJobs", group="request-rules")
@covers(group="fair-share")
@rule("SubmitJob.schedulingPriorityOverride.range", "SubmitJob.shareIdentifier.form")
def test_priority_override_and_share_identifier_forms(batch, resources, held_env, jobdef, jobs, prefix):
    queue = fair_share_queue(batch, resources, held_env)
    definition = jobdef(command=["echo", "x"])
    refused(batch.submit_job, jobName=f"{prefix}-prio", jobQueue=queue, jobDefinition=definition["jobDefinitionArn"],
            shareIdentifier="a", schedulingPriorityOverride=10_000)
    refused(batch.submit_job, jobName=f"{prefix}-share", jobQueue=queue, jobDefinition=definition["jobDefinitionArn"],
            shareIdentifier="a" * 256)
    job_id = jobs.submit(f"{prefix}-prio-ok", queue, definition["jobDefinitionArn"], shareIdentifier="a" * 255,
                         schedulingPriorityOverride=9999)
    job = jobs.describe([job_id])[job_id]
    assert (job["shareIdentifier"], job["schedulingPriority"]) == ("a" * 255, 9999)


# API_SubmitJob.html, propagateTags: "If the total number of combined tags from the job and job definition is over
# 50, the job is moved to the FAILED state." The request itself is accepted.
@covers("RegisterJobDefinition", "SubmitJob", "DescribeJobs", group="tags")
@covers(group="request-rules")
@rule("SubmitJob.propagateTags.combined-limit")
def test_over_50_propagated_tags_fail_the_job(shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"], propagateTags=True, tags={f"d{i}": "v" for i in range(30)})
    job_id = jobs.submit(f"{prefix}-tags", shared_env.queue, definition["jobDefinitionArn"],
                         tags={f"j{i}": "v" for i in range(21)})
    assert jobs.wait_one(job_id).last["status"] == "FAILED"


# API_ListJobs.html, filters: JOB_NAME is case-insensitive with a trailing * prefix form; JOB_DEFINITION takes a
# name (every revision, case-sensitive), a name ending in *, or an ARN with revision.
@covers("RegisterJobDefinition", "SubmitJob", "ListJobs", group="listing")
@rule("ListJobs.JOB_NAME.forms", "ListJobs.JOB_DEFINITION.forms")
def test_list_jobs_name_and_definition_filter_forms(batch, held_env, jobdef, jobs, prefix):
    name = f"{prefix}-Lf"
    first = jobdef(command=["echo", "x"], name=name)
    second = jobdef(command=["echo", "x"], name=name)
    longer = jobdef(command=["echo", "x"], name=name + "x")
    # held_env's queue is shared by every scenario: these jobs' names start with a part no other scenario uses
    ids = {job_name: jobs.submit(f"{name}-{job_name}", held_env.queue, definition["jobDefinitionArn"])
           for job_name, definition in (("One", first), ("two", second), ("three", longer))}

    def listed(filter_name: str, value: str) -> set[str]:
        found = batch.list_jobs(jobQueue=held_env.queue, filters=[{"name": filter_name, "values": [value]}])
        return {summary["jobId"] for summary in found["jobSummaryList"]}
    assert listed("JOB_NAME", f"{name}-one".upper()) == {ids["One"]}
    assert listed("JOB_NAME", f"{name}-T*") == {ids["two"], ids["three"]}
    assert listed("JOB_DEFINITION", name) == {ids["One"], ids["two"]}
    assert listed("JOB_DEFINITION", name + "*") == set(ids.values())
    assert listed("JOB_DEFINITION", second["jobDefinitionArn"]) == {ids["two"]}


# API_JobSummary.html, isCancelled and isTerminated: "This field is only present when the value is true."
@covers("SubmitJob", "CancelJob", "ListJobs", group="listing")
@covers(group="cancel-terminate")
@rule("JobSummary.isCancelled.only-when-true")
def test_job_summaries_carry_is_cancelled_only_when_true(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    cancelled = jobs.submit(f"{prefix}-flag-c", held_env.queue, definition["jobDefinitionArn"])
    waiting = jobs.submit(f"{prefix}-flag-w", held_env.queue, definition["jobDefinitionArn"])
    batch.cancel_job(jobId=cancelled, reason="flagged")
    jobs.wait_one(cancelled)
    found = {s["jobId"]: s for s in batch.list_jobs(jobQueue=held_env.queue, filters=[
        {"name": "JOB_NAME", "values": [f"{prefix}-flag-*"]}])["jobSummaryList"]}
    assert found[cancelled].get("isCancelled") is True and "isTerminated" not in found[cancelled]
    assert "isCancelled" not in found[waiting] and "isTerminated" not in found[waiting]


# API_CancelJobs.html / API_TerminateJobs.html: "Jobs that can't be found are treated as successfully processed",
# HTTP 200 either way; up to 50 jobs.
@covers("CancelJobs", "TerminateJobs", group="cancel-terminate")
@rule("CancelJobs.not-found-processed", "CancelJobs.jobs.max")
def test_bulk_calls_count_jobs_that_cannot_be_found_as_processed(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    job_id = jobs.submit(f"{prefix}-bulk-nf", held_env.queue, definition["jobDefinitionArn"])
    missing = "00000000-0000-4000-8000-000000000000"
    for call in (batch.cancel_jobs, batch.terminate_jobs):
        answer = call(jobs=[job_id, missing], reason="bulk")
        assert sorted(answer["successful"]) == sorted([job_id, missing]) and not answer.get("errors")
    refused(batch.cancel_jobs, jobs=[missing] * 51, reason="too many")


# API_CancelJob.html, reason: "This parameter has a limit of 1024 characters."; API_DescribeJobs.html: "up to 100".
@covers("CancelJob", "DescribeJobs", group="request-rules")
@rule("CancelJob.reason", "DescribeJobs.jobs.max")
def test_reason_and_describe_limits(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    job_id = jobs.submit(f"{prefix}-reason", held_env.queue, definition["jobDefinitionArn"])
    refused(batch.cancel_job, jobId=job_id, reason="r" * 1025)
    refused(batch.describe_jobs, jobs=[job_id] * 101)
    batch.cancel_job(jobId=job_id, reason="r" * 1024)
    assert jobs.wait_one(job_id).last["statusReason"] == "r" * 1024


# API_GetJobQueueSnapshot.html / API_FairshareUtilizationDetail.html: fairshareUtilization belongs to queues with a
# fair-share policy; a FIFO queue's snapshot has none.
@covers("GetJobQueueSnapshot", group="fair-share")
@rule("GetJobQueueSnapshot.fairshareUtilization")
def test_fifo_queue_snapshot_has_no_fair_share_utilization(batch, held_env):
    utilization = batch.get_job_queue_snapshot(jobQueue=held_env.queue_arn).get("queueUtilization") or {}
    assert "fairshareUtilization" not in utilization
