"""Capacity and fair share: vCPUs in use per compute environment, the shares of a queue, and each share's
decayed usage of finished attempts."""

from __future__ import annotations

import sqlite3


class Capacity:
    """What the scheduler weighs before placing (`tx.capacity`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def vcpus_in_use(self) -> dict[str | None, float]:
        """compute environment ARN -> vCPUs of its STARTING and RUNNING jobs."""
        return dict(self._conn.execute(
            "SELECT compute_environment, SUM(vcpus) FROM jobs WHERE status IN ('STARTING', 'RUNNING')"
            " GROUP BY compute_environment").fetchall())

    def runnable_shares(self, queue_arn: str) -> list[str | None]:
        """The share identifiers of a queue's RUNNABLE jobs."""
        return [r[0] for r in self._conn.execute(
            "SELECT DISTINCT share_identifier FROM jobs WHERE job_queue_arn = ? AND status = 'RUNNABLE'",
            (queue_arn,))]

    def active_shares(self, queue_arn: str) -> int:
        """Share identifiers with a job between SUBMITTED and RUNNING in the queue."""
        return self._conn.execute(
            "SELECT COUNT(DISTINCT share_identifier) FROM jobs WHERE job_queue_arn = ? AND status IN"
            " ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING')", (queue_arn,)).fetchone()[0]

    def share_usage(self, queue_arn: str) -> dict[str, tuple[float, int]]:
        """share -> (decayed vCPU-seconds of finished attempts, as of when)."""
        return {r[0]: (r[1], r[2]) for r in self._conn.execute(
            "SELECT share_identifier, vcpu_seconds, updated_at FROM share_usage WHERE job_queue_arn = ?",
            (queue_arn,))}

    def put_share_usage(self, queue_arn: str, share: str, vcpu_seconds: float, now: int) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO share_usage (job_queue_arn, share_identifier, vcpu_seconds, updated_at)"
            " VALUES (?, ?, ?, ?)", (queue_arn, share, vcpu_seconds, now))
