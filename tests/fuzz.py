"""A fuzzer for batchemu's HTTP surface, generated from botocore's batch service model.

For every operation of the model it builds valid rest-json requests, then sends most of them with one defect
(a wrong type, a missing required member, a number or length out of range, a huge string, odd Unicode, deep
nesting, a null), plus garbage: random bytes, odd methods and paths, junk headers and malformed raw HTTP.
A response passes when it is not a 5xx (a not-built operation or feature may answer 501 NotImplemented)
and every error is JSON with `__type` matching `x-amzn-ErrorType`.

    python -m tests.fuzz --seed 123 --requests 20000      # what `make fuzz SEED=123 N=20000` runs
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from botocore.model import OperationModel, Shape

from batchemu.config import Config
from batchemu.protocol.model import service_model
from batchemu.service import HANDLERS

MODEL = service_model("batch")
OPERATIONS = sorted(MODEL.operation_names)
NOT_BUILT = frozenset(set(OPERATIONS) - set(HANDLERS))
# Features of built operations that docs/differences.md names as not built (HTTP 501).
NOT_BUILT_FEATURES = ("SubmitJob of an eksProperties pod with", "CreateComputeEnvironment with computeResources.type")
# Names the valid requests use, so that some of them reach existing resources (created by `prepare`).
POOL = {"computeEnvironment": "fz-ce", "computeEnvironmentName": "fz-ce", "jobQueue": "fz-q",
        "jobQueueName": "fz-q", "jobDefinition": "fz-jd", "jobDefinitionName": "fz-jd",
        "schedulingPolicyArn": "fz-sp", "name": "fz-sp", "consumableResource": "fz-cr",
        "consumableResourceName": "fz-cr"}
_QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/fz-q"
_CONTAINER = {"image": "busybox", "command": ["echo", "Ref::p"], "environment": [{"name": "A", "value": "1"}],
              "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
# Requests the handlers accept as they stand (given `prepare`), so defects also reach the service's own checks
# and not only the model's: random model-valid requests rarely get past "does not exist".
TEMPLATES = {
    "SubmitJob": {"jobName": "fz-job", "jobQueue": "fz-q", "jobDefinition": "fz-jd", "parameters": {"p": "v"},
                  "containerOverrides": {"command": ["echo", "Ref::p"], "environment": [{"name": "B", "value": "2"}],
                                         "resourceRequirements": [{"type": "MEMORY", "value": "32"}]},
                  "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1*", "action": "retry"}]},
                  "timeout": {"attemptDurationSeconds": 60}, "tags": {"k": "v"}, "propagateTags": True,
                  "schedulingPriorityOverride": 5},
    "RegisterJobDefinition": {"jobDefinitionName": "fz-jd", "type": "container", "containerProperties": _CONTAINER,
                              "parameters": {"p": "v"}, "retryStrategy": {"attempts": 3}, "tags": {},
                              "timeout": {"attemptDurationSeconds": 60}, "platformCapabilities": ["EC2"]},
    "CreateComputeEnvironment": {"computeEnvironmentName": "fz-ce2", "type": "MANAGED", "state": "DISABLED",
                                 "computeResources": {"type": "EC2", "maxvCpus": 4, "minvCpus": 0,
                                                      "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"],
                                                      "instanceTypes": ["optimal"], "instanceRole": "r"}},
    "UpdateComputeEnvironment": {"computeEnvironment": "fz-ce", "state": "ENABLED", "unmanagedvCpus": 8},
    "CreateJobQueue": {"jobQueueName": "fz-q2", "priority": 2, "state": "ENABLED",
                       "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "fz-ce"}]},
    "UpdateJobQueue": {"jobQueue": "fz-q", "priority": 3, "state": "ENABLED",
                       "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "fz-ce"}]},
    "ListJobs": {"jobQueue": "fz-q", "jobStatus": "SUBMITTED", "maxResults": 5,
                 "filters": [{"name": "JOB_NAME", "values": ["fz*"]}]},
    "DescribeJobs": {"jobs": ["fz-job"]},
    "DescribeJobDefinitions": {"jobDefinitionName": "fz-jd", "status": "ACTIVE", "maxResults": 2},
    "TagResource": {"resourceArn": _QUEUE_ARN, "tags": {"team": "fz"}},
    "UntagResource": {"resourceArn": _QUEUE_ARN, "tagKeys": ["team"]},
    "ListTagsForResource": {"resourceArn": _QUEUE_ARN},
    "CreateSchedulingPolicy": {"name": "fz-sp2", "fairsharePolicy": {
        "shareDecaySeconds": 60, "computeReservation": 1, "shareDistribution": [{"shareIdentifier": "a",
                                                                                 "weightFactor": 0.5}]}},
    "CreateConsumableResource": {"consumableResourceName": "fz-cr", "totalQuantity": 4,
                                 "resourceType": "REPLENISHABLE"},
    "GetJobQueueSnapshot": {"jobQueue": "fz-q"},
}
ODD_STRINGS = ["", " ", "\u0000", "\ud800", "\udfff", "\u202e\u202d", "e\u0301" * 50, "😀" * 40, "\ufeff",
               "\uffff", "%s%n%x", "../../etc/passwd", "*", "arn:aws:batch:us-east-1:1:job/../x", "\\", '"',
               "Ref::x", "a" * 129, "\r\n", "<script>", "null", "true", "0", "-1", "1e999", "NaN"]
ODD_NUMBERS = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30, -1, 0, 1.5, -0.0, 1e308, 2**53 + 1]
DEFECTS = ("wrong_type", "missing_required", "out_of_range", "huge_string", "odd_unicode", "deep_nesting",
           "null", "unknown_member", "odd_number")
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "FOO", "get"]


@dataclass
class Case:
    """One request: sent through `requests` unless `raw` holds the exact bytes to write on a socket."""

    kind: str
    operation: str | None
    method: str = "POST"
    path: str = "/"
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    raw: bytes | None = None

    def describe(self) -> str:
        if self.raw is not None:
            return f"{self.kind} raw={self.raw[:300]!r}"
        return f"{self.kind} {self.method} {self.path[:200]} body={self.body[:300]!r} headers={self.headers}"


class Generator:
    """Valid inputs from the model's shapes, one defect each, and garbage, from one seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # --- valid values ---------------------------------------------------------------------------------

    def value(self, shape: Shape, name: str = "", depth: int = 0) -> Any:
        kind, rng = shape.type_name, self.rng
        if kind == "structure":
            required = set(shape.required_members)
            chance = 0.5 if depth < 3 else 0.0
            return {member: self.value(sub, member, depth + 1) for member, sub in shape.members.items()
                    if member in required or rng.random() < chance}
        if kind == "list":
            low = shape.metadata.get("min", 0)
            high = min(shape.metadata.get("max", low + 3), low + 3)
            return [self.value(shape.member, name, depth + 1) for _ in range(rng.randint(low, max(low, high)))]
        if kind == "map":
            low = max(shape.metadata.get("min", 0), 0)
            count = rng.randint(low, low + 2)
            return {self.value(shape.key, "key", depth + 1): self.value(shape.value, name, depth + 1)
                    for _ in range(count)}
        if kind == "string":
            if shape.enum:
                return rng.choice(shape.enum)
            if name in POOL and rng.random() < 0.6:
                return POOL[name]
            low, high = shape.metadata.get("min", 1), shape.metadata.get("max", 24)
            size = rng.randint(max(low, 1), max(min(high, 24), low, 1))
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(size))
        if kind in ("integer", "long"):
            low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 100)
            return rng.randint(int(low), int(max(low, min(high, low + 100))))
        if kind in ("float", "double"):
            return round(rng.uniform(0, 100), 3)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "timestamp":
            return rng.randint(1_600_000_000, 1_800_000_000)
        return "x"

    # --- one defect -----------------------------------------------------------------------------------

    def _sites(self, shape: Shape, value: Any, parent: Any, key: Any, out: list) -> None:
        """Every (container, key, shape, value) in a document, so a defect can land anywhere."""
        if parent is not None:
            out.append((parent, key, shape, value))
        if shape.type_name == "structure" and isinstance(value, dict):
            for member, sub in shape.members.items():
                if member in value:
                    self._sites(sub, value[member], value, member, out)
        elif shape.type_name == "list" and isinstance(value, list):
            for index, item in enumerate(value):
                self._sites(shape.member, item, value, index, out)
        elif shape.type_name == "map" and isinstance(value, dict):
            for map_key, item in value.items():
                self._sites(shape.value, item, value, map_key, out)

    def defect(self, shape: Shape, params: dict) -> str:
        """Apply one defect to `params` in place; returns its name."""
        rng = self.rng
        sites: list = []
        self._sites(shape, params, None, None, sites)
        name = rng.choice(DEFECTS)
        if name == "missing_required":
            structures = [(params, shape)] + [(v, s) for _, _, s, v in sites
                                              if s.type_name == "structure" and isinstance(v, dict)]
            candidates = [(v, s) for v, s in structures if s.required_members]
            if candidates:
                target, target_shape = rng.choice(candidates)
                target.pop(rng.choice(target_shape.required_members), None)
                return name
            name = "unknown_member"
        if name == "unknown_member" or not sites:
            params[rng.choice(["extra", "__proto__", "", "jobName ", "JOBNAME"])] = rng.choice(
                [1, "x", None, [], {}])
            return "unknown_member"
        container, key, site_shape, current = rng.choice(sites)
        container[key] = self._bad_value(name, site_shape, current)
        return name

    def _bad_value(self, name: str, shape: Shape, current: Any) -> Any:
        rng = self.rng
        if name == "wrong_type":
            options = {"string": [1, True, [], {}], "integer": ["1", 1.5, True, []], "long": ["1", 2.5, {}],
                       "boolean": ["true", 0, []], "list": ["x", {}, 1], "map": [[], "x", 1],
                       "structure": [[], "x", 1, True], "double": ["1.0", True], "float": ["1.0", []],
                       "timestamp": ["2024-01-01", {}]}
            return rng.choice(options.get(shape.type_name, [None]))
        if name == "out_of_range":
            low, high = shape.metadata.get("min"), shape.metadata.get("max")
            if shape.type_name in ("integer", "long"):
                return rng.choice([v for v in ((low - 1) if low is not None else None,
                                               (high + 1) if high is not None else None, 2**63, -(2**31) - 1)
                                   if v is not None])
            if shape.type_name == "string":
                return "a" * ((high or 256) + 1) if high or rng.random() < 0.5 else ""
            if shape.type_name == "list":
                return [current[0] if current else "x"] * ((high or 100) + 1)
            return current
        if name == "huge_string":
            return rng.choice(["x" * rng.choice([40_000, 300_000]), "é" * 20_000])
        if name == "odd_unicode":
            return rng.choice(ODD_STRINGS)
        if name == "deep_nesting":
            depth = rng.choice([70, 500, 5000])
            return json.loads("[" * depth + "]" * depth) if depth < 900 else {"__deep__": depth}
        if name == "null":
            return None
        return rng.choice(ODD_NUMBERS)

    # --- requests -------------------------------------------------------------------------------------

    def build(self, op: OperationModel, params: dict, kind: str) -> Case:
        """The rest-json request for `params`: URI labels, query string, JSON body of the rest."""
        shape = op.input_shape
        path = op.http["requestUri"].split("?", 1)[0]
        query: list[str] = []
        body = dict(params)
        if shape is not None:
            for member, sub in shape.members.items():
                location, wire = sub.serialization.get("location"), sub.serialization.get("name", member)
                if location and member in body:
                    item = body.pop(member)
                    if location == "uri":
                        path = path.replace("{" + wire + "}", _quote(item))
                    elif location == "querystring":
                        for one in item if isinstance(item, list) else [item]:
                            query.append(f"{quote(wire)}={_quote(one)}")
        path = path.replace("{resourceArn}", "")
        if query:
            path += "?" + "&".join(query)
        text = json.dumps(body)
        text = _expand_deep(text)
        return Case(kind, op.name, op.http["method"], path, text.encode("utf-8", "surrogatepass"),
                    {"Content-Type": "application/json"})

    def case(self) -> Case:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12:
            return self.garbage()
        op = MODEL.operation_model(rng.choice(OPERATIONS))
        if op.name in TEMPLATES and rng.random() < 0.6:
            params = json.loads(json.dumps(TEMPLATES[op.name]))
        else:
            params = self.value(op.input_shape) if op.input_shape is not None else {}
        kind = "valid"
        if roll >= 0.27 and op.input_shape is not None:
            kind = "defect:" + self.defect(op.input_shape, params)
        return self.build(op, params, kind)

    def garbage(self) -> Case:
        rng = self.rng
        choice = rng.randrange(6)
        op = rng.choice(OPERATIONS)
        if choice == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
            return Case("garbage:random_bytes", op, "POST", f"/v1/{op.lower()}", body)
        if choice == 1:
            method = rng.choice(METHODS)
            path = rng.choice(["/", "/v1", "/v1/", f"/v1/{op.lower()}", "/v1/tags", "/v1/tags/%2F%2F", "/v2/x",
                               "/_batchemu/health", "/v1/" + "a" * 3000, "/v1/%00", "/v1/%ff%fe", "//v1//x",
                               "/v1/tags/arn:aws:batch:us-east-1:1:job-queue/q?tagKeys=&tagKeys=%00"])
            return Case("garbage:method_path", None if method != "POST" else op, method, path, b"{}")
        if choice == 2:
            headers = rng.choice([{"Content-Type": "text/plain"}, {"Content-Encoding": "gzip"},
                                  {"X-Amz-Target": "Logs_20140328." + rng.choice(["Nope", "", "GetLogEvents"])},
                                  {"X-Amz-Target": "\u00ff" * 10}, {"Accept": "*/*" * 1000},
                                  {"Authorization": "AWS4-HMAC-SHA256 Credential=\u00e9"},
                                  {"X-Junk": "x" * 30_000}, {"Expect": "100-continue"}])
            return Case("garbage:headers", op, "POST", f"/v1/{op.lower()}", b'{"a": 1}',
                        {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()})
        if choice == 3:
            text = json.dumps(self.value(MODEL.operation_model(op).input_shape)
                              if MODEL.operation_model(op).input_shape else {})
            cut = rng.randrange(len(text) + 1)
            return Case("garbage:truncated_json", op, "POST", f"/v1/{op.lower()}", text[:cut].encode())
        if choice == 4:
            body = rng.choice([b"null", b"[]", b"1", b'"x"', b"{}" * 3, b'{"a":NaN}', b'{"a":1e99999}',
                               b"\xef\xbb\xbf{}", b'{"a":"\\ud800"}', b"{" * 10_000, b'{"' + b"a" * 100 + b'":'])
            return Case("garbage:odd_json", op, "POST", f"/v1/{op.lower()}", body)
        return Case("garbage:raw_http", None, raw=rng.choice(RAW_REQUESTS)(rng, op))

    def cases(self, count: int) -> Iterator[Case]:
        for _ in range(count):
            yield self.case()


def _quote(value: Any) -> str:
    """Percent-encoding of any value, lone surrogates included (as their raw UTF-8-ish bytes)."""
    return quote(str(value).encode("utf-8", "surrogatepass"), safe="")


def _expand_deep(text: str) -> str:
    """Deeper nesting than json.dumps can write is spliced in as text."""
    marker = '{"__deep__": '
    while marker in text:
        start = text.index(marker)
        end = text.index("}", start)
        depth = int(text[start + len(marker):end])
        text = text[:start] + "[" * depth + "]" * depth + text[end + 1:]
    return text


HOST = b"Host: localhost\r\n"
RAW_REQUESTS = [
    lambda rng, op: f"{rng.choice(['get', 'post', 'Get'])} /v1/{op.lower()} HTTP/1.1\r\n".encode() + HOST + b"\r\n",
    lambda rng, op: b"CONNECT localhost:1 HTTP/1.1\r\n" + HOST + b"\r\n",
    lambda rng, op: bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) + b"\r\n\r\n",
    lambda rng, op: f"POST /v1/{op.lower()} HTTP/1.1\r\n".encode() + HOST
    + f"Content-Length: {rng.choice(['abc', '-1', '1 2', '0x10', '99999999999999999999', ''])}\r\n\r\n{{}}"
    .encode(),
    lambda rng, op: f"POST /v1/{op.lower()} HTTP/1.1\r\n".encode() + HOST + b"Content-Length: 50\r\n\r\n{\"a\":",
    lambda rng, op: f"POST /v1/{op.lower()} HTTP/1.1\r\n".encode() + HOST
    + b"Transfer-Encoding: chunked\r\n\r\n" + rng.choice([b"zz\r\n{}\r\n0\r\n\r\n", b"5\r\n{}", b"2\r\n{}\r\n"]),
    lambda rng, op: f"POST /v1/{op.lower()} HTTP/{rng.choice(['2.0', '0.9', '1.2', '9.9', 'x'])}\r\n".encode()
    + HOST + b"\r\n",
    lambda rng, op: f"GET /v1/{op.lower()} HTTP/1.1\r\n".encode() + HOST + b"Bad Header Line\r\n\r\n",
    lambda rng, op: b"GET http://evil/v1/x HTTP/1.1\r\n" + HOST + b"\r\n",
    lambda rng, op: b"POST /v1/describejobs HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
]


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes


def send(session: requests.Session, base: str, case: Case) -> Answer:
    if case.raw is not None:
        host, port = base.split("//", 1)[1].rsplit(":", 1)
        return _send_raw(host, int(port), case.raw)
    response = session.request(case.method, base + case.path, data=case.body, headers=case.headers, timeout=30,
                               allow_redirects=False)
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def _send_raw(host: str, port: int, data: bytes) -> Answer:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(data + b"Connection: close\r\n\r\n" if not data.endswith(b"\r\n\r\n") else data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    if not received:
        return Answer(0, {}, b"")
    head, _, body = received.partition(b"\r\n\r\n")
    if head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    return Answer(int(lines[0].split()[1]), headers, body[:int(headers.get("content-length", len(body)))])


def problem(case: Case, answer: Answer) -> str | None:
    """What is wrong with `answer`, or None when it is acceptable."""
    if answer.status == 0:
        return None if case.raw is not None else "no answer"
    if answer.status < 400:
        return None
    if case.method == "HEAD":
        body = None
    else:
        try:
            body = json.loads(answer.body)
        except ValueError:
            return f"{answer.status} with a non-JSON body {answer.body[:200]!r}"
        if not isinstance(body, dict) or not body.get("__type") or not isinstance(body.get("message"), str):
            return f"{answer.status} error body without __type/message: {answer.body[:200]!r}"
        if body["__type"] != answer.headers.get("x-amzn-errortype"):
            return f"{answer.status} __type {body['__type']} differs from x-amzn-ErrorType"
    if answer.status == 501 and body is not None and body["__type"] == "NotImplemented" and (
            case.operation in NOT_BUILT or body["message"].startswith(NOT_BUILT_FEATURES)):
        return None
    if answer.status >= 500:
        return f"server error {answer.status}: {answer.body[:300]!r}"
    return None


@dataclass
class Report:
    seed: int
    sent: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    problems: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"seed {self.seed}: {self.sent} requests in {self.seconds:.1f} s, {len(self.problems)} problems",
                 "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items())),
                 "kinds: " + ", ".join(f"{k}: {n}" for k, n in sorted(self.kinds.items()))]
        lines += [f"  {text}\n    request: {request}" for text, request in self.problems[:20]]
        return "\n".join(lines)


def run(base: str, seed: int, count: int) -> Report:
    """Send `count` generated requests to the server at `base`."""
    report = Report(seed)
    generator = Generator(random.Random(seed))
    session = requests.Session()
    started = time.monotonic()
    for case in generator.cases(count):
        try:
            answer = send(session, base, case)
        except (requests.ConnectionError, OSError) as exc:
            if case.raw is None:
                report.problems.append((f"connection failed: {exc}", case.describe()))
            session = requests.Session()
            continue
        report.sent += 1
        report.statuses[answer.status] += 1
        report.kinds[case.kind.split(":")[0]] += 1
        found = problem(case, answer)
        if found:
            report.problems.append((found, case.describe()))
    report.seconds = time.monotonic() - started
    return report


# --- a throw-away server, resources that must survive the run -------------------------------------------

def prepare(base: str) -> dict:
    """Create the pool resources valid requests name and the resources that must come through intact."""
    session = requests.Session()

    def call(operation: str, body: dict) -> dict:
        response = session.post(f"{base}/v1/{operation.lower()}", json=body, timeout=30)
        assert response.status_code == 200, (operation, response.text)
        return response.json()

    container = {"image": "busybox", "command": ["true"],
                 "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
    for prefix in ("fz", "keep"):
        call("CreateComputeEnvironment", {"computeEnvironmentName": f"{prefix}-ce", "type": "UNMANAGED",
                                          "tags": {"owner": prefix}})
        call("CreateJobQueue", {"jobQueueName": f"{prefix}-q", "priority": 1, "tags": {"owner": prefix},
                                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": f"{prefix}-ce"}]})
        call("RegisterJobDefinition", {"jobDefinitionName": f"{prefix}-jd", "type": "container",
                                       "containerProperties": container})
        call("CreateSchedulingPolicy", {"name": f"{prefix}-sp"})
    return snapshot(base)


def snapshot(base: str) -> dict:
    """The protected (keep-*) resources as DescribeX shows them."""
    session = requests.Session()

    def call(operation: str, body: dict) -> dict:
        response = session.post(f"{base}/v1/{operation.lower()}", json=body, timeout=30)
        assert response.status_code == 200, (operation, response.text)
        return response.json()

    return {
        "ce": call("DescribeComputeEnvironments", {"computeEnvironments": ["keep-ce"]})["computeEnvironments"],
        "q": call("DescribeJobQueues", {"jobQueues": ["keep-q"]})["jobQueues"],
        "jd": call("DescribeJobDefinitions", {"jobDefinitionName": "keep-jd"})["jobDefinitions"],
        "sp": [p for p in call("ListSchedulingPolicies", {})["schedulingPolicies"] if p["arn"].endswith("/keep-sp")],
    }


def _settled(document: Any) -> Any:
    """A snapshot without the fields a background status change may touch."""
    if isinstance(document, dict):
        return {k: _settled(v) for k, v in document.items() if k not in ("status", "statusReason", "updatedAt")}
    if isinstance(document, list):
        return [_settled(item) for item in document]
    return document


def fuzz_fresh_server(seed: int, count: int) -> tuple[Report, list[str]]:
    """Run the fuzzer against a fresh API-only server; returns the report and what the server lost."""
    from batchemu.http.server import Server
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:"), with_scheduler=False).start()
    try:
        before = prepare(server.url)
        report = run(server.url, seed, count)
        after_problems = []
        health = requests.get(server.url + "/_batchemu/health", timeout=30)
        if health.status_code != 200:
            after_problems.append(f"health answered {health.status_code} after the run")
        after = snapshot(server.url)
        for name in before:
            if _settled(before[name]) != _settled(after[name]) or not after[name]:
                after_problems.append(f"{name} changed: {before[name]} -> {after[name]}")
        return report, after_problems
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    report, lost = fuzz_fresh_server(args.seed, args.requests)
    print(report.summary())
    for text in lost:
        print("after the run:", text)
    return 1 if report.problems or lost else 0


if __name__ == "__main__":
    sys.exit(main())
