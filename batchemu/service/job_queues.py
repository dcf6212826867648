"""job queues operations."""

from __future__ import annotations

OPERATIONS: dict = {}
