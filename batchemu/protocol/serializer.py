"""Serializes a result against an operation's output shape, and errors in rest-json form."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.model import OperationModel, Shape

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_millis(moment: datetime) -> int:
    """Exact integer milliseconds (float seconds * 1000 is off by one for some values); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(milliseconds=1)


# Python types a member of each kind passes through unchanged (the common case: no conversion call).
_PASS_THROUGH = {"string": str, "integer": int, "long": int, "boolean": bool, "double": float, "float": float}
_CONVERTERS: dict[int, tuple[Shape, Callable[[Any], Any]]] = {}


def _converter(shape: Shape) -> Callable[[Any], Any]:
    """The function reducing a value to what `shape` allows, built once per shape (responses are hot)."""
    entry = _CONVERTERS.get(id(shape))
    if entry is None:
        # The shape is kept in the entry so its id() can never be reused by another object.
        entry = _CONVERTERS[id(shape)] = (shape, _build(shape))
    return entry[1]


def _build(shape: Shape) -> Callable[[Any], Any]:
    kind = shape.type_name
    if kind == "structure":
        # Walk the value's keys (few) against the body members (many): name -> (wire name, shape, type).
        members = {name: (member.serialization.get("name", name), member, _PASS_THROUGH.get(member.type_name))
                   for name, member in shape.members.items() if not member.serialization.get("location")}

        def structure(value: Any) -> dict:
            out = {}
            if isinstance(value, dict):
                for name, item in value.items():
                    entry = members.get(name)
                    if entry is None or item is None:
                        continue
                    out[entry[0]] = item if type(item) is entry[2] else _converter(entry[1])(item)
            return out
        return structure
    if kind == "list":
        member, passing = shape.member, _PASS_THROUGH.get(shape.member.type_name)

        def listing(value: Any) -> list:
            convert = _converter(member)
            return [item if type(item) is passing else convert(item) for item in value if item is not None]
        return listing
    if kind == "map":
        target = shape.value
        return lambda value: {str(k): _converter(target)(v) for k, v in value.items() if v is not None}
    if kind in ("integer", "long"):
        return lambda value: epoch_millis(value) if isinstance(value, datetime) else int(value)
    if kind in ("double", "float"):
        return float
    if kind == "boolean":
        return bool
    if kind == "timestamp":
        return lambda value: value.timestamp() if isinstance(value, datetime) else value
    if kind == "string":
        return lambda value: value if type(value) is str else str(value)
    return lambda value: value


def shape_value(shape: Shape, value: Any) -> Any:
    """`value` reduced to what `shape` allows: no unknown keys, no nulls, integer epoch milliseconds."""
    return _converter(shape)(value)


class Serialized(bytes):
    """A response body already serialized against the operation's output shape (see `projector`)."""


def projector(service: str, shape_name: str) -> Callable[[Any], str]:
    """A function serializing a value as `shape_name` of `service`'s model, for bodies built from parts."""
    from batchemu.protocol.model import service_model
    convert = _converter(service_model(service).shape_for(shape_name))
    return lambda value: json.dumps(convert(value), separators=(",", ":"))


def serialize(op: OperationModel, result: dict | Serialized | None) -> bytes:
    """The JSON body of a successful response (a Serialized result is it already)."""
    if isinstance(result, Serialized):
        return bytes(result)
    shape = op.output_shape
    body = shape_value(shape, result or {}) if shape is not None else {}
    return json.dumps(body, separators=(",", ":")).encode()


def error_body(code: str, message: str) -> bytes:
    """The JSON body of an error, as both botocore and the AWS SDK for JavaScript read it."""
    return json.dumps({"__type": code, "message": message}).encode()
