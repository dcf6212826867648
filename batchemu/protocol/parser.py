"""Reads a request into a plain dict and validates it against the operation's input shape."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel, Shape

from batchemu.errors import ClientException

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 64
# Beyond this many violations only the count grows: a flood of bad list items must stay a short message.
MAX_LISTED_ERRORS = 10


@dataclass(frozen=True)
class Relaxation:
    """A constraint of botocore's model that AWS itself does not enforce, and who depends on that."""

    reason: str
    min_length: bool = True  # False: the model's `min` is not checked
    enum_case: bool = True  # False: an enum value matches in any letter case (kept in the model's case)


_EMPTY_TAGS = Relaxation("Airflow's BatchOperator and BatchCreateComputeEnvironmentOperator send tags={} "
                         "(`tags or {}`) and AWS accepts it; the model says min 1", min_length=False)

# Every other min/max length, enum and numeric range of the model is enforced as AWS enforces it. Keys are a
# shape name (wherever that shape is used) or "Operation.member" for a top-level input member. TagResource
# keeps min 1 on its tags: there an empty map tags nothing, and nothing shows that AWS accepts it.
RELAXED: dict[str, Relaxation] = {
    **{f"{operation}.tags": _EMPTY_TAGS for operation in (
        "CreateComputeEnvironment", "CreateConsumableResource", "CreateJobQueue", "CreateQuotaShare",
        "CreateSchedulingPolicy", "CreateServiceEnvironment", "RegisterJobDefinition", "SubmitJob",
        "SubmitServiceJob")},
    "RetryAction": Relaxation("API reference, EvaluateOnExit.action: 'The values aren't case sensitive'; "
                              "Terraform's aws_batch_job_definition documents `retry`/`exit`", enum_case=False),
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json_object(body: bytes) -> dict:
    """Parse a request body: UTF-8 JSON, an object, no NaN/Infinity, bounded nesting."""
    if not body or not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ClientException("Request body is not valid UTF-8") from None
    except RecursionError:
        raise ClientException("Request body is nested too deeply") from None
    except ValueError as exc:
        raise ClientException(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ClientException("Request body must be a JSON object")
    if _nesting_exceeds(value, MAX_DEPTH):
        raise ClientException("Request body is nested too deeply")
    return value


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether objects/arrays nest deeper than `limit`; iterative, so any depth json.loads returns is safe."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


class _Validator:
    def __init__(self, operation: str = "") -> None:
        self.operation = operation
        self.errors: list[str] = []
        self.count = 0

    def relaxation(self, shape: Shape, path: str) -> Relaxation | None:
        return RELAXED.get(f"{self.operation}.{path}") or RELAXED.get(shape.name)

    def fail(self, value: Any, path: str, constraint: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            shown = "null" if value is None else f"'{_describe(value)}'"
            self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def check(self, shape: Shape, value: Any, path: str, depth: int = 0) -> Any:
        """The value stripped of unknown members, or None after recording why it is invalid."""
        if depth > MAX_DEPTH:
            self.fail(value, path, "Member is nested too deeply")
            return None
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, value, path, depth)
        if kind == "list":
            if not isinstance(value, list):
                self.fail(value, path, "Member must be a list")
                return None
            self._bounds(shape, len(value), value, path, "Member must have length")
            return [self.check(shape.member, item, f"{path}.{i + 1}" if path else str(i + 1), depth + 1)
                    for i, item in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                self.fail(value, path, "Member must be a map")
                return None
            self._bounds(shape, len(value), value, path, "Member must have length")
            out = {}
            for key, item in value.items():
                self.check(shape.key, key, f"{path}.key", depth + 1)
                out[key] = self.check(shape.value, item, f"{path}.{key}", depth + 1)
            return out
        if kind == "string":
            if not isinstance(value, str):
                self.fail(value, path, "Member must be a string")
                return None
            if not _is_unicode(value):
                self.fail(value.encode("utf-8", "backslashreplace").decode(), path, "Member must be valid Unicode")
                return None
            self._bounds(shape, len(value), value, path, "Member must have length")
            if shape.enum and value not in shape.enum:
                canonical = self._in_enum(shape, value, path)
                if canonical is None:
                    self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
                return canonical
            return value
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(value, path, f"Member must be an {'integer' if kind == 'integer' else 'long'}")
                return None
            low, high = INT32 if kind == "integer" else INT64
            if not low <= value <= high:
                self.fail(value, path, f"Member must be within [{low}, {high}]")
                return None
            self._bounds(shape, value, value, path, "Member must have value")
            return value
        if kind in ("double", "float"):
            if not _is_finite_number(value):
                self.fail(value, path, "Member must be a number")
                return None
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                self.fail(value, path, "Member must be a boolean")
                return None
            return value
        if kind == "timestamp":
            if not _is_finite_number(value):
                self.fail(value, path, "Member must be a timestamp in epoch seconds")
                return None
            return value
        return value

    def _structure(self, shape: Shape, value: Any, path: str, depth: int) -> dict | None:
        if not isinstance(value, dict):
            self.fail(value, path, "Member must be a structure")
            return None
        out: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(None, f"{path}.{name}" if path else name, "Member must not be null")
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[name] = self.check(member, item, f"{path}.{name}" if path else name, depth + 1)
        return out

    def _in_enum(self, shape: Shape, value: str, path: str) -> str | None:
        """The model's own spelling of `value` where the enum is matched in any case, else None."""
        relaxed = self.relaxation(shape, path)
        if relaxed is None or relaxed.enum_case:
            return None
        return next((e for e in shape.enum if e.upper() == value.upper()), None)

    def _bounds(self, shape: Shape, size: int, value: Any, path: str, what: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        relaxed = self.relaxation(shape, path) if low is not None else None
        if relaxed is not None and not relaxed.min_length:
            low = None
        if low is not None and size < low:
            self.fail(value, path, f"{what} greater than or equal to {low}")
        if high is not None and size > high:
            self.fail(value, path, f"{what} less than or equal to {high}")


def _is_finite_number(value: Any) -> bool:
    """A JSON number a double can hold: JSON integers are unbounded, and float(10**400) overflows."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _is_unicode(text: str) -> bool:
    """False for strings holding lone surrogates (JSON escapes like \\ud800), which no store can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(shape: Shape | None, params: dict, operation: str = "") -> dict:
    """Check `params` against `shape` (the input of `operation`); raise one ClientException listing every
    violation. The constraints in RELAXED are not enforced."""
    if shape is None:
        return {}
    validator = _Validator(operation)
    cleaned = validator.check(shape, params, "")
    if validator.count:
        count = validator.count
        noun = "error" if count == 1 else "errors"
        more = f"; and {count - len(validator.errors)} more" if count > len(validator.errors) else ""
        raise ClientException(f"{count} validation {noun} detected: " + "; ".join(validator.errors) + more)
    return cleaned or {}


def parse_rest_json(op: OperationModel, body: bytes, labels: Mapping[str, str],
                    query: Mapping[str, list[str]]) -> dict:
    """The validated parameters of a rest-json request (URI labels, query string and JSON body)."""
    shape = op.input_shape
    params = load_json_object(body)
    if shape is not None:
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location:
                # A member bound to the URI, query or headers is never read from the body.
                params.pop(name, None)
            if location == "uri":
                params[name] = labels.get(wire)
            elif location == "querystring":
                values = query.get(wire)
                if values:
                    params[name] = values if member.type_name == "list" else values[0]
    return validate(shape, params, op.name)


def parse_json(op: OperationModel, body: bytes) -> dict:
    """The validated parameters of an awsJson request (the whole body is the input)."""
    return validate(op.input_shape, load_json_object(body), op.name)
