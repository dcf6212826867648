"""Attempts: one row per attempt of a job on a host, recorded before its container starts, so that a
restarted server finds its containers again and counts each attempt once."""

from __future__ import annotations

import sqlite3
from typing import Any

ATTEMPT_FIELDS = ("phase", "compute_environment", "container_id", "began_at", "ended_at", "exit_code", "oom_killed",
                  "engine_error", "start_error", "stop_sent_at", "timed_out", "containers")


class AttemptRows:
    """The attempts table of one transaction (`tx.attempts`); an attempt is a dict of ATTEMPT_FIELDS."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert(self, job_id: str, attempt: int, compute_environment: str | None, now: int) -> None:
        """A new attempt, PLACED (a requeued attempt's number is used again), on the compute (or service)
        environment of this ARN; None when the job's document names none."""
        self._conn.execute(
            "INSERT OR REPLACE INTO attempts (job_id, attempt, phase, compute_environment, began_at)"
            " VALUES (?, ?, 'PLACED', ?, ?)", (job_id, attempt, compute_environment, now))

    def get(self, job_id: str, attempt: int) -> dict | None:
        row = self._conn.execute(
            f"SELECT {', '.join(ATTEMPT_FIELDS)} FROM attempts WHERE job_id = ? AND attempt = ?",
            (job_id, attempt)).fetchone()
        return dict(zip(ATTEMPT_FIELDS, row), job_id=job_id, attempt=attempt) if row else None

    def require(self, job_id: str, attempt: int) -> dict:
        """get() of an attempt this transaction already knows exists (one it just inserted): LookupError, a
        defect of the caller, when there is none."""
        row = self.get(job_id, attempt)
        if row is None:
            raise LookupError(f"attempt {attempt} of job {job_id} does not exist")
        return row

    def update(self, job_id: str, attempt: int, **fields: Any) -> None:
        """Set some of ATTEMPT_FIELDS of an attempt."""
        unknown = set(fields) - set(ATTEMPT_FIELDS)
        if unknown:
            raise ValueError(unknown)
        sets = ", ".join(f"{name} = ?" for name in fields)
        self._conn.execute(f"UPDATE attempts SET {sets} WHERE job_id = ? AND attempt = ?",
                           (*fields.values(), job_id, attempt))

    def delete(self, job_id: str, attempt: int) -> None:
        self._conn.execute("DELETE FROM attempts WHERE job_id = ? AND attempt = ?", (job_id, attempt))
