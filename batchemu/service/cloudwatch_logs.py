"""CloudWatch Logs (awsJson 1.1) operations over the job output the executor records."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from batchemu.context import Context
from batchemu.errors import ClientException, ServiceError
from batchemu.service.pagination import decode_token, encode_token
from batchemu.store import Tx
from batchemu.store.log_lines import LOG_GROUP_KIND, LogEvent

MAX_EVENTS = 10_000
MAX_RESPONSE_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26  # what CloudWatch counts per event on top of its UTF-8 message
DEFAULT_DESCRIBE_LIMIT = 50
PUT_MAX_AGE_MS = 14 * 24 * 3600 * 1000
PUT_MAX_AHEAD_MS = 2 * 3600 * 1000

SQLITE_MAX_INT = 2**63 - 1

_EVENT_TOKEN = re.compile(r"([fb])/(\d{1,56})(?:/s)?")
# One filter-pattern term: optional ?/- marker, then a "quoted phrase" (with \" escapes) or a bare word.
_FILTER_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))')


def _group_not_found() -> ServiceError:
    return ServiceError("The specified log group does not exist.", code="ResourceNotFoundException", status=400)


def _stream_not_found() -> ServiceError:
    return ServiceError("The specified log stream does not exist.", code="ResourceNotFoundException", status=400)


def _already_exists(message: str) -> ServiceError:
    return ServiceError(message, code="ResourceAlreadyExistsException", status=400)


def _group_arn(ctx: Context, group: str) -> str:
    """The log group ARN without the trailing `:*` (the form logGroupIdentifier and tagging take)."""
    return f"arn:aws:logs:{ctx.config.region}:{ctx.config.account_id}:log-group:{group}"


def _group_name(params: dict) -> str:
    """The group named by logGroupName or logGroupIdentifier (a name or an ARN, with or without `:*`)."""
    name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise ClientException("LogGroupName and LogGroupIdentifier are mutually exclusive; specify only one.")
    if identifier is not None:
        if identifier.startswith("arn:"):
            _, found, rest = identifier.partition(":log-group:")
            if not found or not rest.removesuffix(":*"):
                raise ClientException(f"Invalid logGroupIdentifier: {identifier}")
            return rest.removesuffix(":*")
        return identifier
    if name is None:
        raise ClientException("Either logGroupName or logGroupIdentifier must be specified.")
    return name


def _require_group(tx: Tx, group: str) -> None:
    if not tx.logs.group_exists(group):
        raise _group_not_found()


def _require_stream(tx: Tx, group: str, stream: str) -> None:
    _require_group(tx, group)
    if not tx.logs.stream_exists(group, stream):
        raise _stream_not_found()


def _within_response_size(events: list[LogEvent]) -> list[LogEvent]:
    """The leading events that fit in one 1 MB response (always at least one, so paging advances)."""
    total = 0
    for count, event in enumerate(events):
        total += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        if total > MAX_RESPONSE_BYTES and count:
            return events[:count]
    return events


# -- GetLogEvents ------------------------------------------------------------------------------------------
# A token names a boundary in the stream's arrival order: f/B reads the events after B, b/B the events up
# to B backwards. At either end of the stream the token handed in comes back unchanged.

def _event_token(direction: str, boundary: int) -> str:
    return f"{direction}/{boundary:056d}/s"


def _parse_event_token(token: str) -> tuple[str, int]:
    match = _EVENT_TOKEN.fullmatch(token)
    if match is None or int(match.group(2)) > SQLITE_MAX_INT:
        raise ClientException("The specified nextToken is invalid.")
    return match.group(1), int(match.group(2))


def get_log_events(ctx: Context, params: dict) -> dict:
    group, stream = _group_name(params), params["logStreamName"]
    limit = params.get("limit", MAX_EVENTS)
    start_time, end_time = params.get("startTime"), params.get("endTime")
    with ctx.store.transaction() as tx:
        _require_stream(tx, group, stream)
        if params.get("nextToken"):
            direction, boundary = _parse_event_token(params["nextToken"])
        elif params.get("startFromHead"):
            direction, boundary = "f", 0
        else:
            direction, boundary = "b", tx.logs.last_event_seq()
        if direction == "f":
            events = _within_response_size(
                tx.logs.stream_events(group, stream, after_seq=boundary, limit=limit, start_time=start_time,
                                      end_time=end_time))
        else:
            events = _within_response_size(tx.logs.stream_events(
                group, stream, up_to_seq=boundary, limit=limit, newest_first=True, start_time=start_time,
                end_time=end_time))
            events.reverse()
    forward, backward = (events[-1].seq, events[0].seq - 1) if events else (boundary, boundary)
    return {
        "events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
                   for e in events],
        "nextForwardToken": _event_token("f", forward),
        "nextBackwardToken": _event_token("b", backward),
    }


# -- FilterLogEvents ---------------------------------------------------------------------------------------

class FilterPattern(NamedTuple):
    all_terms: list[str]
    any_terms: list[str]
    excluded_terms: list[str]


def parse_filter_pattern(pattern: str | None) -> FilterPattern:
    """Term patterns: `ERROR Exception` (all), `"exact phrase"`, `?ERROR ?WARN` (any), `-DEBUG` (none)."""
    parsed = FilterPattern([], [], [])
    text = (pattern or "").strip()
    if text[:1] in ("{", "[", "%"):
        raise ClientException(
            "batchemu supports only term filter patterns (words, \"quoted phrases\", ?any, -exclude);"
            " JSON, space-delimited and regular-expression patterns are not implemented")
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        match = _FILTER_TERM.match(text, position)
        if match is None or not (match.group(2) is not None or match.group(3)):
            raise ClientException(f"Invalid character(s) in term '{text[position:]}'")
        marker, quoted, word = match.groups()
        term = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else word
        if term:
            {"": parsed.all_terms, "?": parsed.any_terms, "-": parsed.excluded_terms}[marker].append(term)
        position = match.end()
    return parsed


def _encode_json_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _decode_json_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise ClientException("The specified nextToken is invalid.") from None


def _filter_position(token: str) -> tuple[bool, tuple[int, int]]:
    """(newest_first, (timestamp, seq) of the last event returned) from a FilterLogEvents nextToken."""
    value = _decode_json_token(token)
    if (isinstance(value, dict) and isinstance(value.get("newestFirst"), bool)
            and isinstance(value.get("after"), list) and len(value["after"]) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= SQLITE_MAX_INT
                    for v in value["after"])):
        return value["newestFirst"], (value["after"][0], value["after"][1])
    raise ClientException("The specified nextToken is invalid.")


def filter_log_events(ctx: Context, params: dict) -> dict:
    group = _group_name(params)
    if params.get("logStreamNames") is not None and params.get("logStreamNamePrefix") is not None:
        raise ClientException("logStreamNames and logStreamNamePrefix are mutually exclusive; specify only one.")
    pattern = parse_filter_pattern(params.get("filterPattern"))
    limit = params.get("limit", MAX_EVENTS)
    newest_first, after = not params.get("startFromHead", True), None
    if params.get("nextToken"):
        newest_first, after = _filter_position(params["nextToken"])
    with ctx.store.transaction() as tx:
        _require_group(tx, group)
        found = tx.logs.group_events(
            group, stream_names=params.get("logStreamNames"), stream_prefix=params.get("logStreamNamePrefix"),
            start_time=params.get("startTime"), end_time=params.get("endTime"), all_terms=pattern.all_terms,
            any_terms=pattern.any_terms, excluded_terms=pattern.excluded_terms, after=after,
            newest_first=newest_first, limit=limit + 1)
    events = _within_response_size(found[:limit])
    response: dict = {
        "events": [{"logStreamName": e.stream_name, "timestamp": e.timestamp, "message": e.message,
                    "ingestionTime": e.ingestion_time, "eventId": f"{e.seq:056d}"} for e in events],
        "searchedLogStreams": [],
    }
    if len(events) < len(found):
        last = events[-1]
        response["nextToken"] = _encode_json_token(
            {"newestFirst": newest_first, "after": [last.timestamp, last.seq]})
    return response


# -- DescribeLogGroups / DescribeLogStreams ----------------------------------------------------------------

def describe_log_groups(ctx: Context, params: dict) -> dict:
    prefix, substring = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
    if prefix is not None and substring is not None:
        raise ClientException("LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.")
    names = params.get("logGroupIdentifiers")
    if names is not None:
        names = [_group_name({"logGroupIdentifier": n}) for n in names]
    limit = params.get("limit", DEFAULT_DESCRIBE_LIMIT)
    after_name = None
    if params.get("nextToken"):
        after_name = _decode_json_token(params["nextToken"])
        if not isinstance(after_name, str):
            raise ClientException("The specified nextToken is invalid.")
    with ctx.store.transaction() as tx:
        rows = tx.logs.groups(prefix=prefix, substring=substring or None, names=names,
                              after_name=after_name, limit=limit + 1)
    groups = []
    for row in rows[:limit]:
        arn = _group_arn(ctx, row.name)
        groups.append({"logGroupName": row.name, "creationTime": row.created_at, "metricFilterCount": 0,
                       "arn": f"{arn}:*", "logGroupArn": arn, "storedBytes": row.stored_bytes,
                       "logGroupClass": "STANDARD", "deletionProtectionEnabled": False})
    response: dict = {"logGroups": groups}
    if len(rows) > limit:
        response["nextToken"] = _encode_json_token(rows[limit - 1].name)
    return response


def describe_log_streams(ctx: Context, params: dict) -> dict:
    group = _group_name(params)
    by_last_event = params.get("orderBy") == "LastEventTime"
    if by_last_event and params.get("logStreamNamePrefix") is not None:
        raise ClientException("Cannot order by LastEventTime with a logStreamNamePrefix.")
    limit = params.get("limit", DEFAULT_DESCRIBE_LIMIT)
    offset = decode_token(params.get("nextToken"))
    if offset > SQLITE_MAX_INT:
        raise ClientException("The specified nextToken is invalid.")
    with ctx.store.transaction() as tx:
        _require_group(tx, group)
        rows = tx.logs.streams(group, prefix=params.get("logStreamNamePrefix"), by_last_event=by_last_event,
                               descending=bool(params.get("descending")), offset=offset, limit=limit + 1)
    group_arn = _group_arn(ctx, group)
    streams = []
    for row in rows[:limit]:
        stream = {"logStreamName": row.name, "creationTime": row.created_at,
                  "arn": f"{group_arn}:log-stream:{row.name}", "storedBytes": 0}
        if row.last_event is not None:
            stream.update(firstEventTimestamp=row.first_event, lastEventTimestamp=row.last_event,
                          lastIngestionTime=row.last_ingestion)
        streams.append(stream)
    response: dict = {"logStreams": streams}
    if len(rows) > limit:
        response["nextToken"] = encode_token(offset + limit)
    return response


# -- CreateLogGroup / CreateLogStream / PutLogEvents (for a job's own code writing to CloudWatch) ----------

def create_log_group(ctx: Context, params: dict) -> dict:
    group = params["logGroupName"]
    with ctx.store.transaction() as tx:
        if tx.logs.group_exists(group):
            raise _already_exists("The specified log group already exists")
        tx.resources.put(LOG_GROUP_KIND, _group_arn(ctx, group), group,
                         {"logGroupName": group, "creationTime": ctx.clock()})
    return {}


def create_log_stream(ctx: Context, params: dict) -> dict:
    group, stream = params["logGroupName"], params["logStreamName"]
    with ctx.store.transaction() as tx:
        _require_group(tx, group)
        if tx.logs.stream_exists(group, stream):
            raise _already_exists("The specified log stream already exists")
        tx.logs.ensure_stream(group, stream, ctx.clock())
    return {}


def put_log_events(ctx: Context, params: dict) -> dict:
    group, stream, events = params["logGroupName"], params["logStreamName"], params["logEvents"]
    timestamps = [e["timestamp"] for e in events]
    if timestamps != sorted(timestamps):
        raise ClientException("Log events in a single PutLogEvents request must be in chronological order.")
    now = ctx.clock()
    # Like CloudWatch, events too old or too far ahead are rejected while the rest are stored.
    too_old = [i for i, ts in enumerate(timestamps) if ts < now - PUT_MAX_AGE_MS]
    too_new = [i for i, ts in enumerate(timestamps) if ts > now + PUT_MAX_AHEAD_MS]
    accepted = [(e["timestamp"], e["message"]) for i, e in enumerate(events)
                if (not too_old or i > too_old[-1]) and (not too_new or i < too_new[0])]
    with ctx.store.transaction() as tx:
        _require_stream(tx, group, stream)
        tx.logs.append(group, stream, accepted, now)
        last_seq = tx.logs.last_event_seq()
    response: dict = {"nextSequenceToken": f"{last_seq:056d}"}
    rejected = {}
    if too_old:
        rejected["tooOldLogEventEndIndex"] = too_old[-1]
    if too_new:
        rejected["tooNewLogEventStartIndex"] = too_new[0]
    if rejected:
        response["rejectedLogEventsInfo"] = rejected
    return response


OPERATIONS: dict[str, Callable[[Context, dict], dict]] = {
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
    "DescribeLogGroups": describe_log_groups,
    "DescribeLogStreams": describe_log_streams,
    "CreateLogGroup": create_log_group,
    "CreateLogStream": create_log_stream,
    "PutLogEvents": put_log_events,
}
