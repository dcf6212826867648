"""Resources as JSON documents by ARN and kind: compute environments, job queues, job definitions, scheduling
policies, consumable resources, service environments, quota shares, log groups."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from batchemu.store.counters import Counters


class ResourceRows:
    """The resources table of one transaction (`tx.resources`), in creation order."""

    def __init__(self, conn: sqlite3.Connection, counters: Counters, written: Callable[[], None]) -> None:
        """`written` is called before each write (the scheduler settles resources again only after one)."""
        self._conn = conn
        self._counters = counters
        self._written = written

    def put(self, kind: str, arn: str, name: str, doc: dict) -> None:
        """Insert or replace a resource, keeping its creation order when it already exists."""
        row = self._conn.execute("SELECT seq FROM resources WHERE arn = ?", (arn,)).fetchone()
        seq = row[0] if row else self._counters.next_value("resource-seq")
        self._written()
        self._conn.execute(
            "INSERT OR REPLACE INTO resources (arn, kind, name, seq, doc) VALUES (?, ?, ?, ?, ?)",
            (arn, kind, name, seq, json.dumps(doc)))

    def get(self, kind: str, arn: str) -> dict | None:
        row = self._conn.execute("SELECT doc FROM resources WHERE kind = ? AND arn = ?", (kind, arn)).fetchone()
        return json.loads(row[0]) if row else None

    def find(self, kind: str, name: str) -> list[dict]:
        """Every resource of `kind` called `name`, oldest first."""
        rows = self._conn.execute(
            "SELECT doc FROM resources WHERE kind = ? AND name = ? ORDER BY seq", (kind, name)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def of_kind(self, kind: str, after_seq: int = 0, limit: int | None = None) -> list[tuple[int, dict]]:
        """(seq, doc) of resources of `kind` in creation order, for keyset pagination."""
        sql = "SELECT seq, doc FROM resources WHERE kind = ? AND seq > ? ORDER BY seq"
        args: list[Any] = [kind, after_seq]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(r[0], json.loads(r[1])) for r in self._conn.execute(sql, args)]

    def count(self, kind: str) -> int:
        """How many resources of `kind` there are."""
        return self._conn.execute("SELECT COUNT(*) FROM resources WHERE kind = ?", (kind,)).fetchone()[0]

    def any_in(self, kinds: Iterable[str], statuses: Iterable[str]) -> bool:
        """Whether a resource of one of `kinds` has one of `statuses`."""
        kinds, statuses = list(kinds), list(statuses)
        return self._conn.execute(
            f"SELECT 1 FROM resources WHERE kind IN ({', '.join('?' * len(kinds))})"
            f" AND json_extract(doc, '$.status') IN ({', '.join('?' * len(statuses))}) LIMIT 1",
            (*kinds, *statuses)).fetchone() is not None

    def seq(self, arn: str) -> int | None:
        """The creation order of a resource (None when there is no such resource)."""
        row = self._conn.execute("SELECT seq FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def kind(self, arn: str) -> str | None:
        """The kind of a resource (None when there is no such resource)."""
        row = self._conn.execute("SELECT kind FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def delete(self, arn: str) -> None:
        self._written()
        self._conn.execute("DELETE FROM resources WHERE arn = ?", (arn,))
