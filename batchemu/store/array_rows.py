"""Array children stored as rows only: the children of an array job get no document until they start (their
columns are their whole state, their document is built from their parent's when read)."""

from __future__ import annotations

import sqlite3
from typing import Any


class ArrayRows:
    """The array children without a document of one transaction (`tx.arrays`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert_children(self, parent: dict, columns: dict[str, Any], count: int) -> None:
        """`count` array children of `parent` as rows without documents, index 0..count-1."""
        values = dict(columns, parent_id=parent["jobId"], array_size=None, has_doc=0)
        names = list(values) + ["job_id", "array_index", "summary", "wire", "doc"]
        marks = ", ".join("?" * len(names))
        fixed = tuple(values.values())
        self._conn.executemany(
            f"INSERT INTO jobs ({', '.join(names)}) VALUES ({marks})",
            ((*fixed, f"{parent['jobId']}:{i}", i, "", "", "") for i in range(count)))

    def set_children_status(self, job_ids: list[str], status: str, now: int, reason: str | None = None,
                            **flags: int) -> None:
        """Move children that have no document to `status`; `flags` sets is_cancelled or is_terminated."""
        sets = "status = ?, entered_at = ?, status_reason = COALESCE(?, status_reason)"
        args: list[Any] = [status, now, reason]
        if status in ("SUCCEEDED", "FAILED"):
            sets += ", stopped_at = ?, intent = NULL, intent_reason = NULL"
            args.append(now)
        for name, value in flags.items():
            if name not in ("is_cancelled", "is_terminated"):
                raise ValueError(name)
            sets += f", {name} = ?"
            args.append(value)
        self._conn.executemany(f"UPDATE jobs SET {sets} WHERE job_id = ? AND has_doc = 0",
                               ((*args, job_id) for job_id in job_ids))

    def set_child_status_reason(self, job_id: str, reason: str | None) -> None:
        """Only for a child without a document (a document carries its own statusReason)."""
        self._conn.execute("UPDATE jobs SET status_reason = ? WHERE job_id = ? AND has_doc = 0", (reason, job_id))

    def children_by_status(self, parent_ids: list[str]) -> dict[str, dict[str, int]]:
        """parent id -> {status: number of its children in it}, from one grouped count."""
        if not parent_ids:
            return {}
        marks = ",".join("?" * len(parent_ids))
        out: dict[str, dict[str, int]] = {p: {} for p in parent_ids}
        for parent, status, count in self._conn.execute(
                f"SELECT parent_id, status, COUNT(*) FROM jobs WHERE parent_id IN ({marks})"
                " GROUP BY parent_id, status", parent_ids):
            out[parent][status] = count
        return out
