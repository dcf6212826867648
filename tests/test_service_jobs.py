"""Service jobs end to end on the simulate executor (no Docker): submit rules, the status path, capacity in
instances, listing, priority updates, termination, retries and quota-share preemption; real boto3 against a
real server. The training container itself runs in tests/test_training.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchemu.config import Config
from tests.conftest import client_error, make_queue, unique, wait_for_job_queue, wait_for_status, wait_until

M5 = "ml.m5.large"
TERMINAL = ("SUCCEEDED", "FAILED")


@pytest.fixture
def batchemu_config(tmp_path) -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2,
                  training_dir=str(tmp_path / "training"))


def payload(name: str | None = None, *, instances: int = 1, seconds: float | None = None, exit_code: int = 0,
            **extra) -> str:
    """A CreateTrainingJob request; the simulate executor runs it `seconds` and exits with `exit_code`."""
    environment = {"BATCHEMU_SIMULATE_EXIT_CODE": str(exit_code)}
    if seconds is not None:
        environment["BATCHEMU_SIMULATE_SECONDS"] = str(seconds)
    request = {"TrainingJobName": name or unique("tj"), "RoleArn": "arn:aws:iam::123456789012:role/sm",
               "AlgorithmSpecification": {"TrainingImage": "batchemu-train:latest", "TrainingInputMode": "File"},
               "ResourceConfig": {"InstanceType": M5, "InstanceCount": instances, "VolumeSizeInGB": 1},
               "StoppingCondition": {"MaxRuntimeInSeconds": 600}, "Environment": environment, **extra}
    return json.dumps(request)


def service_queue(client, *, capacity: int = 2, unit: str = "NUM_INSTANCES", policy: dict | None = None,
                  priority: int = 1) -> dict:
    env = client.create_service_environment(serviceEnvironmentName=unique("se"),
                                            serviceEnvironmentType="SAGEMAKER_TRAINING",
                                            capacityLimits=[{"maxCapacity": capacity, "capacityUnit": unit}])
    extra = {"schedulingPolicyArn": client.create_scheduling_policy(name=unique("sp"), **policy)["arn"]} \
        if policy is not None else {}
    name = unique("sq")
    client.create_job_queue(jobQueueName=name, priority=priority, jobQueueType="SAGEMAKER_TRAINING",
                            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env["serviceEnvironmentArn"]}],
                            **extra)
    wait_for_job_queue(client, name)
    return {"name": name, "arn": client.describe_job_queues(jobQueues=[name])["jobQueues"][0]["jobQueueArn"]}


def submit(client, queue: dict, body: str | None = None, **extra) -> str:
    return client.submit_service_job(jobName=unique("sj"), jobQueue=queue["name"], serviceJobType="SAGEMAKER_TRAINING",
                                     serviceRequestPayload=body or payload(), **extra)["jobId"]


def describe(client, job_id: str) -> dict:
    detail = client.describe_service_job(jobId=job_id)
    detail.pop("ResponseMetadata", None)
    return detail


def wait_status(client, job_id: str, statuses=TERMINAL, timeout: float = 30.0, seen: list | None = None) -> dict:
    return wait_for_status(client, job_id, statuses, timeout, seen, describe_with=describe)


@pytest.mark.rule("SubmitServiceJob.jobQueue.type",
                  "SubmitServiceJob.schedulingPriority.range",
                  "SubmitServiceJob.shareIdentifier.fair_share",
                  "SubmitServiceJob.quotaShareName.quota_share",
                  "ServiceJobRetryStrategy.attempts.range",
                  "SubmitServiceJob.serviceRequestPayload.size",
                  "SubmitServiceJob.serviceRequestPayload.pass_through")
def test_submit_rules(batch_client):
    queue = service_queue(batch_client)
    plain = make_queue(batch_client)

    def rejected(body: str = payload(), queue_name: str = queue["name"], **extra) -> str:
        return client_error(batch_client.submit_service_job, jobName="j", jobQueue=queue_name,
                            serviceJobType="SAGEMAKER_TRAINING", serviceRequestPayload=body, **extra)
    assert rejected("{not json").startswith("serviceRequestPayload is not valid JSON")
    assert rejected("[1]") == "serviceRequestPayload must be a JSON object: a SageMaker CreateTrainingJob request"
    assert rejected(json.dumps({"x": "y" * 11000})).startswith("serviceRequestPayload must be at most 10240 bytes")
    assert rejected(queue_name="nope") == "jobQueue nope does not exist"
    assert rejected(queue_name=plain["name"]).startswith(f"jobQueue {plain['name']} is not a SAGEMAKER_TRAINING")
    assert rejected(schedulingPriority=10000) == "schedulingPriority must be between 0 and 9999, got 10000"
    assert rejected(retryStrategy={"attempts": 11}) == "retryStrategy attempts must be between 1 and 10"
    assert rejected(retryStrategy={"attempts": 2, "evaluateOnExit": [{"action": "RETRY"}]}) == \
        "Each evaluateOnExit condition of a service job needs onStatusReason"
    assert rejected(timeoutConfig={"attemptDurationSeconds": 5}) == "The minimum value for the timeout is 60 seconds."
    assert rejected(shareIdentifier="a") == ("shareIdentifier can only be specified for a job queue with a fair share "
                                             "scheduling policy.")
    assert rejected(quotaShareName="a") == "quotaShareName can only be specified for a job queue with a quota share policy."
    fair = service_queue(batch_client, policy={"fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a"}]}})
    assert rejected(queue_name=fair["name"]) == "shareIdentifier must be specified."
    quota = service_queue(batch_client, policy={"quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}})
    assert rejected(queue_name=quota["name"]) == ("quotaShareName must be specified for a job queue with a quota "
                                                  "share policy.")
    assert rejected(queue_name=quota["name"], quotaShareName="nope") == \
        f"quotaShare nope does not exist in jobQueue {quota['name']}"
    batch_client.update_job_queue(jobQueue=queue["name"], state="DISABLED")
    assert "is DISABLED" in rejected()


@pytest.mark.rule("DescribeServiceJob.capacityUsage.instances", "SubmitServiceJob.states.order")
def test_status_path_payload_kept_and_not_a_container_job(batch_client):
    queue = service_queue(batch_client)
    body = payload("kept-as-given", seconds=0.5) + "  "
    answer = batch_client.submit_service_job(jobName="train-1", jobQueue=queue["name"], tags={"team": "ml"},
                                             serviceJobType="SAGEMAKER_TRAINING", serviceRequestPayload=body,
                                             schedulingPriority=7)
    assert answer["jobArn"] == f"arn:aws:batch:us-east-1:123456789012:service-job/{answer['jobId']}"
    seen: list[str] = []
    detail = wait_status(batch_client, answer["jobId"], seen=seen)
    assert detail["status"] == "SUCCEEDED"
    assert seen[-3:] == ["STARTING", "RUNNING", "SUCCEEDED"] or seen[-2:] == ["RUNNING", "SUCCEEDED"]
    assert set(seen) <= {"SUBMITTED", "PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED"}
    arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/kept-as-given"
    assert detail["serviceRequestPayload"] == body
    assert detail["serviceJobType"] == "SAGEMAKER_TRAINING" and detail["jobQueue"] == queue["arn"]
    assert detail["schedulingPriority"] == 7 and detail["tags"] == {"team": "ml"} and detail["isTerminated"] is False
    assert detail["capacityUsage"] == [{"capacityUnit": M5, "quantity": 1.0}]
    assert detail["latestAttempt"] == {"serviceResourceId": {"name": "TrainingJobArn", "value": arn}}
    [attempt] = detail["attempts"]
    assert attempt["serviceResourceId"]["value"] == arn
    assert detail["createdAt"] <= detail["scheduledAt"] <= attempt["startedAt"] <= attempt["stoppedAt"] == \
        detail["stoppedAt"]
    assert attempt["stoppedAt"] - attempt["startedAt"] >= 400
    # Service jobs are not container jobs: ListJobs and DescribeJobs never show them.
    assert batch_client.list_jobs(jobQueue=queue["name"], jobStatus="SUCCEEDED")["jobSummaryList"] == []
    assert batch_client.describe_jobs(jobs=[answer["jobId"]])["jobs"] == []
    assert client_error(batch_client.describe_service_job, jobId="nope") == "Job nope does not exist"


@pytest.mark.rule("CapacityLimit.maxCapacity.instances")
def test_capacity_is_counted_in_instances(batch_client):
    queue = service_queue(batch_client, capacity=3)
    big = submit(batch_client, queue, payload(instances=2, seconds=30))
    wait_status(batch_client, big, ("RUNNING",))
    second = submit(batch_client, queue, payload(instances=2, seconds=30))
    small = submit(batch_client, queue, payload(instances=1, seconds=30))
    wait_status(batch_client, small, ("RUNNING",))
    assert describe(batch_client, second)["status"] == "RUNNABLE"
    batch_client.terminate_service_job(jobId=big, reason="make room")
    wait_status(batch_client, second, ("RUNNING",))
    too_big = submit(batch_client, queue, payload(instances=4))
    reason = wait_until(lambda: describe(batch_client, too_big).get("statusReason"), 10)
    assert reason.startswith("MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE")
    assert describe(batch_client, too_big)["status"] == "RUNNABLE"


@pytest.mark.rule("ListServiceJobs.jobStatus.default",
                  "ListServiceJobs.filters.status_ignored",
                  "ListServiceJobs.filters.JOB_NAME")
def test_list_filters_and_pages(batch_client):
    queue, other = service_queue(batch_client), service_queue(batch_client)
    ids = [batch_client.submit_service_job(jobName=f"list-{i}", jobQueue=queue["name"],
                                           serviceJobType="SAGEMAKER_TRAINING",
                                           serviceRequestPayload=payload())["jobId"] for i in range(3)]
    submit(batch_client, other)
    for job_id in ids:
        wait_status(batch_client, job_id)
    first = batch_client.list_service_jobs(jobQueue=queue["name"], jobStatus="SUCCEEDED", maxResults=2)
    rest = batch_client.list_service_jobs(jobQueue=queue["name"], jobStatus="SUCCEEDED", maxResults=2,
                                          nextToken=first["nextToken"])
    assert [s["jobId"] for s in first["jobSummaryList"] + rest["jobSummaryList"]] == ids
    assert "nextToken" not in rest
    summary = first["jobSummaryList"][0]
    assert summary["jobName"] == "list-0" and summary["serviceJobType"] == "SAGEMAKER_TRAINING"
    assert summary["status"] == "SUCCEEDED" and summary["latestAttempt"]["serviceResourceId"]["name"] == "TrainingJobArn"
    assert "serviceRequestPayload" not in summary
    assert batch_client.list_service_jobs(jobQueue=queue["name"])["jobSummaryList"] == []  # RUNNING by default
    by_name = batch_client.list_service_jobs(jobQueue=queue["name"],
                                             filters=[{"name": "JOB_NAME", "values": ["LIST-*"]}])
    assert [s["jobId"] for s in by_name["jobSummaryList"]] == ids[::-1]
    assert "Invalid filter name NOPE" in client_error(batch_client.list_service_jobs, jobQueue=queue["name"],
                                                      filters=[{"name": "NOPE", "values": ["x"]}])
    everywhere = batch_client.list_service_jobs(jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(everywhere) == 4


@pytest.mark.rule("TerminateServiceJobs.unknown.successful", "TerminateServiceJob.reason.statusReason")
def test_update_priority_and_terminate(batch_client):
    queue = service_queue(batch_client, capacity=1)
    running = submit(batch_client, queue, payload(seconds=60))
    wait_status(batch_client, running, ("RUNNING",))
    queued = submit(batch_client, queue, payload(seconds=60))
    wait_status(batch_client, queued, ("RUNNABLE",))
    answer = batch_client.update_service_job(jobId=queued, schedulingPriority=42)
    assert answer["jobId"] == queued and describe(batch_client, queued)["schedulingPriority"] == 42
    batch_client.terminate_service_job(jobId=queued, reason="not needed")
    detail = describe(batch_client, queued)
    assert (detail["status"], detail["statusReason"], detail["isTerminated"]) == ("FAILED", "not needed", True)
    batch_client.terminate_service_job(jobId=running, reason="stop it")
    detail = wait_status(batch_client, running)
    assert (detail["status"], detail["statusReason"], detail["isTerminated"]) == ("FAILED", "stop it", True)
    assert detail["attempts"][0]["statusReason"] == "stop it"
    assert "only an unfinished service job" in client_error(batch_client.update_service_job, jobId=running,
                                                            schedulingPriority=1)
    bulk = batch_client.terminate_service_jobs(jobs=[submit(batch_client, queue), "unknown-id"], reason="bulk")
    assert bulk["successful"][1] == "unknown-id" and bulk["errors"] == []
    # The job may have been placed before the call: it then ends once the scheduler has stopped it.
    assert wait_status(batch_client, bulk["successful"][0])["statusReason"] == "bulk"
    assert client_error(batch_client.terminate_service_job, jobId="nope", reason="x") == "Job nope does not exist"


@pytest.mark.rule("SubmitServiceJob.serviceRequestPayload.pass_through")
def test_bad_payload_fails_with_sagemakers_reason(batch_client):
    queue = service_queue(batch_client)
    no_image = json.loads(payload())
    del no_image["AlgorithmSpecification"]["TrainingImage"]
    detail = wait_status(batch_client, submit(batch_client, queue, json.dumps(no_image)))
    assert detail["status"] == "FAILED"
    assert detail["statusReason"] == ("ValidationException: 1 validation error detected: Value null at "
                                      "'algorithmSpecification.trainingImage' failed to satisfy constraint: Member "
                                      "must not be null")


@pytest.mark.rule("ServiceJobEvaluateOnExit.onStatusReason.pattern")
def test_retry_strategy_on_status_reason(batch_client):
    queue = service_queue(batch_client)
    retried = wait_status(batch_client, submit(batch_client, queue, payload(exit_code=3), retryStrategy={
        "attempts": 3, "evaluateOnExit": [{"onStatusReason": "AlgorithmError*", "action": "RETRY"}]}))
    assert retried["status"] == "FAILED" and len(retried["attempts"]) == 3
    assert retried["statusReason"] == "AlgorithmError: training container exited with code 3"
    stopped = wait_status(batch_client, submit(batch_client, queue, payload(exit_code=3), retryStrategy={
        "attempts": 3, "evaluateOnExit": [{"onStatusReason": "algorithmerror*", "action": "EXIT"}]}))
    assert len(stopped["attempts"]) == 1


def quota_queue(client, capacity: int, **shares: dict) -> dict:
    queue = service_queue(client, capacity=capacity, unit=M5,
                          policy={"quotaSharePolicy": {"idleResourceAssignmentStrategy": "FIFO"}})
    for name, config in shares.items():
        arn = client.create_quota_share(quotaShareName=name, jobQueue=queue["name"],
                                        capacityLimits=[{"maxCapacity": config.pop("limit"), "capacityUnit": M5}],
                                        resourceSharingConfiguration=config,
                                        preemptionConfiguration={"inSharePreemption": "DISABLED"})["quotaShareArn"]
        wait_until(lambda arn=arn: client.describe_quota_share(quotaShareArn=arn)["status"] == "VALID", 10)
    return queue


@pytest.mark.rule("DescribeServiceJob.present_when",
                  "ServiceJobPreemptionConfiguration.preemptionRetriesBeforeTermination")
def test_borrowed_capacity_is_reclaimed_by_preemption(batch_client):
    queue = quota_queue(batch_client, 2, lender={"limit": 1, "strategy": "LEND"},
                        borrower={"limit": 1, "strategy": "LEND_AND_BORROW"})
    first = submit(batch_client, queue, payload(seconds=60), quotaShareName="borrower")
    wait_status(batch_client, first, ("RUNNING",))
    borrowed = submit(batch_client, queue, payload(seconds=60), quotaShareName="borrower",
                      preemptionConfiguration={"preemptionRetriesBeforeTermination": 1})
    wait_status(batch_client, borrowed, ("RUNNING",))
    # More than the lender's idle capacity cannot be borrowed.
    third = submit(batch_client, queue, payload(seconds=60), quotaShareName="borrower")
    assert wait_status(batch_client, third, ("RUNNABLE",))
    reclaim = submit(batch_client, queue, payload(seconds=60), quotaShareName="lender")
    wait_status(batch_client, reclaim, ("RUNNING",))
    detail = describe(batch_client, borrowed)
    assert detail["status"] == "RUNNABLE" and detail["statusReason"] == "Preempted: capacity reclaimed by quota share lender"
    assert detail["preemptionSummary"]["preemptedAttemptCount"] == 1
    assert detail["preemptionSummary"]["recentPreemptedAttempts"][0]["statusReason"] == detail["statusReason"]
    assert detail["attempts"] == []  # a preempted attempt is not a retry
    assert describe(batch_client, first)["status"] == "RUNNING"
    listed = batch_client.list_service_jobs(jobQueue=queue["name"], filters=[{"name": "QUOTA_SHARE_NAME",
                                                                              "values": ["lender"]}])
    assert [s["jobId"] for s in listed["jobSummaryList"]] == [reclaim]


@pytest.mark.rule("ServiceJobPreemptionConfiguration.preemptionRetriesBeforeTermination")
def test_preemption_retries_before_termination(batch_client):
    queue = quota_queue(batch_client, 2, lender={"limit": 1, "strategy": "LEND"},
                        borrower={"limit": 1, "strategy": "LEND_AND_BORROW"})
    own = submit(batch_client, queue, payload(seconds=60), quotaShareName="borrower", schedulingPriority=5)
    wait_status(batch_client, own, ("RUNNING",))
    borrowed = submit(batch_client, queue, payload(seconds=60), quotaShareName="borrower", schedulingPriority=1,
                      preemptionConfiguration={"preemptionRetriesBeforeTermination": 0})
    wait_status(batch_client, borrowed, ("RUNNING",))
    reclaim = submit(batch_client, queue, payload(seconds=60), quotaShareName="lender")
    wait_status(batch_client, reclaim, ("RUNNING",))
    detail = describe(batch_client, borrowed)
    assert detail["status"] == "FAILED"
    assert detail["statusReason"] == ("Preempted: capacity reclaimed by quota share lender; "
                                      "preemptionRetriesBeforeTermination (0) reached")
    assert describe(batch_client, own)["status"] == "RUNNING"  # higher priority: not the one preempted


def running_and_queued(client, queue: dict, **extra) -> tuple[str, str]:
    """A RUNNING job holding the queue's one instance and a job waiting behind it."""
    running = submit(client, queue, payload(seconds=60), **extra)
    wait_status(client, running, ("RUNNING",))
    return running, submit(client, queue, payload(seconds=60), **extra)


def assert_terminated(client, job_ids, reason: str) -> None:
    for job_id in job_ids:
        detail = wait_status(client, job_id)
        assert (detail["status"], detail["statusReason"], detail["isTerminated"]) == ("FAILED", reason, True)


def test_deleting_the_queue_terminates_its_service_jobs(batch_client):
    queue = service_queue(batch_client, capacity=1)
    jobs = running_and_queued(batch_client, queue)
    batch_client.update_job_queue(jobQueue=queue["name"], state="DISABLED")
    batch_client.delete_job_queue(jobQueue=queue["name"])
    assert_terminated(batch_client, jobs, "Job queue deleted")
    wait_for_job_queue(batch_client, queue["name"], None)



def test_members_of_the_wrong_type_fail_the_job_not_the_scheduler(batch_client):
    queue = service_queue(batch_client)
    odd = json.loads(payload())
    odd["Environment"] = ["not", "a", "map"]
    odd["InputDataConfig"] = "train"
    detail = wait_status(batch_client, submit(batch_client, queue, json.dumps(odd)))
    assert detail["status"] == "FAILED"
    assert detail["statusReason"].startswith("ValidationException: the CreateTrainingJob request is malformed")
    assert wait_status(batch_client, submit(batch_client, queue))["status"] == "SUCCEEDED"


class TestWithDwell:
    """With state_dwell every status of the path lasts long enough to be seen."""

    @pytest.fixture
    def batchemu_config(self, tmp_path) -> Config:
        return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2,
                      state_dwell=0.4, training_dir=str(tmp_path / "training"))

    def test_every_status_of_the_path_in_order(self, batch_client):
        queue = service_queue(batch_client)
        seen: list[str] = []
        wait_status(batch_client, submit(batch_client, queue), seen=seen)
        assert seen == ["SUBMITTED", "PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED"]


@pytest.mark.rule("DeleteQuotaShare.jobs.terminated")
def test_deleting_a_quota_share_terminates_its_jobs(batch_client):
    queue = quota_queue(batch_client, 1, gone={"limit": 1, "strategy": "RESERVE"})
    jobs = running_and_queued(batch_client, queue, quotaShareName="gone")
    [share] = batch_client.list_quota_shares(jobQueue=queue["name"])["quotaShares"]
    batch_client.update_quota_share(quotaShareArn=share["quotaShareArn"], state="DISABLED")
    batch_client.delete_quota_share(quotaShareArn=share["quotaShareArn"])
    assert_terminated(batch_client, jobs, "Quota share deleted")


def test_job_queue_snapshot_of_a_training_queue(batch_client):
    queue = service_queue(batch_client, capacity=2)
    running = submit(batch_client, queue, payload(instances=2, seconds=60))
    wait_status(batch_client, running, ("RUNNING",))
    low = submit(batch_client, queue, payload(seconds=60))
    wait_status(batch_client, low, ("RUNNABLE",))
    snapshot = batch_client.get_job_queue_snapshot(jobQueue=queue["name"])
    assert [job["jobArn"].rsplit("/", 1)[1] for job in snapshot["frontOfQueue"]["jobs"]] == [low]
    assert snapshot["queueUtilization"]["totalCapacityUsage"] == [{"capacityUnit": "NUM_INSTANCES", "quantity": 2.0}]


def test_every_host_of_a_multi_instance_job_has_its_config_and_log_stream(batch_client, logs_client, batchemu_config):
    queue = service_queue(batch_client, capacity=3)
    name = unique("tj")
    job_id = submit(batch_client, queue, payload(name, instances=3))
    assert wait_status(batch_client, job_id)["status"] == "SUCCEEDED"
    streams = logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                               logStreamNamePrefix=f"{name}/")["logStreams"]
    assert sorted(s["logStreamName"].rsplit("-", 1)[0] for s in streams) == [f"{name}/algo-{n}" for n in (1, 2, 3)]
    for host in ("algo-1", "algo-2", "algo-3"):
        config = json.loads((Path(batchemu_config.training_root) / "jobs" / job_id / "attempt-1" / host / "input"
                             / "config" / "resourceconfig.json").read_text())
        assert (config["current_host"], config["hosts"]) == (host, ["algo-1", "algo-2", "algo-3"])
