"""Capacity over time: samples of each compute environment's vCPUs in use and desiredvCpus, written by the
scheduler a few seconds apart and kept for a bounded time, for the dashboard's capacity chart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


class CapacitySamples:
    """The capacity_samples table of one transaction (`tx.capacity_samples`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(self, samples: Iterable[tuple[str, int, float, int | None]]) -> None:
        """(compute environment ARN, epoch ms, vCPUs in use, desiredvCpus or None) samples."""
        self._conn.executemany(
            "INSERT OR REPLACE INTO capacity_samples (compute_environment, at, vcpus_in_use, desired_vcpus)"
            " VALUES (?, ?, ?, ?)", samples)

    def forget_before(self, at: int) -> None:
        """Drop the samples older than `at` (epoch ms): a deleted compute environment's age out too."""
        self._conn.execute("DELETE FROM capacity_samples WHERE at < ?", (at,))

    def since(self, at: int) -> dict[str, list[tuple[int, float, int | None]]]:
        """Compute environment ARN -> its samples (epoch ms, vCPUs in use, desiredvCpus) from `at` on, oldest
        first, with the last one before `at` (the value the chart starts from)."""
        out: dict[str, list[tuple[int, float, int | None]]] = {}
        for arn, when, in_use, desired in self._conn.execute(
                """SELECT compute_environment, at, vcpus_in_use, desired_vcpus FROM capacity_samples s
                   WHERE at >= (SELECT COALESCE(MAX(at), 0) FROM capacity_samples b
                                WHERE b.compute_environment = s.compute_environment AND b.at <= ?)
                   ORDER BY compute_environment, at""", (at,)):
            out.setdefault(arn, []).append((when, in_use, desired))
        return out
