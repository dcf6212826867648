"""A transaction's way to the aggregates: `tx.jobs.get(job_id)`, `tx.attempts.insert(...)`,
`tx.resources.put(...)`, so that a reader sees which aggregate a call touches. Each aggregate is built on
first use, over the transaction's one connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import cached_property

from batchemu.store.array_rows import ArrayRows
from batchemu.store.attempt_rows import AttemptRows
from batchemu.store.capacity import Capacity
from batchemu.store.capacity_samples import CapacitySamples
from batchemu.store.counters import Counters
from batchemu.store.dependency_edges import DependencyEdges
from batchemu.store.event_outbox import EventOutbox
from batchemu.store.job_intents import JobIntents
from batchemu.store.job_rows import JobRows
from batchemu.store.log_lines import LogLines
from batchemu.store.resource_rows import ResourceRows
from batchemu.store.service_job_rows import ServiceJobRows


class Tx:
    """One open transaction (or read snapshot). Documents are JSON objects in their wire (camelCase) form."""

    def __init__(self, conn: sqlite3.Connection, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str], child_doc: Callable[..., dict],
                 resource_written: Callable[[], None] = lambda: None,
                 event_recorded: Callable[[], None] = lambda: None) -> None:
        self._conn = conn
        self._job_wire = job_wire
        self._summary_wire = summary_wire
        self._child_doc = child_doc
        self._resource_written = resource_written
        self._event_recorded = event_recorded

    @cached_property
    def counters(self) -> Counters:
        return Counters(self._conn)

    @cached_property
    def resources(self) -> ResourceRows:
        return ResourceRows(self._conn, self.counters, self._resource_written)

    @cached_property
    def jobs(self) -> JobRows:
        return JobRows(self._conn, self._job_wire, self._summary_wire, self._child_doc, self.events)

    @cached_property
    def events(self) -> EventOutbox:
        return EventOutbox(self._conn, self._event_recorded)

    @cached_property
    def arrays(self) -> ArrayRows:
        return ArrayRows(self._conn)

    @cached_property
    def intents(self) -> JobIntents:
        return JobIntents(self._conn)

    @cached_property
    def attempts(self) -> AttemptRows:
        return AttemptRows(self._conn)

    @cached_property
    def dependencies(self) -> DependencyEdges:
        return DependencyEdges(self._conn)

    @cached_property
    def capacity(self) -> Capacity:
        return Capacity(self._conn)

    @cached_property
    def capacity_samples(self) -> CapacitySamples:
        return CapacitySamples(self._conn)

    @cached_property
    def service_jobs(self) -> ServiceJobRows:
        return ServiceJobRows(self._conn, self.events)

    @cached_property
    def logs(self) -> LogLines:
        return LogLines(self._conn)
