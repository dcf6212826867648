"""A job's output through CloudWatch Logs (using_awslogs.html): group /aws/batch/job, the stream named
in container.logStreamName, paged with nextForwardToken as Airflow does."""

from __future__ import annotations

import pytest

from conformance.harness import LOG_GROUP

covers = pytest.mark.covers

LINES = ["line-1", "line-2", "line-3"]


@pytest.fixture(scope="module")
def finished(shared_env, jobdef, jobs, prefix) -> dict:
    definition = jobdef(command=["sh", "-c", "echo line-1; echo line-2; echo line-3"])
    job_id = jobs.submit(f"{prefix}-logs", shared_env.queue, definition["jobDefinitionArn"])
    job = jobs.wait_one(job_id).last
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    return {"job": job, "definition": definition}


@covers("DescribeJobs", group="logs")
def test_log_stream_name_follows_the_batch_format(finished):
    # job_states.html: streams are named jobDefinitionName/default/ecs_task_id.
    stream = finished["job"]["container"]["logStreamName"]
    name = finished["definition"]["jobDefinitionName"]
    assert stream.startswith(f"{name}/default/") and len(stream) > len(f"{name}/default/")
    assert finished["job"]["attempts"][-1]["container"]["logStreamName"] == stream


@pytest.mark.runs_commands
@covers("DescribeJobs", group="logs")
def test_get_log_events_of_a_finished_job(logs, finished):
    stream = finished["job"]["container"]["logStreamName"]
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == LINES
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert all(isinstance(e["ingestionTime"], int) for e in events)


@pytest.mark.runs_commands
@covers("DescribeJobs", group="logs")
def test_forward_paging_repeats_nothing_and_ends_on_the_same_token(logs, finished):
    stream = finished["job"]["container"]["logStreamName"]
    messages, token = [], None
    for _ in range(10):
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, limit=1, **kwargs)
        messages += [e["message"] for e in page["events"]]
        # CloudWatch Logs API_GetLogEvents.html: at the end of the stream the same token comes back.
        if token is not None and page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    else:
        pytest.fail(f"nextForwardToken never settled; read {messages}")
    assert messages == LINES


@pytest.mark.runs_commands
@covers("DescribeJobs", group="logs")
def test_tail_with_limit_returns_the_newest_lines_oldest_first(logs, finished):
    stream = finished["job"]["container"]["logStreamName"]
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, limit=2)["events"]
    assert [e["message"] for e in events] == LINES[-2:]
