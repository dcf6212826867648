"""What SubmitJob accepts and refuses, as AWS documents it: empty tags (what Airflow's BatchOperator
sends), evaluateOnExit actions in any case (API_EvaluateOnExit.html: "The values aren't case sensitive"),
a timeout of at least 60 s (API_JobTimeout.html) and an array size of 2 to 10,000 (array_jobs.html)."""

from __future__ import annotations

import pytest

from conformance.harness import refused

covers = pytest.mark.covers
rule = pytest.mark.rule


# API_SubmitJob.html, tags: a map of 0 to 50 tags. Airflow's BatchOperator always sends `tags or {}`.
@covers("SubmitJob", "DescribeJobs", group="request-rules")
@rule("SubmitJob.tags.empty")
def test_submit_job_with_empty_tags_and_parameters_is_accepted(held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    job_id = jobs.submit(f"{prefix}-empty-tags", held_env.queue, definition["jobDefinitionArn"],
                         tags={}, parameters={})
    assert jobs.describe([job_id])[job_id].get("tags", {}) == {}


# API_EvaluateOnExit.html, action: "The values aren't case sensitive." Terraform sends `retry` and `exit`.
# What comes back must still be one of botocore's RetryAction values (the shape walker checks it): AWS
# does not echo the case it was given (terraform-provider-aws's import test ignores the action for that).
@covers("RegisterJobDefinition", "DescribeJobDefinitions", "SubmitJob", "DescribeJobs", group="request-rules")
@covers(group="retries-dependencies")
@rule("EvaluateOnExit.action.case")
@pytest.mark.runs_commands
def test_lower_case_evaluate_on_exit_actions_are_accepted_and_decide_retries(batch, shared_env, jobdef, jobs, prefix):
    strategy = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "3", "action": "exit"},
                                                  {"onExitCode": "*", "action": "retry"}]}
    definition = jobdef(command=["sh", "-c", "exit 3"], retryStrategy=strategy)
    stored = batch.describe_job_definitions(jobDefinitions=[definition["jobDefinitionArn"]])["jobDefinitions"][0]
    assert [rule["action"].upper() for rule in stored["retryStrategy"]["evaluateOnExit"]] == ["EXIT", "RETRY"]
    by_definition = jobs.submit(f"{prefix}-lc-def", shared_env.queue, definition["jobDefinitionArn"])
    on_submit = jobs.submit(f"{prefix}-lc-submit", shared_env.queue, definition["jobDefinitionArn"],
                            retryStrategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "retry"}]})
    runs = jobs.wait([by_definition, on_submit])
    # exit 3 matches `exit`: one attempt; the submitted strategy's `retry` gives it its second attempt.
    assert runs[by_definition].last["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in runs[by_definition].last["attempts"]] == [3]
    assert [a["container"]["exitCode"] for a in runs[on_submit].last["attempts"]] == [3, 3]


# API_JobTimeout.html, attemptDurationSeconds: "The minimum value for the timeout is 60 seconds."
@covers("SubmitJob", "DescribeJobs", group="request-rules")
@rule("JobTimeout.attemptDurationSeconds.minimum")
def test_timeout_under_60_seconds_is_refused(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    error = refused(batch.submit_job, jobName=f"{prefix}-t59", jobQueue=held_env.queue,
                    jobDefinition=definition["jobDefinitionArn"], timeout={"attemptDurationSeconds": 59})
    assert "60" in error.response["Error"]["Message"]
    job_id = jobs.submit(f"{prefix}-t60", held_env.queue, definition["jobDefinitionArn"],
                         timeout={"attemptDurationSeconds": 60})
    assert jobs.describe([job_id])[job_id]["timeout"]["attemptDurationSeconds"] == 60


# array_jobs.html: an array job has between 2 and 10,000 children.
@covers("SubmitJob", group="request-rules")
@covers(group="arrays")
@rule("ArrayProperties.size.range")
def test_array_size_outside_2_to_10000_is_refused(batch, held_env, jobdef, prefix):
    definition = jobdef(command=["echo", "x"])
    for size in (1, 10_001):
        refused(batch.submit_job, jobName=f"{prefix}-size-{size}", jobQueue=held_env.queue,
                jobDefinition=definition["jobDefinitionArn"], arrayProperties={"size": size})
