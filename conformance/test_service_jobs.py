"""Service jobs: SageMaker training jobs submitted through a SAGEMAKER_TRAINING job queue.

The scenarios run the `--training-image` (default batchemu-train:latest, built by `make docker` from
scripts/training-image: a busybox `train` program that reads its hyperparameters, writes a model file,
and fails with its `fail` hyperparameter's text in /opt/ml/output/failure). Against real AWS they need
`--training-role` (the training jobs' RoleArn) and an image SageMaker can pull; they are billed.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from botocore.exceptions import ClientError

from conformance.harness import TERMINAL, client_error_code, wait_for
from conformance.test_service_environments import ServiceResources

covers = pytest.mark.covers

SERVICE_ORDER = ["SUBMITTED", "PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING"]
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_names = itertools.count()


@pytest.fixture(scope="module")
def training(batch, target, prefix, pytestconfig):
    """A SAGEMAKER_TRAINING queue on a 1-instance service environment, and the scenarios' settings."""
    role = pytestconfig.getoption("--training-role")
    if target.is_aws and not role:
        pytest.skip("service-job scenarios on AWS need --training-role (and are billed)")
    created = ServiceResources(batch, f"{prefix}-sj")
    environment = created.environment(capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}])
    queue = created.queue(environment["serviceEnvironmentArn"])["jobQueueName"]
    yield {"queue": queue, "image": pytestconfig.getoption("--training-image"), "prefix": prefix,
           "role": role or "arn:aws:iam::123456789012:role/conformance-training",
           "output": pytestconfig.getoption("--training-output")}
    for job in batch.list_service_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])[
            "jobSummaryList"]:
        if job["status"] not in TERMINAL:
            batch.terminate_service_job(jobId=job["jobId"], reason="conformance clean-up")
    created.cleanup()


def request(training: dict, hyperparameters: dict, max_runtime: int = 600, instances: int = 1) -> tuple[str, str]:
    """(TrainingJobName, CreateTrainingJob JSON) of a job of the training image."""
    name = f"{training['prefix']}-tj-{next(_names)}"
    return name, json.dumps({
        "TrainingJobName": name, "RoleArn": training["role"],
        "AlgorithmSpecification": {"TrainingImage": training["image"], "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "OutputDataConfig": {"S3OutputPath": training["output"]},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime}})


def submit(batch, training: dict, body: str, queue: str | None = None, **extra) -> str:
    return batch.submit_service_job(jobName=f"{training['prefix']}-sj-{next(_names)}",
                                    jobQueue=queue or training["queue"],
                                    serviceJobType="SAGEMAKER_TRAINING", serviceRequestPayload=body, **extra)["jobId"]


def wait(batch, job_id: str, target, statuses=TERMINAL, seen: list | None = None) -> dict:
    def describe() -> dict:
        detail = batch.describe_service_job(jobId=job_id)
        if seen is not None and (not seen or seen[-1] != detail["status"]):
            seen.append(detail["status"])
        return detail
    return wait_for(describe, lambda d: d["status"] in statuses, f"service job {job_id}",
                    timeout=max(target.job_timeout, 120))


@pytest.mark.runs_commands
@covers("SubmitServiceJob", "DescribeServiceJob", "ListServiceJobs", group="service-jobs")
@covers(group="logs")
def test_training_job_runs_to_succeeded(batch, logs, target, training):
    name, body = request(training, {"epochs": "2"})
    job_id = submit(batch, training, body)
    seen: list[str] = []
    detail = wait(batch, job_id, target, seen=seen)
    assert detail["status"] == "SUCCEEDED", detail.get("statusReason")
    ranks = [SERVICE_ORDER.index(s) for s in seen[:-1]]
    assert ranks == sorted(ranks), f"statuses go backwards: {seen}"
    assert re.fullmatch(rf"arn:aws[\w-]*:batch:{re.escape(target.region)}:\d{{12}}:service-job/{job_id}",
                        detail["jobArn"])
    assert detail["serviceRequestPayload"] == body and detail["serviceJobType"] == "SAGEMAKER_TRAINING"
    [attempt] = detail["attempts"]
    assert attempt["serviceResourceId"]["name"] == "TrainingJobArn"
    assert attempt["serviceResourceId"]["value"].endswith(f":training-job/{name.lower()}")
    assert detail["latestAttempt"] == {"serviceResourceId": attempt["serviceResourceId"]}
    assert detail["createdAt"] <= attempt["startedAt"] <= attempt["stoppedAt"]
    listed = batch.list_service_jobs(jobQueue=training["queue"], jobStatus="SUCCEEDED")["jobSummaryList"]
    assert job_id in [summary["jobId"] for summary in listed]
    assert job_id not in [s["jobId"] for s in batch.list_jobs(jobQueue=training["queue"],
                                                              jobStatus="SUCCEEDED")["jobSummaryList"]]
    streams = logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
    assert [s["logStreamName"] for s in streams if re.fullmatch(rf"{name}/algo-1-\d+", s["logStreamName"])]
    events = logs.get_log_events(logGroupName=TRAINING_LOG_GROUP, logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    assert any('"epochs": "2"' in event["message"] for event in events)


@pytest.mark.runs_commands
@covers("SubmitServiceJob", "DescribeServiceJob", group="service-jobs")
@covers(group="logs")
def test_two_instances_run_as_hosts_that_reach_each_other_by_name(batch, logs, target, training):
    """Each host of the image finds the others by name (resourceconfig.json's hosts) and logs what it found."""
    created = ServiceResources(batch, f"{training['prefix']}-mh")
    try:
        environment = created.environment(capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}])
        queue = created.queue(environment["serviceEnvironmentArn"])["jobQueueName"]
        name, body = request(training, {"epochs": "1"}, instances=2)
        detail = wait(batch, submit(batch, training, body, queue=queue), target)
        assert detail["status"] == "SUCCEEDED", detail.get("statusReason")
        streams = logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP,
                                            logStreamNamePrefix=f"{name}/")["logStreams"]
        by_host = {}
        for stream in streams:
            matched = re.fullmatch(rf"{name}/(algo-\d+)-\d+", stream["logStreamName"])
            if matched:
                by_host[matched.group(1)] = stream["logStreamName"]
        assert sorted(by_host) == ["algo-1", "algo-2"], [s["logStreamName"] for s in streams]
        for host, other in (("algo-1", "algo-2"), ("algo-2", "algo-1")):
            events = logs.get_log_events(logGroupName=TRAINING_LOG_GROUP, logStreamName=by_host[host],
                                         startFromHead=True)["events"]
            assert any(e["message"].startswith(f"{host}: {other} is ") for e in events), by_host[host]
    finally:
        created.cleanup()


@pytest.mark.runs_commands
@covers("SubmitServiceJob", "DescribeServiceJob", group="service-jobs")
def test_failure_file_text_is_the_status_reason(batch, target, training):
    _, body = request(training, {"fail": "conformance failure text"})
    detail = wait(batch, submit(batch, training, body), target)
    assert detail["status"] == "FAILED"
    assert "conformance failure text" in detail["statusReason"]


@pytest.mark.runs_commands
@covers("UpdateServiceJob", "TerminateServiceJob", "TerminateServiceJobs", group="service-jobs")
@covers(group="cancel-terminate")
def test_capacity_priority_update_and_termination(batch, target, training):
    _, long_body = request(training, {"sleep": "300"})
    running = submit(batch, training, long_body)
    wait(batch, running, target, statuses=("RUNNING",))
    _, body = request(training, {})
    queued = submit(batch, training, body, schedulingPriority=1)
    # One instance of capacity: the second job waits while the first runs.
    assert wait(batch, queued, target, statuses=("RUNNABLE",))["status"] == "RUNNABLE"
    assert batch.update_service_job(jobId=queued, schedulingPriority=9)["jobId"] == queued
    assert batch.describe_service_job(jobId=queued)["schedulingPriority"] == 9
    batch.terminate_service_job(jobId=running, reason="conformance terminate")
    stopped = wait(batch, running, target)
    assert (stopped["status"], stopped["isTerminated"]) == ("FAILED", True)
    wait(batch, queued, target, statuses=("SCHEDULED", "STARTING", "RUNNING") + tuple(TERMINAL))
    answer = batch.terminate_service_jobs(jobs=[queued], reason="conformance bulk")
    assert answer["successful"] == [queued] and answer["errors"] == []
    assert wait(batch, queued, target)["status"] in TERMINAL


@covers("SubmitServiceJob", group="service-jobs")
@covers(group="errors")
def test_a_payload_that_is_not_json_is_refused_or_fails(batch, target, training):
    try:
        job_id = submit(batch, training, "{not json")
    except ClientError as error:
        assert client_error_code(error) == "ClientException"
        return
    assert wait(batch, job_id, target)["status"] == "FAILED"


def summary_of(batch, training: dict, job_id: str) -> dict:
    """The ListServiceJobs summary of a job, found by its name (a JOB_NAME filter lists any status)."""
    name = batch.describe_service_job(jobId=job_id)["jobName"]
    found = batch.list_service_jobs(jobQueue=training["queue"], filters=[{"name": "JOB_NAME", "values": [name]}])
    [summary] = [s for s in found["jobSummaryList"] if s["jobId"] == job_id]
    return summary


# API_ServiceJobSummary.html, isTerminated: "This field is only present when the value is true."
@covers("ListServiceJobs", "TerminateServiceJob", group="service-jobs")
@covers(group="request-rules")
@pytest.mark.rule("ServiceJobSummary.isTerminated.only_true")
def test_summaries_carry_is_terminated_only_when_true(batch, target, training):
    _, body = request(training, {"sleep": "300"})
    kept = submit(batch, training, body)
    stopped = submit(batch, training, body)
    batch.terminate_service_job(jobId=stopped, reason="conformance isTerminated")
    assert "isTerminated" not in summary_of(batch, training, kept)
    wait_for(lambda: summary_of(batch, training, stopped), lambda s: s.get("isTerminated") is True,
             f"service job {stopped} listed with isTerminated", timeout=max(target.job_timeout, 120))
    batch.terminate_service_job(jobId=kept, reason="conformance clean-up")


# API_SubmitServiceJob.html, clientToken: two submit requests with identical payloads and clientTokens "are
# considered the same request and the second request is rejected."
@covers("SubmitServiceJob", group="service-jobs")
@covers(group="request-rules")
@pytest.mark.rule("SubmitServiceJob.clientToken.rejected")
def test_a_second_submit_with_the_same_client_token_is_rejected(batch, training):
    _, body = request(training, {"sleep": "300"})
    arguments = {"jobName": f"{training['prefix']}-sj-token", "jobQueue": training["queue"],
                 "serviceJobType": "SAGEMAKER_TRAINING", "serviceRequestPayload": body,
                 "clientToken": f"{training['prefix']}-token"}
    job_id = batch.submit_service_job(**arguments)["jobId"]
    with pytest.raises(ClientError) as caught:
        batch.submit_service_job(**arguments)
    assert client_error_code(caught.value) == "ClientException", caught.value.response
    batch.terminate_service_job(jobId=job_id, reason="conformance clean-up")
