"""The event outbox: every status change of a job (and every blocking reason a waiting job is given), as a row
written in the same transaction as the change, under a sequence that only grows. Read by the delivery to
EventBridge, by GET /_batchemu/events and by `batchemu events`; batchemu.model.job_events makes AWS's events of
the rows.

A job's document carries the changes not yet written as `batchemu.events` ([status, epoch ms, blocked], appended
by batchemu.model.states.transition and batchemu.model.job_events.queue_blocked); the aggregate that writes the
document (tx.jobs, tx.service_jobs) pops them into this table beside it, with the job as it was written then."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, TypedDict

JOB, SERVICE_JOB = "job", "service-job"  # `kind`: what `detail` holds (JobDetail wire, service job document)
DELIVERED = "events_delivered"  # the counter holding the last sequence delivered to EventBridge

COLUMNS = "seq, id, kind, blocked, job_id, job_queue_arn, status, status_reason, at, detail, detail_in_next"


class EventRow(TypedDict):
    seq: int
    id: str
    kind: str
    blocked: int
    job_id: str
    job_queue_arn: str
    status: str
    status_reason: str | None
    at: int
    detail: str | None  # None: in the next event (detail_in_next), or an array child without a document,
                        # described from its parent when read
    detail_in_next: int


def pending(doc: dict) -> list[list[Any]]:
    """The changes of `doc` not yet in the outbox, taken off it (the document is stored without them)."""
    info = doc.get("batchemu")
    return (info.pop("events", None) if isinstance(info, dict) else None) or []


class EventOutbox:
    """The outbox of one transaction (`tx.events`)."""

    def __init__(self, conn: sqlite3.Connection, recorded=lambda: None) -> None:
        self._conn = conn
        self._recorded = recorded  # told of every write: the store wakes readers once it commits

    # -- writes ----------------------------------------------------------------------------------------
    def record(self, kind: str, doc: dict, changes: list[list[Any]], detail: str) -> None:
        """The `changes` of a job document just written (`detail`: the job as written); a change to another
        status than the document's (SUBMITTED -> PENDING -> RUNNABLE in one write) shows its own status."""
        if not changes:
            return
        for status, at, blocked in changes:
            values = [kind, int(bool(blocked)), doc["jobId"], doc["jobQueue"], status, doc.get("statusReason"), at,
                      detail]
            shown = "?"
            if status != doc["status"]:
                shown = "json_set(?, '$.status', ?)"
                values.append(status)
            self._conn.execute(
                "INSERT INTO job_events (kind, blocked, job_id, job_queue_arn, status, status_reason, at, detail)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, {shown})", values)
        self._recorded()

    def record_rows(self, job_ids: Iterable[str], status: str, at: int, blocked: bool = False) -> None:
        """Changes of array children without a document, just written to their rows (their detail is built from
        the parent when read)."""
        job_ids = list(job_ids)
        if not job_ids:
            return
        self._conn.executemany(
            "INSERT INTO job_events (kind, blocked, job_id, job_queue_arn, status, status_reason, at)"
            " SELECT ?, ?, job_id, job_queue_arn, ?, status_reason, ? FROM jobs WHERE job_id = ?",
            ((JOB, int(blocked), status, at, job_id) for job_id in job_ids))
        self._recorded()

    def record_queued(self, moved: list[tuple], at: int) -> None:
        """SUBMITTED -> PENDING -> RUNNABLE of jobs moved in bulk, each (seq, job id, queue ARN, statusReason,
        JobDetail as RUNNABLE): the PENDING event shows the detail of the RUNNABLE one, written right after it,
        with its own status (one copy of the detail, not two: the bulk move is the scheduler's hottest write)."""
        if not moved:
            return
        self._conn.executemany(
            "INSERT INTO job_events (kind, blocked, job_id, job_queue_arn, status, status_reason, at, detail,"
            " detail_in_next) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?)",
            (values for _, job_id, queue_arn, reason, wire in moved
             for values in ((JOB, job_id, queue_arn, "PENDING", reason, at, None, 1),
                            (JOB, job_id, queue_arn, "RUNNABLE", reason, at, wire, 0))))
        self._recorded()

    def mark_delivered(self, seq: int) -> None:
        """Every event up to `seq` reached EventBridge."""
        self._conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)", (DELIVERED, seq))

    def prune(self, keep: int, *, keep_undelivered: bool, at_most: int | None = None) -> int:
        """Delete all but the newest `keep` events (the oldest `at_most` of them, when given), and with
        `keep_undelivered` never one after the last delivered; how many went."""
        bound = self.last_seq() - keep
        delivered = self.delivered()
        if keep_undelivered and delivered is not None:
            bound = min(bound, delivered)
        if at_most is not None:
            oldest = self._conn.execute("SELECT MIN(seq) FROM job_events").fetchone()[0]
            bound = min(bound, (oldest or 0) + at_most - 1)
        if bound <= 0:
            return 0
        return self._conn.execute("DELETE FROM job_events WHERE seq <= ?", (bound,)).rowcount

    # -- reads -----------------------------------------------------------------------------------------
    def detail_after(self, seq: int) -> str | None:
        """The detail of the event after `seq` (for an event whose detail is in the next one)."""
        found = self._conn.execute("SELECT detail FROM job_events WHERE seq = ?", (seq + 1,)).fetchone()
        return found[0] if found else None

    def after(self, seq: int, limit: int = 100, *, job_id: str | None = None,
              queue_arn: str | None = None) -> list[EventRow]:
        """Events after `seq`, oldest first; of one job (or its array children and nodes), or of one queue."""
        clauses: list[str] = ["seq > ?"]
        args: list[Any] = [seq]
        if job_id is not None:
            clauses.append("(job_id = ? OR job_id LIKE ? OR job_id LIKE ?)")
            args += [job_id, f"{job_id}:%", f"{job_id}#%"]
        if queue_arn is not None:
            clauses.append("job_queue_arn = ?")
            args.append(queue_arn)
        rows = self._conn.execute(f"SELECT {COLUMNS} FROM job_events WHERE {' AND '.join(clauses)}"
                                  " ORDER BY seq LIMIT ?", (*args, limit))
        return [_row(values) for values in rows]

    def last_seq(self) -> int:
        """The sequence of the newest event ever recorded (0: none yet), pruned ones included."""
        found = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'job_events'").fetchone()
        return int(found[0]) if found else 0

    def delivered(self) -> int | None:
        """The last sequence delivered to EventBridge; None while no delivery has begun on this state."""
        found = self._conn.execute("SELECT value FROM counters WHERE name = ?", (DELIVERED,)).fetchone()
        return int(found[0]) if found else None


def _row(values: tuple) -> EventRow:
    return EventRow(seq=values[0], id=values[1], kind=values[2], blocked=values[3], job_id=values[4],
                    job_queue_arn=values[5], status=values[6], status_reason=values[7], at=values[8],
                    detail=values[9], detail_in_next=values[10])
