"""Service jobs (SageMaker Training through Batch): a table of their own, never in ListJobs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from batchemu.store.event_outbox import SERVICE_JOB, EventOutbox, pending


class ServiceJobRows:
    """The service jobs of one transaction (`tx.service_jobs`), as documents in their wire form."""

    def __init__(self, conn: sqlite3.Connection, events: EventOutbox) -> None:
        self._conn = conn
        self._events = events

    def insert(self, doc: dict) -> None:
        changes = pending(doc)
        stored = json.dumps(doc)
        self._conn.execute(
            "INSERT INTO service_jobs (job_id, job_queue_arn, status, created_at, job_name, share_identifier,"
            " quota_share_name, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (doc["jobId"], doc["jobQueue"], doc["status"], doc["createdAt"], doc["jobName"],
             doc.get("shareIdentifier"), doc.get("quotaShareName"), stored))
        self._events.record(SERVICE_JOB, doc, changes, stored)

    def update(self, doc: dict) -> None:
        changes = pending(doc)
        stored = json.dumps(doc)
        self._conn.execute("UPDATE service_jobs SET status = ?, doc = ? WHERE job_id = ?",
                           (doc["status"], stored, doc["jobId"]))
        self._events.record(SERVICE_JOB, doc, changes, stored)

    def get(self, job_id: str) -> dict | None:
        row = self._conn.execute("SELECT doc FROM service_jobs WHERE job_id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def in_statuses(self, statuses: Iterable[str]) -> list[dict]:
        """Documents of the service jobs in these statuses, in submit order."""
        statuses = list(statuses)
        rows = self._conn.execute(
            f"SELECT doc FROM service_jobs WHERE status IN ({','.join('?' * len(statuses))}) ORDER BY seq", statuses)
        return [json.loads(r[0]) for r in rows]

    def count(self, statuses: Iterable[str], queue_arn: str | None = None) -> int:
        """How many service jobs are in these statuses (in one queue, or in all)."""
        statuses = list(statuses)
        sql = f"SELECT COUNT(*) FROM service_jobs WHERE status IN ({','.join('?' * len(statuses))})"
        if queue_arn is not None:
            sql += " AND job_queue_arn = ?"
            statuses.append(queue_arn)
        return self._conn.execute(sql, statuses).fetchone()[0]

    def query(self, *, queue_arn: str | None = None, statuses: list[str] | None = None,
              after_seq: int = 0, limit: int = 100, descending: bool = False,
              name_prefix: str | None = None, name_equals: str | None = None,
              created_after: int | None = None, created_before: int | None = None,
              share: str | None = None, quota_share: str | None = None) -> list[tuple[int, dict]]:
        """(seq, doc) of service jobs matching, in submit order (newest first when descending)."""
        clauses, args = ["1 = 1"], []
        for clause, value in (("job_queue_arn = ?", queue_arn), ("created_at > ?", created_after),
                              ("created_at < ?", created_before), ("share_identifier = ?", share),
                              ("quota_share_name = ?", quota_share), ("lower(job_name) = ?", name_equals)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if name_prefix is not None:
            clauses.append("substr(lower(job_name), 1, ?) = ?")
            args.extend([len(name_prefix), name_prefix])
        if after_seq:
            clauses.append("seq < ?" if descending else "seq > ?")
            args.append(after_seq)
        order = "DESC" if descending else ""
        rows = self._conn.execute(f"SELECT seq, doc FROM service_jobs WHERE {' AND '.join(clauses)}"
                                  f" ORDER BY seq {order} LIMIT ?", (*args, limit))
        return [(r[0], json.loads(r[1])) for r in rows]
