"""Malformed requests on the raw wire: each answers a 4xx JSON error naming ClientException (the only
client error in Batch's model, API reference "Errors" of every operation), never a 500."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from conformance.harness import NotBuilt, error_code, is_not_built

covers = pytest.mark.covers


@pytest.fixture(scope="module")
def post(target):
    """POSTs raw bytes to a Batch route, signed with SigV4 like any SDK request."""
    session = target.session()
    credentials = session.get_credentials()
    base = target.endpoint_url or f"https://batch.{target.region}.amazonaws.com"

    def send(path: str, body: bytes | str, content_type: str = "application/json") -> requests.Response:
        data = body.encode() if isinstance(body, str) else body
        request = AWSRequest(method="POST", url=base + path, data=data, headers={"Content-Type": content_type})
        SigV4Auth(credentials, "batch", target.region).add_auth(request)
        return requests.post(base + path, data=data, headers=dict(request.headers), timeout=30)
    return send


def assert_client_error(response: requests.Response, mentions: str | None = None) -> dict:
    if is_not_built(response.status_code, dict(response.headers), response.content):
        raise NotBuilt(f"not built: {response.request.path_url} (HTTP {response.status_code})")
    assert response.status_code == 400, f"HTTP {response.status_code}: {response.text[:300]}"
    document = response.json()  # error responses have JSON bodies
    assert isinstance(document, dict) and isinstance(document.get("message"), str) and document["message"]
    assert error_code(response.status_code, dict(response.headers), response.content) == "ClientException"
    if mentions:
        assert mentions in document["message"], document["message"]
    return document


@covers("DescribeComputeEnvironments", "SubmitJob", group="errors")
@pytest.mark.parametrize("path, body", [
    ("/v1/describecomputeenvironments", b'{"computeEnvironments": ['),
    ("/v1/submitjob", b"{'jobName': 'single quotes'}"),
    ("/v1/submitjob", b'{"jobName": "x", "jobQueue": "q", "jobDefinition": "d"} trailing'),
    ("/v1/describejobs", b"\xff\xfe not utf-8"),
], ids=["truncated", "single-quotes", "trailing-garbage", "not-utf8"])
def test_malformed_json_is_a_client_error(post, path, body):
    assert_client_error(post(path, body))


@covers("DescribeJobs", "SubmitJob", "ListJobs", group="errors")
@pytest.mark.parametrize("path, body", [
    ("/v1/describejobs", "[]"),
    ("/v1/describejobs", '"jobs"'),
], ids=["array", "string"])
def test_a_body_that_is_not_an_object_is_a_client_error(post, path, body):
    assert_client_error(post(path, body))


@covers("DescribeJobs", "SubmitJob", "ListJobs", "DescribeComputeEnvironments", group="errors")
@pytest.mark.parametrize("path, body", [
    ("/v1/describejobs", {"jobs": "not-a-list"}),
    ("/v1/describejobs", {"jobs": [1, 2]}),
    ("/v1/describecomputeenvironments", {"maxResults": "ten"}),
    ("/v1/listjobs", {"jobQueue": "q", "jobStatus": "FINISHED"}),
    ("/v1/submitjob", {"jobName": "x", "jobQueue": "q", "jobDefinition": "d", "containerOverrides": []}),
    ("/v1/submitjob", {"jobName": "x", "jobQueue": "q", "jobDefinition": "d", "parameters": {"a": 1}}),
], ids=["string-for-list", "numbers-for-strings", "string-for-integer", "bad-enum", "list-for-structure",
        "number-in-string-map"])
def test_wrong_types_are_client_errors(post, path, body):
    assert_client_error(post(path, json.dumps(body)))


@covers("SubmitJob", "CreateJobQueue", group="errors")
@pytest.mark.parametrize("path, body, member", [
    ("/v1/submitjob", {"jobQueue": "q", "jobDefinition": "d"}, "jobName"),
    ("/v1/createjobqueue", {"jobQueueName": "q", "priority": 1}, "computeEnvironmentOrder"),
], ids=["submitjob-jobName", "createjobqueue-order"])
def test_missing_required_members_are_named(post, path, body, member):
    assert_client_error(post(path, json.dumps(body)), mentions=member)


@covers("SubmitJob", "CreateJobQueue", "UpdateComputeEnvironment", group="errors")
def test_unknown_names_are_client_errors(post, prefix, shared_env, jobdef):
    definition = jobdef()
    assert_client_error(post("/v1/submitjob", json.dumps(
        {"jobName": "x", "jobQueue": f"{prefix}-no-such-queue", "jobDefinition": definition["jobDefinitionArn"]})))
    assert_client_error(post("/v1/submitjob", json.dumps(
        {"jobName": "x", "jobQueue": shared_env.queue, "jobDefinition": f"{prefix}-no-such-definition"})))
    assert_client_error(post("/v1/createjobqueue", json.dumps(
        {"jobQueueName": f"{prefix}-q", "priority": 1,
         "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": f"{prefix}-no-such-ce"}]})))
    assert_client_error(post("/v1/updatecomputeenvironment", json.dumps(
        {"computeEnvironment": f"{prefix}-no-such-ce", "state": "DISABLED"})))


@covers("DescribeJobs", group="errors")
def test_deep_nesting_is_refused_not_a_crash(post):
    body = '{"jobs": ' + "[" * 5000 + "]" * 5000 + "}"
    response = post("/v1/describejobs", body)
    assert 400 <= response.status_code < 500, f"HTTP {response.status_code}"
    assert isinstance(response.json(), dict)


@covers(group="errors")
def test_unknown_route_is_a_json_4xx(post):
    response = post("/v1/nosuchoperation", "{}")
    assert 400 <= response.status_code < 500, f"HTTP {response.status_code}"
    assert response.headers.get("Content-Type", "").split(";")[0].endswith("json"), response.headers
    assert isinstance(response.json(), dict)
