"""A job's life as users watch it: states in order, exit codes, reasons, overrides, parameters, the
environment inside the container, retries and dependencies."""

from __future__ import annotations

import pytest

from conformance.harness import LOG_GROUP, TERMINAL, arn_pattern, assert_status_order

covers = pytest.mark.covers

# API_ContainerDetail.html / job_states.html: the reason AWS gives when the container exits non-zero.
ESSENTIAL_EXITED = "Essential container in task exited"


def log_lines(logs, stream: str) -> list[str]:
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)["events"]
    return [event["message"] for event in events]


@covers("SubmitJob", "DescribeJobs", group="job-states")
@covers(group="arns")
def test_successful_job_walks_the_states_in_order(batch, target, shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "hello"])
    name = f"{prefix}-ok"
    submitted = batch.submit_job(jobName=name, jobQueue=shared_env.queue,
                                 jobDefinition=definition["jobDefinitionArn"])
    jobs.submitted.append(submitted["jobId"])
    assert submitted["jobName"] == name
    assert arn_pattern(target, "job", submitted["jobId"]).fullmatch(submitted["jobArn"])
    # CLIENTS.md: a just-submitted job must be describable at once, exactly once.
    first = batch.describe_jobs(jobs=[submitted["jobId"]])["jobs"]
    assert [j["jobId"] for j in first] == [submitted["jobId"]]

    run = jobs.wait_one(submitted["jobId"])
    assert_status_order(run.statuses)
    job = run.last
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["jobQueue"] == shared_env.queue_arn
    assert job["jobDefinition"] == definition["jobDefinitionArn"]
    assert job["container"]["exitCode"] == 0
    assert job["attempts"] and job["attempts"][-1]["container"]["exitCode"] == 0
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    for seen in run.snapshots:
        if seen["status"] not in TERMINAL:
            assert "stoppedAt" not in seen, f"stoppedAt set while {seen['status']}"  # Metaflow: done = stoppedAt
        if seen["status"] == "RUNNING":
            assert "startedAt" in seen
            assert seen.get("container", {}).get("logStreamName"), "RUNNING job without container.logStreamName"


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="job-states")
def test_non_zero_exit_fails_with_the_essential_container_reason(shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sh", "-c", "exit 3"])
    job_id = jobs.submit(f"{prefix}-exit3", shared_env.queue, definition["jobDefinitionArn"])
    run = jobs.wait_one(job_id)
    assert_status_order(run.statuses)
    job = run.last
    assert job["status"] == "FAILED"
    assert job["statusReason"] == ESSENTIAL_EXITED
    assert job["container"]["exitCode"] == 3
    assert job["attempts"][-1]["container"]["exitCode"] == 3
    assert "stoppedAt" in job


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="job-inputs")
def test_command_override(shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sh", "-c", "exit 1"])
    override = ["sh", "-c", "exit 5"]
    job_id = jobs.submit(f"{prefix}-override", shared_env.queue, definition["jobDefinitionArn"],
                         containerOverrides={"command": override})
    job = jobs.wait_one(job_id).last
    assert job["container"]["exitCode"] == 5
    assert job["container"]["command"] == override


# job_definition_parameters.html: Ref::name placeholders take the submitted value, else the default.
@covers("RegisterJobDefinition", "SubmitJob", "DescribeJobs", group="job-inputs")
@pytest.mark.runs_commands
def test_parameters_substitute_ref_placeholders(shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sh", "-c", "exit Ref::code"], parameters={"code": "4"})
    by_default = jobs.submit(f"{prefix}-param-default", shared_env.queue, definition["jobDefinitionArn"])
    overridden = jobs.submit(f"{prefix}-param-set", shared_env.queue, definition["jobDefinitionArn"],
                             parameters={"code": "7"})
    runs = jobs.wait([by_default, overridden])
    assert runs[by_default].last["container"]["exitCode"] == 4
    assert runs[overridden].last["container"]["exitCode"] == 7
    assert runs[overridden].last["parameters"]["code"] == "7"


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="job-environment")
def test_aws_batch_environment_inside_the_container(shared_env, jobdef, jobs, logs, prefix):
    definition = jobdef(command=["env"],
                        container={"environment": [{"name": "FROM_DEFINITION", "value": "def"},
                                                   {"name": "FROM_OVERRIDE", "value": "def"}]})
    job_id = jobs.submit(f"{prefix}-env", shared_env.queue, definition["jobDefinitionArn"],
                         containerOverrides={"environment": [{"name": "FROM_OVERRIDE", "value": "over"}]})
    job = jobs.wait_one(job_id).last
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    seen = dict(line.split("=", 1) for line in log_lines(logs, job["container"]["logStreamName"]) if "=" in line)
    # batch/latest/userguide/job_env_vars.html
    assert seen["AWS_BATCH_JOB_ID"] == job_id
    assert seen["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert seen["AWS_BATCH_JQ_NAME"] == shared_env.queue
    assert seen["AWS_BATCH_CE_NAME"] == shared_env.compute_environment
    assert seen.get("AWS_EXECUTION_ENV"), "AWS_EXECUTION_ENV is not set"
    assert "AWS_BATCH_JOB_ARRAY_INDEX" not in seen  # only array children have it
    assert seen["FROM_DEFINITION"] == "def"
    assert seen["FROM_OVERRIDE"] == "over"


# job_retries.html: attempts counts tries; evaluateOnExit EXIT stops retrying on a match.
@covers("SubmitJob", "DescribeJobs", group="retries-dependencies")
@pytest.mark.runs_commands
def test_retry_strategy_attempts_and_evaluate_on_exit(shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sh", "-c", "exit 2"])
    retried = jobs.submit(f"{prefix}-retry", shared_env.queue, definition["jobDefinitionArn"],
                          retryStrategy={"attempts": 2})
    stopped = jobs.submit(f"{prefix}-noretry", shared_env.queue, definition["jobDefinitionArn"],
                          retryStrategy={"attempts": 3,
                                         "evaluateOnExit": [{"onExitCode": "2", "action": "EXIT"}]})
    runs = jobs.wait([retried, stopped])
    assert_status_order(runs[retried].statuses, retries=True)
    assert runs[retried].last["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in runs[retried].last["attempts"]] == [2, 2]
    assert runs[stopped].last["status"] == "FAILED"
    assert len(runs[stopped].last["attempts"]) == 1


# job_dependencies.html: a job waits in PENDING until the jobs it depends on succeed.
@covers("SubmitJob", "DescribeJobs", group="retries-dependencies")
def test_dependent_job_starts_after_its_dependency(shared_env, jobdef, jobs, prefix):
    first_def = jobdef(command=["sleep", "1"])
    then_def = jobdef(command=["echo", "after"])
    first = jobs.submit(f"{prefix}-dep-a", shared_env.queue, first_def["jobDefinitionArn"])
    then = jobs.submit(f"{prefix}-dep-b", shared_env.queue, then_def["jobDefinitionArn"],
                       dependsOn=[{"jobId": first}])
    runs = jobs.wait([first, then])
    a, b = runs[first].last, runs[then].last
    assert (a["status"], b["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert b["dependsOn"] == [{"jobId": first}]
    assert b["startedAt"] >= a["stoppedAt"]
