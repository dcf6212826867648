"""CloudWatch Logs on the emulator's port: how clients read and follow a job's output through boto3."""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError

GROUP = "/aws/batch/job"
STREAM = "my-def/default/0123456789abcdef"
BASE_TS = 1_700_000_000_000


def write_events(server, messages: list[str], *, group: str = GROUP, stream: str = STREAM,
                 first_ts: int = BASE_TS, step: int = 10, created_at: int = BASE_TS - 1000) -> None:
    """What the executor does with a job's output: ensure the stream, append (timestamp, line) events."""
    with server.store.transaction() as tx:
        tx.logs.ensure_stream(group, stream, created_at)
        tx.logs.append(group, stream, [(first_ts + i * step, m) for i, m in enumerate(messages)],
                       first_ts + len(messages) * step + 5)


def lines(n: int, start: int = 0) -> list[str]:
    return [f"line {i}" for i in range(start, start + n)]


def messages(response: dict) -> list[str]:
    return [e["message"] for e in response["events"]]


def error_of(excinfo) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


# -- GetLogEvents ------------------------------------------------------------------------------------------

def test_tail_read_returns_newest_events_oldest_first(batchemu_server, logs_client):
    write_events(batchemu_server, lines(25))
    response = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=5)
    assert messages(response) == lines(5, start=20)
    first = response["events"][0]
    assert first["timestamp"] == BASE_TS + 200
    assert first["ingestionTime"] == BASE_TS + 255
    assert response["nextForwardToken"].startswith("f/")
    assert response["nextBackwardToken"].startswith("b/")


def test_head_read_with_limit(batchemu_server, logs_client):
    write_events(batchemu_server, lines(25))
    response = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True, limit=5)
    assert messages(response) == lines(5)


def test_forward_paging_does_not_repeat_and_returns_the_same_token_at_the_end(batchemu_server, logs_client):
    write_events(batchemu_server, lines(25))
    seen, token, calls = [], None, 0
    while True:  # the loop Airflow's AwsLogsHook runs
        kwargs = {"nextToken": token} if token else {}
        response = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True,
                                              limit=7, **kwargs)
        seen.extend(messages(response))
        calls += 1
        assert calls < 10, "pagination never ended"
        if response["nextForwardToken"] == token:
            break
        token = response["nextForwardToken"]
    assert seen == lines(25)
    assert messages(response) == []
    again = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, nextToken=token)
    assert messages(again) == []
    assert again["nextForwardToken"] == token


def test_following_a_running_job_returns_new_lines_with_the_end_token(batchemu_server, logs_client):
    write_events(batchemu_server, lines(3))
    first = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True)
    assert messages(first) == lines(3)
    end = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True,
                                     nextToken=first["nextForwardToken"])
    assert messages(end) == [] and end["nextForwardToken"] == first["nextForwardToken"]
    # Another stream growing meanwhile must not show up in this one.
    write_events(batchemu_server, ["other job"], stream="other-def/default/feed")
    write_events(batchemu_server, lines(2, start=3), first_ts=BASE_TS + 1000)
    more = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True,
                                      nextToken=end["nextForwardToken"])
    assert messages(more) == lines(2, start=3)
    assert more["nextForwardToken"] != end["nextForwardToken"]
    done = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True,
                                      nextToken=more["nextForwardToken"])
    assert messages(done) == [] and done["nextForwardToken"] == more["nextForwardToken"]


def test_tail_of_an_empty_stream_then_following_it(batchemu_server, logs_client):
    write_events(batchemu_server, lines(4), stream="earlier/default/job")
    write_events(batchemu_server, [])
    empty = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM)
    assert messages(empty) == []
    write_events(batchemu_server, ["hello"])
    followed = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM,
                                          nextToken=empty["nextForwardToken"])
    assert messages(followed) == ["hello"]


def test_backward_paging_walks_to_the_head_and_stops(batchemu_server, logs_client):
    write_events(batchemu_server, lines(25))
    page = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=10)
    assert messages(page) == lines(10, start=15)
    page = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=10,
                                      nextToken=page["nextBackwardToken"])
    assert messages(page) == lines(10, start=5)
    page = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=10,
                                      nextToken=page["nextBackwardToken"])
    assert messages(page) == lines(5)
    head = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=10,
                                      nextToken=page["nextBackwardToken"])
    assert messages(head) == []
    assert head["nextBackwardToken"] == page["nextBackwardToken"]
    # Forward from the head again reads the first lines.
    forward = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=3,
                                         nextToken=head["nextForwardToken"])
    assert messages(forward) == lines(3)


def test_time_window_includes_start_and_excludes_end(batchemu_server, logs_client):
    write_events(batchemu_server, lines(20))  # timestamps BASE_TS, BASE_TS + 10, ...
    response = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True,
                                          startTime=BASE_TS + 50, endTime=BASE_TS + 100)
    assert messages(response) == lines(5, start=5)
    tail = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=2,
                                      startTime=BASE_TS + 50, endTime=BASE_TS + 100)
    assert messages(tail) == ["line 8", "line 9"]


def test_default_limit_is_ten_thousand_events(batchemu_server, logs_client):
    write_events(batchemu_server, lines(10_005), step=1)
    tail = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM)
    assert len(tail["events"]) == 10_000
    assert tail["events"][0]["message"] == "line 5" and tail["events"][-1]["message"] == "line 10004"


def test_a_response_holds_at_most_one_megabyte(batchemu_server, logs_client):
    big = [f"{i:04d}" + "x" * 100_000 for i in range(15)]
    write_events(batchemu_server, big)
    seen, token = [], None
    for _ in range(5):
        kwargs = {"nextToken": token} if token else {}
        response = logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, startFromHead=True,
                                              **kwargs)
        assert sum(len(m) + 26 for m in messages(response)) <= 1_048_576
        seen.extend(messages(response))
        if response["nextForwardToken"] == token:
            break
        token = response["nextForwardToken"]
    assert seen == big


def test_log_group_identifier_accepts_name_and_arn(batchemu_server, logs_client):
    write_events(batchemu_server, ["a"])
    arn = f"arn:aws:logs:{batchemu_server.config.region}:{batchemu_server.config.account_id}:log-group:{GROUP}"
    for identifier in (GROUP, arn, arn + ":*"):
        response = logs_client.get_log_events(logGroupIdentifier=identifier, logStreamName=STREAM)
        assert messages(response) == ["a"]
    with pytest.raises(ClientError) as excinfo:
        logs_client.get_log_events(logGroupName=GROUP, logGroupIdentifier=GROUP, logStreamName=STREAM)
    assert error_of(excinfo)[0] == "InvalidParameterException"


def test_unknown_group_and_stream_are_resource_not_found(batchemu_server, logs_client):
    write_events(batchemu_server, ["a"])
    with pytest.raises(ClientError) as excinfo:
        logs_client.get_log_events(logGroupName="/no/such/group", logStreamName=STREAM)
    assert error_of(excinfo) == ("ResourceNotFoundException", "The specified log group does not exist.")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as excinfo:
        logs_client.get_log_events(logGroupName=GROUP, logStreamName="no-such-stream")
    assert error_of(excinfo) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as excinfo:
        logs_client.describe_log_streams(logGroupName="/no/such/group")
    assert error_of(excinfo) == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(ClientError) as excinfo:
        logs_client.filter_log_events(logGroupName="/no/such/group")
    assert error_of(excinfo) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_garbage_token_is_invalid_parameter(batchemu_server, logs_client):
    write_events(batchemu_server, ["a"])
    huge_offset = base64.urlsafe_b64encode(json.dumps({"after": 10**30}).encode()).decode()
    huge_position = base64.urlsafe_b64encode(
        json.dumps({"newestFirst": False, "after": [10**30, 1]}).encode()).decode()
    calls = [
        lambda: logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, nextToken="not-a-token"),
        lambda: logs_client.get_log_events(logGroupName=GROUP, logStreamName=STREAM, nextToken="f/" + "9" * 56),
        lambda: logs_client.filter_log_events(logGroupName=GROUP, nextToken="not-a-token"),
        lambda: logs_client.filter_log_events(logGroupName=GROUP, nextToken=huge_position),
        lambda: logs_client.describe_log_streams(logGroupName=GROUP, nextToken=huge_offset),
        lambda: logs_client.describe_log_groups(nextToken="not-a-token"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo)[0] == "InvalidParameterException"


def test_get_log_events_has_no_boto3_paginator(logs_client):
    # botocore removed it because the unchanged end token is an error to its paginators; clients loop by hand.
    assert not logs_client.can_paginate("get_log_events")


# -- FilterLogEvents ---------------------------------------------------------------------------------------

@pytest.fixture
def two_jobs(batchemu_server):
    write_events(batchemu_server, ["ERROR disk full", "INFO started", "Internal Server Error here"],
                 stream="a/default/1", first_ts=BASE_TS)
    write_events(batchemu_server, ["WARN slow disk", "ERROR Exiting now", "DEBUG noise"],
                 stream="b/default/2", first_ts=BASE_TS + 5)
    write_events(batchemu_server, ["elsewhere ERROR"], group="/other/group", stream="c")
    return batchemu_server


def test_filter_returns_group_events_in_timestamp_order_with_their_stream(two_jobs, logs_client):
    response = logs_client.filter_log_events(logGroupName=GROUP)
    assert messages(response) == ["ERROR disk full", "WARN slow disk", "INFO started", "ERROR Exiting now",
                                  "Internal Server Error here", "DEBUG noise"]
    first = response["events"][0]
    assert first["logStreamName"] == "a/default/1"
    assert first["timestamp"] == BASE_TS
    assert first["ingestionTime"] == BASE_TS + 35
    assert len({e["eventId"] for e in response["events"]}) == 6
    assert "nextToken" not in response


FILTER_CASES = [
    ("", ["ERROR disk full", "WARN slow disk", "INFO started", "ERROR Exiting now", "Internal Server Error here",
          "DEBUG noise"]),
    ("ERROR", ["ERROR disk full", "ERROR Exiting now"]),
    ("ERROR disk", ["ERROR disk full"]),
    ("disk", ["ERROR disk full", "WARN slow disk"]),
    ('"Server Error"', ["Internal Server Error here"]),
    ('"Error here" Internal', ["Internal Server Error here"]),
    ("?WARN ?DEBUG", ["WARN slow disk", "DEBUG noise"]),
    ("ERROR -Exiting", ["ERROR disk full"]),
    ("error", []),
]


def test_filter_patterns(two_jobs, logs_client):
    for pattern, expected in FILTER_CASES:
        response = logs_client.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
        assert messages(response) == expected, pattern
    with pytest.raises(ClientError) as excinfo:
        logs_client.filter_log_events(logGroupName=GROUP, filterPattern='{ $.level = "ERROR" }')
    assert error_of(excinfo)[0] == "InvalidParameterException"


def test_filter_by_streams_and_time(two_jobs, logs_client):
    by_name = logs_client.filter_log_events(logGroupName=GROUP, logStreamNames=["b/default/2"])
    assert messages(by_name) == ["WARN slow disk", "ERROR Exiting now", "DEBUG noise"]
    by_prefix = logs_client.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="a/")
    assert {e["logStreamName"] for e in by_prefix["events"]} == {"a/default/1"}
    window = logs_client.filter_log_events(logGroupName=GROUP, startTime=BASE_TS + 5, endTime=BASE_TS + 15)
    assert messages(window) == ["WARN slow disk", "INFO started", "ERROR Exiting now"]
    with pytest.raises(ClientError) as excinfo:
        logs_client.filter_log_events(logGroupName=GROUP, logStreamNames=["a"], logStreamNamePrefix="a")
    assert error_of(excinfo)[0] == "InvalidParameterException"


def test_filter_newest_first(two_jobs, logs_client):
    response = logs_client.filter_log_events(logGroupName=GROUP, startFromHead=False, limit=2)
    assert messages(response) == ["DEBUG noise", "Internal Server Error here"]
    rest = logs_client.filter_log_events(logGroupName=GROUP, nextToken=response["nextToken"], limit=10)
    assert messages(rest) == ["ERROR Exiting now", "INFO started", "WARN slow disk", "ERROR disk full"]


def test_filter_paginator_collects_everything_and_terminates(batchemu_server, logs_client):
    write_events(batchemu_server, lines(23))
    pages = list(logs_client.get_paginator("filter_log_events").paginate(
        logGroupName=GROUP, PaginationConfig={"PageSize": 5}))
    assert [m for page in pages for m in messages(page)] == lines(23)
    assert len(pages) == 5
    assert "nextToken" not in pages[-1]


# -- DescribeLogGroups / DescribeLogStreams ----------------------------------------------------------------

def test_describe_log_groups(batchemu_server, logs_client):
    write_events(batchemu_server, ["abc", "défg"], created_at=BASE_TS - 500)
    write_events(batchemu_server, ["x"], stream="second", created_at=BASE_TS - 900)
    write_events(batchemu_server, ["y"], group="/custom/jobs", stream="s")
    write_events(batchemu_server, ["z"], group="/aws/batch/other", stream="s")
    groups = logs_client.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/batch/job", "/aws/batch/other", "/custom/jobs"]
    job_group = groups[0]
    region, account = batchemu_server.config.region, batchemu_server.config.account_id
    assert job_group["arn"] == f"arn:aws:logs:{region}:{account}:log-group:/aws/batch/job:*"
    assert job_group["logGroupArn"] == f"arn:aws:logs:{region}:{account}:log-group:/aws/batch/job"
    assert job_group["creationTime"] == BASE_TS - 900
    assert job_group["storedBytes"] == len("abc") + len("défg".encode()) + len("x")
    prefixed = logs_client.describe_log_groups(logGroupNamePrefix="/aws/batch/")["logGroups"]
    assert [g["logGroupName"] for g in prefixed] == ["/aws/batch/job", "/aws/batch/other"]
    pages = list(logs_client.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 1}))
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == [g["logGroupName"] for g in groups]


def test_describe_log_streams(batchemu_server, logs_client):
    write_events(batchemu_server, ["late"], stream="job-b", first_ts=BASE_TS + 500, created_at=BASE_TS)
    write_events(batchemu_server, ["early", "early 2"], stream="job-a", first_ts=BASE_TS, created_at=BASE_TS + 1)
    write_events(batchemu_server, ["middle"], stream="other-c", first_ts=BASE_TS + 100, created_at=BASE_TS + 2)
    streams = logs_client.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["job-a", "job-b", "other-c"]
    job_a = streams[0]
    region, account = batchemu_server.config.region, batchemu_server.config.account_id
    assert job_a["arn"] == f"arn:aws:logs:{region}:{account}:log-group:{GROUP}:log-stream:job-a"
    assert job_a["creationTime"] == BASE_TS + 1
    assert job_a["firstEventTimestamp"] == BASE_TS
    assert job_a["lastEventTimestamp"] == BASE_TS + 10
    assert job_a["lastIngestionTime"] == BASE_TS + 25
    prefixed = logs_client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job-", descending=True)
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == ["job-b", "job-a"]
    latest = logs_client.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in latest["logStreams"]] == ["job-b", "other-c", "job-a"]
    pages = list(logs_client.get_paginator("describe_log_streams").paginate(
        logGroupName=GROUP, PaginationConfig={"PageSize": 2}))
    assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == ["job-a", "job-b", "other-c"]
    with pytest.raises(ClientError) as excinfo:
        logs_client.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", logStreamNamePrefix="job")
    assert error_of(excinfo) == ("InvalidParameterException",
                                 "Cannot order by LastEventTime with a logStreamNamePrefix.")


# -- A job's own code writing to CloudWatch ----------------------------------------------------------------

def test_create_group_stream_and_put_events(batchemu_server, logs_client):
    logs_client.create_log_group(logGroupName="/my/app")
    assert [g["logGroupName"] for g in logs_client.describe_log_groups(logGroupNamePrefix="/my/")["logGroups"]] \
        == ["/my/app"]
    with pytest.raises(ClientError) as excinfo:
        logs_client.create_log_group(logGroupName="/my/app")
    assert error_of(excinfo)[0] == "ResourceAlreadyExistsException"
    logs_client.create_log_stream(logGroupName="/my/app", logStreamName="worker")
    with pytest.raises(ClientError) as excinfo:
        logs_client.create_log_stream(logGroupName="/my/app", logStreamName="worker")
    assert error_of(excinfo)[0] == "ResourceAlreadyExistsException"
    now = int(time.time() * 1000)
    put = logs_client.put_log_events(logGroupName="/my/app", logStreamName="worker", logEvents=[
        {"timestamp": now - 20 * 24 * 3600 * 1000, "message": "ancient"},
        {"timestamp": now, "message": "one"},
        {"timestamp": now + 1, "message": "two"}])
    assert put["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0}
    response = logs_client.get_log_events(logGroupName="/my/app", logStreamName="worker", startFromHead=True)
    assert messages(response) == ["one", "two"]
    assert response["events"][0]["timestamp"] == now
    with pytest.raises(ClientError) as excinfo:
        logs_client.put_log_events(logGroupName="/my/app", logStreamName="worker", logEvents=[
            {"timestamp": now + 5, "message": "b"}, {"timestamp": now, "message": "a"}])
    assert error_of(excinfo)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as excinfo:
        logs_client.create_log_stream(logGroupName="/nope", logStreamName="worker")
    assert error_of(excinfo) == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(ClientError) as excinfo:
        logs_client.put_log_events(logGroupName="/my/app", logStreamName="nope",
                                   logEvents=[{"timestamp": now, "message": "a"}])
    assert error_of(excinfo) == ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_operations_not_built_say_so(batchemu_server, logs_client):
    with pytest.raises(ClientError) as excinfo:
        logs_client.delete_log_group(logGroupName=GROUP)
    assert error_of(excinfo)[0] == "NotImplemented"
