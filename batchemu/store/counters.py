"""Named counters: revisions of job definitions, and the creation order of resources and service jobs."""

from __future__ import annotations

import sqlite3


class Counters:
    """The counters table of one transaction (`tx.counters`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def next_value(self, name: str) -> int:
        """Increment and return the counter `name` (first value 1); used for revisions and ordering."""
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))
        return self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0]
