"""`batchemu events [--follow] [--job ID] [--queue Q] [--json]`: a server's Batch events (GET /_batchemu/events),
one line each, or each event's JSON."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

from batchemu.cli.commands import REASON_WIDTH, client_options, endpoint_url, shorten
from batchemu.cli.fault import signed_headers
from batchemu.model import states

EVENTS_PATH = "/_batchemu/events"
BLOCKED = {"Batch Job Queue Blocked", "Batch Service Job Queue Blocked"}


def add_events_command(commands: argparse._SubParsersAction) -> None:
    events = commands.add_parser(
        "events", parents=[client_options()], help="print Batch's events (state changes, blocked queues)",
        description="Print the events a server recorded (oldest first; it keeps the newest --events-kept), one "
                    "line each: time, job id, job name, status, reason.")
    events.add_argument("--follow", "-f", action="store_true",
                        help="keep printing events as they happen (with --job: until that job ends; exit 0 if "
                             "it SUCCEEDED, 1 if it FAILED)")
    events.add_argument("--job", metavar="JOB_ID", help="only this job's events (and its children's)")
    events.add_argument("--queue", help="only this job queue's events (name or ARN)")
    events.add_argument("--json", action="store_true", help="print each event as one line of JSON")
    events.set_defaults(run=run_events_command)


def line_of(event: dict) -> str:
    """One event as a line: time, job id, job name, status (QUEUE BLOCKED for a blocked queue), reason."""
    detail = event.get("detail") or {}
    status = "QUEUE BLOCKED" if event.get("detail-type") in BLOCKED else detail.get("status", "")
    return "  ".join([event.get("time", ""), detail.get("jobId", ""), detail.get("jobName", ""), f"{status:<9}",
                      shorten(detail.get("statusReason"), REASON_WIDTH)]).rstrip()


def server_sent_events(lines: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    """(id, data) of each event of a text/event-stream."""
    event_id, data = "", list[str]()
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event_id, "\n".join(data)
            data = []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def run_events_command(args: argparse.Namespace) -> int:
    query = {"follow": "true" if args.follow else "false"}
    query.update({name: value for name, value in (("job", args.job), ("queue", args.queue)) if value})
    url = f"{endpoint_url(args).rstrip('/')}{EVENTS_PATH}?{urlencode(query)}"
    request = urllib.request.Request(url, headers=signed_headers(url, b"", method="GET"))
    try:
        with urllib.request.urlopen(request, timeout=None if args.follow else 60) as stream:
            for _, data in server_sent_events(stream):
                event = json.loads(data)
                print(json.dumps(event) if args.json else line_of(event), flush=True)
                detail = event.get("detail") or {}
                if args.follow and args.job and detail.get("jobId") == args.job \
                        and detail.get("status") in states.FINISHED and event.get("detail-type") not in BLOCKED:
                    return 0 if detail["status"] == states.SUCCEEDED else 1
    except urllib.error.HTTPError as exc:
        print(f"batchemu events: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"batchemu: cannot reach batchemu at {endpoint_url(args)} ({exc}): is `batchemu serve` running?",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
