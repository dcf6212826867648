"""Error answers over real HTTP: always JSON with `__type`, `message` and `x-amzn-ErrorType`, never a 500."""

from __future__ import annotations

import copy
import json
import random

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from batchemu.http.app import MAX_BODY
from batchemu.protocol.model import service_model
from batchemu.service import HANDLERS

MODEL = service_model("batch")
NOT_BUILT = sorted(set(MODEL.operation_names) - set(HANDLERS))
ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/no-such-queue"


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    """The JSON error body, after checking the status, content type, `__type` and `x-amzn-ErrorType`."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(("application/json", "application/x-amz-json-1.1"))
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert body["__type"] == response.headers["x-amzn-ErrorType"]
    if code is not None:
        assert body["__type"] == code
    return body


def post(server, operation: str, body: bytes | str, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}/v1/{operation}", data=body, timeout=30, **kwargs)


def unvalidated_client(server):
    """A boto3 client that sends whatever it is given, so the server's validation answers."""
    return boto3.client("batch", endpoint_url=server.url, region_name=server.config.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=BotoConfig(retries={"max_attempts": 1}, parameter_validation=False))


# --- malformed requests ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, fragment", [
    (b"{bad", "not valid JSON"),
    (b'{"jobName": NaN, "jobQueue": "q", "jobDefinition": "d"}', "not valid JSON"),
    (b'{"jobName": "\xff"}', "not valid UTF-8"),
    (b'["jobName", "jobQueue"]', "must be a JSON object"),
    (b"[" * 100_000, "nested too deeply"),
    *[(b'{"containerOverrides": {"environment": [{"name": ' + b"[" * depth + b"]" * depth + b"}]}}",
       "nested too deeply") for depth in range(880, 1000, 10)],
    (b'{"schedulingPriorityOverride": 1' + b"0" * 5000 + b"}", "not valid JSON"),
])
def test_malformed_bodies_answer_400_client_exception(batchemu_server, body, fragment):
    error = assert_error(post(batchemu_server, "submitjob", body), 400, "ClientException")
    assert fragment in error["message"]


@pytest.mark.parametrize("field, value, constraint", [
    ("schedulingPriorityOverride", "high", "Member must be an integer"),
    ("schedulingPriorityOverride", 2**31, "Member must be within"),
    ("jobName", 12, "Member must be a string"),
    ("parameters", ["a"], "Member must be a map"),
    ("propagateTags", "yes", "Member must be a boolean"),
])
def test_wrong_types_answer_400_naming_the_member(batchemu_server, field, value, constraint):
    body = json.dumps({"jobName": "n", "jobQueue": "q", "jobDefinition": "d", field: value})
    error = assert_error(post(batchemu_server, "submitjob", body), 400, "ClientException")
    assert f"at '{field}' failed to satisfy constraint: {constraint}" in error["message"]


def test_missing_required_members_answer_400_listing_them(batchemu_server):
    error = assert_error(post(batchemu_server, "registerjobdefinition", b""), 400, "ClientException")
    assert error["message"].startswith("2 validation errors detected: ")
    assert "'jobDefinitionName'" in error["message"] and "'type'" in error["message"]


def test_unknown_path_answers_404(batchemu_server):
    for path in ("/v1/nosuchoperation", "/nope", "/", "/v2/submitjob", "/v1/tags/"):
        error = assert_error(requests.post(batchemu_server.url + path, data=b"{}", timeout=30), 404,
                             "UnknownOperationException")
        assert path in error["message"]


def test_wrong_method_answers_405(batchemu_server):
    for method, path in (("GET", "/v1/submitjob"), ("PUT", "/v1/describejobs"), ("PUT", f"/v1/tags/{ARN}"),
                         ("PATCH", f"/v1/tags/{ARN}")):
        error = assert_error(requests.request(method, batchemu_server.url + path, timeout=30), 405,
                             "MethodNotAllowedException")
        assert method in error["message"]


def test_body_over_8_mib_answers_413(batchemu_server):
    body = b'{"jobs": ["' + b"x" * MAX_BODY + b'"]}'
    assert_error(post(batchemu_server, "describejobs", body), 413, "RequestEntityTooLargeException")


def test_chunked_body_over_8_mib_answers_413_not_a_truncated_parse(batchemu_server):
    def chunks(total: int):
        yield b'{"jobName": "'
        sent = 13
        while sent < total:
            size = min(1024 * 1024, total - sent)
            yield b"x" * size
            sent += size
    assert_error(post(batchemu_server, "submitjob", chunks(MAX_BODY + 1)), 413, "RequestEntityTooLargeException")


@pytest.mark.parametrize("chunked", [False, True])
def test_body_of_exactly_8_mib_is_read_and_validated(batchemu_server, chunked):
    start = b'{"jobName": "n", "jobQueue": "q"}'
    body = start + b" " * (MAX_BODY - len(start))
    data = iter([body[:1000], body[1000:]]) if chunked else body
    error = assert_error(post(batchemu_server, "submitjob", data), 400, "ClientException")
    assert "Value null at 'jobDefinition'" in error["message"]


def test_unknown_json_target_answers_unknown_operation(batchemu_server):
    for target in ("Nope_20200101.DoIt", "Logs_20140328.NoSuchOperation", "Logs_20140328", "."):
        response = requests.post(batchemu_server.url + "/", data=b"{}", timeout=30,
                                 headers={"X-Amz-Target": target,
                                          "Content-Type": "application/x-amz-json-1.1"})
        error = assert_error(response, 400, "UnknownOperationException")
        assert target in error["message"]


# --- operations of the model ----------------------------------------------------------------------------

def test_every_operation_of_the_model_has_a_handler():
    """botocore's batch model is the list of operations: each one is answered, none with 501 NotImplemented."""
    assert NOT_BUILT == []


# --- boto3's view of validation errors --------------------------------------------------------------

@pytest.mark.parametrize("call, kwargs, fragment", [
    ("submit_job", {"jobName": "n", "jobQueue": "q", "jobDefinition": "d", "schedulingPriorityOverride": "x"},
     "'schedulingPriorityOverride'"),
    ("submit_job", {"jobName": "n", "jobQueue": "q"}, "Value null at 'jobDefinition'"),
    ("create_compute_environment", {"computeEnvironmentName": "ce", "type": "FARGATE"},
     "Member must satisfy enum value set: [MANAGED, UNMANAGED]"),
    ("tag_resource", {"resourceArn": ARN, "tags": {"k" * 129: "v"}}, "'tags.key'"),
    ("untag_resource", {"resourceArn": ARN, "tagKeys": []}, "Value null at 'tagKeys'"),
    ("describe_jobs", {"jobs": ["a", 1]}, "at 'jobs.2' failed to satisfy constraint: Member must be a string"),
])
def test_boto3_sees_validation_errors_as_client_exception(batchemu_server, call, kwargs, fragment):
    client = unvalidated_client(batchemu_server)
    with pytest.raises(ClientError) as info:
        getattr(client, call)(**kwargs)
    response = info.value.response
    assert response["Error"]["Code"] == "ClientException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in response["Error"]["Message"]


# --- health ----------------------------------------------------------------------------------------

def test_health_reports_version_state_and_docker(batchemu_server):
    from batchemu import __version__
    response = requests.get(batchemu_server.url + "/_batchemu/health", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    health = response.json()
    assert health["version"] == __version__
    assert health["state"] == ":memory:"
    assert isinstance(health["docker"]["reachable"], bool)
    assert isinstance(health["docker"]["detail"], str)


# --- odd ARNs in the tags path ---------------------------------------------------------------------

ODD_ARNS = [
    "arn%3Aaws%3Abatch%3Aus-east-1%3A123456789012%3Ajob-queue%2Fq",
    "arn%253Aaws%253Abatch%252Fq",
    "arn:aws:batch:us-east-1:123456789012:job-queue//q",
    "arn:aws:batch:us-east-1:123456789012:job-queue/q/",
    "/arn:aws:batch:us-east-1:123456789012:job-queue/q",
    "//",
    "%2F",
    "%00",
    "%FF%FE",
    "%C3%BC%E2%82%AC%F0%9F%98%80",
    "arn:aws:batch:us-east-1:123456789012:job-queue/ü€😀",
    "arn:aws:batch:us-east-1:123456789012:job-queue/" + "q" * 20_000,
    "a?b=c",
    "a#frag",
    "..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("arn", ODD_ARNS)
def test_odd_arns_in_the_tags_path_are_never_a_server_error(batchemu_server, arn):
    url = f"{batchemu_server.url}/v1/tags/{arn}"
    for method, kwargs in (("GET", {}), ("POST", {"json": {"tags": {"a": "b"}}}),
                           ("DELETE", {"params": {"tagKeys": ["a"]}})):
        response = requests.request(method, url, timeout=30, **kwargs)
        assert response.status_code < 500, (method, response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert_error(response, response.status_code)


def test_empty_arn_in_the_tags_path_is_404(batchemu_server):
    for method in ("GET", "POST", "DELETE"):
        assert_error(requests.request(method, f"{batchemu_server.url}/v1/tags/", timeout=30), 404)


def test_request_line_over_64_kib_answers_a_json_client_error(batchemu_server):
    response = requests.get(f"{batchemu_server.url}/v1/tags/{'a' * 70_000}", timeout=30)
    assert response.status_code in (400, 414)
    assert_error(response, response.status_code)


def test_tags_of_an_unknown_but_well_formed_arn_never_fail_validation(batchemu_server):
    # Validation passes, so whatever the handler says, the request was not rejected as malformed.
    response = requests.get(f"{batchemu_server.url}/v1/tags/{ARN}", timeout=30)
    assert response.status_code < 500 or response.status_code == 501
    if response.status_code == 400:
        assert "validation error" not in assert_error(response, 400)["message"]


# --- fuzz ------------------------------------------------------------------------------------------

SEEDS = {
    "submitjob": {"jobName": "fuzz", "jobQueue": "fuzz-no-such-queue", "jobDefinition": "fuzz-no-such-jd:1",
                  "parameters": {"a": "b"}, "dependsOn": [{"jobId": "x", "type": "SEQUENTIAL"}],
                  "containerOverrides": {"command": ["true"], "environment": [{"name": "A", "value": "1"}],
                                         "resourceRequirements": [{"type": "VCPU", "value": "1"}]},
                  "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "RETRY"}]},
                  "timeout": {"attemptDurationSeconds": 60}, "tags": {"k": "v"}},
    "registerjobdefinition": {"jobDefinitionName": "fuzz-jd", "type": "container",
                              "containerProperties": {"image": "fuzz/none:0", "command": ["true"],
                                                      "resourceRequirements": [
                                                          {"type": "VCPU", "value": "1"},
                                                          {"type": "MEMORY", "value": "64"}]},
                              "retryStrategy": {"attempts": 1}, "parameters": {"p": "v"}},
    "createcomputeenvironment": {"computeEnvironmentName": "fuzz-ce", "type": "MANAGED", "state": "DISABLED",
                                 "computeResources": {"type": "EC2", "maxvCpus": 2, "minvCpus": 0,
                                                      "subnets": ["s"], "securityGroupIds": ["g"],
                                                      "instanceTypes": ["optimal"]}},
    "describejobs": {"jobs": ["a", "b:1", "c#0"]},
    "listjobs": {"jobQueue": "fuzz-no-such-queue", "jobStatus": "RUNNING", "maxResults": 10,
                 "filters": [{"name": "JOB_NAME", "values": ["x*"]}]},
    "createserviceenvironment": {"serviceEnvironmentName": "fuzz-se",
                                 "serviceEnvironmentType": "SAGEMAKER_TRAINING",
                                 "capacityLimits": [{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}]},
}
OPERATION_OF = {op.lower(): op for op in MODEL.operation_names}
ODD_VALUES = [None, True, False, 0, -1, 2**31, -(2**63), 2**64, 1.5, -0.0, 1e308, "", " ", "x" * 300,
              "ü\u0000\u202e", "\ud800", "*", "%s%n", "../", [], {}, [[[[]]]], {"a": {"b": {}}}, [None], {"": None}]


def _mutate_value(rng: random.Random, document):
    """Replace, delete or add one member somewhere inside `document` (in place)."""
    containers = []
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, (dict, list)) and item:
            containers.append(item)
            pending.extend(item.values() if isinstance(item, dict) else item)
    target = rng.choice(containers) if containers else document
    if isinstance(target, dict):
        action = rng.random()
        if action < 0.2 and target:
            del target[rng.choice(list(target))]
        elif action < 0.3:
            target[rng.choice(["extra", "jobName", "type", "", "__proto__"])] = rng.choice(ODD_VALUES)
        elif target:
            target[rng.choice(list(target))] = copy.deepcopy(rng.choice(ODD_VALUES))
    elif isinstance(target, list):
        target[rng.randrange(len(target))] = copy.deepcopy(rng.choice(ODD_VALUES))
    return document


def _mutate_bytes(rng: random.Random, body: bytes) -> bytes:
    position = rng.randrange(len(body) + 1)
    action = rng.randrange(4)
    if action == 0:
        return body[:position]
    if action == 1:
        return body[:position] + bytes([rng.randrange(256)]) + body[position:]
    if action == 2:
        return body[:position] + body[position + 1:]
    return body[:position] + rng.choice([b"{", b"]", b'"', b"\\", b"\\u", b"-", b"1e9999", b"\x00"]) + body[position:]


def test_fuzzed_bodies_never_cause_a_server_error(batchemu_server):
    rng = random.Random(20240601)
    session = requests.Session()
    failures = []
    for i in range(400):
        operation = rng.choice(sorted(SEEDS))
        document = copy.deepcopy(SEEDS[operation])
        for _ in range(rng.randint(1, 3)):
            document = _mutate_value(rng, document)
        body = json.dumps(document).encode("utf-8", "surrogatepass")
        if rng.random() < 0.3:
            body = _mutate_bytes(rng, body)
        response = session.post(f"{batchemu_server.url}/v1/{operation}", data=body, timeout=30)
        allowed = response.status_code < 500 or (response.status_code == 501
                                                 and OPERATION_OF[operation] in NOT_BUILT)
        if not allowed:
            failures.append((i, operation, body[:300], response.status_code, response.text[:300]))
        elif response.status_code >= 400:
            assert_error(response, response.status_code)
    assert not failures, failures[:5]


def test_fuzzed_tag_requests_never_cause_a_server_error(batchemu_server):
    rng = random.Random(7)
    session = requests.Session()
    alphabet = ["a", ":", "/", "%2F", "%25", "%00", "ü", "%FF", "?", "&", "=", " ", "..", "*", "#"]
    for _ in range(120):
        arn = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        keys = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(0, 3))]
        document = _mutate_value(rng, {"tags": {"k": "v", "team": "x"}})
        for method, kwargs in (("GET", {}), ("POST", {"data": json.dumps(document)}),
                               ("DELETE", {"params": {"tagKeys": keys}})):
            response = session.request(method, f"{batchemu_server.url}/v1/tags/{arn}", timeout=30, **kwargs)
            assert response.status_code < 500, (method, arn, keys, response.status_code, response.text[:300])
            if response.status_code >= 400:
                assert_error(response, response.status_code)


# --- requests cheroot answers itself, odd methods, truncated bodies ------------------------------------

def raw_exchange(server, data: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, half-close, and read the first response: (status, lower-cased headers, body)."""
    import socket
    with socket.create_connection((server.config.host, server.config.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    if head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    length = int(headers.get("content-length", len(body)))
    return int(lines[0].split()[1]), headers, body[:length]


def assert_raw_error(status: int, headers: dict, body: bytes, expected: int) -> dict:
    assert status == expected, (status, body[:300])
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)
    assert error["__type"] == headers["x-amzn-errortype"] and error["message"]
    return error


HOST = b"Host: localhost\r\nConnection: close\r\n"
RAW_REQUESTS = [
    ("lower-case method", b"get /v1/submitjob HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("lower-case post", b"post /v1/describejobs HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\n{}", 400),
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    ("no request line", b"GARBAGE\r\n\r\n", 400),
    ("empty request line", b"\r\n\r\n", 400),
    ("HTTP/2.0 over a plain connection", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 400),
    ("absolute URI", b"GET http://x/v1/submitjob HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("non-numeric Content-Length", b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n{}",
     400),
    ("negative Content-Length", b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Content-Length: -5\r\n\r\n{}",
     400),
    ("unknown Transfer-Encoding", b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
     400),
    ("bad chunk size", b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}",
     400),
    ("truncated chunk", b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n10\r\n{}",
     400),
    ("header line without colon", b"GET /v1/x HTTP/1.1\r\n" + HOST + b"NoColon\r\n\r\n", 400),
    ("bare LF line ends", b"GET /v1/x HTTP/1.1\nHost: x\nConnection: close\n\n", 400),
    ("non-ASCII request target", b"GET /v1/\xff\xfe HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("request target without a slash", b"GET v1/x HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("TRACE", b"TRACE /v1/submitjob HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    ("OPTIONS", b"OPTIONS /v1/submitjob HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    ("unknown method, unknown path", b"FOO /nowhere HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    ("unknown method, known path", b"PROPFIND /v1/tags/x HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    ("body shorter than Content-Length",
     b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\n{}", 400),
    ("Content-Length beyond any limit",
     b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999999999999999\r\n\r\n{}", 413),
]


@pytest.mark.parametrize("name, data, status", RAW_REQUESTS, ids=[case[0] for case in RAW_REQUESTS])
def test_requests_refused_before_any_operation_answer_json_errors(batchemu_server, name, data, status):
    assert_raw_error(*raw_exchange(batchemu_server, data), status)


def test_truncated_body_is_named_as_such(batchemu_server):
    data = b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\n{}"
    error = assert_raw_error(*raw_exchange(batchemu_server, data), 400)
    assert error["message"] == "Request body ended after 2 of 100 bytes (Content-Length)"


def test_server_answers_normally_after_malformed_requests(batchemu_server):
    for _, data, _ in RAW_REQUESTS:
        raw_exchange(batchemu_server, data)
    assert requests.post(f"{batchemu_server.url}/v1/describejobqueues", json={}, timeout=30).status_code == 200


# --- request size quotas --------------------------------------------------------------------------------

def test_submit_job_over_30_kib_is_refused_with_aws_text(batchemu_server):
    start = json.dumps({"jobName": "big", "jobQueue": "q", "jobDefinition": "d", "parameters": {"p": ""}})
    body = start.replace('""', '"' + "x" * (47 * 1024 - len(start)) + '"')
    assert len(body) == 47 * 1024
    error = assert_error(post(batchemu_server, "submitjob", body), 400, "ClientException")
    assert error["message"] == "Job size must be less than 30 KiB, got 47 KiB"


def test_submit_job_of_30_kib_passes_the_size_check(batchemu_server):
    start = json.dumps({"jobName": "n", "jobQueue": "no-such-queue", "jobDefinition": "d"})
    body = start + " " * (30 * 1024 - len(start))
    error = assert_error(post(batchemu_server, "submitjob", body), 400, "ClientException")
    assert "no-such-queue" in error["message"]


def test_register_job_definition_over_24_kib_is_refused(batchemu_server):
    body = json.dumps({"jobDefinitionName": "big", "type": "container",
                       "parameters": {"p": "x" * 25 * 1024}})
    error = assert_error(post(batchemu_server, "registerjobdefinition", body), 400, "ClientException")
    assert error["message"] == "Job definition size must be less than 24 KiB, got 26 KiB"


# --- environment variables without a name ---------------------------------------------------------------

def test_environment_override_without_name_is_a_client_exception(batch_client, queue):
    from tests.conftest import client_error, register
    definition = register(batch_client)
    message = client_error(batch_client.submit_job, jobName="n", jobQueue=queue["name"],
                           jobDefinition=definition["jobDefinitionArn"],
                           containerOverrides={"environment": [{"name": "A", "value": "1"}, {"value": "2"}]})
    assert message == "containerOverrides.environment[2] has no name: every environment variable needs a name"


def test_job_definition_environment_without_name_is_a_client_exception(batch_client):
    from tests.conftest import client_error, unique
    message = client_error(batch_client.register_job_definition, jobDefinitionName=unique("jd"), type="container",
                           containerProperties={"image": "x", "resourceRequirements": [
                               {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
                               "environment": [{"name": "", "value": "1"}]})
    assert "containerProperties.environment[1] has no name" in message


def test_unread_body_with_a_content_length_beyond_2_63_still_gets_an_answer(batchemu_server):
    """cheroot drained the unread body of a 404 to keep the connection, and that read overflowed."""
    data = (b"POST /v1/listtagsforresource HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Length: 99999999999999999999\r\n\r\n{}")
    error = assert_raw_error(*raw_exchange(batchemu_server, data), 404)
    assert error["__type"] == "UnknownOperationException"


def test_an_uncaught_error_in_an_operation_is_a_json_500_and_the_server_goes_on(batchemu_server, monkeypatch):
    def broken(ctx, params):
        raise RuntimeError("a bug")
    monkeypatch.setitem(HANDLERS, "DescribeJobQueues", broken)
    error = assert_error(post(batchemu_server, "describejobqueues", b"{}"), 500, "ServerException")
    assert error["message"] == "Internal error (RuntimeError)"
    assert post(batchemu_server, "describejobs", b'{"jobs": []}').json() == {"jobs": []}
