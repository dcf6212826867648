"""GET /_batchemu/events: the event outbox as Server-Sent Events, one `id: <sequence>` and `data: <EventBridge
event as JSON>` per event, oldest first.

Query: `job` (a job id: its events, its array children's and its nodes'), `queue` (a job queue name or ARN),
`after` (a sequence: only the events after it; the `Last-Event-ID` header, which an EventSource sends when it
reconnects, wins), `follow` (default true: keep the stream open and send events as they are recorded, with a
comment line every HEARTBEAT_SECONDS; false: end once caught up)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model import job_events

PAGE = 100
WAIT_SECONDS = 0.5        # longest wait for a commit before the outbox is read again
HEARTBEAT_SECONDS = 15.0  # a comment line on an idle stream, so a closed connection is found


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", ""):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ClientException(f"follow must be true or false, not {text!r}")


def _sequence(text: str, name: str) -> int:
    if not text.isdigit():
        raise ClientException(f"{name} must be an event sequence number (the id: of an event), not {text!r}")
    return int(text)


class EventStream:
    """The handler of GET /_batchemu/events; `stopping` ends every open stream (the server is stopping)."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def __call__(self, ctx: Context, params: dict) -> Callable:
        after = _sequence(params["lastEventId"], "Last-Event-ID") if "lastEventId" in params else \
            _sequence(params.get("after", "0"), "after")
        queue = params.get("queue") or None
        if queue is not None and not queue.startswith("arn:"):
            queue = ctx.arn(f"job-queue/{queue}")
        events = self._events(ctx, after, params.get("job") or None, queue, _flag(params.get("follow", "true")))

        def answer(environ: dict, start_response: Callable) -> Iterator[bytes]:
            start_response("200 OK", [("Content-Type", "text/event-stream; charset=utf-8"),
                                      ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")])
            return events
        return answer

    def _events(self, ctx: Context, after: int, job_id: str | None, queue_arn: str | None,
                follow: bool) -> Iterator[bytes]:
        store = ctx.store
        quiet = 0.0
        yield b": batchemu events\n\n"  # the headers and a first line at once: the client sees the stream open
        while not self.stopping.is_set():
            with store.read() as tx:
                last = tx.events.last_seq()
                page = job_events.read(tx, ctx.config, after, PAGE, job_id=job_id, queue_arn=queue_arn)
            for seq, event in page:
                yield f"id: {seq}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
            if len(page) == PAGE:
                after = page[-1][0]
                continue
            after = max(after, last)  # nothing more matches up to the newest event: skip what did not
            if not follow:
                return
            if page:
                quiet = 0.0
            elif quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"
            with store.events_recorded:
                if store.events_recorded.wait(WAIT_SECONDS) is False:
                    quiet += WAIT_SECONDS
