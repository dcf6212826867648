"""The state file's WAL is copied into the database file by the store's own checkpoint thread, never by a
commit: a commit that copied it held the write lock through the copy and its fsync, and every SubmitJob
behind it waited (bench/: SubmitJob's p99). No test here needs Docker."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
import time

import pytest

from batchemu.store import Store
from tests.waiting import wait_for

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
                     "the database file to receive the committed pages", timeout=10)
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT COUNT(*) FROM resources").fetchone() == (100,)
    assert grown > before


def _wal_restarts(path: str) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts again."""
    with open(path + "-wal", "rb") as wal:
        return struct.unpack(">I", wal.read(16)[12:16])[0]


def test_the_wal_starts_again_while_writes_go_on(state):
    """A WAL copied only beside the writes is never started again and grows with everything written."""
    store, path = state
    _write(store, 0, 1)
    first = _wal_restarts(path)
    stop = threading.Event()

    def keep_writing() -> None:  # requests' pace: a transaction, then a short pause
        n = 1
        while not stop.is_set():
            _write(store, n, 1)
            n += 1
            time.sleep(0.002)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_for(lambda: _wal_restarts(path), lambda restarts: restarts > first + 1,
                 "the WAL to start again twice while writes go on", timeout=10)
    finally:
        stop.set()
        writer.join()
