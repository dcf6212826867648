"""CloudWatch Logs: streams, the events appended to them, and the groups they make (or that CreateLogGroup
made, kept as resources of LOG_GROUP_KIND)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

# Log groups made by CreateLogGroup live in the resources table under this kind; others exist through streams.
LOG_GROUP_KIND = "logs:log-group"


class LogEvent(NamedTuple):
    seq: int
    stream_name: str
    timestamp: int
    ingestion_time: int
    message: str


class LogStreamRow(NamedTuple):
    name: str
    created_at: int
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None


class LogGroupRow(NamedTuple):
    name: str
    created_at: int
    stored_bytes: int


_EVENT_COLUMNS = "seq, stream_name, timestamp, ingestion_time, message"


class LogLines:
    """The log streams and events of one transaction (`tx.logs`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # -- writes ----------------------------------------------------------------------------------------
    def ensure_stream(self, group: str, stream: str, created_at: int) -> None:
        """Create a stream (and so its group) unless it exists."""
        self._conn.execute(
            "INSERT OR IGNORE INTO log_streams (group_name, stream_name, created_at) VALUES (?, ?, ?)",
            (group, stream, created_at))

    def append(self, group: str, stream: str, events: list[tuple[int, str]], ingestion: int) -> None:
        """Append (timestamp ms, message) events to a stream."""
        self._conn.executemany(
            "INSERT INTO log_events (group_name, stream_name, timestamp, ingestion_time, message)"
            " VALUES (?, ?, ?, ?, ?)",
            [(group, stream, ts, ingestion, message) for ts, message in events])

    # -- reads -----------------------------------------------------------------------------------------
    def last_events(self, group: str, stream: str) -> tuple[int, set[str]]:
        """The newest timestamp in a stream and the messages stamped with it ((0, set()) when empty)."""
        row = self._conn.execute("SELECT MAX(timestamp) FROM log_events WHERE group_name = ? AND stream_name = ?",
                                 (group, stream)).fetchone()
        if row[0] is None:
            return 0, set()
        messages = self._conn.execute(
            "SELECT message FROM log_events WHERE group_name = ? AND stream_name = ? AND timestamp = ?",
            (group, stream, row[0])).fetchall()
        return row[0], {m[0] for m in messages}

    def stream_exists(self, group: str, stream: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM log_streams WHERE group_name = ? AND stream_name = ?",
                                 (group, stream)).fetchone()
        return row is not None

    def group_exists(self, group: str) -> bool:
        """A group exists once it has a stream, or after CreateLogGroup."""
        row = self._conn.execute(
            "SELECT 1 FROM log_streams WHERE group_name = ? UNION ALL "
            "SELECT 1 FROM resources WHERE kind = ? AND name = ? LIMIT 1", (group, LOG_GROUP_KIND, group)).fetchone()
        return row is not None

    def last_event_seq(self) -> int:
        """The highest event sequence number of any stream (0 when there are no events)."""
        return self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM log_events").fetchone()[0]

    def stream_events(self, group: str, stream: str, *, after_seq: int | None = None,
                      up_to_seq: int | None = None, start_time: int | None = None, end_time: int | None = None,
                      limit: int, newest_first: bool = False) -> list[LogEvent]:
        """Events of one stream in arrival order (or reversed), with `after_seq < seq <= up_to_seq`."""
        clauses, args = _time_window(start_time, end_time)
        if after_seq is not None:
            clauses.append("seq > ?")
            args.append(after_seq)
        if up_to_seq is not None:
            clauses.append("seq <= ?")
            args.append(up_to_seq)
        where = "".join(f" AND {c}" for c in clauses)
        order = "DESC" if newest_first else "ASC"
        rows = self._conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM log_events WHERE group_name = ? AND stream_name = ?{where}"
            f" ORDER BY seq {order} LIMIT ?", [group, stream, *args, limit])
        return [LogEvent(*r) for r in rows]

    def group_events(self, group: str, *, stream_names: list[str] | None = None, stream_prefix: str | None = None,
                     start_time: int | None = None, end_time: int | None = None,
                     all_terms: Sequence[str] = (), any_terms: Sequence[str] = (),
                     excluded_terms: Sequence[str] = (), after: tuple[int, int] | None = None,
                     newest_first: bool = False, limit: int) -> list[LogEvent]:
        """Events of a group ordered by (timestamp, seq), matching case-sensitive substring terms.

        `after` is the (timestamp, seq) of the last event already returned in this direction.
        """
        clauses, args = _time_window(start_time, end_time, end_inclusive=True)
        if stream_names is not None:
            clauses.append(f"stream_name IN ({','.join('?' * len(stream_names))})")
            args.extend(stream_names)
        if stream_prefix is not None:
            clauses.append("substr(stream_name, 1, ?) = ?")
            args.extend([len(stream_prefix), stream_prefix])
        for term in all_terms:
            clauses.append("instr(message, ?) > 0")
            args.append(term)
        if any_terms:
            clauses.append("(" + " OR ".join("instr(message, ?) > 0" for _ in any_terms) + ")")
            args.extend(any_terms)
        for term in excluded_terms:
            clauses.append("instr(message, ?) = 0")
            args.append(term)
        if after is not None:
            clauses.append("(timestamp, seq) < (?, ?)" if newest_first else "(timestamp, seq) > (?, ?)")
            args.extend(after)
        where = "".join(f" AND {c}" for c in clauses)
        order = "DESC" if newest_first else "ASC"
        rows = self._conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM log_events WHERE group_name = ?{where}"
            f" ORDER BY timestamp {order}, seq {order} LIMIT ?", [group, *args, limit])
        return [LogEvent(*r) for r in rows]

    def streams(self, group: str, *, prefix: str | None = None, by_last_event: bool = False,
                descending: bool = False, offset: int = 0, limit: int) -> list[LogStreamRow]:
        """Streams of a group with their event times, ordered by name or by last event time (then name)."""
        clauses, args = [], []
        if prefix is not None:
            clauses.append("substr(s.stream_name, 1, ?) = ?")
            args.extend([len(prefix), prefix])
        where = "".join(f" AND {c}" for c in clauses)
        direction = "DESC" if descending else "ASC"
        # Streams without events sort as oldest.
        order = (f"COALESCE(last_event, -1) {direction}, s.stream_name {direction}" if by_last_event
                 else f"s.stream_name {direction}")
        rows = self._conn.execute(
            "SELECT s.stream_name, s.created_at, MIN(e.timestamp) AS first_event, MAX(e.timestamp) AS last_event,"
            " MAX(e.ingestion_time) FROM log_streams s LEFT JOIN log_events e"
            " ON e.group_name = s.group_name AND e.stream_name = s.stream_name"
            f" WHERE s.group_name = ?{where} GROUP BY s.stream_name ORDER BY {order} LIMIT ? OFFSET ?",
            [group, *args, limit, offset])
        return [LogStreamRow(*r) for r in rows]

    def groups(self, *, prefix: str | None = None, substring: str | None = None,
               names: list[str] | None = None, after_name: str | None = None, limit: int) -> list[LogGroupRow]:
        """Groups (created or holding streams) in ASCII order of name, with their creation time and bytes."""
        clauses, args = [], []
        if prefix is not None:
            clauses.append("substr(name, 1, ?) = ?")
            args.extend([len(prefix), prefix])
        if substring is not None:
            clauses.append("instr(name, ?) > 0")
            args.append(substring)
        if names is not None:
            clauses.append(f"name IN ({','.join('?' * len(names))})")
            args.extend(names)
        if after_name is not None:
            clauses.append("name > ?")
            args.append(after_name)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._conn.execute(
            "WITH groups (name, created_at) AS ("
            " SELECT group_name, MIN(created_at) FROM log_streams GROUP BY group_name"
            " UNION ALL SELECT name, json_extract(doc, '$.creationTime') FROM resources WHERE kind = ?)"
            " SELECT name, MIN(created_at),"
            " (SELECT COALESCE(SUM(length(CAST(message AS BLOB))), 0) FROM log_events WHERE group_name = name)"
            f" FROM groups{where} GROUP BY name ORDER BY name COLLATE BINARY LIMIT ?",
            [LOG_GROUP_KIND, *args, limit])
        return [LogGroupRow(*r) for r in rows]


def _time_window(start_time: int | None, end_time: int | None,
                 end_inclusive: bool = False) -> tuple[list[str], list[Any]]:
    """SQL clauses for `start_time <= timestamp < end_time` (or `<=`); either bound optional."""
    clauses, args = [], []
    if start_time is not None:
        clauses.append("timestamp >= ?")
        args.append(start_time)
    if end_time is not None:
        clauses.append("timestamp <= ?" if end_inclusive else "timestamp < ?")
        args.append(end_time)
    return clauses, args
