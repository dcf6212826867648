"""The state file's WAL is copied into the database file by the store's own checkpoint thread, never by a
commit: a commit that copied it held the write lock through the copy and its fsync, and every SubmitJob
behind it waited (bench/: SubmitJob's p99). No test here needs Docker."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from batchemu.store import Store
from tests.waiting import deadline_for, wait_for

PAYLOAD = "x" * 40_000  # about ten pages a transaction


def _child_doc(parent: dict, row, *, shared: bool = False, only=None) -> dict:
    return {"jobId": row["job_id"]}


@pytest.fixture
def state(tmp_path):
    path = str(tmp_path / "state.sqlite3")
    store = Store(path, job_wire=json.dumps, summary_wire=json.dumps, child_doc=_child_doc)
    yield store, path
    store.close()


def _write(store: Store, first: int, count: int) -> None:
    for n in range(first, first + count):
        with store.transaction() as tx:
            tx.resources.put("job-definition", f"arn:{n}", f"d{n}", {"n": n, "payload": PAYLOAD})


def test_a_commit_copies_nothing_into_the_database_file_and_the_checkpoint_thread_does(state):
    store, path = state
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    before = os.path.getsize(path)
    _write(store, 0, 100)  # about 4 MB: SQLite's own checkpoint would have run at 1,000 pages
    grown = wait_for(lambda: os.path.getsize(path), lambda size: size > before + 2_000_000,
                     "the database file to receive the committed pages", deadline_for(10))
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT COUNT(*) FROM resources").fetchone() == (100,)
    assert grown > before


def test_the_wal_starts_again_while_writes_go_on(state):
    store, path = state
    written, n = 0, 0
    until = time.monotonic() + 3
    while time.monotonic() < until:
        _write(store, n, 10)
        n += 10
        written += 10 * len(PAYLOAD)
    wal = os.path.getsize(path + "-wal")
    # A WAL copied only while writes go on is never started again: it would hold everything written.
    assert wal < written / 2, f"WAL of {wal} bytes after {written} bytes written in {n} transactions"
