"""Unit tests of the shape walker: they need no endpoint and run without --endpoint."""

from __future__ import annotations

import json

import botocore.session
import pytest

from conformance.shapes import check_response, validate

MODEL = botocore.session.get_session().get_service_model("batch")


def op(name: str):
    return MODEL.operation_model(name)


def good_job() -> dict:
    return {"jobArn": "arn:aws:batch:us-east-1:123456789012:job/abc", "jobName": "j", "jobId": "abc",
            "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q", "status": "RUNNING",
            "startedAt": 1700000000123, "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/d:1",
            "container": {"exitCode": 0, "command": ["echo", "hi"], "logStreamName": "d/default/x"},
            "parameters": {"a": "b"}, "dependsOn": []}


def describe_jobs(job: dict) -> list[str]:
    return check_response(op("DescribeJobs"), 200, json.dumps({"jobs": [job]}).encode())


def test_a_conforming_body_has_no_problems():
    assert describe_jobs(good_job()) == []


def test_unknown_keys_are_reported_with_their_path():
    job = good_job()
    job["container"]["bogus"] = 1
    problems = describe_jobs(job)
    assert len(problems) == 1
    assert "$.jobs[0].container" in problems[0] and "'bogus'" in problems[0]


def test_missing_required_member():
    job = good_job()
    del job["jobQueue"]
    assert any("required member 'jobQueue'" in p for p in describe_jobs(job))


@pytest.mark.parametrize("member, value, expected", [
    ("startedAt", 1700000000.5, "expected integer"),
    ("startedAt", "1700000000123", "expected integer"),
    ("startedAt", True, "expected integer"),
    ("jobName", 5, "expected string"),
    ("parameters", ["a"], "expected object"),
    ("dependsOn", {}, "expected array"),
    ("status", "FINISHED", "not one of"),
    ("jobName", None, "null"),
])
def test_wrong_types_and_enum_values(member, value, expected):
    job = good_job()
    job[member] = value
    problems = describe_jobs(job)
    assert len(problems) == 1 and expected in problems[0], problems


def test_long_out_of_range_and_integer_out_of_range():
    job = good_job()
    job["startedAt"] = 2**64
    job["container"]["exitCode"] = 2**31
    problems = describe_jobs(job)
    assert len(problems) == 2


def test_map_values_are_checked():
    job = good_job()
    job["parameters"] = {"a": 1}
    assert any("$.jobs[0].parameters['a']" in p for p in describe_jobs(job))


def test_top_level_not_an_object():
    assert validate(op("DescribeJobs").output_shape, []) == [
        "$: expected object (DescribeJobsResponse), got array"]


def test_error_bodies_must_be_json_objects_with_a_message():
    describe = op("DescribeJobs")
    assert check_response(describe, 400, b'{"__type": "ClientException", "message": "bad"}') == []
    assert check_response(describe, 400, b'{"Message": "bad"}') == []
    assert "not JSON" in check_response(describe, 500, b"<html>oops</html>")[0]
    assert "no string 'message'" in check_response(describe, 400, b'{"__type": "ClientException"}')[0]
    assert "not an object" in check_response(describe, 400, b"[]")[0]


def test_non_json_success_body_and_empty_body():
    assert "not JSON" in check_response(op("DescribeJobs"), 200, b"jobs")[0]
    # Delete operations answer 200 with an empty body: their output shape has no members.
    assert check_response(op("DeleteJobQueue"), 200, b"") == []
    assert any("required" in p for p in check_response(op("SubmitJob"), 200, b""))


def test_floats_accept_integers_but_not_strings():
    shape = MODEL.shape_for("ShareAttributes")
    assert validate(shape, {"shareIdentifier": "a", "weightFactor": 1}) == []
    assert validate(shape, {"shareIdentifier": "a", "weightFactor": 0.5}) == []
    assert "expected number" in validate(shape, {"shareIdentifier": "a", "weightFactor": "0.5"})[0]


def test_started_at_may_be_absent_as_aws_omits_it_before_a_job_runs():
    job = good_job()
    del job["startedAt"]
    assert describe_jobs(job) == []


def test_status_order_allows_retries_and_rejects_going_backwards():
    from conformance.harness import assert_status_order

    assert_status_order(["SUBMITTED", "RUNNABLE", "RUNNING", "SUCCEEDED"])
    assert_status_order(["SUBMITTED", "RUNNING", "RUNNABLE", "STARTING", "FAILED"], retries=True)
    assert_status_order(["SUBMITTED", "RUNNING", "STARTING", "FAILED"], retries=True)  # RUNNABLE missed
    for statuses, retries in ((["SUBMITTED", "RUNNING", "STARTING", "FAILED"], False),
                              (["RUNNABLE", "PENDING", "SUCCEEDED"], True),
                              (["RUNNING", "SUCCEEDED", "RUNNING"], True)):
        with pytest.raises(AssertionError):
            assert_status_order(statuses, retries=retries)
