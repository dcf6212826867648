"""Persistence: one SQLite file in WAL mode; every state change is one transaction. Nothing else writes SQL."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
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
    array_index INTEGER,
    array_size INTEGER,          -- set on array parents only
    entered_at INTEGER NOT NULL, -- when the job entered its status
    status_reason TEXT,
    started_at INTEGER,
    stopped_at INTEGER,
    is_cancelled INTEGER NOT NULL DEFAULT 0,
    is_terminated INTEGER NOT NULL DEFAULT 0,
    intent TEXT,                 -- 'cancel' or 'terminate', recorded by the API, carried out by the scheduler
    intent_reason TEXT,
    platform TEXT NOT NULL DEFAULT 'EC2',
    vcpus REAL NOT NULL DEFAULT 1,
    memory INTEGER,
    gpus INTEGER NOT NULL DEFAULT 0,
    share_identifier TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    consumables TEXT,            -- JSON {resource ARN: quantity}
    compute_environment TEXT,    -- of the current attempt
    has_doc INTEGER NOT NULL DEFAULT 1,  -- 0: an array child never started, described from its parent
    -- Small columns first: SQLite walks a big value's overflow pages to reach the columns after it.
    summary TEXT NOT NULL,
    wire TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_queue ON jobs (job_queue_arn, status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id, status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_share ON jobs (job_queue_arn, status, share_identifier, priority, seq);
CREATE INDEX IF NOT EXISTS jobs_array_parents ON jobs (status) WHERE array_size IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_nodes ON jobs (status, seq) WHERE parent_id IS NOT NULL AND array_index IS NULL;
-- On seq, so that each pass's "oldest intents first" reads this index, not every job in seq order.
DROP INDEX IF EXISTS jobs_with_intent;
CREATE INDEX IF NOT EXISTS jobs_with_intent_by_seq ON jobs (seq) WHERE intent IS NOT NULL;
CREATE TABLE IF NOT EXISTS job_dependencies (
    job_id TEXT NOT NULL,        -- the job that waits
    depends_on TEXT NOT NULL,    -- the job it waits for
    type TEXT,                   -- NULL (plain), N_TO_N or SEQUENTIAL
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_dependencies_by_target ON job_dependencies (depends_on);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,      -- 1-based, AWS_BATCH_JOB_ATTEMPT
    phase TEXT NOT NULL,           -- attempts.PHASES: PLACED, STARTED, EXITED, START_FAILED, REQUEUED, ENDED
    compute_environment TEXT,
    container_id TEXT,
    began_at INTEGER NOT NULL,
    ended_at INTEGER,
    exit_code INTEGER,             -- what the engine reported when the container stopped
    oom_killed INTEGER NOT NULL DEFAULT 0,
    engine_error TEXT,             -- an end with no exit code (the engine lost the container)
    start_error TEXT,              -- AWS's reason for a container that could not start
    stop_sent_at INTEGER,          -- last stop asked of the engine (sent again until the container exits)
    timed_out INTEGER NOT NULL DEFAULT 0,
    containers TEXT,               -- JSON [{name, exitCode, reason, containerId}]: each container's end
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    job_queue_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    job_name TEXT NOT NULL,
    share_identifier TEXT,
    quota_share_name TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS service_jobs_by_queue ON service_jobs (job_queue_arn, status, seq);
CREATE INDEX IF NOT EXISTS service_jobs_by_status ON service_jobs (status, seq);
CREATE TABLE IF NOT EXISTS share_usage (
    job_queue_arn TEXT NOT NULL,
    share_identifier TEXT NOT NULL,
    vcpu_seconds REAL NOT NULL,  -- decayed usage of finished attempts, as of updated_at
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_queue_arn, share_identifier)
) WITHOUT ROWID;
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

# A node of a multi-node job: a child that is not an array child. Its parent is queued and placed for it.
NODE = "(parent_id IS NOT NULL AND array_index IS NULL)"
NOT_NODE = "(parent_id IS NULL OR array_index IS NOT NULL)"

# The few fields ListJobs returns, kept beside the document so a page does not decode whole jobs.
SUMMARY_FIELDS = ("jobArn", "jobId", "jobName", "createdAt", "shareIdentifier", "status", "statusReason",
                  "startedAt", "stoppedAt", "jobDefinition", "isCancelled", "isTerminated", "arrayProperties",
                  "nodeProperties")


# The top-level keys of a job's document that job_summary reads.
SUMMARY_SOURCES = (*SUMMARY_FIELDS, "container")


def job_summary(doc: dict) -> dict:
    """The ListJobs JobSummary of a stored job."""
    summary = {key: doc[key] for key in SUMMARY_FIELDS if doc.get(key) is not None}
    if doc.get("nodeProperties"):
        summary["nodeProperties"] = {"numNodes": doc["nodeProperties"]["numNodes"]}
    elif doc.get("nodeDetails"):
        summary["nodeProperties"] = {**doc["nodeDetails"], "numNodes": (doc.get("batchemu") or {}).get("numNodes")}
    container = doc.get("container") or {}
    if container.get("exitCode") is not None or container.get("reason"):
        summary["container"] = {"exitCode": container.get("exitCode"), "reason": container.get("reason")}
    return summary


def job_columns(doc: dict) -> dict[str, Any]:
    """The indexed columns of a stored job, read off its document (the document stays the truth)."""
    info = doc.get("batchemu") or {}
    history = info.get("transitions") or [[doc["status"], doc["createdAt"]]]
    array = doc.get("arrayProperties") or {}
    consumables = info.get("consumables")
    return {
        "job_id": doc["jobId"], "job_queue_arn": doc["jobQueue"], "status": doc["status"],
        "created_at": doc["createdAt"], "job_name": doc["jobName"], "job_definition_arn": doc["jobDefinition"],
        "parent_id": info.get("parentId"), "array_index": array.get("index"), "array_size": array.get("size"),
        "entered_at": history[-1][1], "status_reason": doc.get("statusReason"),
        "started_at": doc.get("startedAt"), "stopped_at": doc.get("stoppedAt"),
        "is_cancelled": int(bool(doc.get("isCancelled"))), "is_terminated": int(bool(doc.get("isTerminated"))),
        # A node of a multi-node job holds no vCPUs of its own: its parent holds every node's.
        "platform": info.get("platform", "EC2"),
        "vcpus": 0.0 if info.get("nodeIndex") is not None else float(info.get("vcpus", 1.0)),
        "memory": info.get("memoryMib"), "gpus": int(info.get("gpus", 0)),
        "share_identifier": doc.get("shareIdentifier"), "priority": int(doc.get("schedulingPriority") or 0),
        "consumables": json.dumps(consumables) if consumables else None,
        "compute_environment": info.get("computeEnvironment"), "has_doc": 1,
    }


COLUMNS = tuple(job_columns({"jobId": "", "jobQueue": "", "status": "", "createdAt": 0, "jobName": "",
                             "jobDefinition": ""}))
# Columns a JobRow carries (everything but the three serialized forms).
ROW_COLUMNS = ("seq",) + COLUMNS + ("intent", "intent_reason")
_ROW_SELECT = ", ".join(ROW_COLUMNS)


class JobRow(dict):
    """A job's columns as a dict (`row["status"]`): enough to schedule it without its document."""


# Fills the new columns of a store written by an earlier version from each job's document.
_MIGRATE_V1 = """
INSERT INTO jobs (seq, job_id, job_queue_arn, status, created_at, job_name, job_definition_arn, parent_id,
    entered_at, status_reason, started_at, stopped_at, is_cancelled, is_terminated, intent, intent_reason,
    platform, vcpus, memory, share_identifier, priority, compute_environment, summary, wire, doc)
SELECT seq, job_id, job_queue_arn, status, created_at, job_name, job_definition_arn, parent_id,
    COALESCE(json_extract(doc, '$.batchemu.transitions[#-1][1]'), created_at),
    json_extract(doc, '$.statusReason'), json_extract(doc, '$.startedAt'), json_extract(doc, '$.stoppedAt'),
    COALESCE(json_extract(doc, '$.isCancelled'), 0), COALESCE(json_extract(doc, '$.isTerminated'), 0),
    CASE WHEN status IN ('STARTING', 'RUNNING') AND json_extract(doc, '$.batchemu.terminateReason') IS NOT NULL
         THEN 'terminate' END,
    json_extract(doc, '$.batchemu.terminateReason'),
    COALESCE(json_extract(doc, '$.batchemu.platform'), 'EC2'), COALESCE(json_extract(doc, '$.batchemu.vcpus'), 1),
    json_extract(doc, '$.batchemu.memoryMib'), json_extract(doc, '$.shareIdentifier'),
    COALESCE(json_extract(doc, '$.schedulingPriority'), 0), json_extract(doc, '$.batchemu.computeEnvironment'),
    summary, wire, doc
FROM jobs_v1;
INSERT OR IGNORE INTO job_dependencies (job_id, depends_on, type)
SELECT jobs_v1.job_id, json_extract(d.value, '$.jobId'), json_extract(d.value, '$.type')
FROM jobs_v1, json_each(jobs_v1.doc, '$.dependsOn') AS d WHERE json_extract(d.value, '$.jobId') IS NOT NULL;
DROP TABLE jobs_v1;
"""


# Attempts on hosts of a store written before the attempts table, from each job's document.
_MIGRATE_ATTEMPTS = """
INSERT OR IGNORE INTO attempts (job_id, attempt, phase, compute_environment, container_id, began_at, exit_code,
    oom_killed, engine_error, start_error, timed_out)
SELECT job_id, json_extract(doc, '$.batchemu.attempt'),
    CASE WHEN json_extract(doc, '$.batchemu.requeue') THEN 'REQUEUED'
         WHEN json_extract(doc, '$.batchemu.startError') IS NOT NULL THEN 'START_FAILED'
         WHEN json_extract(doc, '$.batchemu.exit') IS NOT NULL THEN 'EXITED'
         WHEN json_extract(doc, '$.batchemu.containerId') IS NOT NULL THEN 'STARTED'
         ELSE 'PLACED' END,
    json_extract(doc, '$.batchemu.computeEnvironment'), json_extract(doc, '$.batchemu.containerId'), entered_at,
    json_extract(doc, '$.batchemu.exit.exit_code'), COALESCE(json_extract(doc, '$.batchemu.exit.oom_killed'), 0),
    json_extract(doc, '$.batchemu.exit.error'), json_extract(doc, '$.batchemu.startError'),
    COALESCE(json_extract(doc, '$.batchemu.timedOut'), 0)
FROM jobs WHERE status IN ('STARTING', 'RUNNING') AND has_doc = 1
"""

ATTEMPT_FIELDS = ("phase", "compute_environment", "container_id", "began_at", "ended_at", "exit_code", "oom_killed",
                  "engine_error", "start_error", "stop_sent_at", "timed_out", "containers")


class Tx:
    """One open transaction (or read snapshot). Documents are JSON objects in their wire (camelCase) form.

    Array children that never started are plain rows without a document ("light" rows): reading one
    builds its document from its parent's through `child_doc`, so 10,000 children cost 10,000 small rows."""

    def __init__(self, conn: sqlite3.Connection, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str], child_doc: Callable[[dict, JobRow], dict],
                 resource_written: Callable[[], None] = lambda: None) -> None:
        self.conn = conn
        self.job_wire = job_wire
        self.summary_wire = summary_wire
        self.child_doc = child_doc
        self._resource_written = resource_written
        self._parents: dict[str, dict] = {}

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
        self._resource_written()
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

    def any_resource_in(self, kinds: Iterable[str], statuses: Iterable[str]) -> bool:
        """Whether a resource of one of `kinds` has one of `statuses`."""
        kinds, statuses = list(kinds), list(statuses)
        return self.conn.execute(
            f"SELECT 1 FROM resources WHERE kind IN ({', '.join('?' * len(kinds))})"
            f" AND json_extract(doc, '$.status') IN ({', '.join('?' * len(statuses))}) LIMIT 1",
            (*kinds, *statuses)).fetchone() is not None

    def resource_seq(self, arn: str) -> int | None:
        row = self.conn.execute("SELECT seq FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def resource_kind(self, arn: str) -> str | None:
        row = self.conn.execute("SELECT kind FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def delete_resource(self, arn: str) -> None:
        self._resource_written()
        self.conn.execute("DELETE FROM resources WHERE arn = ?", (arn,))

    # -- jobs: documents -------------------------------------------------------------------------------
    def insert_job(self, doc: dict) -> None:
        columns = job_columns(doc)
        names = ", ".join(columns) + ", doc, summary, wire"
        marks = ", ".join("?" * (len(columns) + 3))
        self.conn.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})",
                          (*columns.values(), json.dumps(doc), self.summary_wire(job_summary(doc)),
                           self.job_wire(doc)))

    def update_job(self, doc: dict) -> None:
        """Store a job's document (an array child that had none gets one) and its columns."""
        columns = job_columns(doc)
        columns.pop("job_id")
        sets = ", ".join(f"{name} = ?" for name in columns)
        self.conn.execute(f"UPDATE jobs SET {sets}, doc = ?, summary = ?, wire = ? WHERE job_id = ?",
                          (*columns.values(), json.dumps(doc), self.summary_wire(job_summary(doc)),
                           self.job_wire(doc), doc["jobId"]))
        self._parents.pop(doc["jobId"], None)

    def update_job_status(self, doc: dict, was: str) -> None:
        """update_job() for a move that changed nothing on the wire but `status` (from `was`), such as
        SUBMITTED -> PENDING -> RUNNABLE of an ordinary job: the stored projections get the new status
        instead of being serialized again from the document (most of the cost of the scheduler's write).
        Anything else on the wire must be unchanged; when the stored projections do not show `was`, the job
        is stored as update_job() stores it."""
        stored = self.conn.execute("SELECT summary, wire FROM jobs WHERE job_id = ? AND has_doc = 1",
                                   (doc["jobId"],)).fetchone()
        summary, wire = (json.loads(stored[0]), json.loads(stored[1])) if stored and stored[0] and stored[1] \
            else ({}, {})
        if summary.get("status") != was or wire.get("status") != was:
            self.update_job(doc)
            return
        summary["status"] = wire["status"] = doc["status"]
        columns = job_columns(doc)
        columns.pop("job_id")
        sets = ", ".join(f"{name} = ?" for name in columns)
        self.conn.execute(f"UPDATE jobs SET {sets}, doc = ?, summary = ?, wire = ? WHERE job_id = ?",
                          (*columns.values(), json.dumps(doc), json.dumps(summary, separators=(",", ":")),
                           json.dumps(wire, separators=(",", ":")), doc["jobId"]))
        self._parents.pop(doc["jobId"], None)

    def _row(self, values: tuple) -> JobRow:
        return JobRow(zip(ROW_COLUMNS, values))

    def _parent(self, parent_id: str) -> dict:
        doc = self._parents.get(parent_id)
        if doc is None:
            raw = self.conn.execute("SELECT doc FROM jobs WHERE job_id = ?", (parent_id,)).fetchone()[0]
            doc = self._parents[parent_id] = json.loads(raw)
        return doc

    def _document(self, row: JobRow, raw: str, *, shared: bool = False, only: tuple[str, ...] | None = None) -> dict:
        """A job's document; `shared` for one only serialized (an array child's then shares its parent's
        nested values instead of copying them: most of the cost of listing children); `only` for one read
        for those keys alone (an array child's then has just them)."""
        if row["has_doc"]:
            return json.loads(raw)
        return self.child_doc(self._parent(row["parent_id"]), row, shared=shared, only=only)

    def get_job(self, job_id: str) -> dict | None:
        found = self.conn.execute(f"SELECT {_ROW_SELECT}, doc FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._document(self._row(found[:-1]), found[-1]) if found else None

    def get_row(self, job_id: str) -> JobRow | None:
        found = self.conn.execute(f"SELECT {_ROW_SELECT} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._row(found) if found else None

    def get_jobs(self, job_ids: list[str]) -> list[dict]:
        """The jobs with these ids that exist, in the order asked."""
        return [self._document(row, raw) for row, raw in self._by_ids(job_ids, "doc")]

    def get_jobs_wire(self, job_ids: list[str]) -> list[str]:
        """The serialized JobDetail of each job with these ids that exists, in the order asked.

        The stored ones come back in a single row: the sqlite3 module lets go of the GIL for every row it
        steps to, and with requests on other threads each of those hand-overs costs more than the row."""
        wanted = list(dict.fromkeys(job_ids))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        found = dict(self._packed(["job_id", "wire"], f"jobs WHERE job_id IN ({marks}) AND has_doc = 1", wanted))
        rest = [job_id for job_id in wanted if job_id not in found]
        if rest:  # array children without a document of their own, or ids that do not exist
            for row, raw in self._by_ids(rest, "wire"):
                found[row["job_id"]] = raw if row["has_doc"] else self.job_wire(self._document(row, raw, shared=True))
        return [found[job_id] for job_id in wanted if job_id in found]

    def _packed(self, columns: list[str], source: str, args) -> list[list[str]]:
        """The values (as text) of `columns` of every row of `source`, read back in a single row. A serialized
        job never holds a raw control character (JSON escapes them), nor does a job id or a number, so they
        join the values and the rows."""
        joined = " || char(1) || ".join(columns)
        packed = self.conn.execute(f"SELECT group_concat({joined}, char(0)) FROM {source}", args).fetchone()[0]
        return [part.split("\x01", len(columns) - 1) for part in packed.split("\x00")] if packed else []

    def _by_ids(self, job_ids: list[str], payload: str) -> list[tuple[JobRow, str]]:
        if not job_ids:
            return []
        marks = ",".join("?" * len(job_ids))
        rows = self.conn.execute(f"SELECT {_ROW_SELECT}, {payload} FROM jobs WHERE job_id IN ({marks})", job_ids)
        found = {r[1]: (self._row(r[:-1]), r[-1]) for r in rows}
        return [found[i] for i in dict.fromkeys(job_ids) if i in found]

    def query_jobs(self, where: dict[str, Any], *, statuses: list[str] | None = None,
                   after_seq: int = 0, limit: int | None = None, name_prefix: str | None = None,
                   name_equals: str | None = None, created_after: int | None = None,
                   created_before: int | None = None, definition: str | None = None,
                   descending: bool = False, summaries: bool = False,
                   rows_only: bool = False, nodes: bool | None = None) -> list[tuple[int, Any]]:
        """(seq, doc) of jobs matching indexed columns, in submit order (keyset pagination on seq); with
        nodes=True only nodes of multi-node jobs, with nodes=False none.

        With summaries=True each item is the job's serialized ListJobs summary (a str), not a dict; with
        rows_only=True it is the job's JobRow (no document decoded)."""
        clauses, args = [], []
        for column, value in where.items():
            if column not in COLUMNS:
                raise ValueError(column)
            if value is None:
                clauses.append(f"{column} IS NULL")
            else:
                clauses.append(f"{column} = ?")
                args.append(value)
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if nodes is not None:
            clauses.append(NODE if nodes else NOT_NODE)
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
            if definition.startswith("arn:"):
                clauses.append("job_definition_arn = ?")
                args.append(definition)
            elif ":" in definition:
                # "name:3" is exactly that revision (compared case-sensitively, as names are).
                clauses.append("substr(job_definition_arn, -?) = ?")
                args.extend([len(definition) + 16, f":job-definition/{definition}"])
            else:
                # "name" is every revision of it.
                clauses.append("instr(job_definition_arn, ?) > 0")
                args.append(f":job-definition/{definition}:")
        payload = "" if rows_only else (", summary" if summaries else ", doc")
        sql = f"SELECT {_ROW_SELECT}{payload} FROM jobs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC" if descending else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        if summaries:
            return self._summaries(sql, args, descending)
        out: list[tuple[int, Any]] = []
        for values in self.conn.execute(sql, args).fetchall():
            row = self._row(values if rows_only else values[:-1])
            if rows_only:
                out.append((row["seq"], row))
            elif summaries:
                summary = (values[-1] if row["has_doc"]
                           else self.summary_wire(job_summary(self._document(row, "", shared=True,
                                                                             only=SUMMARY_SOURCES))))
                out.append((row["seq"], summary))
            else:
                out.append((row["seq"], self._document(row, values[-1])))
        return out

    def _summaries(self, sql: str, args: list, descending: bool) -> list[tuple[int, str]]:
        """query_jobs(summaries=True): the stored summaries come back in a single row (see get_jobs_wire);
        the rows of jobs without a document (array children) are read to build theirs."""
        items = self._packed(["seq", "has_doc", "COALESCE(summary, '')"], f"({sql})", args)
        found = {int(seq): summary for seq, has_doc, summary in items if has_doc == "1"}
        docless = [int(seq) for seq, has_doc, _ in items if has_doc != "1"]
        for start in range(0, len(docless), 500):
            chunk = docless[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for values in self.conn.execute(f"SELECT {_ROW_SELECT} FROM jobs WHERE seq IN ({marks})", chunk):
                row = self._row(values)
                found[row["seq"]] = self.summary_wire(job_summary(self._document(row, "", shared=True,
                                                                                 only=SUMMARY_SOURCES)))
        return sorted(found.items(), reverse=descending)

    def count_jobs(self, statuses: list[str]) -> dict[str, int]:
        """Number of jobs in each of `statuses`."""
        marks = ",".join("?" * len(statuses))
        rows = self.conn.execute(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({marks}) GROUP BY status", statuses)
        return dict(rows.fetchall())

    # -- jobs: plain rows ------------------------------------------------------------------------------
    def insert_children(self, parent: dict, columns: dict[str, Any], count: int) -> None:
        """`count` array children of `parent` as rows without documents, index 0..count-1."""
        values = dict(columns, parent_id=parent["jobId"], array_size=None, has_doc=0)
        names = list(values) + ["job_id", "array_index", "summary", "wire", "doc"]
        marks = ", ".join("?" * len(names))
        fixed = tuple(values.values())
        self.conn.executemany(
            f"INSERT INTO jobs ({', '.join(names)}) VALUES ({marks})",
            ((*fixed, f"{parent['jobId']}:{i}", i, "", "", "") for i in range(count)))

    def queue_ready_submitted(self, now: int) -> int:
        """SUBMITTED -> PENDING -> RUNNABLE, in one statement, of every job that waits for nothing: an
        ordinary job (not an array, not a node) with no dependsOn. As transition() + update_job_status()
        would do it for each, without decoding or encoding any JSON in Python: the document gains the two
        transitions and a new status, the stored projections the new status. Jobs whose projections do not
        show SUBMITTED are left to that slower path. How many moved."""
        cursor = self.conn.execute(
            """UPDATE jobs SET status = 'RUNNABLE', entered_at = :now,
                   doc = json_set(doc, '$.status', 'RUNNABLE',
                                  '$.batchemu.transitions[#]', json_array('PENDING', :now),
                                  '$.batchemu.transitions[#]', json_array('RUNNABLE', :now)),
                   summary = json_set(summary, '$.status', 'RUNNABLE'),
                   wire = json_set(wire, '$.status', 'RUNNABLE')
               WHERE status = 'SUBMITTED' AND has_doc = 1 AND parent_id IS NULL AND COALESCE(array_size, 0) = 0
                 AND COALESCE(json_array_length(doc, '$.dependsOn'), 0) = 0
                 AND json_type(doc, '$.batchemu.transitions') = 'array'
                 AND json_extract(summary, '$.status') = 'SUBMITTED' AND json_extract(wire, '$.status') = 'SUBMITTED'
            """, {"now": now})
        return cursor.rowcount

    def set_rows_status(self, job_ids: list[str], status: str, now: int, reason: str | None = None,
                        **flags: int) -> None:
        """Move jobs that have no document to `status` (their columns are their whole state)."""
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
        self.conn.executemany(f"UPDATE jobs SET {sets} WHERE job_id = ? AND has_doc = 0",
                              ((*args, job_id) for job_id in job_ids))

    def set_status_reason(self, job_id: str, reason: str | None) -> None:
        """Only for rows without a document (a document carries its own statusReason)."""
        self.conn.execute("UPDATE jobs SET status_reason = ? WHERE job_id = ? AND has_doc = 0", (reason, job_id))

    def children_by_status(self, parent_ids: list[str]) -> dict[str, dict[str, int]]:
        """parent id -> {status: number of its children in it}, from one grouped count."""
        if not parent_ids:
            return {}
        marks = ",".join("?" * len(parent_ids))
        out: dict[str, dict[str, int]] = {p: {} for p in parent_ids}
        for parent, status, count in self.conn.execute(
                f"SELECT parent_id, status, COUNT(*) FROM jobs WHERE parent_id IN ({marks})"
                " GROUP BY parent_id, status", parent_ids):
            out[parent][status] = count
        return out

    def active_array_parents(self) -> list[dict]:
        """Documents of the array parents not yet SUCCEEDED or FAILED."""
        rows = self.conn.execute("SELECT doc FROM jobs WHERE status IN ('SUBMITTED', 'PENDING')"
                                 " AND array_size IS NOT NULL ORDER BY seq")
        return [json.loads(r[0]) for r in rows]

    def set_intent(self, where: str, args: tuple, intent: str, reason: str) -> int:
        """Record cancel or terminate on unfinished jobs matching `where` (an SQL condition on jobs);
        a terminate is never downgraded to a cancel. The number of jobs marked."""
        cursor = self.conn.execute(
            f"UPDATE jobs SET intent = ?, intent_reason = ? WHERE ({where})"
            " AND status NOT IN ('SUCCEEDED', 'FAILED') AND (intent IS NULL OR ? = 'terminate')",
            (intent, reason, *args, intent))
        return cursor.rowcount

    def jobs_with_intent(self, limit: int = 1000) -> list[JobRow]:
        rows = self.conn.execute(
            f"SELECT {_ROW_SELECT} FROM jobs WHERE intent IS NOT NULL ORDER BY seq LIMIT ?", (limit,))
        return [self._row(r) for r in rows]

    def clear_intent(self, job_id: str) -> None:
        self.conn.execute("UPDATE jobs SET intent = NULL, intent_reason = NULL WHERE job_id = ?", (job_id,))

    # -- attempts -------------------------------------------------------------------------------------
    def insert_attempt(self, job_id: str, attempt: int, compute_environment: str, now: int) -> None:
        """A new attempt, PLACED (a requeued attempt's number is used again)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO attempts (job_id, attempt, phase, compute_environment, began_at)"
            " VALUES (?, ?, 'PLACED', ?, ?)", (job_id, attempt, compute_environment, now))

    def get_attempt(self, job_id: str, attempt: int) -> dict | None:
        row = self.conn.execute(f"SELECT {', '.join(ATTEMPT_FIELDS)} FROM attempts WHERE job_id = ? AND attempt = ?",
                                (job_id, attempt)).fetchone()
        return dict(zip(ATTEMPT_FIELDS, row), job_id=job_id, attempt=attempt) if row else None

    def update_attempt(self, job_id: str, attempt: int, **fields: Any) -> None:
        unknown = set(fields) - set(ATTEMPT_FIELDS)
        if unknown:
            raise ValueError(unknown)
        sets = ", ".join(f"{name} = ?" for name in fields)
        self.conn.execute(f"UPDATE attempts SET {sets} WHERE job_id = ? AND attempt = ?",
                          (*fields.values(), job_id, attempt))

    def delete_attempt(self, job_id: str, attempt: int) -> None:
        self.conn.execute("DELETE FROM attempts WHERE job_id = ? AND attempt = ?", (job_id, attempt))

    # -- jobs: dependencies ----------------------------------------------------------------------------
    def add_dependencies(self, edges: Iterable[tuple[str, str, str | None]]) -> None:
        """(waiting job, job it waits for, type) edges."""
        self.conn.executemany(
            "INSERT OR IGNORE INTO job_dependencies (job_id, depends_on, type) VALUES (?, ?, ?)", edges)

    def pending_verdicts(self, entered_before: int, limit: int = 5000) -> list[tuple[str, int, str | None, int]]:
        """(job id, has_doc, a FAILED job it waits for or None, whether it still waits) of PENDING jobs
        that entered PENDING no later than `entered_before`; array parents are not among them. A child
        also waits for what its parent waits for."""
        return self.conn.execute(
            """SELECT j.job_id, j.has_doc,
                 (SELECT e.depends_on FROM job_dependencies e JOIN jobs d ON d.job_id = e.depends_on
                   WHERE e.job_id IN (j.job_id, j.parent_id) AND d.status = 'FAILED' LIMIT 1),
                 EXISTS (SELECT 1 FROM job_dependencies e JOIN jobs d ON d.job_id = e.depends_on
                   WHERE e.job_id IN (j.job_id, j.parent_id) AND d.status != 'SUCCEEDED')
               FROM jobs j
               WHERE j.status = 'PENDING' AND j.array_size IS NULL AND j.entered_at <= ?
                 AND (j.parent_id IS NULL OR j.array_index IS NOT NULL)
               ORDER BY j.seq LIMIT ?""", (entered_before, limit)).fetchall()

    # -- jobs: capacity and fair share -----------------------------------------------------------------
    def vcpus_in_use(self) -> dict[str | None, float]:
        """compute environment ARN -> vCPUs of its STARTING and RUNNING jobs."""
        return dict(self.conn.execute(
            "SELECT compute_environment, SUM(vcpus) FROM jobs WHERE status IN ('STARTING', 'RUNNING')"
            " GROUP BY compute_environment").fetchall())

    def runnable_shares(self, queue_arn: str) -> list[str | None]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT share_identifier FROM jobs WHERE job_queue_arn = ? AND status = 'RUNNABLE'",
            (queue_arn,))]

    def runnable_rows(self, queue_arn: str, *, share: str | None = None, by_priority: bool = False,
                      limit: int = 1000) -> list[JobRow]:
        """RUNNABLE jobs of a queue in FIFO order, or (by_priority) of one share, highest priority first;
        never the nodes of a multi-node job (their parent is placed for them)."""
        if by_priority:
            sql = (f"SELECT {_ROW_SELECT} FROM jobs WHERE job_queue_arn = ? AND status = 'RUNNABLE'"
                   f" AND {NOT_NODE} AND share_identifier IS ? ORDER BY priority DESC, seq LIMIT ?")
            args: tuple = (queue_arn, share, limit)
        else:
            sql = (f"SELECT {_ROW_SELECT} FROM jobs WHERE job_queue_arn = ? AND status = 'RUNNABLE'"
                   f" AND {NOT_NODE} ORDER BY seq LIMIT ?")
            args = (queue_arn, limit)
        return [self._row(r) for r in self.conn.execute(sql, args)]

    def on_host_rows(self, queue_arn: str | None = None) -> list[JobRow]:
        sql = f"SELECT {_ROW_SELECT} FROM jobs WHERE status IN ('STARTING', 'RUNNING')"
        args: tuple = ()
        if queue_arn is not None:
            sql += " AND job_queue_arn = ?"
            args = (queue_arn,)
        return [self._row(r) for r in self.conn.execute(sql + " ORDER BY seq", args)]

    def active_shares(self, queue_arn: str) -> int:
        """Share identifiers with a job between SUBMITTED and RUNNING in the queue."""
        return self.conn.execute(
            "SELECT COUNT(DISTINCT share_identifier) FROM jobs WHERE job_queue_arn = ? AND status IN"
            " ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING')", (queue_arn,)).fetchone()[0]

    def share_usage(self, queue_arn: str) -> dict[str, tuple[float, int]]:
        """share -> (decayed vCPU-seconds of finished attempts, as of when)."""
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(
            "SELECT share_identifier, vcpu_seconds, updated_at FROM share_usage WHERE job_queue_arn = ?",
            (queue_arn,))}

    def put_share_usage(self, queue_arn: str, share: str, vcpu_seconds: float, now: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO share_usage (job_queue_arn, share_identifier, vcpu_seconds, updated_at)"
            " VALUES (?, ?, ?, ?)", (queue_arn, share, vcpu_seconds, now))

    # -- service jobs (SageMaker Training through Batch): a table of their own, never in ListJobs --------
    def insert_service_job(self, doc: dict) -> None:
        self.conn.execute(
            "INSERT INTO service_jobs (job_id, job_queue_arn, status, created_at, job_name, share_identifier,"
            " quota_share_name, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (doc["jobId"], doc["jobQueue"], doc["status"], doc["createdAt"], doc["jobName"],
             doc.get("shareIdentifier"), doc.get("quotaShareName"), json.dumps(doc)))

    def update_service_job(self, doc: dict) -> None:
        self.conn.execute("UPDATE service_jobs SET status = ?, doc = ? WHERE job_id = ?",
                          (doc["status"], json.dumps(doc), doc["jobId"]))

    def get_service_job(self, job_id: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM service_jobs WHERE job_id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def service_jobs(self, statuses: Iterable[str]) -> list[dict]:
        """Documents of the service jobs in these statuses, in submit order."""
        statuses = list(statuses)
        rows = self.conn.execute(f"SELECT doc FROM service_jobs WHERE status IN ({','.join('?' * len(statuses))})"
                                 " ORDER BY seq", statuses)
        return [json.loads(r[0]) for r in rows]

    def count_service_jobs(self, statuses: Iterable[str], queue_arn: str | None = None) -> int:
        statuses = list(statuses)
        sql = f"SELECT COUNT(*) FROM service_jobs WHERE status IN ({','.join('?' * len(statuses))})"
        if queue_arn is not None:
            sql += " AND job_queue_arn = ?"
            statuses.append(queue_arn)
        return self.conn.execute(sql, statuses).fetchone()[0]

    def query_service_jobs(self, *, queue_arn: str | None = None, statuses: list[str] | None = None,
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
        rows = self.conn.execute(f"SELECT seq, doc FROM service_jobs WHERE {' AND '.join(clauses)}"
                                 f" ORDER BY seq {order} LIMIT ?", (*args, limit))
        return [(r[0], json.loads(r[1])) for r in rows]

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


# Each WAL reader connection's page cache. 1 MiB did not hold the 100 rows (and their index pages) of a repeated
# DescribeJobs at 100,000 stored jobs: every call read them again from the file (2.5-3.6 ms, against 1.6 ms).
READER_CACHE_MIB = 4


class StateError(Exception):
    """The state file cannot be used; str() says why and what to do, for the command line."""

    def __init__(self, path: str, exc: Exception) -> None:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            why = "is not a batchemu state file (corrupt, or another kind of file): move it away or pass --state"
        elif "locked" in text or "busy" in text:
            why = "is locked by another process (another batchemu serve on the same file?)"
        elif "readonly" in text or "read-only" in text:
            why = "is read-only: batchemu writes every change to it; make it writable or pass --state"
        else:
            why = "cannot be opened or created: check the path and its permissions, or pass --state"
        super().__init__(f"state file {path} {why} ({text})")


class Store:
    """The SQLite database behind a server. `path` may be ":memory:" for throw-away state."""

    def __init__(self, path: str, *, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str], child_doc: Callable[[dict, JobRow], dict]) -> None:
        """`job_wire` and `summary_wire` serialize a stored job as DescribeJobs' JobDetail and ListJobs'
        JobSummary; both are kept beside the document so polling clients (the hottest path) read jobs
        without decoding and re-encoding them. `child_doc(parent, row, shared=...)` is the document of an
        array child that has none of its own yet."""
        self.path = path
        self._job_wire = job_wire
        self._summary_wire = summary_wire
        self._child_doc = child_doc
        self._lock = threading.RLock()
        try:
            self._conn = self._connect()
            self._conn.execute("PRAGMA busy_timeout=3000")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._pending_attempts = False
            self._migrate()
            self._conn.executescript(SCHEMA)
            if self._pending_attempts:
                self._conn.execute(_MIGRATE_ATTEMPTS)
            if "containers" not in {r[1] for r in self._conn.execute("PRAGMA table_info(attempts)")}:
                self._conn.execute("ALTER TABLE attempts ADD COLUMN containers TEXT")
            # A write at start: a read-only or locked file is found now, not at the first SubmitJob.
            self._conn.execute("INSERT INTO counters (name, value) VALUES ('opened', 1) "
                               "ON CONFLICT(name) DO UPDATE SET value = value + 1")
            self._conn.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise StateError(path, exc) from None
        self._depth = 0
        self._owner: int | None = None
        self._readers = threading.local()
        # Counts writes of resources (queues, compute environments, ...) made through this object, the only
        # writer of its file: the scheduler settles resources again only after one, or while one is in
        # transit. Bumped when written, so a rolled-back write only costs one more look.
        self.resource_revision = 0
        # Readers get their own connections (WAL: they never wait for the writer); not for ":memory:",
        # where every connection would be a database of its own.
        self._shared_reads = path == ":memory:" or path.startswith("file::memory:")

    def _connect(self, cache_mib: int = 32) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # The writer's 32 MiB of pages keep big job tables hot; each reader thread has a smaller cache of its
        # own (the operating system's file cache is shared by all of them).
        conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _migrate(self) -> None:
        """Bring a store written by an earlier version up to SCHEMA, keeping every job."""
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(jobs)")}
        if columns and not self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'attempts'").fetchone():
            self._pending_attempts = True
        if not columns or "has_doc" in columns:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for index in ("jobs_by_queue", "jobs_by_parent", "jobs_by_status"):
                    self._conn.execute(f"DROP INDEX IF EXISTS {index}")
                self._conn.execute("ALTER TABLE jobs RENAME TO jobs_v1")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                for statement in _MIGRATE_V1.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _tx(self, conn: sqlite3.Connection) -> Tx:
        return Tx(conn, self._job_wire, self._summary_wire, self._child_doc, self._resource_written)

    def _resource_written(self) -> None:
        self.resource_revision += 1

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction (nested calls join the outer one); rolled back if the block raises."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._tx(self._conn)
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self._owner = threading.get_ident()
            try:
                yield self._tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0
                self._owner = None

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent read-only snapshot that does not wait for the writer (nor makes it wait)."""
        if self._shared_reads or self._owner == threading.get_ident():
            with self.transaction() as tx:
                yield tx
            return
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect(cache_mib=READER_CACHE_MIB)
        conn.execute("BEGIN")
        try:
            yield self._tx(conn)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
