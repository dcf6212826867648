"""Serializes a result against an operation's output shape, and errors in rest-json form."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.model import OperationModel, Shape

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_millis(moment: datetime) -> int:
    """Exact integer milliseconds (float seconds * 1000 is off by one for some values); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def shape_value(shape: Shape, value: Any) -> Any:
    """`value` reduced to what `shape` allows: no unknown keys, no nulls, integer epoch milliseconds."""
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            item = value.get(name) if isinstance(value, dict) else None
            if item is None or member.serialization.get("location"):
                continue
            out[member.serialization.get("name", name)] = shape_value(member, item)
        return out
    if kind == "list":
        return [shape_value(shape.member, item) for item in value if item is not None]
    if kind == "map":
        return {str(k): shape_value(shape.value, v) for k, v in value.items() if v is not None}
    if kind in ("integer", "long"):
        if isinstance(value, datetime):
            return epoch_millis(value)
        return int(value)
    if kind in ("double", "float"):
        return float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value.timestamp()
        return value
    if kind == "string":
        return str(value)
    return value


def serialize(op: OperationModel, result: dict | None) -> bytes:
    """The JSON body of a successful response."""
    shape = op.output_shape
    body = shape_value(shape, result or {}) if shape is not None else {}
    return json.dumps(body, separators=(",", ":")).encode()


def error_body(code: str, message: str) -> bytes:
    """The JSON body of an error, as both botocore and the AWS SDK for JavaScript read it."""
    return json.dumps({"__type": code, "message": message}).encode()
