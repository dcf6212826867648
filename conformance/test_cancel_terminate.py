"""CancelJob and TerminateJob as AWS documents them (API_CancelJob.html, API_TerminateJob.html)."""

from __future__ import annotations

import pytest

from conformance.harness import assert_status_order

covers = pytest.mark.covers


@covers("CancelJob", "DescribeJobs", group="cancel-terminate")
def test_cancel_runnable_job_fails_it_with_the_reason(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "never"])
    job_id = jobs.submit(f"{prefix}-cancel", held_env.queue, definition["jobDefinitionArn"])
    jobs.wait_status(job_id, "RUNNABLE")
    batch.cancel_job(jobId=job_id, reason="cancelled by the conformance suite")
    run = jobs.wait_one(job_id)
    assert run.last["status"] == "FAILED"
    assert run.last["statusReason"] == "cancelled by the conformance suite"
    assert "RUNNING" not in run.statuses and "startedAt" not in run.last


@covers("TerminateJob", "DescribeJobs", group="cancel-terminate")
def test_terminate_runnable_job_fails_it(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "never"])
    job_id = jobs.submit(f"{prefix}-term-q", held_env.queue, definition["jobDefinitionArn"])
    jobs.wait_status(job_id, "RUNNABLE")
    batch.terminate_job(jobId=job_id, reason="terminated while queued")
    run = jobs.wait_one(job_id)
    assert (run.last["status"], run.last["statusReason"]) == ("FAILED", "terminated while queued")


@pytest.mark.runs_commands
@covers("TerminateJob", "DescribeJobs", group="cancel-terminate")
def test_terminate_running_job_fails_it_with_the_reason(batch, shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sleep", "60"])
    job_id = jobs.submit(f"{prefix}-term-run", shared_env.queue, definition["jobDefinitionArn"])
    jobs.wait_status(job_id, "RUNNING")
    batch.terminate_job(jobId=job_id, reason="terminated by the conformance suite")
    run = jobs.wait_one(job_id, timeout=60)
    assert_status_order(run.statuses)
    assert run.last["status"] == "FAILED"
    assert run.last["statusReason"] == "terminated by the conformance suite"
    assert "stoppedAt" in run.last


# API_CancelJob.html: STARTING or RUNNING jobs aren't cancelled, though the call succeeds.
@pytest.mark.runs_commands  # the `sleep 2` keeps the job RUNNING long enough to be seen and cancelled there
@covers("CancelJob", "DescribeJobs", group="cancel-terminate")
def test_cancel_of_running_job_leaves_it_running(batch, shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sleep", "2"])
    job_id = jobs.submit(f"{prefix}-cancel-run", shared_env.queue, definition["jobDefinitionArn"])
    jobs.wait_status(job_id, "RUNNING")
    batch.cancel_job(jobId=job_id, reason="too late to cancel")
    run = jobs.wait_one(job_id)
    assert run.last["status"] == "SUCCEEDED", run.last.get("statusReason")
    assert run.last["container"]["exitCode"] == 0


# API_CancelJobs.html / API_TerminateJobs.html: bulk forms report each job in successful or errors.
@covers("CancelJobs", "TerminateJobs", "DescribeJobs", group="cancel-terminate")
def test_bulk_cancel_and_terminate(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "never"])
    ids = [jobs.submit(f"{prefix}-bulk-{i}", held_env.queue, definition["jobDefinitionArn"]) for i in range(3)]
    answer = batch.cancel_jobs(jobs=ids[:2], reason="bulk cancel")
    assert sorted(answer["successful"]) == sorted(ids[:2]) and not answer.get("errors")
    answer = batch.terminate_jobs(jobs=ids[2:], reason="bulk terminate")
    assert answer["successful"] == ids[2:] and not answer.get("errors")
    runs = jobs.wait(ids)
    assert [runs[i].last["statusReason"] for i in ids] == ["bulk cancel"] * 2 + ["bulk terminate"]
