"""The protocol layer against botocore itself: routing, parsing, validation and serialization (no server)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.awsrequest import prepare_request_dict
from botocore.model import Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from batchemu.errors import ClientException
from batchemu.protocol.model import RestRouter, service_model
from batchemu.protocol.parser import load_json_object, parse_rest_json, validate
from batchemu.protocol.serializer import serialize, shape_value

MODEL = service_model("batch")
ROUTER = RestRouter(MODEL)
OPERATIONS = sorted(MODEL.operation_names)
ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/team/my-queue:1"


def example(shape: Shape, path: str = "", depth: int = 0):
    """A type-correct value for `shape` that fills every member (only required ones beyond depth 3)."""
    kind = shape.type_name
    if kind == "structure":
        names = shape.members if depth < 3 else shape.required_members
        return {name: example(shape.members[name], f"{path}.{name}", depth + 1) for name in names}
    if kind == "list":
        count = max(2, shape.metadata.get("min", 0))
        return [example(shape.member, f"{path}[{i}]", depth + 1) for i in range(count)]
    if kind == "map":
        return {example(shape.key, f"{path}.k{i}", depth + 1): example(shape.value, f"{path}.v{i}", depth + 1)
                for i in range(2)}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        low, high = shape.metadata.get("min", 1), shape.metadata.get("max", 256)
        text = (path.strip(".").replace("[", "-").replace("]", "") or "s") + "-é/:"
        text = (text * (low // len(text) + 1))[:high]
        return text
    if kind in ("integer", "long"):
        value = 1_700_000_000_123 if kind == "long" else 7
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None:
            value = min(value, high)
        if low is not None:
            value = max(value, low)
        return value
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return True
    raise AssertionError(f"no example for {kind} at {path}")


def wsgi_request(op_name: str, params: dict) -> Request:
    """The request botocore sends for `params`, as a WSGI server hands it to Flask."""
    op = MODEL.operation_model(op_name)
    serialized = create_serializer("rest-json").serialize_to_request(params, op)
    prepare_request_dict(serialized, endpoint_url="http://127.0.0.1:1")
    body = serialized["body"]
    environ = EnvironBuilder(method=serialized["method"], base_url="http://127.0.0.1:1",
                             path=serialized["url"].split("127.0.0.1:1", 1)[1],
                             data=body if isinstance(body, bytes) else body.encode()).get_environ()
    return Request(environ)


def read_back(op_name: str, params: dict) -> dict:
    request = wsgi_request(op_name, params)
    matched = ROUTER.match(request.method, request.path)
    assert matched is not None, f"{request.method} {request.path} is not routed"
    op, labels = matched
    assert op.name == op_name
    return parse_rest_json(op, request.get_data(), labels, request.args.to_dict(flat=False))


def parse_error(op_name: str, params: dict) -> str:
    op = MODEL.operation_model(op_name)
    with pytest.raises(ClientException) as info:
        parse_rest_json(op, json.dumps(params).encode(), {}, {})
    assert info.value.status == 400 and info.value.code == "ClientException"
    return info.value.message


# --- request round trip ---------------------------------------------------------------------------------

def test_model_has_all_48_operations():
    assert len(OPERATIONS) == 48


@pytest.mark.parametrize("op_name", OPERATIONS)
def test_generated_request_round_trips_through_botocore(op_name):
    op = MODEL.operation_model(op_name)
    params = example(op.input_shape) if op.input_shape is not None else {}
    assert read_back(op_name, params) == params


@pytest.mark.parametrize("op_name", OPERATIONS)
def test_request_with_only_required_members_round_trips(op_name):
    op = MODEL.operation_model(op_name)
    shape = op.input_shape
    params = {name: example(shape.members[name], name, 1) for name in shape.required_members} if shape else {}
    assert read_back(op_name, params) == params


def test_submit_job_with_nested_overrides_round_trips():
    params = {
        "jobName": "nightly-1", "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
        "jobDefinition": "jd:3", "shareIdentifier": "A1", "schedulingPriorityOverride": 9,
        "arrayProperties": {"size": 10}, "dependsOn": [{"jobId": "abc", "type": "N_TO_N"}],
        "parameters": {"input": "s3://bucket/key with spaces", "ünï": "çødé", "empty": ""},
        "containerOverrides": {
            "command": ["sh", "-c", "echo \"$X\" && exit 3"],
            "environment": [{"name": "X", "value": "1"}, {"name": "Y", "value": ""}],
            "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"},
                                     {"type": "GPU", "value": "1"}],
            "instanceType": "m5.large",
        },
        "retryStrategy": {"attempts": 3, "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onExitCode": "1*", "action": "EXIT"}]},
        "timeout": {"attemptDurationSeconds": 60}, "propagateTags": True,
        "tags": {"team": "x", "a:b/c": "d=e"},
    }
    assert read_back("SubmitJob", params) == params


def test_register_job_definition_with_every_property_family_round_trips():
    container = {"image": "busybox", "command": ["true"], "jobRoleArn": "arn:aws:iam::1:role/r",
                 "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
                 "linuxParameters": {"devices": [{"hostPath": "/dev/x", "permissions": ["READ"]}],
                                     "initProcessEnabled": True, "sharedMemorySize": 64,
                                     "tmpfs": [{"containerPath": "/t", "size": 8, "mountOptions": ["rw"]}]},
                 "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/g"}},
                 "volumes": [{"name": "v", "host": {"sourcePath": "/data"}}],
                 "mountPoints": [{"containerPath": "/d", "sourceVolume": "v", "readOnly": False}],
                 "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]}
    params = {
        "jobDefinitionName": "jd", "type": "multinode", "parameters": {"p": "1"},
        "containerProperties": container,
        "nodeProperties": {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0:1", "container": container}]},
        "eksProperties": {"podProperties": {"hostNetwork": False, "containers": [
            {"name": "c", "image": "busybox", "args": ["a"],
             "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
            "metadata": {"labels": {"app": "x"}}}},
        "platformCapabilities": ["EC2"], "schedulingPriority": 5, "retryStrategy": {"attempts": 2},
        "timeout": {"attemptDurationSeconds": 120}, "tags": {"k": "v"},
    }
    assert read_back("RegisterJobDefinition", params) == params


def test_create_compute_environment_with_compute_resources_round_trips():
    params = {"computeEnvironmentName": "ce", "type": "MANAGED", "state": "ENABLED",
              "computeResources": {"type": "SPOT", "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED",
                                   "minvCpus": 0, "maxvCpus": 256, "desiredvCpus": 4,
                                   "instanceTypes": ["optimal", "c5.xlarge"], "subnets": ["subnet-1"],
                                   "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole",
                                   "bidPercentage": 60, "tags": {"Name": "worker"},
                                   "launchTemplate": {"launchTemplateName": "lt", "version": "$Latest"},
                                   "ec2Configuration": [{"imageType": "ECS_AL2"}]},
              "serviceRole": "arn:aws:iam::1:role/service-role/AWSBatchServiceRole",
              "tags": {"env": "dev"}}
    assert read_back("CreateComputeEnvironment", params) == params


@pytest.mark.parametrize("arn", [ARN, "arn:aws:batch:eu-west-1:1:job/0f1e-2d3c", "x/y//z", "a b%2Fc?d#e",
                                 "arn:aws:batch:us-east-1:1:job-definition/ünï:1", "a+b=c&d;e"])
def test_tag_operations_carry_arns_with_slashes_and_colons(arn):
    assert read_back("TagResource", {"resourceArn": arn, "tags": {"a": "1", "b:c/d": ""}}) == {
        "resourceArn": arn, "tags": {"a": "1", "b:c/d": ""}}
    assert read_back("ListTagsForResource", {"resourceArn": arn}) == {"resourceArn": arn}
    keys = ["a", "b:c/d", "with space", "x&y=z", "ünï", "a+b", "%41"]
    assert read_back("UntagResource", {"resourceArn": arn, "tagKeys": keys}) == {
        "resourceArn": arn, "tagKeys": keys}


def test_tag_routes_use_the_method_to_pick_the_operation():
    assert ROUTER.match("GET", f"/v1/tags/{ARN}")[0].name == "ListTagsForResource"
    assert ROUTER.match("POST", f"/v1/tags/{ARN}")[0].name == "TagResource"
    op, labels = ROUTER.match("DELETE", f"/v1/tags/{ARN}")
    assert (op.name, labels) == ("UntagResource", {"resourceArn": ARN})
    assert ROUTER.match("GET", "/v1/tags/") is None
    assert ROUTER.match("PUT", f"/v1/tags/{ARN}") is None
    assert ROUTER.allowed_methods(f"/v1/tags/{ARN}") == {"GET", "POST", "DELETE"}


def test_literal_routes_ignore_case_and_trailing_slash_but_not_method():
    assert ROUTER.match("POST", "/v1/SubmitJob/")[0].name == "SubmitJob"
    assert ROUTER.match("GET", "/v1/submitjob") is None
    assert ROUTER.allowed_methods("/v1/submitjob") == {"POST"}
    assert ROUTER.match("POST", "/v1/nosuchoperation") is None
    assert ROUTER.allowed_methods("/v1/nosuchoperation") == set()


def test_body_members_that_belong_in_the_uri_or_query_are_not_read_from_the_body():
    op = MODEL.operation_model("UntagResource")
    body = json.dumps({"resourceArn": "from-body", "tagKeys": ["from-body"]}).encode()
    assert parse_rest_json(op, body, {"resourceArn": ARN}, {"tagKeys": ["k"]}) == {
        "resourceArn": ARN, "tagKeys": ["k"]}
    with pytest.raises(ClientException) as info:
        parse_rest_json(op, body, {"resourceArn": ARN}, {})
    message = info.value.message
    assert "'tagKeys'" in message and "must not be null" in message


def test_unknown_request_members_are_dropped():
    op = MODEL.operation_model("DescribeJobs")
    assert parse_rest_json(op, b'{"jobs": ["a"], "bogus": {"x": 1}}', {}, {}) == {"jobs": ["a"]}
    params = validate(MODEL.operation_model("SubmitJob").input_shape,
                      {"jobName": "n", "jobQueue": "q", "jobDefinition": "d",
                       "containerOverrides": {"vcpus": 1, "extra": [1]}})
    assert params["containerOverrides"] == {"vcpus": 1}


# --- response round trip --------------------------------------------------------------------------------

def parse_response(op_name: str, body: bytes) -> dict:
    op = MODEL.operation_model(op_name)
    parsed = create_parser("rest-json").parse(
        {"status_code": 200, "headers": {"content-type": "application/json"}, "body": body}, op.output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


@pytest.mark.parametrize("op_name", OPERATIONS)
def test_generated_response_round_trips_through_botocore(op_name):
    op = MODEL.operation_model(op_name)
    value = example(op.output_shape) if op.output_shape is not None else {}
    body = serialize(op, value)
    assert parse_response(op_name, body) == value
    assert json.loads(body) == value


def test_response_drops_unknown_keys_and_nulls():
    op = MODEL.operation_model("DescribeJobQueues")
    result = {"jobQueues": [{"jobQueueName": "q", "jobQueueArn": "arn", "state": "ENABLED", "priority": 1,
                             "status": None, "internal": {"x": 1}, "tags": {"a": "1", "b": None},
                             "computeEnvironmentOrder": [None, {"order": 1, "computeEnvironment": "c"}]}],
              "nextToken": None, "secret": "do-not-leak"}
    assert json.loads(serialize(op, result)) == {"jobQueues": [{
        "jobQueueName": "q", "jobQueueArn": "arn", "state": "ENABLED", "priority": 1, "tags": {"a": "1"},
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "c"}]}]}


def test_response_of_none_or_empty_result_is_an_empty_object():
    op = MODEL.operation_model("TagResource")
    assert serialize(op, None) == b"{}"
    assert serialize(op, {"anything": 1}) == b"{}"


def test_response_timestamps_are_integer_epoch_milliseconds():
    op = MODEL.operation_model("DescribeJobs")
    moment = datetime(2024, 5, 6, 7, 8, 9, 123_000, tzinfo=timezone.utc)
    result = {"jobs": [{"jobName": "n", "jobId": "i", "jobQueue": "q", "status": "RUNNING",
                        "jobDefinition": "d", "createdAt": 1714979289123.0, "startedAt": moment,
                        "stoppedAt": None}]}
    body = serialize(op, result)
    job = json.loads(body)["jobs"][0]
    assert job["createdAt"] == 1714979289123 and isinstance(job["createdAt"], int)
    assert job["startedAt"] == 1714979289123 and isinstance(job["startedAt"], int)
    assert "stoppedAt" not in job
    assert b"1714979289123.0" not in body
    assert parse_response("DescribeJobs", body)["jobs"][0]["startedAt"] == 1714979289123


def test_datetime_to_epoch_milliseconds_is_exact():
    shape = MODEL.operation_model("DescribeJobs").output_shape.members["jobs"].member.members["createdAt"]
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    # Each of these loses a millisecond when converted through float seconds.
    for millis in (2183226373411, 2165497250430, 1079337347472):
        assert shape_value(shape, epoch + timedelta(milliseconds=millis)) == millis
    naive = datetime(2024, 1, 1, 0, 0, 0, 5000)
    assert shape_value(shape, naive) == 1704067200005, "naive datetimes are UTC"
    east = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert shape_value(shape, east) == 1704067200000


# --- validation ----------------------------------------------------------------------------------------

SUBMIT = {"jobName": "n", "jobQueue": "q", "jobDefinition": "d"}


def test_missing_required_top_level_members_are_each_named():
    message = parse_error("SubmitJob", {"jobName": "n"})
    assert message.startswith("2 validation errors detected: ")
    assert "Value null at 'jobQueue' failed to satisfy constraint: Member must not be null" in message
    assert "Value null at 'jobDefinition' failed to satisfy constraint: Member must not be null" in message


def test_missing_required_nested_member_names_its_path():
    message = parse_error("SubmitJob", {**SUBMIT, "containerOverrides": {"environment": [{"name": "A"}],
                                                                        "resourceRequirements": [{"type": "GPU"}]}})
    assert message.startswith("1 validation error detected: ")
    assert "'containerOverrides.resourceRequirements.1.value'" in message
    message = parse_error("CreateJobQueue", {"jobQueueName": "q", "priority": 1,
                                             "computeEnvironmentOrder": [{"order": 1}, {"computeEnvironment": "c"}]})
    assert "'computeEnvironmentOrder.1.computeEnvironment'" in message
    assert "'computeEnvironmentOrder.2.order'" in message


def test_explicit_null_for_a_required_member_is_missing():
    assert "Value null at 'jobName'" in parse_error("SubmitJob", {**SUBMIT, "jobName": None})


def test_null_optional_members_are_dropped():
    op = MODEL.operation_model("SubmitJob")
    assert validate(op.input_shape, {**SUBMIT, "timeout": None, "tags": None}) == SUBMIT


@pytest.mark.parametrize("member, value, constraint", [
    ("schedulingPriorityOverride", "5", "Member must be an integer"),
    ("schedulingPriorityOverride", True, "Member must be an integer"),
    ("schedulingPriorityOverride", 1.5, "Member must be an integer"),
    ("schedulingPriorityOverride", [1], "Member must be an integer"),
    ("jobName", 5, "Member must be a string"),
    ("jobName", {"a": 1}, "Member must be a string"),
    ("jobName", False, "Member must be a string"),
    ("propagateTags", "true", "Member must be a boolean"),
    ("propagateTags", 1, "Member must be a boolean"),
    ("parameters", ["a", "b"], "Member must be a map"),
    ("parameters", "a=b", "Member must be a map"),
    ("dependsOn", {"jobId": "x"}, "Member must be a list"),
    ("dependsOn", "x", "Member must be a list"),
    ("timeout", 60, "Member must be a structure"),
    ("timeout", [60], "Member must be a structure"),
])
def test_wrong_types_are_rejected_with_the_member_named(member, value, constraint):
    message = parse_error("SubmitJob", {**SUBMIT, member: value})
    assert f"at '{member}' failed to satisfy constraint: {constraint}" in message


def test_wrong_types_inside_lists_and_maps_name_the_element():
    message = parse_error("SubmitJob", {**SUBMIT, "parameters": {"a": 1},
                                        "containerOverrides": {"command": ["ok", 2]}})
    assert message.startswith("2 validation errors detected: ")
    assert "at 'parameters.a' failed to satisfy constraint: Member must be a string" in message
    assert "at 'containerOverrides.command.2' failed to satisfy constraint: Member must be a string" in message


def test_float_members_accept_integers_but_not_strings_or_booleans():
    shape = MODEL.operation_model("CreateSchedulingPolicy").input_shape
    policy = {"name": "p", "fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 2}]}}
    assert validate(shape, policy)["fairsharePolicy"]["shareDistribution"][0]["weightFactor"] == 2.0
    for bad in ("2", True):
        policy["fairsharePolicy"]["shareDistribution"][0]["weightFactor"] = bad
        with pytest.raises(ClientException, match="weightFactor' failed to satisfy constraint: Member must be a"):
            validate(shape, policy)


def test_enum_violation_lists_the_allowed_values():
    message = parse_error("CreateComputeEnvironment", {"computeEnvironmentName": "ce", "type": "managed"})
    assert "Value 'managed' at 'type' failed to satisfy constraint: " \
           "Member must satisfy enum value set: [MANAGED, UNMANAGED]" in message
    message = parse_error("SubmitJob", {**SUBMIT, "containerOverrides": {"resourceRequirements": [
        {"type": "CPU", "value": "1"}]}})
    assert "at 'containerOverrides.resourceRequirements.1.type'" in message and "[GPU, VCPU, MEMORY]" in message


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 10**30])
def test_integers_outside_int32_are_rejected(value):
    message = parse_error("SubmitJob", {**SUBMIT, "arrayProperties": {"size": value}})
    assert "at 'arrayProperties.size' failed to satisfy constraint: Member must be within" in message


def test_int32_limits_themselves_are_accepted():
    shape = MODEL.operation_model("SubmitJob").input_shape
    for value in (2**31 - 1, -(2**31)):
        assert validate(shape, {**SUBMIT, "schedulingPriorityOverride": value})["schedulingPriorityOverride"] == value


def test_tag_key_and_map_length_limits():
    shape = MODEL.operation_model("TagResource").input_shape
    assert validate(shape, {"resourceArn": ARN, "tags": {"k" * 128: "v" * 256}})
    for tags, where, constraint in [
        ({"k" * 129: "v"}, "tags.key", "length less than or equal to 128"),
        ({"": "v"}, "tags.key", "length greater than or equal to 1"),
        ({"k": "v" * 257}, "tags.k", "length less than or equal to 256"),
        ({}, "tags", "length greater than or equal to 1"),
        ({f"k{i}": "v" for i in range(51)}, "tags", "length less than or equal to 50"),
    ]:
        with pytest.raises(ClientException) as info:
            validate(shape, {"resourceArn": ARN, "tags": tags})
        assert f"at '{where}' failed to satisfy constraint: Member must have {constraint}" in info.value.message


def test_untag_key_list_limits():
    shape = MODEL.operation_model("UntagResource").input_shape
    with pytest.raises(ClientException, match="'tagKeys' failed to satisfy constraint: Member must have length"):
        validate(shape, {"resourceArn": ARN, "tagKeys": []})


def test_every_violation_is_counted_and_long_values_are_shortened():
    message = parse_error("SubmitJob", {"jobName": ["x" * 500], "jobQueue": 1, "jobDefinition": [],
                                        "schedulingPriorityOverride": "high"})
    assert message.startswith("4 validation errors detected: ")
    assert "Value '[\"" + "x" * 55 + "...' at 'jobName'" in message and "x" * 56 not in message


def test_a_flood_of_violations_stays_a_short_message():
    op = MODEL.operation_model("DescribeJobs")
    body = b'{"jobs": [' + b",".join([b"1"] * 200_000) + b"]}"
    with pytest.raises(ClientException) as info:
        parse_rest_json(op, body, {}, {})
    assert info.value.message.startswith("200000 validation errors detected: ")
    assert "at 'jobs.1' failed to satisfy constraint: Member must be a string" in info.value.message
    assert "at 'jobs.10' failed" in info.value.message and "at 'jobs.11' failed" not in info.value.message
    assert info.value.message.endswith("; and 199990 more")
    assert len(info.value.message) < 5000


@pytest.mark.parametrize("body, expected", [
    (b'{"jobName": NaN}', "not valid JSON"),
    (b'{"jobName": Infinity}', "not valid JSON"),
    (b'{"jobName": -Infinity}', "not valid JSON"),
    (b'{"jobName": "\xff\xfe"}', "not valid UTF-8"),
    (b'\xef\xbb\xbf{"jobName": "n"}', "not valid JSON"),
    (b'["jobName"]', "must be a JSON object"),
    (b'"jobName"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"42", "must be a JSON object"),
    (b'{"jobName": "n",}', "not valid JSON"),
    (b"{'jobName': 'n'}", "not valid JSON"),
    (b'{"jobName": "n"} trailing', "not valid JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"a":' * 100_000, "nested too deeply"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"jobName": ' + b"[" * 500 + b"]" * 500 + b"}", "nested too deeply"),
    (b'{"arrayProperties": {"size": 1' + b"0" * 5000 + b"}}", "not valid JSON"),
])
def test_malformed_bodies_are_client_errors(body, expected):
    with pytest.raises(ClientException, match=expected):
        load_json_object(body)
    with pytest.raises(ClientException, match=expected):
        parse_rest_json(MODEL.operation_model("SubmitJob"), body, {}, {})


@pytest.mark.parametrize("depth", [700, 900, 950, 990, 995, 999])
@pytest.mark.parametrize("where", ["jobName", "containerOverrides.environment", "parameters.p"])
def test_deep_values_anywhere_are_client_errors(where, depth):
    value = "[" * depth + "]" * depth
    for part in reversed(where.split(".")):
        value = f'{{"{part}": {value}}}'
    with pytest.raises(ClientException):
        parse_rest_json(MODEL.operation_model("SubmitJob"), value.encode(), {}, {})


def test_huge_numbers_are_client_errors():
    op = MODEL.operation_model("SubmitJob")
    for number in (b"1" + b"0" * 5000, b"1e999", b"-1e999", b"1" + b"0" * 4000, b"1.5e308"):
        body = b'{"jobName": "n", "jobQueue": "q", "jobDefinition": "d", "schedulingPriorityOverride": %s}' % number
        with pytest.raises(ClientException):
            parse_rest_json(op, body, {}, {})
    shape = MODEL.operation_model("CreateSchedulingPolicy").input_shape
    for number in (b"1e999", b"-1e999"):
        body = (b'{"name": "p", "fairsharePolicy": {"shareDistribution": '
                b'[{"shareIdentifier": "a", "weightFactor": %s}]}}' % number)
        with pytest.raises(ClientException, match="weightFactor"):
            validate(shape, json.loads(body))


def test_lone_surrogates_are_not_accepted_as_strings():
    for body in (b'{"jobName": "n", "jobQueue": "q", "jobDefinition": "\\ud800"}',
                 b'{"jobName": "n", "jobQueue": "q", "jobDefinition": "d", "parameters": {"\\udfff": "v"}}'):
        with pytest.raises(ClientException, match="valid Unicode"):
            parse_rest_json(MODEL.operation_model("SubmitJob"), body, {}, {})


@pytest.mark.parametrize("body", [b"", b"   ", b"{}", b"\n{ }\n"])
def test_empty_body_is_an_empty_request(body):
    assert parse_rest_json(MODEL.operation_model("DescribeJobQueues"), body, {}, {}) == {}
    with pytest.raises(ClientException, match="^3 validation errors detected: .*'jobName'"):
        parse_rest_json(MODEL.operation_model("SubmitJob"), body, {}, {})


@pytest.mark.parametrize("op_name", OPERATIONS)
def test_every_operation_rejects_a_wrong_type_for_each_top_level_member(op_name):
    shape = MODEL.operation_model(op_name).input_shape
    if shape is None:
        pytest.skip("no input")
    valid = example(shape)
    for name, member in shape.members.items():
        wrong = 12 if member.type_name in ("string", "structure", "list", "map", "boolean") else "12"
        with pytest.raises(ClientException) as info:
            validate(shape, {**valid, name: wrong})
        assert f"at '{name}' failed to satisfy constraint: Member must be" in info.value.message
