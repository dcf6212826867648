"""Dependency edges between jobs (one per dependsOn entry), and what they say of the PENDING jobs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


class DependencyEdges:
    """The job_dependencies table of one transaction (`tx.dependencies`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(self, edges: Iterable[tuple[str, str, str | None]]) -> None:
        """(waiting job, job it waits for, type) edges."""
        self._conn.executemany(
            "INSERT OR IGNORE INTO job_dependencies (job_id, depends_on, type) VALUES (?, ?, ?)", edges)

    def dependents(self, job_id: str, limit: int) -> list[tuple[str, str | None]]:
        """(job id, type) of up to `limit` jobs that wait for `job_id`, oldest first."""
        return self._conn.execute(
            "SELECT e.job_id, e.type FROM job_dependencies e JOIN jobs j ON j.job_id = e.job_id"
            " WHERE e.depends_on = ? ORDER BY j.seq LIMIT ?", (job_id, limit)).fetchall()

    def pending_verdicts(self, entered_before: int, limit: int = 5000) -> list[tuple[str, int, str | None, int]]:
        """(job id, has_doc, a FAILED job it waits for or None, whether it still waits) of PENDING jobs
        that entered PENDING no later than `entered_before`; array parents are not among them. A child
        also waits for what its parent waits for."""
        return self._conn.execute(
            """SELECT j.job_id, j.has_doc,
                 (SELECT e.depends_on FROM job_dependencies e JOIN jobs d ON d.job_id = e.depends_on
                   WHERE e.job_id IN (j.job_id, j.parent_id) AND d.status = 'FAILED' LIMIT 1),
                 EXISTS (SELECT 1 FROM job_dependencies e JOIN jobs d ON d.job_id = e.depends_on
                   WHERE e.job_id IN (j.job_id, j.parent_id) AND d.status != 'SUCCEEDED')
               FROM jobs j
               WHERE j.status = 'PENDING' AND j.array_size IS NULL AND j.entered_at <= ?
                 AND (j.parent_id IS NULL OR j.array_index IS NOT NULL)
               ORDER BY j.seq LIMIT ?""", (entered_before, limit)).fetchall()
