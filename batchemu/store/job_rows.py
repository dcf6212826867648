"""Jobs: one row each, with indexed columns, the job's document and its two stored projections (the serialized
DescribeJobs JobDetail and ListJobs JobSummary); reads by id, the queries of ListJobs and of the scheduler.

Array children that never started are plain rows without a document ("light" rows, see array_rows): reading
one builds its document from its parent's through `child_doc`, so 10,000 children cost 10,000 small rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from batchemu.store.event_outbox import JOB, EventOutbox, pending
from batchemu.store.projections import (
    COLUMNS,
    NODE,
    NOT_NODE,
    ROW_SELECT,
    SUMMARY_SOURCES,
    JobRow,
    job_columns,
    job_row,
    job_summary,
)


class JobRows:
    """The jobs of one transaction (`tx.jobs`). Documents are JSON objects in their wire (camelCase) form."""

    def __init__(self, conn: sqlite3.Connection, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str], child_doc: Callable[..., dict], events: EventOutbox) -> None:
        self._conn = conn
        self._events = events
        self._job_wire = job_wire
        self._summary_wire = summary_wire
        self._child_doc = child_doc
        self._parents: dict[str, dict] = {}

    # -- writes ----------------------------------------------------------------------------------------
    def insert(self, doc: dict) -> None:
        columns = job_columns(doc)
        names = ", ".join(columns) + ", doc, summary, wire"
        marks = ", ".join("?" * (len(columns) + 3))
        changes, wire = pending(doc), self._job_wire(doc)
        self._conn.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})",
                           (*columns.values(), json.dumps(doc), self._summary_wire(job_summary(doc)), wire))
        self._events.record(JOB, doc, changes, wire)

    def update(self, doc: dict) -> None:
        """Store a job's document (an array child that had none gets one) and its columns."""
        self._write(doc, self._summary_wire(job_summary(doc)), self._job_wire(doc))

    def update_status(self, doc: dict, was: str) -> None:
        """update() for a move that changed nothing on the wire but `status` (from `was`), such as
        SUBMITTED -> PENDING -> RUNNABLE of an ordinary job: the stored projections get the new status
        instead of being serialized again from the document (most of the cost of the scheduler's write).
        Anything else on the wire must be unchanged; when the stored projections do not show `was`, the job
        is stored as update() stores it."""
        stored = self._conn.execute("SELECT summary, wire FROM jobs WHERE job_id = ? AND has_doc = 1",
                                    (doc["jobId"],)).fetchone()
        summary, wire = (json.loads(stored[0]), json.loads(stored[1])) if stored and stored[0] and stored[1] \
            else ({}, {})
        if summary.get("status") != was or wire.get("status") != was:
            self.update(doc)
            return
        summary["status"] = wire["status"] = doc["status"]
        self._write(doc, json.dumps(summary, separators=(",", ":")), json.dumps(wire, separators=(",", ":")))

    def _write(self, doc: dict, summary: str, wire: str) -> None:
        columns = job_columns(doc)
        columns.pop("job_id")
        sets = ", ".join(f"{name} = ?" for name in columns)
        changes = pending(doc)
        self._conn.execute(f"UPDATE jobs SET {sets}, doc = ?, summary = ?, wire = ? WHERE job_id = ?",
                           (*columns.values(), json.dumps(doc), summary, wire, doc["jobId"]))
        self._parents.pop(doc["jobId"], None)
        self._events.record(JOB, doc, changes, wire)

    def queue_ready_submitted(self, now: int) -> int:
        """SUBMITTED -> PENDING -> RUNNABLE, in one statement, of every job that waits for nothing: an
        ordinary job (not an array, not a node) with no dependsOn. As transition() + update_status()
        would do it for each, without decoding or encoding any JSON in Python: the document gains the two
        transitions and a new status, the stored projections the new status. Jobs whose projections do not
        show SUBMITTED are left to that slower path. Each move's two events go to the outbox. How many moved."""
        moved = self._conn.execute(
            f"""UPDATE jobs SET status = 'RUNNABLE', entered_at = :now,
                   doc = json_set(doc, '$.status', 'RUNNABLE',
                                  '$.batchemu.transitions[#]', json_array('PENDING', :now),
                                  '$.batchemu.transitions[#]', json_array('RUNNABLE', :now)),
                   summary = json_set(summary, '$.status', 'RUNNABLE'),
                   wire = json_set(wire, '$.status', 'RUNNABLE')
               WHERE {_READY_SUBMITTED}
               RETURNING seq, job_id, job_queue_arn, status_reason, wire""", {"now": now}).fetchall()
        moved.sort()
        self._events.record_queued(moved, now)
        return len(moved)

    # -- reads by id -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict | None:
        found = self._conn.execute(f"SELECT {ROW_SELECT}, doc FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._document(job_row(found[:-1]), found[-1]) if found else None

    def require(self, job_id: str) -> dict:
        """get() of a job this transaction already knows exists (a row it read, a job it placed): LookupError,
        a defect of the caller rather than a user's error, when there is none."""
        doc = self.get(job_id)
        if doc is None:
            raise LookupError(f"job {job_id} does not exist")
        return doc

    def row(self, job_id: str) -> JobRow | None:
        found = self._conn.execute(f"SELECT {ROW_SELECT} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return job_row(found) if found else None

    def wire(self, job_ids: list[str]) -> list[str]:
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
                found[row["job_id"]] = raw if row["has_doc"] else self._job_wire(self._document(row, raw,
                                                                                               shared=True))
        return [found[job_id] for job_id in wanted if job_id in found]

    def wire_as_child_row(self, job_id: str, status: str, reason: str | None, at: int) -> str | None:
        """The serialized JobDetail an array child had while it was a row without a document in `status`
        (with `reason`, since `at`): built from its parent's document as now. None if the job does not exist."""
        found = self._conn.execute(f"SELECT {ROW_SELECT} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if found is None:
            return None
        row = job_row(found)
        if row["parent_id"] is None:
            return None
        row.update(status=status, status_reason=reason, entered_at=at, has_doc=0,
                   stopped_at=at if status in ("SUCCEEDED", "FAILED") else None)
        return self._job_wire(self._document(row, "", shared=True))

    def _by_ids(self, job_ids: list[str], payload: str) -> list[tuple[JobRow, str]]:
        marks = ",".join("?" * len(job_ids))
        rows = self._conn.execute(f"SELECT {ROW_SELECT}, {payload} FROM jobs WHERE job_id IN ({marks})", job_ids)
        found = {r[1]: (job_row(r[:-1]), r[-1]) for r in rows}
        return [found[i] for i in dict.fromkeys(job_ids) if i in found]

    def _packed(self, columns: list[str], source: str, args) -> list[list[str]]:
        """The values (as text) of `columns` of every row of `source`, read back in a single row. A serialized
        job never holds a raw control character (JSON escapes them), nor does a job id or a number, so they
        join the values and the rows."""
        joined = " || char(1) || ".join(columns)
        packed = self._conn.execute(f"SELECT group_concat({joined}, char(0)) FROM {source}", args).fetchone()[0]
        return [part.split("\x01", len(columns) - 1) for part in packed.split("\x00")] if packed else []

    def _parent(self, parent_id: str) -> dict:
        doc = self._parents.get(parent_id)
        if doc is None:
            raw = self._conn.execute("SELECT doc FROM jobs WHERE job_id = ?", (parent_id,)).fetchone()[0]
            doc = self._parents[parent_id] = json.loads(raw)
        return doc

    def _document(self, row: JobRow, raw: str, *, shared: bool = False, only: tuple[str, ...] | None = None) -> dict:
        """A job's document; `shared` for one only serialized (an array child's then shares its parent's
        nested values instead of copying them: most of the cost of listing children); `only` for one read
        for those keys alone (an array child's then has just them)."""
        if row["has_doc"]:
            return json.loads(raw)
        return self._child_doc(self._parent(row["parent_id"]), row, shared=shared, only=only)

    # -- queries ---------------------------------------------------------------------------------------
    def query(self, where: dict[str, Any], *, statuses: list[str] | None = None,
              after_seq: int = 0, limit: int | None = None, name_prefix: str | None = None,
              name_equals: str | None = None, created_after: int | None = None,
              created_before: int | None = None, definition: str | None = None,
              descending: bool = False, summaries: bool = False,
              rows_only: bool = False, nodes: bool | None = None) -> list[tuple[int, Any]]:
        """(seq, doc) of jobs whose columns equal `where`'s values, in submit order (keyset pagination on
        seq); with nodes=True only nodes of multi-node jobs, with nodes=False none.

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
            clauses.append(_definition_clause(definition, args))
        payload = "" if rows_only else (", summary" if summaries else ", doc")
        sql = f"SELECT {ROW_SELECT}{payload} FROM jobs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC" if descending else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        if summaries:
            return self._summaries(sql, args, descending)
        out: list[tuple[int, Any]] = []
        for values in self._conn.execute(sql, args).fetchall():
            row = job_row(values if rows_only else values[:-1])
            out.append((row["seq"], row if rows_only else self._document(row, values[-1])))
        return out

    def _summaries(self, sql: str, args: list, descending: bool) -> list[tuple[int, str]]:
        """query(summaries=True): the stored summaries come back in a single row (see wire); the rows of
        jobs without a document (array children) are read to build theirs."""
        items = self._packed(["seq", "has_doc", "COALESCE(summary, '')"], f"({sql})", args)
        found = {int(seq): summary for seq, has_doc, summary in items if has_doc == "1"}
        docless = [int(seq) for seq, has_doc, _ in items if has_doc != "1"]
        for start in range(0, len(docless), 500):
            chunk = docless[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for values in self._conn.execute(f"SELECT {ROW_SELECT} FROM jobs WHERE seq IN ({marks})", chunk):
                row = job_row(values)
                found[row["seq"]] = self._summary_wire(job_summary(self._document(row, "", shared=True,
                                                                                  only=SUMMARY_SOURCES)))
        return sorted(found.items(), reverse=descending)

    def count_by_status(self, statuses: list[str]) -> dict[str, int]:
        """Number of jobs in each of `statuses`."""
        marks = ",".join("?" * len(statuses))
        rows = self._conn.execute(
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({marks}) GROUP BY status", statuses)
        return dict(rows.fetchall())

    def runnable(self, queue_arn: str, *, share: str | None = None, by_priority: bool = False,
                 limit: int = 1000) -> list[JobRow]:
        """RUNNABLE jobs of a queue in FIFO order, or (by_priority) of one share, highest priority first;
        never the nodes of a multi-node job (their parent is placed for them)."""
        if by_priority:
            sql = (f"SELECT {ROW_SELECT} FROM jobs WHERE job_queue_arn = ? AND status = 'RUNNABLE'"
                   f" AND {NOT_NODE} AND share_identifier IS ? ORDER BY priority DESC, seq LIMIT ?")
            args: tuple = (queue_arn, share, limit)
        else:
            sql = (f"SELECT {ROW_SELECT} FROM jobs WHERE job_queue_arn = ? AND status = 'RUNNABLE'"
                   f" AND {NOT_NODE} ORDER BY seq LIMIT ?")
            args = (queue_arn, limit)
        return [job_row(r) for r in self._conn.execute(sql, args)]

    def on_host(self, queue_arn: str | None = None) -> list[JobRow]:
        """STARTING and RUNNING jobs (of one queue, or of all), in submit order."""
        sql = f"SELECT {ROW_SELECT} FROM jobs WHERE status IN ('STARTING', 'RUNNING')"
        args: tuple = ()
        if queue_arn is not None:
            sql += " AND job_queue_arn = ?"
            args = (queue_arn,)
        return [job_row(r) for r in self._conn.execute(sql + " ORDER BY seq", args)]

    def timeline(self, queue_arn: str, since: int, until: int, limit: int, scan: int) -> list[dict]:
        """The `limit` newest jobs of a queue that were unfinished at some time in [since, until], newest first:
        job_id, job_name, status, parent_id and transitions ([[status, epoch ms], ...] from the document, or
        the one status of an array child without a document). Array parents and the nodes of multi-node jobs
        are left out (their children and parent stand for them). Every unfinished job is a candidate, but only
        the `scan` newest finished ones, so that a queue's long history costs bounded work."""
        kept = f"array_size IS NULL AND {NOT_NODE} AND created_at <= ?"
        # One status at a time, so that each walks the (queue, status, seq) index newest first and stops early.
        seqs: list[tuple[int]] = []
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
            seqs += self._conn.execute(
                f"SELECT seq FROM jobs WHERE job_queue_arn = ? AND status = ? AND {kept} ORDER BY seq DESC LIMIT ?",
                (queue_arn, status, until, limit)).fetchall()
        for status in ("SUCCEEDED", "FAILED"):
            seqs += self._conn.execute(
                f"""SELECT seq FROM jobs WHERE seq IN (
                        SELECT seq FROM jobs WHERE job_queue_arn = ? AND status = ? ORDER BY seq DESC LIMIT ?)
                      AND stopped_at >= ? AND {kept} ORDER BY seq DESC LIMIT ?""",
                (queue_arn, status, scan, since, until, limit)).fetchall()
        chosen = sorted({seq for (seq,) in seqs}, reverse=True)[:limit]
        if not chosen:
            return []
        rows = self._conn.execute(
            f"""SELECT job_id, job_name, status, parent_id, entered_at,
                   CASE WHEN has_doc THEN json_extract(doc, '$.batchemu.transitions') END
               FROM jobs WHERE seq IN ({','.join('?' * len(chosen))}) ORDER BY seq DESC""", chosen)
        out = []
        for job_id, name, status, parent_id, entered_at, transitions in rows:
            history = json.loads(transitions) if transitions else [[status, entered_at]]
            out.append({"job_id": job_id, "job_name": name, "status": status, "parent_id": parent_id,
                        "transitions": history})
        return out

    def active_array_parents(self) -> list[dict]:
        """Documents of the array parents not yet SUCCEEDED or FAILED."""
        rows = self._conn.execute("SELECT doc FROM jobs WHERE status IN ('SUBMITTED', 'PENDING')"
                                  " AND array_size IS NOT NULL ORDER BY seq")
        return [json.loads(r[0]) for r in rows]


# The jobs queue_ready_submitted moves: SUBMITTED ordinary jobs that wait for nothing, stored as it expects.
_READY_SUBMITTED = """status = 'SUBMITTED' AND has_doc = 1 AND parent_id IS NULL AND COALESCE(array_size, 0) = 0
    AND COALESCE(json_array_length(doc, '$.dependsOn'), 0) = 0 AND json_type(doc, '$.batchemu.transitions') = 'array'
    AND json_extract(summary, '$.status') = 'SUBMITTED' AND json_extract(wire, '$.status') = 'SUBMITTED'"""


def _definition_clause(definition: str, args: list) -> str:
    """The condition on job_definition_arn for ListJobs' JOB_DEFINITION filter (its value appended to args)."""
    if definition.startswith("arn:"):
        args.append(definition)
        return "job_definition_arn = ?"
    if definition.endswith("*"):
        # "name*" is every revision of every name that starts with "name" (case-sensitive, as names are).
        args.append(f":job-definition/{definition[:-1]}")
        return "instr(job_definition_arn, ?) > 0"
    if ":" in definition:
        # "name:3" is exactly that revision (compared case-sensitively, as names are).
        args.extend([len(definition) + 16, f":job-definition/{definition}"])
        return "substr(job_definition_arn, -?) = ?"
    # "name" is every revision of it.
    args.append(f":job-definition/{definition}:")
    return "instr(job_definition_arn, ?) > 0"
