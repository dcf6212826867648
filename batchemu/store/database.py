"""The state file: one SQLite database in WAL mode behind a server; every state change is one transaction,
and readers get snapshots of their own that never wait for the writer."""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from batchemu.store.projections import JobRow
from batchemu.store.schema import bring_up_to_date
from batchemu.store.transaction import Tx

# Each WAL reader connection's page cache. 1 MiB did not hold the 100 rows (and their index pages) of a repeated
# DescribeJobs at 100,000 stored jobs: every call read them again from the file (2.5-3.6 ms, against 1.6 ms).
READER_CACHE_MIB = 4
# The WAL is copied into the database file by a thread of its own (Checkpointer), never by a commit: SQLite's
# automatic checkpoint runs inside the COMMIT that crosses 1,000 pages, and that commit then holds the write lock
# for the copy and its fsync (20-30 ms), which every other writer waits out (SubmitJob's p99 in bench/).
CHECKPOINT_SECONDS = 0.5
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # a WAL file larger than this is cut back when it is next reset

log = logging.getLogger("batchemu.store")


class StateError(Exception):
    """The state file cannot be used; str() says why and what to do, for the command line."""

    def __init__(self, path: str, exc: Exception) -> None:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            why = "is not a batchemu state file (corrupt, or another kind of file): move it away or pass --state"
        elif "locked" in text or "busy" in text:
            why = "is locked by another process (another batchemu serve on the same file?)"
        elif "readonly" in text or "read-only" in text:
            why = "is read-only: batchemu writes every change to it; make it writable or pass --state"
        else:
            why = "cannot be opened or created: check the path and its permissions, or pass --state"
        super().__init__(f"state file {path} {why} ({text})")


class Checkpointer:
    """Copies committed WAL pages into the database file every CHECKPOINT_SECONDS, on a connection and a
    thread of its own, in two PASSIVE steps (neither waits for a reader): the bulk while writers go on, then
    what they committed meanwhile with the store's write lock held, a short copy that leaves the whole WAL in
    the database file so that the next write starts the WAL again from its beginning (a WAL copied only
    while writes go on would grow without end)."""

    def __init__(self, path: str, write_lock: threading.RLock) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(path, write_lock, self._stopping), daemon=True,
                                        name="batchemu-checkpoint")
        self._thread.start()

    @staticmethod
    def _run(path: str, write_lock: threading.RLock, stopping: threading.Event) -> None:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=1000")
            while not stopping.wait(CHECKPOINT_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    with write_lock:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # e.g. the file went away under a test: try again later
                    log.debug("checkpoint of %s: %s", path, exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()


class Store:
    """The SQLite database behind a server. `path` may be ":memory:" for throw-away state."""

    def __init__(self, path: str, *, job_wire: Callable[[dict], str],
                 summary_wire: Callable[[dict], str], child_doc: Callable[[dict, JobRow], dict]) -> None:
        """`job_wire` and `summary_wire` serialize a stored job as DescribeJobs' JobDetail and ListJobs'
        JobSummary; both are kept beside the document so polling clients (the hottest path) read jobs
        without decoding and re-encoding them. `child_doc(parent, row, shared=...)` is the document of an
        array child that has none of its own yet."""
        self.path = path
        self._job_wire = job_wire
        self._summary_wire = summary_wire
        self._child_doc = child_doc
        self._lock = threading.RLock()
        try:
            self._conn = self._connect()
            self._conn.execute("PRAGMA busy_timeout=3000")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            bring_up_to_date(self._conn)
            # A write at start: a read-only or locked file is found now, not at the first SubmitJob.
            self._conn.execute("INSERT INTO counters (name, value) VALUES ('opened', 1) "
                               "ON CONFLICT(name) DO UPDATE SET value = value + 1")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's work, not a commit's
            self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        except sqlite3.Error as exc:
            raise StateError(path, exc) from None
        self._depth = 0
        self._owner: int | None = None
        self._readers = threading.local()
        # Counts writes of resources (queues, compute environments, ...) made through this object, the only
        # writer of its file: the scheduler settles resources again only after one, or while one is in
        # transit. Bumped when written, so a rolled-back write only costs one more look.
        self.resource_revision = 0
        # Notified after each commit that recorded events (batchemu.store.event_outbox): their readers wait on it.
        self.events_recorded = threading.Condition()
        self._events_pending = False
        # Readers get their own connections (WAL: they never wait for the writer); not for ":memory:",
        # where every connection would be a database of its own.
        self._shared_reads = path == ":memory:" or path.startswith("file::memory:")
        self._checkpointer: Checkpointer | None = None
        if not self._shared_reads:
            self._checkpointer = Checkpointer(path, self._lock)
            weakref.finalize(self, self._checkpointer.stop)  # a store dropped unclosed (tests) stops it too

    def _connect(self, cache_mib: int = 32) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # The writer's 32 MiB of pages keep big job tables hot; each reader thread has a smaller cache of its
        # own (the operating system's file cache is shared by all of them).
        conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _tx(self, conn: sqlite3.Connection) -> Tx:
        return Tx(conn, self._job_wire, self._summary_wire, self._child_doc, self._resource_written,
                  self._event_recorded)

    def _event_recorded(self) -> None:
        self._events_pending = True

    def _resource_written(self) -> None:
        self.resource_revision += 1

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction (nested calls join the outer one); rolled back if the block raises."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._tx(self._conn)
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self._owner = threading.get_ident()
            try:
                yield self._tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._events_pending = False
                raise
            else:
                self._conn.execute("COMMIT")
                if self._events_pending:
                    self._events_pending = False
                    with self.events_recorded:
                        self.events_recorded.notify_all()
            finally:
                self._depth = 0
                self._owner = None

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent read-only snapshot that does not wait for the writer (nor makes it wait)."""
        if self._shared_reads or self._owner == threading.get_ident():
            with self.transaction() as tx:
                yield tx
            return
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect(cache_mib=READER_CACHE_MIB)
        conn.execute("BEGIN")
        try:
            yield self._tx(conn)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._conn.close()
