"""Opaque nextToken values and maxResults checks shared by every paginated operation."""

from __future__ import annotations

import base64
import json

from batchemu.errors import ClientException


def encode_token(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode()


def decode_token(token: str | None) -> int:
    """The position a nextToken resumes after (0 when there is no token)."""
    if not token:
        return 0
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        if isinstance(position, int) and position >= 0:
            return position
    except (ValueError, KeyError, TypeError):
        pass
    raise ClientException("Invalid nextToken")


def page_size(max_results: int | None, *, default: int, limit: int, name: str = "maxResults") -> int:
    """The page size asked for, checked against AWS's bounds for the operation."""
    if max_results is None:
        return default
    if not 1 <= max_results <= limit:
        raise ClientException(f"{name} must be between 1 and {limit}")
    return max_results
