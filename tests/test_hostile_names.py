"""Names and tag values a user chose, however odd, are data: they round-trip exactly, never act as SQL or as
wildcards in prefix filters, and never reach the filesystem."""

from __future__ import annotations

import time

import pytest

from tests.conftest import make_queue, register, unique

# Quotes, LIKE/GLOB wildcards, escapes, path traversal, SQL, unicode (no NUL: no AWS name admits one).
HOSTILE = ["it's", 'say "hi"', "100%", "a_b", "back\\slash", "../../etc/passwd", "'; DROP TABLE jobs; --",
           "\" OR 1=1 --", "[abc]?", "émoji 🚀 名前", "tab\there", "%_%", "*"]
STREAM_SAFE = [name for name in HOSTILE if ":" not in name and "*" not in name]  # the model forbids : and *


def test_log_group_and_stream_names_round_trip_exactly(logs_client):
    now = int(time.time() * 1000)
    for index, group in enumerate(HOSTILE):
        logs_client.create_log_group(logGroupName=group)
        stream = STREAM_SAFE[index % len(STREAM_SAFE)]
        logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
        logs_client.put_log_events(logGroupName=group, logStreamName=stream,
                                   logEvents=[{"timestamp": now, "message": f"{group} / {stream}"}])
    groups = [g["logGroupName"] for g in logs_client.describe_log_groups(limit=50)["logGroups"]]
    assert sorted(groups) == sorted(HOSTILE)
    for index, group in enumerate(HOSTILE):
        stream = STREAM_SAFE[index % len(STREAM_SAFE)]
        described = logs_client.describe_log_streams(logGroupName=group)["logStreams"]
        assert [s["logStreamName"] for s in described] == [stream]
        events = logs_client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
        assert [e["message"] for e in events] == [f"{group} / {stream}"]
        found = logs_client.filter_log_events(logGroupName=group, logStreamNames=[stream])["events"]
        assert [(e["logStreamName"], e["message"]) for e in found] == [(stream, f"{group} / {stream}")]


@pytest.mark.parametrize("prefix, expected", [
    ("a_", ["a_b"]), ("a%", ["a%c"]), ("%", ["%x"]), ("_", ["_y"]), ("a\\", ["a\\d"]), ("A", []),
    ("'", ["' OR ''='"]), ("a", ["a%c", "a\\d", "a_b", "abc"]),
])
def test_stream_name_prefixes_match_literally(logs_client, prefix, expected):
    group = unique("prefix-group")
    logs_client.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for stream in ["a_b", "abc", "a%c", "a\\d", "%x", "_y", "' OR ''='", "zzz"]:
        logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
        logs_client.put_log_events(logGroupName=group, logStreamName=stream,
                                   logEvents=[{"timestamp": now, "message": stream}])
    described = logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
    assert sorted(s["logStreamName"] for s in described) == sorted(expected)
    found = logs_client.filter_log_events(logGroupName=group, logStreamNamePrefix=prefix)["events"]
    assert sorted(e["logStreamName"] for e in found) == sorted(expected)


def test_log_group_prefix_and_pattern_match_literally(logs_client):
    for group in ["team_a", "teamXa", "team%b", "teamYb", "TEAM_a"]:
        logs_client.create_log_group(logGroupName=group)

    def names(**kwargs):
        return sorted(g["logGroupName"] for g in logs_client.describe_log_groups(**kwargs)["logGroups"])
    assert names(logGroupNamePrefix="team_") == ["team_a"]
    assert names(logGroupNamePrefix="team%") == ["team%b"]
    assert names(logGroupNamePattern="m_") == ["team_a"]
    assert names(logGroupNamePattern="%") == ["team%b"]
    assert names(logGroupNamePrefix="team") == ["team%b", "teamXa", "teamYb", "team_a"]


def test_filter_terms_are_substrings_not_wildcards(logs_client):
    group, stream = unique("terms"), "s"
    logs_client.create_log_group(logGroupName=group)
    logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    lines = ["100% done", "1000 done", "a_b", "axb", "it's", "'; DROP TABLE log_events; --"]
    logs_client.put_log_events(logGroupName=group, logStreamName=stream,
                               logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])

    def matching(pattern):
        return [e["message"] for e in logs_client.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]]
    assert matching('"0%"') == ["100% done"]
    assert matching("a_b") == ["a_b"]
    assert matching("it's") == ["it's"]
    assert matching('"DROP TABLE"') == ["'; DROP TABLE log_events; --"]
    assert len(matching("")) == len(lines)  # the table is still there, every line in it


def test_tag_keys_and_values_round_trip_exactly(batch_client):
    tags = {f"k{i} {value}"[:128]: value for i, value in enumerate(HOSTILE)}
    arn = batch_client.create_scheduling_policy(name=unique("tags"), tags=tags)["arn"]
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == tags
    extra = {"%": "_", "_": "%", "../x": "\\", "&key=value": "#fragment?q=1"}
    batch_client.tag_resource(resourceArn=arn, tags=extra)  # path-carried ARN, JSON-carried tags
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {**tags, **extra}
    # Keys travel in the query string here: '&', '=', '%' and '#' must not split or end it.
    batch_client.untag_resource(resourceArn=arn, tagKeys=["%", "&key=value", *list(tags)[:5]])
    assert batch_client.list_tags_for_resource(resourceArn=arn)["tags"] == {
        **{k: v for k, v in tags.items() if k not in list(tags)[:5]}, "_": "%", "../x": "\\"}
    policies = batch_client.list_scheduling_policies()["schedulingPolicies"]
    assert [p["arn"] for p in policies] == [arn]  # nothing else appeared, nothing vanished


def test_job_name_filters_match_underscore_and_percent_literally(batch_client, batchemu_server):
    batchemu_server.executor.status = lambda: (False, "engine held away by the test")  # jobs stay RUNNABLE
    queue = make_queue(batch_client)
    definition = register(batch_client, ["true"])["jobDefinitionArn"]
    for name in ["job_1", "jobX1", "jobs"]:
        batch_client.submit_job(jobName=name, jobQueue=queue["name"], jobDefinition=definition)

    def listed(value):
        jobs = batch_client.list_jobs(jobQueue=queue["name"], filters=[{"name": "JOB_NAME", "values": [value]}])
        return sorted(j["jobName"] for j in jobs["jobSummaryList"])
    assert listed("job_1") == ["job_1"]
    assert listed("job_*") == ["job_1"]
    assert listed("job*") == ["jobX1", "job_1", "jobs"]
    assert listed("%") == []
