"""ListJobs as pollers use it (API_ListJobs.html): RUNNING by default, jobStatus, the JOB_NAME and
created-at filters (which ignore jobStatus), and maxResults/nextToken paging."""

from __future__ import annotations

import time

import pytest

covers = pytest.mark.covers


def listed(batch, **kwargs) -> list[dict]:
    return [job for page in batch.get_paginator("list_jobs").paginate(**kwargs) for job in page["jobSummaryList"]]


@pytest.mark.runs_commands
@covers("ListJobs", group="listing")
def test_default_is_running_and_job_status_selects(batch, shared_env, jobdef, jobs, prefix):
    done_def = jobdef(command=["echo", "done"])
    long_def = jobdef(command=["sleep", "60"])
    done = jobs.submit(f"{prefix}-lj-done", shared_env.queue, done_def["jobDefinitionArn"])
    running = jobs.submit(f"{prefix}-lj-run", shared_env.queue, long_def["jobDefinitionArn"])
    jobs.wait_one(done)
    jobs.wait_status(running, "RUNNING")
    try:
        default = {j["jobId"]: j for j in listed(batch, jobQueue=shared_env.queue)}
        assert running in default and done not in default
        assert default[running]["status"] == "RUNNING"
        assert default[running]["jobName"] == f"{prefix}-lj-run"
        succeeded = {j["jobId"]: j for j in listed(batch, jobQueue=shared_env.queue, jobStatus="SUCCEEDED")}
        assert done in succeeded and running not in succeeded
        summary = succeeded[done]
        assert summary["status"] == "SUCCEEDED"
        assert summary["container"]["exitCode"] == 0
        assert summary["createdAt"] <= summary["stoppedAt"]
        by_arn = {j["jobId"] for j in listed(batch, jobQueue=shared_env.queue_arn, jobStatus="SUCCEEDED")}
        assert done in by_arn
    finally:
        batch.terminate_job(jobId=running, reason="listing test done")


@covers("ListJobs", group="listing")
def test_job_name_filter_with_trailing_star_is_case_insensitive(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    upper = jobs.submit(f"{prefix}-Alpha-1", held_env.queue, definition["jobDefinitionArn"])
    lower = jobs.submit(f"{prefix}-alpha-2", held_env.queue, definition["jobDefinitionArn"])
    other = jobs.submit(f"{prefix}-beta", held_env.queue, definition["jobDefinitionArn"])

    def names(value: str) -> set[str]:
        return {j["jobId"] for j in listed(batch, jobQueue=held_env.queue, jobStatus="SUCCEEDED",
                                            filters=[{"name": "JOB_NAME", "values": [value]}])}

    # jobStatus SUCCEEDED is ignored when a filter is given: these RUNNABLE jobs are still listed.
    assert names(f"{prefix}-alpha*") == {upper, lower}
    assert names(f"{prefix}-BETA") == {other}
    assert names(f"{prefix}-alpha") == set()


@covers("ListJobs", group="listing")
def test_created_at_filters(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    early = jobs.submit(f"{prefix}-time-early", held_env.queue, definition["jobDefinitionArn"])
    time.sleep(0.05)  # createdAt counts milliseconds: a pause between the submits, not an observation window
    late = jobs.submit(f"{prefix}-time-late", held_env.queue, definition["jobDefinitionArn"])
    found = jobs.describe([early, late])
    t_early, t_late = found[early]["createdAt"], found[late]["createdAt"]
    assert t_early < t_late
    middle = (t_early + t_late) // 2
    after = {j["jobId"] for j in listed(batch, jobQueue=held_env.queue,
                                        filters=[{"name": "AFTER_CREATED_AT", "values": [str(middle)]}])}
    before = {j["jobId"] for j in listed(batch, jobQueue=held_env.queue,
                                         filters=[{"name": "BEFORE_CREATED_AT", "values": [str(middle)]}])}
    assert late in after and early not in after
    assert early in before and late not in before


@covers("ListJobs", group="pagination")
@covers(group="listing")
def test_list_jobs_pages_with_max_results(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    ids = {jobs.submit(f"{prefix}-page-{i}", held_env.queue, definition["jobDefinitionArn"]) for i in range(5)}
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = batch.list_jobs(jobQueue=held_env.queue, maxResults=2,
                               filters=[{"name": "JOB_NAME", "values": [f"{prefix}-page-*"]}], **kwargs)
        assert len(page["jobSummaryList"]) <= 2
        seen += [j["jobId"] for j in page["jobSummaryList"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert sorted(seen) == sorted(ids), "pages lost or repeated jobs"
    assert pages >= 3


# API_GetJobQueueSnapshot.html: the first RUNNABLE jobs of a queue.
@covers("GetJobQueueSnapshot", group="listing")
def test_job_queue_snapshot_shows_runnable_jobs(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    job_id = jobs.submit(f"{prefix}-snap", held_env.queue, definition["jobDefinitionArn"])
    run = jobs.wait_status(job_id, "RUNNABLE")
    snapshot = batch.get_job_queue_snapshot(jobQueue=held_env.queue)
    assert run.last["jobArn"] in [j["jobArn"] for j in snapshot["frontOfQueue"].get("jobs", [])]
