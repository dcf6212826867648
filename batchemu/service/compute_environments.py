"""compute environments operations."""

from __future__ import annotations

OPERATIONS: dict = {}
