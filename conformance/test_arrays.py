"""Array jobs and the dependencies that only make sense with them (array_jobs.html, example_array_job.html,
job_dependencies.html): children `<parent>:<index>`, what the parent shows, the index inside the
container, listing the children, failures and cancellation reaching across, SEQUENTIAL and N_TO_N."""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError

from conformance.harness import TERMINAL, client_error_code
from conformance.test_jobs import log_lines

covers = pytest.mark.covers

# JobDetail.status of an array parent: it never goes RUNNABLE, STARTING or RUNNING itself.
PARENT_STATUSES = {"SUBMITTED", "PENDING", "SUCCEEDED", "FAILED"}
# ArrayPropertiesDetail.statusSummary carries every job status, zeros included.
ALL_STATUSES = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"}
# The reasons seen on AWS (BATCH-FACTS.md section 1); a dependent's reason is only asserted to start so.
ARRAY_CHILD_FAILED = "Array Child Job failed"
DEPENDENT_FAILED = "Dependent Job failed"


def child_ids(parent: str, size: int) -> list[str]:
    return [f"{parent}:{i}" for i in range(size)]


def list_children(batch, parent: str, **kwargs) -> list[dict]:
    return [job for page in batch.get_paginator("list_jobs").paginate(arrayJobId=parent, **kwargs)
            for job in page["jobSummaryList"]]


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", "ListJobs", group="arrays")
@covers(group="typed-dependencies")
def test_array_children_run_with_their_index_and_a_plain_dependent_waits_for_all(
        batch, shared_env, jobdef, jobs, logs, prefix):
    definition = jobdef(command=["sh", "-c", "echo index=$AWS_BATCH_JOB_ARRAY_INDEX size=$AWS_BATCH_JOB_ARRAY_SIZE"])
    after_def = jobdef(command=["echo", "after"])
    parent = jobs.submit(f"{prefix}-arr", shared_env.queue, definition["jobDefinitionArn"],
                         arrayProperties={"size": 3})
    # example_array_job.html: a dependency without a type on an array job waits for the whole array.
    after = jobs.submit(f"{prefix}-arr-after", shared_env.queue, after_def["jobDefinitionArn"],
                        dependsOn=[{"jobId": parent}])
    runs = jobs.wait([parent, after])
    job = runs[parent].last
    assert job["status"] == "SUCCEEDED", (job.get("statusReason"), job["arrayProperties"])
    assert set(runs[parent].statuses) <= PARENT_STATUSES, runs[parent].statuses
    summary = job["arrayProperties"]
    assert summary["size"] == 3
    assert summary["statusSummary"] == {**dict.fromkeys(ALL_STATUSES, 0), "SUCCEEDED": 3}
    assert summary["statusSummaryLastUpdatedAt"] >= job["createdAt"]

    kids = jobs.describe(child_ids(parent, 3))
    assert sorted(kids) == child_ids(parent, 3), "DescribeJobs does not answer for child ids"
    for i, child_id in enumerate(child_ids(parent, 3)):
        child = kids[child_id]
        assert child["status"] == "SUCCEEDED", child.get("statusReason")
        assert child["arrayProperties"]["index"] == i
        assert child["container"]["exitCode"] == 0
        # job_env_vars.html: AWS_BATCH_JOB_ARRAY_INDEX (0-based) and AWS_BATCH_JOB_ARRAY_SIZE in children.
        assert log_lines(logs, child["container"]["logStreamName"]) == [f"index={i} size=3"]

    listed = list_children(batch, parent, jobStatus="SUCCEEDED")
    assert sorted(j["jobId"] for j in listed) == child_ids(parent, 3)
    assert all(j["arrayProperties"]["index"] == int(j["jobId"].rsplit(":", 1)[1]) for j in listed)

    dependent = runs[after].last
    assert dependent["status"] == "SUCCEEDED", dependent.get("statusReason")
    assert dependent["startedAt"] >= max(child["stoppedAt"] for child in kids.values())


# array_jobs.html: children are created in PENDING; the parent turns PENDING once a child is RUNNABLE;
# cancelling the parent cancels every child. The children wait in a DISABLED compute environment.
@covers("SubmitJob", "DescribeJobs", "ListJobs", "CancelJob", group="arrays")
@covers(group="pagination")
def test_waiting_children_are_listed_page_by_page_and_cancelled_with_the_parent(
        batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "never"])
    parent = jobs.submit(f"{prefix}-arr-held", held_env.queue, definition["jobDefinitionArn"],
                         arrayProperties={"size": 5})
    kids = child_ids(parent, 5)
    first = jobs.describe(kids)
    assert sorted(first) == kids
    assert all(child["status"] in ("PENDING", "RUNNABLE") for child in first.values()), \
        {child_id: child["status"] for child_id, child in first.items()}

    def all_runnable(job: dict) -> bool:
        return job["arrayProperties"]["statusSummary"]["RUNNABLE"] == 5
    run = jobs.wait_one(parent, until=all_runnable)
    assert run.last["status"] == "PENDING"
    assert set(run.statuses) <= {"SUBMITTED", "PENDING"}, run.statuses

    seen, token, pages = [], None, 0
    while True:
        page = batch.list_jobs(arrayJobId=parent, jobStatus="RUNNABLE", maxResults=2,
                               **({"nextToken": token} if token else {}))
        assert len(page["jobSummaryList"]) <= 2
        seen += page["jobSummaryList"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert sorted(j["jobId"] for j in seen) == kids, "pages lost or repeated children"
    assert pages >= 3
    assert all(j["status"] == "RUNNABLE" for j in seen)
    assert list_children(batch, parent, jobStatus="SUCCEEDED") == []

    batch.cancel_job(jobId=parent, reason="array no longer needed")
    runs = jobs.wait([parent, *kids])
    assert {child_id: runs[child_id].last["status"] for child_id in kids} == dict.fromkeys(kids, "FAILED")
    ended = runs[parent].last
    assert ended["status"] == "FAILED"
    assert ended["arrayProperties"]["statusSummary"]["FAILED"] == 5


# array_jobs.html: a failing child fails the parent. Retries are per child: each child is a job of its own
# with its own attempts (BATCH-FACTS.md section 1, inferred).
@covers("SubmitJob", "DescribeJobs", group="arrays")
@covers(group="retries-dependencies")
@pytest.mark.runs_commands
def test_a_failed_child_fails_the_parent_and_retries_are_per_child(batch, shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sh", "-c", "test $AWS_BATCH_JOB_ARRAY_INDEX != 1"])
    parent = jobs.submit(f"{prefix}-arr-fail", shared_env.queue, definition["jobDefinitionArn"],
                         arrayProperties={"size": 2}, retryStrategy={"attempts": 2})
    run = jobs.wait_one(parent)
    job = run.last
    assert set(run.statuses) <= PARENT_STATUSES, run.statuses
    assert (job["status"], job.get("statusReason")) == ("FAILED", ARRAY_CHILD_FAILED)
    assert job["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 1
    assert job["arrayProperties"]["statusSummary"]["FAILED"] == 1
    kids = jobs.describe(child_ids(parent, 2))
    good, bad = kids[f"{parent}:0"], kids[f"{parent}:1"]
    assert good["status"] == "SUCCEEDED" and len(good["attempts"]) == 1
    assert bad["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in bad["attempts"]] == [1, 1]


# array_jobs.html: terminating the parent terminates its children, running ones included.
@covers("SubmitJob", "TerminateJob", "DescribeJobs", group="arrays")
@covers(group="cancel-terminate")
@pytest.mark.runs_commands
def test_terminate_parent_stops_its_running_children(batch, shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["sleep", "60"])
    parent = jobs.submit(f"{prefix}-arr-term", shared_env.queue, definition["jobDefinitionArn"],
                         arrayProperties={"size": 2})

    def a_child_runs(job: dict) -> bool:
        if job["status"] in TERMINAL:
            pytest.fail(f"array ended ({job['status']}) before a child ran")
        return job["arrayProperties"]["statusSummary"]["RUNNING"] >= 1
    jobs.wait_one(parent, until=a_child_runs)
    batch.terminate_job(jobId=parent, reason="array terminated by the conformance suite")
    kids = child_ids(parent, 2)
    runs = jobs.wait([parent, *kids], timeout=60)
    assert runs[parent].last["status"] == "FAILED"
    assert [runs[child_id].last["status"] for child_id in kids] == ["FAILED", "FAILED"]
    assert all("stoppedAt" in runs[child_id].last for child_id in kids)


# array_jobs.html: SEQUENTIAL (without a jobId) runs child k only after child k-1 succeeded.
@covers("SubmitJob", "DescribeJobs", group="typed-dependencies")
def test_sequential_children_run_one_after_another(batch, shared_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "in turn"])
    parent = jobs.submit(f"{prefix}-seq", shared_env.queue, definition["jobDefinitionArn"],
                         arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    assert jobs.wait_one(parent).last["status"] == "SUCCEEDED"
    kids = jobs.describe(child_ids(parent, 3))
    ordered = [kids[child_id] for child_id in child_ids(parent, 3)]
    assert [child["status"] for child in ordered] == ["SUCCEEDED"] * 3
    for before, after in itertools.pairwise(ordered):
        assert after["startedAt"] >= before["stoppedAt"], \
            f"{after['jobId']} started before {before['jobId']} stopped"


# array_jobs.html: N_TO_N makes child i wait for child i of the named array; job_dependencies.html: a
# failed dependency fails the dependent without running it (AWS's reason: `Dependent Job failed`).
@covers("SubmitJob", "DescribeJobs", group="typed-dependencies")
@pytest.mark.runs_commands
def test_n_to_n_waits_for_the_same_index_and_a_failed_dependency_fails_the_dependent(
        batch, shared_env, jobdef, jobs, prefix):
    first = jobs.submit(f"{prefix}-n2n-a", shared_env.queue,
                        jobdef(command=["sh", "-c", "test $AWS_BATCH_JOB_ARRAY_INDEX != 1"])["jobDefinitionArn"],
                        arrayProperties={"size": 2})
    ok_def = jobdef(command=["echo", "ok"])["jobDefinitionArn"]
    second = jobs.submit(f"{prefix}-n2n-b", shared_env.queue, ok_def, arrayProperties={"size": 2},
                         dependsOn=[{"jobId": first, "type": "N_TO_N"}])
    plain = jobs.submit(f"{prefix}-n2n-c", shared_env.queue, ok_def, dependsOn=[{"jobId": first}])
    runs = jobs.wait([first, second, plain])
    assert runs[first].last["status"] == "FAILED"
    assert runs[second].last["status"] == "FAILED"
    kids = jobs.describe(child_ids(first, 2) + child_ids(second, 2))
    assert kids[f"{first}:0"]["status"] == "SUCCEEDED"
    assert kids[f"{second}:0"]["status"] == "SUCCEEDED", kids[f"{second}:0"].get("statusReason")
    assert kids[f"{second}:0"]["startedAt"] >= kids[f"{first}:0"]["stoppedAt"]
    for blocked in (kids[f"{second}:1"], runs[plain].last):
        assert blocked["status"] == "FAILED"
        assert blocked.get("statusReason", "").startswith(DEPENDENT_FAILED), blocked.get("statusReason")
        assert not blocked.get("attempts"), f"{blocked['jobId']} ran although its dependency failed"
        assert "startedAt" not in blocked


# SubmitJobRequest.dependsOn: up to 20 dependencies (AWS: `Job cannot have more than 20 dependencies`).
@covers("SubmitJob", group="typed-dependencies")
@covers(group="request-rules")
def test_more_than_20_dependencies_are_refused(batch, held_env, jobdef, jobs, prefix):
    definition = jobdef(command=["echo", "x"])
    upstream = [jobs.submit(f"{prefix}-dep-up-{i}", held_env.queue, definition["jobDefinitionArn"])
                for i in range(21)]
    with pytest.raises(ClientError) as caught:
        jobs.submit(f"{prefix}-dep-21", held_env.queue, definition["jobDefinitionArn"],
                    dependsOn=[{"jobId": job_id} for job_id in upstream])
    assert client_error_code(caught.value) == "ClientException"
    assert "Job cannot have more than 20 dependencies" in caught.value.response["Error"]["Message"]
    twenty = jobs.submit(f"{prefix}-dep-20", held_env.queue, definition["jobDefinitionArn"],
                         dependsOn=[{"jobId": job_id} for job_id in upstream[:20]])
    assert len(jobs.describe([twenty])[twenty]["dependsOn"]) == 20
