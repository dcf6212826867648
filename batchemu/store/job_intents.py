"""Cancel and terminate intents: recorded on jobs' rows by the API, carried out (and cleared) by the scheduler.
A terminate is never downgraded to a cancel; a finished job takes no intent."""

from __future__ import annotations

import sqlite3

from batchemu.store.projections import ROW_SELECT, JobRow, job_row


class JobIntents:
    """The intents on the jobs of one transaction (`tx.intents`); `intent` is 'cancel' or 'terminate'."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def record(self, job_id: str, intent: str, reason: str) -> int:
        """Record an intent on one job if unfinished; how many jobs were marked (0 or 1)."""
        return self._record("job_id = ?", (job_id,), intent, reason)

    def record_for_children(self, parent_id: str, intent: str, reason: str) -> int:
        """Record an intent on the unfinished children of an array or multi-node job; how many were marked."""
        return self._record("parent_id = ?", (parent_id,), intent, reason)

    def terminate_queue(self, queue_arn: str, reason: str) -> int:
        """Record terminate on the unfinished jobs of a queue that are neither terminated nor marked for it
        yet; how many newly were."""
        return self._record("job_queue_arn = ? AND is_terminated = 0 AND (intent IS NULL OR intent != 'terminate')",
                            (queue_arn,), "terminate", reason)

    def _record(self, condition: str, args: tuple, intent: str, reason: str) -> int:
        cursor = self._conn.execute(
            f"UPDATE jobs SET intent = ?, intent_reason = ? WHERE ({condition})"
            " AND status NOT IN ('SUCCEEDED', 'FAILED') AND (intent IS NULL OR ? = 'terminate')",
            (intent, reason, *args, intent))
        return cursor.rowcount

    def pending(self, limit: int = 1000) -> list[JobRow]:
        """The rows of jobs with an intent not yet carried out, oldest first."""
        rows = self._conn.execute(
            f"SELECT {ROW_SELECT} FROM jobs WHERE intent IS NOT NULL ORDER BY seq LIMIT ?", (limit,))
        return [job_row(r) for r in rows]

    def clear(self, job_id: str) -> None:
        self._conn.execute("UPDATE jobs SET intent = NULL, intent_reason = NULL WHERE job_id = ?", (job_id,))
