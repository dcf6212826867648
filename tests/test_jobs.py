"""End-to-end jobs on real containers: states, exit codes, reasons, overrides, environment, logs."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from batchemu.model.states import TRANSITIONS
from tests.conftest import describe, needs_docker, register, submit, wait_for_status, wait_until

ORDER = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]


def log_lines(logs_client, job: dict) -> list[str]:
    events = logs_client.get_log_events(logGroupName="/aws/batch/job",
                                        logStreamName=job["container"]["logStreamName"], startFromHead=True)
    return [e["message"] for e in events["events"]]


@needs_docker
def test_trivial_job_succeeds_with_every_field_clients_read(batch_client, queue):
    definition = register(batch_client, ["true"])
    seen: list[str] = []
    job_id = submit(batch_client, queue, definition, parameters={"p": "v"})
    job = wait_for_status(batch_client, job_id, seen=seen)
    assert job["status"] == "SUCCEEDED"
    assert [s for s in ORDER if s in seen] == seen, f"states seen out of order: {seen}"
    assert job["statusReason"] == "Essential container in task exited"
    assert job["container"]["exitCode"] == 0
    assert job["jobQueue"] == queue["arn"]
    assert job["jobDefinition"] == definition["jobDefinitionArn"]
    assert job["parameters"] == {"p": "v"}
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert len(job["attempts"]) == 1
    attempt = job["attempts"][0]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["container"]["logStreamName"] == job["container"]["logStreamName"]
    assert attempt["container"]["taskArn"].startswith("arn:aws:ecs:us-east-1:123456789012:task/")
    assert job["container"]["logStreamName"].startswith(definition["jobDefinitionName"] + "/default/")


@needs_docker
def test_nonzero_exit_fails_with_aws_reason(batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "exit 3"])
    job = wait_for_status(batch_client, submit(batch_client, queue, definition))
    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 3
    assert job["statusReason"] == "Essential container in task exited"
    assert job["attempts"][-1]["container"]["exitCode"] == 3
    assert job["stoppedAt"] >= job["startedAt"]


@needs_docker
def test_out_of_memory_is_137_with_reason(batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "x=0123456789; while true; do x=$x$x; done"], memory="8")
    job = wait_for_status(batch_client, submit(batch_client, queue, definition))
    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 137
    assert job["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert job["attempts"][-1]["container"]["reason"] == job["container"]["reason"]


@needs_docker
def test_missing_image_fails_with_cannot_pull(batch_client, queue):
    definition = register(batch_client, ["true"], image="batchemu-no-such-image:never")
    job = wait_for_status(batch_client, submit(batch_client, queue, definition))
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Task failed to start"  # AWS's words; the engine's are the container's reason
    assert job["container"]["reason"].startswith("CannotPullContainerError:")
    assert job["attempts"][-1]["statusReason"] == "Task failed to start"
    assert "exitCode" not in job["container"]


@needs_docker
def test_overrides_parameters_and_environment_inside(batch_client, logs_client, queue):
    definition = register(
        batch_client, ["echo", "Ref::greeting", "Ref::name"], parameters={"greeting": "hello", "name": "def"},
        containerProperties={"environment": [{"name": "FROM_DEF", "value": "d"}, {"name": "OVERRIDDEN", "value": "no"}]})
    job_id = submit(batch_client, queue, definition, parameters={"name": "world"},
                    containerOverrides={
                        "command": ["sh", "-c", "echo Ref::greeting Ref::name; env | sort"],
                        "environment": [{"name": "OVERRIDDEN", "value": "yes"}]})
    job = wait_for_status(batch_client, job_id)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["container"]["command"] == ["sh", "-c", "echo hello world; env | sort"]
    lines = wait_until(lambda: log_lines(logs_client, job) or None, 10)
    assert lines[0] == "hello world"
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert env["FROM_DEF"] == "d" and env["OVERRIDDEN"] == "yes"
    assert env["AWS_BATCH_JOB_ID"] == job_id
    assert env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert env["AWS_BATCH_CE_NAME"] == queue["ce"]
    assert env["AWS_BATCH_JQ_NAME"] == queue["name"]
    assert env["AWS_EXECUTION_ENV"] == "AWS_ECS_EC2"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ENDPOINT_URL_BATCH"].startswith("http://127.0.0.1:")
    assert {"name": "OVERRIDDEN", "value": "yes"} in job["container"]["environment"]


@needs_docker
def test_logs_readable_while_running_and_after(batch_client, logs_client, queue):
    definition = register(batch_client, ["sh", "-c", "echo first; sleep 3; echo second"])
    job_id = submit(batch_client, queue, definition)
    running = wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    assert "stoppedAt" not in running
    assert running["container"]["logStreamName"]
    assert wait_until(lambda: "first" in log_lines(logs_client, running), 10)
    assert describe(batch_client, job_id)["status"] == "RUNNING"
    done = wait_for_status(batch_client, job_id)
    assert log_lines(logs_client, done) == ["first", "second"]


@needs_docker
def test_retry_strategy_runs_attempts_until_exhausted(batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT; exit 1"],
                          retryStrategy={"attempts": 2})
    job = wait_for_status(batch_client, submit(batch_client, queue, definition), timeout=60)
    assert job["status"] == "FAILED"
    assert len(job["attempts"]) == 2
    assert all(a["container"]["exitCode"] == 1 for a in job["attempts"])


@needs_docker
def test_retry_stops_on_evaluate_on_exit_exit_rule(batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "exit 2"], retryStrategy={
        "attempts": 3, "evaluateOnExit": [{"onExitCode": "2", "action": "EXIT"}]})
    job = wait_for_status(batch_client, submit(batch_client, queue, definition))
    assert job["status"] == "FAILED" and len(job["attempts"]) == 1


@needs_docker
def test_dependency_failure_fails_dependent_and_success_releases_it(batch_client, queue):
    failing = submit(batch_client, queue, register(batch_client, ["false"]))
    ok = submit(batch_client, queue, register(batch_client, ["true"]))
    after_fail = submit(batch_client, queue, register(batch_client, ["true"]), dependsOn=[{"jobId": failing}])
    after_ok = submit(batch_client, queue, register(batch_client, ["true"]), dependsOn=[{"jobId": ok}])
    assert wait_for_status(batch_client, after_fail)["status"] == "FAILED"
    assert describe(batch_client, after_fail)["statusReason"] == f"Dependent Job failed: {failing} FAILED"
    assert wait_for_status(batch_client, after_ok)["status"] == "SUCCEEDED"


def test_describe_unknown_ids_are_left_out_and_limit_is_100(batch_client):
    assert batch_client.describe_jobs(jobs=["no-such-job"])["jobs"] == []
    with pytest.raises(ClientError) as error:
        batch_client.describe_jobs(jobs=[f"id-{i}" for i in range(101)])
    assert error.value.response["Error"]["Code"] == "ClientException"


def test_submit_errors_are_client_exceptions(batch_client, queue):
    definition = register(batch_client, ["true"])
    cases = [
        {"jobName": "bad name!", "jobQueue": queue["name"], "jobDefinition": definition["jobDefinitionArn"]},
        {"jobName": "ok", "jobQueue": "no-such-queue", "jobDefinition": definition["jobDefinitionArn"]},
        {"jobName": "ok", "jobQueue": queue["name"], "jobDefinition": "no-such-definition"},
        {"jobName": "ok", "jobQueue": queue["name"], "jobDefinition": definition["jobDefinitionArn"],
             "dependsOn": [{"jobId": "no-such-job"}]},
    ]
    for case in cases:
        with pytest.raises(ClientError) as error:
            batch_client.submit_job(**case)
        assert error.value.response["Error"]["Code"] == "ClientException", case
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_state_machine_table_is_forward_only():
    # Every non-terminal state can fail; only retries step back, to RUNNABLE.
    for state, targets in TRANSITIONS.items():
        if state not in ("SUCCEEDED", "FAILED"):
            assert "FAILED" in targets
        backwards = {t for t in targets if t in ORDER and ORDER.index(t) < ORDER.index(state)}
        assert backwards <= {"RUNNABLE"}
