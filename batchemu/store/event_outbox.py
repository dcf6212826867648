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

COLUMNS = "seq, id, kind, blocked, job_id, job_queue_arn, status, status_reason, at, detail"


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
    detail: str | None  # None: an array child without a document, described from its parent when read


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

    def record_rows(self, job_ids: Iterable[str], status: str, at: int, reason: str | None = None,
                    blocked: bool = False) -> None:
        """Changes of array children without a document (their detail is built from the parent when read)."""
        job_ids = list(job_ids)
        if not job_ids:
            return
        self._conn.executemany(
            "INSERT INTO job_events (kind, blocked, job_id, job_queue_arn, status, status_reason, at)"
            " SELECT ?, ?, job_id, job_queue_arn, ?, COALESCE(?, status_reason), ? FROM jobs WHERE job_id = ?",
            ((JOB, int(blocked), status, reason, at, job_id) for job_id in job_ids))
        self._recorded()

    def record_select(self, statuses: Iterable[str], at: int, where: str, args: dict[str, Any]) -> None:
        """One change to each of `statuses` in turn for every job of `where` (a condition on the jobs table,
        with named arguments), as tx.jobs' bulk moves make them: the stored JobDetail with the new status."""
        for status in statuses:
            self._conn.execute(
                "INSERT INTO job_events (kind, blocked, job_id, job_queue_arn, status, status_reason, at, detail)"
                " SELECT :kind, 0, job_id, job_queue_arn, :status, status_reason, :at,"
                f" json_set(wire, '$.status', :status) FROM jobs WHERE {where} ORDER BY seq",
                {**args, "kind": JOB, "status": status, "at": at})
        self._recorded()

    def mark_delivered(self, seq: int) -> None:
        """Every event up to `seq` reached EventBridge."""
        self._conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)", (DELIVERED, seq))

    def prune(self, keep: int, *, keep_undelivered: bool) -> int:
        """Delete all but the newest `keep` events, and with `keep_undelivered` never one after the last
        delivered; how many went."""
        bound = self.last_seq() - keep
        delivered = self.delivered()
        if keep_undelivered and delivered is not None:
            bound = min(bound, delivered)
        if bound <= 0:
            return 0
        return self._conn.execute("DELETE FROM job_events WHERE seq <= ?", (bound,)).rowcount

    # -- reads -----------------------------------------------------------------------------------------
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
                    detail=values[9])
