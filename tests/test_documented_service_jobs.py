"""The documented rules of service jobs (batchemu/model/documented_rules/service_job_rules.py) that
tests/test_service_jobs.py does not already show: real boto3 against a real server on the simulate executor."""

from __future__ import annotations

import json
import time

import pytest
import requests

from batchemu.config import Config
from tests.conftest import client_error, wait_for_scheduler_passes, wait_until
from tests.test_service_jobs import describe, payload, service_queue, submit, wait_status

rule = pytest.mark.rule


@pytest.fixture
def batchemu_config(tmp_path) -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2,
                  training_dir=str(tmp_path / "training"))


def submitted(client, queue: dict, **extra) -> dict:
    return client.submit_service_job(jobName=extra.pop("jobName", "sj"), jobQueue=queue["name"],
                                     serviceJobType="SAGEMAKER_TRAINING",
                                     serviceRequestPayload=extra.pop("body", None) or payload(), **extra)


@rule("SubmitServiceJob.jobName.pattern")
def test_service_job_names(batch_client):
    queue = service_queue(batch_client)
    for name in ("a b", "x" * 129, "dot.ted"):
        assert client_error(submitted, client=batch_client, queue=queue, jobName=name).startswith(
            "jobName must be 1-128 characters long")
    assert submitted(batch_client, queue, jobName="A_b-9" + "x" * 123)["jobName"] == "A_b-9" + "x" * 123


@rule("SubmitServiceJob.schedulingPriority.range")
def test_scheduling_priority_range_at_submit_and_update(batch_client):
    queue = service_queue(batch_client, capacity=1)
    for priority in (-1, 10_000):
        assert client_error(submitted, client=batch_client, queue=queue, schedulingPriority=priority) == \
            f"schedulingPriority must be between 0 and 9999, got {priority}"
    job_id = submitted(batch_client, queue, schedulingPriority=0, body=payload(seconds=60))["jobId"]
    for priority in (-1, 10_000):
        assert client_error(batch_client.update_service_job, jobId=job_id, schedulingPriority=priority) == \
            f"schedulingPriority must be between 0 and 9999, got {priority}"
    batch_client.update_service_job(jobId=job_id, schedulingPriority=9999)
    assert describe(batch_client, job_id)["schedulingPriority"] == 9999
    batch_client.terminate_service_job(jobId=job_id, reason="done")


@rule("ServiceJobEvaluateOnExit.onStatusReason.pattern")
def test_on_status_reason_is_at_most_512_printable_characters(batch_client):
    queue = service_queue(batch_client)

    def strategy(pattern: str) -> dict:
        return {"attempts": 2, "evaluateOnExit": [{"onStatusReason": pattern, "action": "RETRY"}]}
    for pattern in ("x" * 513, "line\nbreak"):
        assert client_error(submitted, client=batch_client, queue=queue, retryStrategy=strategy(pattern)) == \
            "onStatusReason must be at most 512 printable characters"
    job_id = submitted(batch_client, queue, retryStrategy=strategy("A" * 511 + "*"))["jobId"]
    assert describe(batch_client, job_id)["retryStrategy"] == strategy("A" * 511 + "*")


@rule("ServiceJobRetryStrategy.attempts.total")
def test_attempts_is_the_total_number_of_tries(batch_client):
    queue = service_queue(batch_client, capacity=2)
    retried = submit(batch_client, queue, payload(exit_code=3), retryStrategy={"attempts": 2})
    once = submit(batch_client, queue, payload(exit_code=3))
    detail = wait_status(batch_client, retried)
    assert detail["status"] == "FAILED" and len(detail["attempts"]) == 2
    assert len(wait_status(batch_client, once)["attempts"]) == 1  # no retryStrategy: one try


@rule("ServiceJobTimeout.attemptDurationSeconds")
def test_attempt_duration_and_the_services_own_timeout(batchemu_server, batch_client):
    queue = service_queue(batch_client, capacity=2)
    body = json.loads(payload(seconds=60))
    body["StoppingCondition"] = {"MaxRuntimeInSeconds": 1}
    by_service = submit(batch_client, queue, json.dumps(body))
    detail = wait_status(batch_client, by_service)
    assert (detail["status"], detail["statusReason"]) == \
        ("FAILED", "MaxRuntimeExceeded: Training job runtime exceeded MaxRuntimeInSeconds of 1 seconds")
    body["StoppingCondition"] = {"MaxRuntimeInSeconds": 600}
    timed = submit(batch_client, queue, json.dumps(body), timeoutConfig={"attemptDurationSeconds": 60})
    started = wait_status(batch_client, timed, ("RUNNING",))["startedAt"]

    def aged() -> str:
        """The job as if it had started 61 s earlier (written again each poll: a pass may rewrite the job
        meanwhile), well within the payload's MaxRuntimeInSeconds of 600."""
        with batchemu_server.store.transaction() as tx:
            job = tx.service_jobs.get(timed)
            if job["status"] == "RUNNING":
                job["startedAt"] = started - 61_000
                tx.service_jobs.update(job)
            return job["status"]
    wait_until(lambda: aged() in ("SUCCEEDED", "FAILED"), 30)
    detail = describe(batch_client, timed)
    assert (detail["status"], detail["statusReason"]) == ("FAILED", "Job attempt duration exceeded timeout")


@rule("SubmitServiceJob.clientToken.rejected")
def test_a_second_submit_with_the_same_client_token_is_rejected(batch_client):
    queue = service_queue(batch_client)
    body = payload()
    first = submitted(batch_client, queue, body=body, clientToken="tok-1")
    assert client_error(submitted, client=batch_client, queue=queue, body=body, clientToken="tok-1") == \
        f"clientToken tok-1 was already used to submit service job {first['jobId']}"
    assert describe(batch_client, first["jobId"])["jobName"] == "sj"
    other = submitted(batch_client, queue, body=body, clientToken="tok-2")
    assert other["jobId"] != first["jobId"]
    unnamed = [submitted(batch_client, queue, body=body)["jobId"] for _ in range(2)]
    assert unnamed[0] != unnamed[1]  # no clientToken: every submit is a new job


@rule("SubmitServiceJob.request.size")
def test_a_submit_service_job_request_is_at_most_30_kib(batchemu_server, batch_client):
    queue = service_queue(batch_client)
    body = json.dumps({"quoted": '"' * 5000})  # 10 KiB at most itself, twice that once quoted into the request
    assert len(body.encode()) <= 10 * 1024
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}
    message = client_error(submitted, client=batch_client, queue=queue, body=body, tags=tags)
    assert message.startswith("Service job request size must be less than 30 KiB, got ")
    raw = requests.post(f"{batchemu_server.url}/v1/submitservicejob", timeout=10, json={
        "jobName": "raw", "jobQueue": queue["name"], "serviceJobType": "SAGEMAKER_TRAINING",
        "serviceRequestPayload": payload(), "tags": {"pad": "p" * 256}})
    assert raw.status_code == 200, raw.text


@rule("SubmitServiceJob.rate.limit")
def test_service_jobs_are_not_throttled(batch_client):
    queue = service_queue(batch_client)
    ids = {submitted(batch_client, queue, jobName=f"burst-{i}")["jobId"] for i in range(12)}
    assert len(ids) == 12  # more than 5 a second, every one accepted


@rule("DescribeServiceJob.present_when")
def test_scheduled_at_once_scheduled_and_no_preemption_summary_unless_preempted(batchemu_server, batch_client):
    queue = service_queue(batch_client, capacity=1)
    running = submit(batch_client, queue, payload(seconds=60))
    wait_status(batch_client, running, ("RUNNING",))
    waiting = submit(batch_client, queue, payload())
    wait_status(batch_client, waiting, ("RUNNABLE",))
    wait_for_scheduler_passes(batchemu_server)
    held = describe(batch_client, waiting)
    assert held["status"] == "RUNNABLE" and "scheduledAt" not in held and "preemptionSummary" not in held
    assert describe(batch_client, running)["scheduledAt"] >= describe(batch_client, running)["createdAt"]
    batch_client.terminate_service_job(jobId=running, reason="make room")
    done = wait_status(batch_client, waiting)
    assert done["status"] == "SUCCEEDED" and done["scheduledAt"] >= done["createdAt"]
    assert "preemptionSummary" not in done
    assert client_error(batch_client.describe_service_job, jobId="nope") == "Job nope does not exist"


@rule("ListServiceJobs.filters.one", "ListServiceJobs.maxResults.range")
def test_one_filter_at_a_time_and_page_sizes(batch_client):
    queue = service_queue(batch_client)
    one = {"name": "JOB_NAME", "values": ["x*"]}
    assert client_error(batch_client.list_service_jobs, jobQueue=queue["name"],
                        filters=[one, {"name": "AFTER_CREATED_AT", "values": ["0"]}]) == \
        "Only one filter can be used at a time"
    for size in (0, 101):
        assert client_error(batch_client.list_service_jobs, jobQueue=queue["name"], maxResults=size) == \
            "maxResults must be between 1 and 100"
    ids = [submitted(batch_client, queue, jobName=f"page-{i}")["jobId"] for i in range(101)]
    first = batch_client.list_service_jobs(jobQueue=queue["name"], filters=[one | {"values": ["page-*"]}])
    assert len(first["jobSummaryList"]) == 100 and "nextToken" in first  # up to 100 without maxResults
    rest = batch_client.list_service_jobs(jobQueue=queue["name"], filters=[one | {"values": ["page-*"]}],
                                          nextToken=first["nextToken"])
    assert [s["jobId"] for s in first["jobSummaryList"] + rest["jobSummaryList"]] == ids[::-1]


@rule("ListServiceJobs.filters.created_at")
def test_created_at_filters_take_epoch_milliseconds(batch_client):
    queue = service_queue(batch_client)
    early = submitted(batch_client, queue, jobName="early")["jobId"]
    created = describe(batch_client, early)["createdAt"]
    wait_until(lambda: time.time() * 1000 > created + 2, 5)  # the next job is created a millisecond later at least
    late = submitted(batch_client, queue, jobName="late")["jobId"]
    late_created = describe(batch_client, late)["createdAt"]
    assert late_created > created

    def listed(name: str, value: int) -> list[str]:
        return [s["jobId"] for s in batch_client.list_service_jobs(jobQueue=queue["name"], filters=[
            {"name": name, "values": [str(value)]}])["jobSummaryList"]]
    assert listed("AFTER_CREATED_AT", created) == [late]
    assert listed("AFTER_CREATED_AT", created - 1) == [late, early]
    assert listed("BEFORE_CREATED_AT", late_created) == [early]
    assert "milliseconds since the epoch" in client_error(batch_client.list_service_jobs, jobQueue=queue["name"],
                                                          filters=[{"name": "AFTER_CREATED_AT",
                                                                    "values": ["yesterday"]}])


@rule("ServiceJobSummary.isTerminated.only_true")
def test_list_summaries_carry_is_terminated_only_when_true(batch_client):
    queue = service_queue(batch_client, capacity=1)
    kept = submit(batch_client, queue, payload())
    wait_status(batch_client, kept)
    stopped = submit(batch_client, queue, payload(seconds=60))
    batch_client.terminate_service_job(jobId=stopped, reason="not needed")
    wait_status(batch_client, stopped)
    summaries = {s["jobId"]: s for s in batch_client.list_service_jobs(
        jobQueue=queue["name"], filters=[{"name": "JOB_NAME", "values": ["*"]}])["jobSummaryList"]}
    assert "isTerminated" not in summaries[kept]
    assert summaries[stopped]["isTerminated"] is True
    assert describe(batch_client, kept)["isTerminated"] is False  # DescribeServiceJob states no such rule


@rule("TerminateServiceJobs.jobs.limit", "TerminateServiceJobs.errors.malformed")
def test_terminate_service_jobs_takes_up_to_50_and_any_string(batch_client):
    queue = service_queue(batch_client)
    assert client_error(batch_client.terminate_service_jobs, jobs=[f"j{i}" for i in range(51)], reason="x") == \
        "jobs must contain between 1 and 50 job IDs"
    job_id = submit(batch_client, queue, payload(seconds=60))
    answer = batch_client.terminate_service_jobs(jobs=[job_id, "not-a-job-id", ""] + [f"j{i}" for i in range(47)],
                                                 reason="bulk")
    assert answer["successful"][:3] == [job_id, "not-a-job-id", ""] and len(answer["successful"]) == 50
    assert answer["errors"] == [] and answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert wait_status(batch_client, job_id)["statusReason"] == "bulk"
