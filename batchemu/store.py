"""Persistence: one SQLite file in WAL mode; every state change is one transaction. Nothing else writes SQL."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    arn TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_by_kind ON resources (kind, seq);
CREATE INDEX IF NOT EXISTS resources_by_name ON resources (kind, name);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    job_queue_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    job_name TEXT NOT NULL,
    job_definition_arn TEXT NOT NULL,
    parent_id TEXT,
    -- Small columns first: SQLite walks a big value's overflow pages to reach the columns after it.
    summary TEXT NOT NULL,
    wire TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_queue ON jobs (job_queue_arn, status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id, status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS log_streams (
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_name, stream_name)
);
CREATE TABLE IF NOT EXISTS log_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (group_name, stream_name, seq);
"""

# The few fields ListJobs returns, kept beside the document so a page does not decode whole jobs.
SUMMARY_FIELDS = ("jobArn", "jobId", "jobName", "createdAt", "shareIdentifier", "status", "statusReason",
                  "startedAt", "stoppedAt", "jobDefinition", "isCancelled", "isTerminated", "arrayProperties",
                  "nodeProperties")


def job_summary(doc: dict) -> dict:
    """The ListJobs JobSummary of a stored job."""
    summary = {key: doc[key] for key in SUMMARY_FIELDS if doc.get(key) is not None}
    container = doc.get("container") or {}
    if container.get("exitCode") is not None or container.get("reason"):
        summary["container"] = {"exitCode": container.get("exitCode"), "reason": container.get("reason")}
    return summary


JOB_COLUMNS = ("job_id", "job_queue_arn", "status", "created_at", "job_name", "job_definition_arn", "parent_id")


class Tx:
    """One open transaction. Documents are JSON objects in their wire (camelCase) form."""

    def __init__(self, conn: sqlite3.Connection, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str]) -> None:
        self.conn = conn
        self.job_wire = job_wire
        self.summary_wire = summary_wire

    # -- counters --------------------------------------------------------------------------------------
    def next_value(self, name: str) -> int:
        """Increment and return the counter `name` (first value 1); used for revisions and ordering."""
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))
        return self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0]

    # -- resources (compute environments, queues, definitions, policies, consumable resources) ---------
    def put_resource(self, kind: str, arn: str, name: str, doc: dict) -> None:
        """Insert or replace a resource, keeping its creation order when it already exists."""
        row = self.conn.execute("SELECT seq FROM resources WHERE arn = ?", (arn,)).fetchone()
        seq = row[0] if row else self.next_value("resource-seq")
        self.conn.execute(
            "INSERT OR REPLACE INTO resources (arn, kind, name, seq, doc) VALUES (?, ?, ?, ?, ?)",
            (arn, kind, name, seq, json.dumps(doc)))

    def get_resource(self, kind: str, arn: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM resources WHERE kind = ? AND arn = ?", (kind, arn)).fetchone()
        return json.loads(row[0]) if row else None

    def find_resources(self, kind: str, name: str) -> list[dict]:
        """Every resource of `kind` called `name`, oldest first."""
        rows = self.conn.execute(
            "SELECT doc FROM resources WHERE kind = ? AND name = ? ORDER BY seq", (kind, name)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def list_resources(self, kind: str, after_seq: int = 0, limit: int | None = None) -> list[tuple[int, dict]]:
        """(seq, doc) of resources of `kind` in creation order, for keyset pagination."""
        sql = "SELECT seq, doc FROM resources WHERE kind = ? AND seq > ? ORDER BY seq"
        args: list[Any] = [kind, after_seq]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(r[0], json.loads(r[1])) for r in self.conn.execute(sql, args)]

    def resource_seq(self, arn: str) -> int | None:
        row = self.conn.execute("SELECT seq FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def resource_kind(self, arn: str) -> str | None:
        row = self.conn.execute("SELECT kind FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def delete_resource(self, arn: str) -> None:
        self.conn.execute("DELETE FROM resources WHERE arn = ?", (arn,))

    # -- jobs ------------------------------------------------------------------------------------------
    def insert_job(self, doc: dict, *, parent_id: str | None = None) -> None:
        self.conn.execute(
            "INSERT INTO jobs (job_id, job_queue_arn, status, created_at, job_name, job_definition_arn,"
            " parent_id, doc, summary, wire) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc["jobId"], doc["jobQueue"], doc["status"], doc["createdAt"], doc["jobName"],
             doc["jobDefinition"], parent_id, json.dumps(doc), self.summary_wire(job_summary(doc)), self.job_wire(doc)))

    def update_job(self, doc: dict) -> None:
        self.conn.execute(
            "UPDATE jobs SET status = ?, job_queue_arn = ?, doc = ?, summary = ?, wire = ? WHERE job_id = ?",
            (doc["status"], doc["jobQueue"], json.dumps(doc), self.summary_wire(job_summary(doc)), self.job_wire(doc), doc["jobId"]))

    def get_job(self, job_id: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_jobs(self, job_ids: list[str]) -> list[dict]:
        """The jobs with these ids that exist, in the order asked."""
        if not job_ids:
            return []
        marks = ",".join("?" * len(job_ids))
        rows = self.conn.execute(f"SELECT job_id, doc FROM jobs WHERE job_id IN ({marks})", job_ids).fetchall()
        found = {r[0]: r[1] for r in rows}
        return [json.loads(found[i]) for i in dict.fromkeys(job_ids) if i in found]

    def get_jobs_wire(self, job_ids: list[str]) -> list[str]:
        """The serialized JobDetail of each job with these ids that exists, in the order asked."""
        if not job_ids:
            return []
        marks = ",".join("?" * len(job_ids))
        rows = self.conn.execute(f"SELECT job_id, wire FROM jobs WHERE job_id IN ({marks})", job_ids).fetchall()
        found = dict(rows)
        return [found[i] for i in dict.fromkeys(job_ids) if i in found]

    def query_jobs(self, where: dict[str, Any], *, statuses: list[str] | None = None,
                   after_seq: int = 0, limit: int | None = None, name_prefix: str | None = None,
                   name_equals: str | None = None, created_after: int | None = None,
                   created_before: int | None = None, definition: str | None = None,
                   descending: bool = False, summaries: bool = False) -> list[tuple[int, dict]]:
        """(seq, doc) of jobs matching indexed columns, in submit order (keyset pagination on seq).

        With summaries=True each item is the job's serialized ListJobs summary (a str), not a dict."""
        clauses, args = [], []
        for column, value in where.items():
            if column not in JOB_COLUMNS:
                raise ValueError(column)
            if value is None:
                clauses.append(f"{column} IS NULL")
            else:
                clauses.append(f"{column} = ?")
                args.append(value)
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if after_seq:
            clauses.append("seq < ?" if descending else "seq > ?")
            args.append(after_seq)
        if name_prefix is not None:
            clauses.append("substr(lower(job_name), 1, ?) = ?")
            args.extend([len(name_prefix), name_prefix.lower()])
        if name_equals is not None:
            clauses.append("lower(job_name) = ?")
            args.append(name_equals.lower())
        if created_after is not None:
            clauses.append("created_at > ?")
            args.append(created_after)
        if created_before is not None:
            clauses.append("created_at < ?")
            args.append(created_before)
        if definition is not None:
            clauses.append("job_definition_arn " + ("= ?" if definition.startswith("arn:") else "LIKE ? ESCAPE '\\'"))
            if definition.startswith("arn:"):
                args.append(definition)
            else:
                escaped = definition.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                # "name" matches every revision, "name:3" exactly one.
                args.append(f"%:job-definition/{escaped}" + ("" if ":" in definition else ":%"))
        sql = f"SELECT seq, {'summary' if summaries else 'doc'} FROM jobs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC" if descending else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self.conn.execute(sql, args)
        return [(r[0], r[1]) for r in rows] if summaries else [(r[0], json.loads(r[1])) for r in rows]

    def count_jobs(self, statuses: list[str]) -> dict[str, int]:
        """Number of jobs in each of `statuses`."""
        marks = ",".join("?" * len(statuses))
        rows = self.conn.execute(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({marks}) GROUP BY status", statuses)
        return dict(rows.fetchall())

    # -- CloudWatch Logs -------------------------------------------------------------------------------
    def ensure_log_stream(self, group: str, stream: str, created_at: int) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO log_streams (group_name, stream_name, created_at) VALUES (?, ?, ?)",
            (group, stream, created_at))

    def last_log_events(self, group: str, stream: str) -> tuple[int, set[str]]:
        """The newest timestamp in a stream and the messages stamped with it ((0, set()) when empty)."""
        row = self.conn.execute("SELECT MAX(timestamp) FROM log_events WHERE group_name = ? AND stream_name = ?",
                                (group, stream)).fetchone()
        if row[0] is None:
            return 0, set()
        messages = self.conn.execute(
            "SELECT message FROM log_events WHERE group_name = ? AND stream_name = ? AND timestamp = ?",
            (group, stream, row[0])).fetchall()
        return row[0], {m[0] for m in messages}

    def append_log_events(self, group: str, stream: str, events: list[tuple[int, str]], ingestion: int) -> None:
        """Append (timestamp ms, message) events to a stream."""
        self.conn.executemany(
            "INSERT INTO log_events (group_name, stream_name, timestamp, ingestion_time, message)"
            " VALUES (?, ?, ?, ?, ?)",
            [(group, stream, ts, ingestion, message) for ts, message in events])


class Store:
    """The SQLite database behind a server. `path` may be ":memory:" for throw-away state."""

    def __init__(self, path: str, *, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str]) -> None:
        """`job_wire` and `summary_wire` serialize a stored job as DescribeJobs' JobDetail and ListJobs'
        JobSummary; both are kept beside the document so polling clients (the hottest path) read jobs
        without decoding and re-encoding them."""
        self.path = path
        self._job_wire = job_wire
        self._summary_wire = summary_wire
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-32768")  # 32 MiB of pages: pages of big job tables stay hot
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction (nested calls join the outer one); rolled back if the block raises."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield Tx(self._conn, self._job_wire, self._summary_wire)
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield Tx(self._conn, self._job_wire, self._summary_wire)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

