"""Persistence: one SQLite file in WAL mode; every state change is one transaction. Nothing else writes SQL.

One module per aggregate, each owning its SQL, reached from a transaction (`tx.jobs`, `tx.attempts`, ...):
see transaction.py. database.py opens the file (schema.py brings an earlier version's up to date)."""

from batchemu.store.database import StateError, Store
from batchemu.store.projections import SUMMARY_SOURCES, JobRow, job_columns, job_summary
from batchemu.store.transaction import Tx

__all__ = ["SUMMARY_SOURCES", "JobRow", "StateError", "Store", "Tx", "job_columns", "job_summary"]
