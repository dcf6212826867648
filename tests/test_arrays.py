"""Array jobs and typed dependencies, end to end through boto3 and real containers."""

from __future__ import annotations

import itertools

import pytest
from conftest import (
    client_error,
    describe,
    make_queue,
    needs_docker,
    register,
    submit,
    wait_for_status,
    wait_until,
)
from test_jobs import log_lines

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def children(batch_client, parent: str, **extra) -> list[dict]:
    """Every child summary through ListJobs(arrayJobId), following nextToken."""
    out, token = [], None
    while True:
        page = batch_client.list_jobs(arrayJobId=parent, **extra, **({"nextToken": token} if token else {}))
        out += page["jobSummaryList"]
        token = page.get("nextToken")
        if not token:
            return out


@pytest.mark.rule("SubmitJob.dependsOn.max", "SubmitJob.dependsOn.SEQUENTIAL", "SubmitJob.dependsOn.N_TO_N")
def test_submit_rejects_bad_sizes_and_dependency_kinds(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["true"])
    for size in (1, 10_001):
        assert "between 2 and 10000" in client_error(
            batch_client.submit_job, jobName="a", jobQueue=queue["name"],
            jobDefinition=definition["jobDefinitionArn"], arrayProperties={"size": size})
    plain = submit(batch_client, queue, definition)
    assert "only valid on an array job" in client_error(
        batch_client.submit_job, jobName="s", jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"],
        dependsOn=[{"type": "SEQUENTIAL"}])
    small = submit(batch_client, queue, definition, arrayProperties={"size": 2})
    assert "size 2" in client_error(
        batch_client.submit_job, jobName="n", jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"],
        arrayProperties={"size": 3}, dependsOn=[{"jobId": small, "type": "N_TO_N"}])
    assert "not an array job" in client_error(
        batch_client.submit_job, jobName="n", jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"],
        arrayProperties={"size": 2}, dependsOn=[{"jobId": plain, "type": "N_TO_N"}])
    twenty_one = [{"jobId": plain}] * 21
    assert client_error(batch_client.submit_job, jobName="d", jobQueue=queue["name"],
                        jobDefinition=definition["jobDefinitionArn"],
                        dependsOn=twenty_one) == "Job cannot have more than 20 dependencies"
    assert client_error(batch_client.submit_job, jobName="t", jobQueue=queue["name"],
                        jobDefinition=definition["jobDefinitionArn"], timeout={"attemptDurationSeconds": 59}) \
        == "The minimum value for the timeout is 60 seconds."


def test_children_are_described_listed_and_summarised_before_they_run(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["true"])
    parent = submit(batch_client, queue, definition, arrayProperties={"size": 250})
    job = describe(batch_client, parent)
    assert job["arrayProperties"]["size"] == 250
    assert set(job["arrayProperties"]["statusSummary"]) == set(STATUSES)
    assert job["status"] in ("SUBMITTED", "PENDING") and "container" in job
    wait_until(lambda: describe(batch_client, parent)["arrayProperties"]["statusSummary"]["RUNNABLE"] == 250)
    child = describe(batch_client, f"{parent}:7")
    assert child["jobArn"].endswith(f"job/{parent}:7") and child["arrayProperties"] == {"index": 7}
    assert child["status"] == "RUNNABLE" and child["jobQueue"] == queue["arn"]
    listed = children(batch_client, parent, jobStatus="RUNNABLE", maxResults=100)
    assert [c["jobId"] for c in listed] == [f"{parent}:{i}" for i in range(250)]
    assert all(c["arrayProperties"] == {"index": i} for i, c in enumerate(listed))
    by_name = children(batch_client, parent, filters=[{"name": "JOB_NAME", "values": ["job-*"]}])
    assert len(by_name) == 250
    # The queue lists the parent, not its children.
    queued = batch_client.list_jobs(jobQueue=queue["name"], jobStatus="PENDING")["jobSummaryList"]
    assert [j["jobId"] for j in queued] == [parent]
    assert queued[0]["arrayProperties"]["size"] == 250
    batch_client.cancel_job(jobId=parent, reason="no longer needed")
    wait_until(lambda: describe(batch_client, parent)["status"] == "FAILED")
    ended = describe(batch_client, parent)
    assert ended["statusReason"] == "no longer needed"
    assert ended["arrayProperties"]["statusSummary"]["FAILED"] == 250
    cancelled = describe(batch_client, f"{parent}:249")
    assert cancelled["isCancelled"] is True and cancelled["statusReason"] == "no longer needed"
    assert cancelled["stoppedAt"] > 0


@needs_docker
def test_array_children_run_with_their_index_and_the_parent_succeeds(batch_client, logs_client, queue):
    definition = register(batch_client, ["sh", "-c", "echo index=$AWS_BATCH_JOB_ARRAY_INDEX size=$AWS_BATCH_JOB_ARRAY_SIZE"])
    parent = submit(batch_client, queue, definition, arrayProperties={"size": 3})
    seen: list[str] = []
    job = wait_for_status(batch_client, parent, seen=seen)
    assert job["status"] == "SUCCEEDED"
    assert set(seen) <= {"SUBMITTED", "PENDING", "SUCCEEDED"}
    assert job["arrayProperties"]["statusSummary"] == {**{s: 0 for s in STATUSES}, "SUCCEEDED": 3}
    assert job["arrayProperties"]["statusSummaryLastUpdatedAt"] >= job["createdAt"]
    assert "attempts" not in job or job["attempts"] == []
    for i in range(3):
        child = describe(batch_client, f"{parent}:{i}")
        assert child["status"] == "SUCCEEDED" and child["container"]["exitCode"] == 0
        assert len(child["attempts"]) == 1
        assert log_lines(logs_client, child) == [f"index={i} size=3"]


@needs_docker
def test_a_failed_child_fails_the_parent_after_all_children_end(batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "test $AWS_BATCH_JOB_ARRAY_INDEX != 1"])
    parent = submit(batch_client, queue, definition, arrayProperties={"size": 3},
                    retryStrategy={"attempts": 2})
    job = wait_for_status(batch_client, parent)
    assert job["status"] == "FAILED" and job["statusReason"] == "Array Child Job failed"
    assert job["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2
    failed = describe(batch_client, f"{parent}:1")
    # Retries are per child: the failing child had its two attempts, the others one.
    assert failed["status"] == "FAILED" and len(failed["attempts"]) == 2
    assert len(describe(batch_client, f"{parent}:0")["attempts"]) == 1


@needs_docker
@pytest.mark.rule("SubmitJob.dependsOn.SEQUENTIAL")
def test_sequential_children_run_one_after_another(batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "sleep 0.2"])
    parent = submit(batch_client, queue, definition, arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    assert wait_for_status(batch_client, parent)["status"] == "SUCCEEDED"
    jobs = batch_client.describe_jobs(jobs=[f"{parent}:{i}" for i in range(3)])["jobs"]
    assert jobs[1]["dependsOn"] == [{"jobId": f"{parent}:0", "type": "SEQUENTIAL"}]
    for before, after in itertools.pairwise(jobs):
        assert after["startedAt"] >= before["stoppedAt"]


@needs_docker
@pytest.mark.rule("SubmitJob.dependsOn.N_TO_N")
def test_n_to_n_waits_for_the_same_index_and_a_failure_reaches_only_it(batch_client, queue):
    first = submit(batch_client, queue, register(batch_client, ["sh", "-c", "test $AWS_BATCH_JOB_ARRAY_INDEX != 2"]),
                   arrayProperties={"size": 3})
    second = submit(batch_client, queue, register(batch_client, ["true"]), arrayProperties={"size": 3},
                    dependsOn=[{"jobId": first, "type": "N_TO_N"}])
    assert wait_for_status(batch_client, second)["status"] == "FAILED"
    jobs = {j["jobId"]: j for j in batch_client.describe_jobs(
        jobs=[f"{p}:{i}" for p in (first, second) for i in range(3)])["jobs"]}
    for i in (0, 1):
        assert jobs[f"{second}:{i}"]["status"] == "SUCCEEDED"
        assert jobs[f"{second}:{i}"]["startedAt"] >= jobs[f"{first}:{i}"]["stoppedAt"]
    blocked = jobs[f"{second}:2"]
    assert blocked["status"] == "FAILED" and "attempts" not in blocked or blocked["attempts"] == []
    assert blocked["statusReason"] == f"Dependent Job failed: {first}:2 FAILED"


@needs_docker
def test_plain_dependency_on_an_array_waits_for_every_child(batch_client, queue):
    array = submit(batch_client, queue, register(batch_client, ["sh", "-c", "sleep 0.3"]), arrayProperties={"size": 2})
    after = submit(batch_client, queue, register(batch_client, ["true"]), dependsOn=[{"jobId": array}])
    assert wait_for_status(batch_client, after)["status"] == "SUCCEEDED"
    last_child_end = max(describe(batch_client, f"{array}:{i}")["stoppedAt"] for i in range(2))
    assert describe(batch_client, after)["startedAt"] >= last_child_end


@needs_docker
@pytest.mark.rule("CancelJob.array-parent")
def test_terminate_parent_stops_running_children(batch_client, queue):
    parent = submit(batch_client, queue, register(batch_client, ["sleep", "60"]), arrayProperties={"size": 6})
    wait_until(lambda: describe(batch_client, parent)["arrayProperties"]["statusSummary"]["RUNNING"] >= 1)
    batch_client.terminate_job(jobId=parent, reason="enough")
    job = wait_for_status(batch_client, parent, timeout=30)
    assert job["status"] == "FAILED" and job["statusReason"] == "enough"
    kids = children(batch_client, parent, jobStatus="FAILED")
    assert len(kids) == 6 and all(k["statusReason"] == "enough" for k in kids)


def test_a_childs_summary_from_the_few_keys_it_reads_equals_the_one_from_its_whole_document():
    """ListJobs builds a page of never-started children from their parent's summary keys only
    (batchemu.model.arrays.child_doc(only=...)); the summaries must be those of the full documents."""
    from batchemu.model.arrays import child_doc
    from batchemu.store import SUMMARY_SOURCES, JobRow, job_summary
    parent = {"jobArn": "arn:aws:batch:us-east-1:1:job/p", "jobId": "p", "jobName": "n", "jobQueue": "q",
              "jobDefinition": "d", "status": "PENDING", "createdAt": 1, "shareIdentifier": "s",
              "statusReason": "parent only", "startedAt": 5, "container": {"image": "i", "reason": "r"},
              "dependsOn": [{"type": "SEQUENTIAL"}], "arrayProperties": {"size": 3, "statusSummary": {}},
              "parameters": {"a": "b"}, "batchemu": {"vcpus": 1.0}}
    for status, reason, stopped, cancelled in [("RUNNABLE", None, None, 0), ("FAILED", "Cancelled", 9, 1)]:
        row = JobRow(job_id="p:2", array_index=2, status=status, created_at=3, entered_at=4, status_reason=reason,
                     stopped_at=stopped, is_cancelled=cancelled, is_terminated=0)
        full = job_summary(child_doc(parent, row))
        assert job_summary(child_doc(parent, row, shared=True, only=SUMMARY_SOURCES)) == full
        assert full["arrayProperties"] == {"index": 2} and full["container"] == {"exitCode": None, "reason": "r"}
