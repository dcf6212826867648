"""Capacity, DISABLED holds, queue priority, cancel/terminate, time-limit actions, engine outages."""

from __future__ import annotations

import functools
import operator

import pytest

from tests.conftest import (
    describe,
    make_queue,
    needs_docker,
    register,
    submit,
    unique,
    wait_for_job_queue,
    wait_for_scheduler_passes,
    wait_for_status,
    wait_until,
)


def wait_with_clock_ahead(batch_client, server, job_id: str, ahead_ms: int) -> dict:
    """Run the server's clock `ahead_ms` in the future until the job ends (time limits without waiting)."""
    real_clock = server.ctx.clock
    server.ctx.clock = lambda: real_clock() + ahead_ms
    try:
        server.scheduler.notify()
        return wait_for_status(batch_client, job_id, timeout=30)
    finally:
        server.ctx.clock = real_clock


def max_overlap(jobs: list[dict]) -> int:
    events = sorted([(j["startedAt"], 1) for j in jobs] + [(j["stoppedAt"], -1) for j in jobs])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


@needs_docker
def test_never_more_running_than_max_vcpus(batch_client):
    queue = make_queue(batch_client, max_vcpus=2)
    definition = register(batch_client, ["sleep", "1"])
    ids = [submit(batch_client, queue, definition) for _ in range(5)]
    jobs = [wait_for_status(batch_client, i, timeout=90) for i in ids]
    assert all(j["status"] == "SUCCEEDED" for j in jobs)
    assert max_overlap(jobs) <= 2
    assert max_overlap(jobs) == 2  # capacity is used, not wasted


@needs_docker
def test_disabled_compute_environment_holds_jobs_in_runnable(batch_client, batchemu_server):
    queue = make_queue(batch_client, ce_state="DISABLED")
    job_id = submit(batch_client, queue, register(batch_client, ["true"]))
    wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    wait_for_scheduler_passes(batchemu_server)
    assert describe(batch_client, job_id)["status"] == "RUNNABLE"
    batch_client.update_compute_environment(computeEnvironment=queue["ce"], state="ENABLED")
    assert wait_for_status(batch_client, job_id)["status"] == "SUCCEEDED"


@needs_docker
def test_disabled_queue_holds_jobs_and_rejects_new_ones(batch_client, batchemu_server):
    queue = make_queue(batch_client, ce_state="DISABLED")
    job_id = submit(batch_client, queue, register(batch_client, ["true"]))
    wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    batch_client.update_job_queue(jobQueue=queue["name"], state="DISABLED")
    batch_client.update_compute_environment(computeEnvironment=queue["ce"], state="ENABLED")
    wait_for_scheduler_passes(batchemu_server)
    assert describe(batch_client, job_id)["status"] == "RUNNABLE"
    with pytest.raises(batch_client.exceptions.ClientException):
        submit(batch_client, queue, register(batch_client, ["true"]))
    batch_client.update_job_queue(jobQueue=queue["name"], state="ENABLED")
    assert wait_for_status(batch_client, job_id)["status"] == "SUCCEEDED"


@needs_docker
def test_higher_priority_queue_goes_first_on_a_shared_ce(batch_client):
    low = make_queue(batch_client, max_vcpus=1, ce_state="DISABLED", priority=1)
    high = batch_client.create_job_queue(
        jobQueueName=unique("jq-high"), priority=10,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": low["ceArn"]}])
    high_queue = {"name": high["jobQueueName"]}
    wait_for_job_queue(batch_client, high["jobQueueName"])
    definition = register(batch_client, ["sleep", "1"])
    low_ids = [submit(batch_client, low, definition) for _ in range(2)]
    high_ids = [submit(batch_client, high_queue, definition) for _ in range(2)]
    for job_id in low_ids + high_ids:
        wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    batch_client.update_compute_environment(computeEnvironment=low["ce"], state="ENABLED")
    jobs = {i: wait_for_status(batch_client, i, timeout=60) for i in low_ids + high_ids}
    assert max(jobs[i]["startedAt"] for i in high_ids) < min(jobs[i]["startedAt"] for i in low_ids)
    # FIFO within a queue
    assert jobs[high_ids[0]]["startedAt"] < jobs[high_ids[1]]["startedAt"]


def test_cancel_runnable_job_fails_it_with_the_reason(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    job_id = submit(batch_client, queue, register(batch_client, ["true"]))
    wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    batch_client.cancel_job(jobId=job_id, reason="not needed")
    job = describe(batch_client, job_id)
    assert job["status"] == "FAILED" and job["statusReason"] == "not needed" and job["isCancelled"] is True
    assert "startedAt" not in job
    assert job["stoppedAt"] >= job["createdAt"]  # Metaflow takes stoppedAt > 0 as done


def test_terminate_queued_job_and_bulk_operations(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["true"])
    ids = [submit(batch_client, queue, definition) for _ in range(3)]
    batch_client.terminate_job(jobId=ids[0], reason="stop it")
    assert describe(batch_client, ids[0])["statusReason"] == "stop it"
    result = batch_client.cancel_jobs(jobs=[ids[1], "no-such-job"], reason="bulk")
    # API_CancelJobs: "Jobs that can't be found are treated as successfully processed."
    assert result["successful"] == [ids[1], "no-such-job"] and result["errors"] == []
    result = batch_client.terminate_jobs(jobs=[ids[2]], reason="bulk terminate")
    assert result == {"successful": [ids[2]], "errors": [], "ResponseMetadata": result["ResponseMetadata"]}
    assert describe(batch_client, ids[2])["status"] == "FAILED"
    with pytest.raises(batch_client.exceptions.ClientException):
        batch_client.cancel_job(jobId="no-such-job", reason="x")


@needs_docker
@pytest.mark.rule("CancelJob.queued-only", "TerminateJob.statuses")
def test_cancel_leaves_running_job_and_terminate_stops_it(batch_client, batchemu_server, queue):
    job_id = submit(batch_client, queue, register(batch_client, ["sleep", "60"]))
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    batch_client.cancel_job(jobId=job_id, reason="cancel does not stop running jobs")
    wait_for_scheduler_passes(batchemu_server)
    assert describe(batch_client, job_id)["status"] == "RUNNING"
    batch_client.terminate_job(jobId=job_id, reason="terminated by test")
    job = wait_for_status(batch_client, job_id, timeout=30)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "terminated by test"
    assert job["isTerminated"] is True
    assert job["attempts"][-1]["statusReason"] == "terminated by test"


def test_list_jobs_status_filters_and_paging(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["true"])
    names = [f"alpha-{i}" for i in range(5)] + ["beta-0"]
    ids = [batch_client.submit_job(jobName=n, jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"])["jobId"] for n in names]
    wait_until(lambda: len(batch_client.list_jobs(jobQueue=queue["name"], jobStatus="RUNNABLE")
                           ["jobSummaryList"]) == 6, 10)
    assert batch_client.list_jobs(jobQueue=queue["name"])["jobSummaryList"] == []  # RUNNING by default
    pages, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = batch_client.list_jobs(jobQueue=queue["arn"], jobStatus="RUNNABLE", maxResults=4, **kwargs)
        pages.append([s["jobId"] for s in page["jobSummaryList"]])
        token = page.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [4, 2]
    assert functools.reduce(operator.iadd, pages, []) == ids
    named = batch_client.list_jobs(jobQueue=queue["name"], filters=[{"name": "JOB_NAME", "values": ["ALPHA*"]}])
    assert sorted(s["jobName"] for s in named["jobSummaryList"]) == names[:5]
    assert [s["jobId"] for s in named["jobSummaryList"]] == list(reversed(ids[:5]))  # newest first
    summary = named["jobSummaryList"][0]
    assert summary["status"] == "RUNNABLE" and summary["jobDefinition"] == definition["jobDefinitionArn"]
    created = describe(batch_client, ids[3])["createdAt"]
    after = batch_client.list_jobs(jobQueue=queue["name"],
                                   filters=[{"name": "AFTER_CREATED_AT", "values": [str(created - 1)]}])
    assert set(ids[3:]) <= {s["jobId"] for s in after["jobSummaryList"]}
    by_definition = batch_client.list_jobs(
        jobQueue=queue["name"], filters=[{"name": "JOB_DEFINITION", "values": [definition["jobDefinitionName"]]}])
    assert len(by_definition["jobSummaryList"]) == 6
    revision = batch_client.list_jobs(jobQueue=queue["name"], filters=[
        {"name": "JOB_DEFINITION", "values": [f"{definition['jobDefinitionName']}:1"]}])
    assert len(revision["jobSummaryList"]) == 6
    for other in (f"{definition['jobDefinitionName']}:2", definition["jobDefinitionName"].upper(),
                  definition["jobDefinitionName"][:-1]):
        assert batch_client.list_jobs(jobQueue=queue["name"], filters=[
            {"name": "JOB_DEFINITION", "values": [other]}])["jobSummaryList"] == []
    with pytest.raises(batch_client.exceptions.ClientException):
        batch_client.list_jobs(jobQueue=queue["name"], filters=[{"name": "NOPE", "values": ["x"]}])


@pytest.mark.rule("GetJobQueueSnapshot.frontOfQueue")
def test_job_queue_snapshot_lists_runnable_jobs_in_order(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["true"])
    ids = [submit(batch_client, queue, definition) for _ in range(3)]
    for job_id in ids:
        wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    snapshot = batch_client.get_job_queue_snapshot(jobQueue=queue["name"])
    assert [j["jobArn"].rsplit("/", 1)[1] for j in snapshot["frontOfQueue"]["jobs"]] == ids
    assert snapshot["queueUtilization"]["totalCapacityUsage"][0]["quantity"] == 0.0


def test_too_big_job_is_blocked_then_cancelled_by_time_limit_action(batch_client, batchemu_server):
    queue = make_queue(batch_client, max_vcpus=2, jobStateTimeLimitActions=[{
        "reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", "state": "RUNNABLE",
        "maxTimeSeconds": 600, "action": "CANCEL"}])
    job_id = submit(batch_client, queue, register(batch_client, ["true"], vcpus="4"))
    def blocked():
        job = describe(batch_client, job_id)
        return job if job.get("statusReason", "").startswith("MISCONFIGURATION") else None
    job = wait_until(blocked, 10)
    assert job["status"] == "RUNNABLE"
    job = wait_with_clock_ahead(batch_client, batchemu_server, job_id, 601_000)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"


@needs_docker
def test_unreachable_engine_keeps_jobs_runnable_until_it_returns(batch_client, batchemu_server, queue):
    executor = batchemu_server.executor
    real_status = executor.status
    executor.status = lambda: (False, "Cannot connect to the Docker daemon (test)")
    try:
        job_id = submit(batch_client, queue, register(batch_client, ["true"]))
        wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
        wait_for_scheduler_passes(batchemu_server)
        assert describe(batch_client, job_id)["status"] == "RUNNABLE"
        import requests
        health = requests.get(batchemu_server.url + "/_batchemu/health").json()
        assert health["docker"] == {"reachable": False, "detail": "Cannot connect to the Docker daemon (test)"}
    finally:
        executor.status = real_status
    batchemu_server.scheduler.notify()
    assert wait_for_status(batch_client, job_id)["status"] == "SUCCEEDED"


@needs_docker
def test_attempt_timeout_stops_the_job_and_is_not_retried(batch_client, batchemu_server, queue):
    definition = register(batch_client, ["sleep", "120"], timeout={"attemptDurationSeconds": 60},
                          retryStrategy={"attempts": 3})
    job_id = submit(batch_client, queue, definition)
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    job = wait_with_clock_ahead(batch_client, batchemu_server, job_id, 61_000)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1
