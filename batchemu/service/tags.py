"""tags operations."""

from __future__ import annotations

OPERATIONS: dict = {}
