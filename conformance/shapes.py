"""Checks a response body against botocore's output shape for its operation.

Every response the conformance suite receives goes through `check_response` (installed as a botocore
`before-parse` hook by conftest.py), so a body that a strict SDK would misread fails the scenario that
received it: unknown keys, wrong JSON types, missing required members, non-integer longs, nulls, and
strings outside a modelled enum.
"""

from __future__ import annotations

import json
import math
from typing import Any

from botocore.model import OperationModel, Shape

INT32 = (-(2**31), 2**31 - 1)

# Members the model marks required that AWS itself omits: a job that never started has no startedAt
# (API_JobDetail.html: "when the job transitioned from the STARTING state to the RUNNING state").
OMITTED_BY_AWS = {("JobDetail", "startedAt")}
INT64 = (-(2**63), 2**63 - 1)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def validate(shape: Shape, value: Any, path: str = "$") -> list[str]:
    """Every way `value` (parsed JSON) violates `shape`, as 'path: problem' strings; [] when it conforms."""
    kind = shape.type_name
    if value is None:
        return [f"{path}: null where {kind} {shape.name} belongs (omit the member instead)"]
    if kind == "structure":
        return _validate_structure(shape, value, path)
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected array ({shape.name}), got {_type_name(value)}"]
        problems: list[str] = []
        for index, item in enumerate(value):
            problems += validate(shape.member, item, f"{path}[{index}]")
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected object ({shape.name}), got {_type_name(value)}"]
        problems = []
        for key, item in value.items():
            problems += validate(shape.key, key, f"{path}.<key {key!r}>")
            problems += validate(shape.value, item, f"{path}[{key!r}]")
        return problems
    return _validate_scalar(shape, value, path)


def _validate_structure(shape: Shape, value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected object ({shape.name}), got {_type_name(value)}"]
    members = {m.serialization.get("name", name): (name, m) for name, m in shape.members.items()
               if not m.serialization.get("location")}
    problems = [f"{path}: unknown key {key!r} (not a member of {shape.name})"
                for key in value if key not in members]
    for wire_name, (name, member) in members.items():
        if wire_name in value:
            problems += validate(member, value[wire_name], f"{path}.{wire_name}")
        elif name in shape.required_members and (shape.name, name) not in OMITTED_BY_AWS:
            problems.append(f"{path}: required member {wire_name!r} of {shape.name} is missing")
    return problems


def _validate_scalar(shape: Shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    got = _type_name(value)
    if kind in ("string", "blob"):
        if not isinstance(value, str):
            return [f"{path}: expected string ({shape.name}), got {got}"]
        if shape.enum and value not in shape.enum:
            return [f"{path}: {value!r} is not one of {shape.name}'s values {sorted(shape.enum)}"]
        return []
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected integer ({kind} {shape.name}), got {got} {value!r}"]
        low, high = INT32 if kind == "integer" else INT64
        if not low <= value <= high:
            return [f"{path}: {value} is outside the range of a {kind}"]
        return []
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{path}: expected number ({kind} {shape.name}), got {got}"]
        if isinstance(value, float) and not math.isfinite(value):
            return [f"{path}: {value} is not a finite number"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected boolean ({shape.name}), got {got}"]
    if kind == "timestamp":
        if shape.serialization.get("timestampFormat") == "iso8601":
            return [] if isinstance(value, str) else [f"{path}: expected ISO 8601 string, got {got}"]
        # rest-json and json timestamps default to epoch seconds, which may carry a fraction.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{path}: expected epoch-seconds number ({shape.name}), got {got}"]
        return []
    return []  # document and other free-form shapes accept any JSON


def check_response(operation: OperationModel, status: int, body: bytes) -> list[str]:
    """Problems with one HTTP response to `operation`: a success against the output shape, an error
    against the form every AWS JSON error takes (an object carrying a message)."""
    name = operation.name
    if status >= 300:
        try:
            document = json.loads(body or b"null")
        except ValueError:
            return [f"{name}: HTTP {status} error body is not JSON: {body[:120]!r}"]
        if not isinstance(document, dict):
            return [f"{name}: HTTP {status} error body is {_type_name(document)}, not an object"]
        if not isinstance(document.get("message", document.get("Message")), str):
            return [f"{name}: HTTP {status} error body has no string 'message': {body[:200]!r}"]
        return []
    shape = operation.output_shape
    if shape is None:
        return []
    if not body:
        body = b"{}"
    try:
        document = json.loads(body)
    except ValueError:
        return [f"{name}: HTTP {status} body is not JSON: {body[:120]!r}"]
    return [f"{name}: {problem}" for problem in validate(shape, document)]
