"""Delivery of the event outbox to a local EventBridge (`--events-endpoint`), and the outbox's pruning.

One thread of its own, beside the scheduler and never in its way: it reads the outbox after the last sequence
delivered (a counter in the store, so a restart resumes there), sends up to PUT_BATCH events in sequence order
with EventBridge's PutEvents (boto3, the credentials boto3 finds, else placeholder ones a local EventBridge
accepts), records how far it got, and backs off while the endpoint fails. Events go in sequence order, so each
job's in the order they happened; an event is sent again only when PutEvents failed for it or after it
(at least once). Without an endpoint it only prunes: the newest `events_kept` events are kept, and never one
not yet delivered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from batchemu.context import Context
from batchemu.model import job_events

log = logging.getLogger("batchemu.events")

PUT_BATCH = 10          # PutEvents takes at most 10 entries
IDLE_WAIT = 1.0         # seconds between looks at the outbox when no commit announced events
FIRST_BACK_OFF = 0.5    # seconds after a failed PutEvents, doubled on each failure in a row ...
MAX_BACK_OFF = 30.0     # ... up to this
PRUNE_EVERY = 10.0      # seconds between two prunings of the outbox
PRUNE_AT_ONCE = 2000    # events deleted per transaction: a long delete would hold up every other writer


def put_events_entries(events: list[dict], bus: str) -> list[dict]:
    """PutEvents' entries for EventBridge events: source, detail-type, detail, resources and time each."""
    return [{"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
             "Resources": event["resources"], "EventBusName": bus,
             "Time": datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)}
            for event in events]


def events_client(endpoint: str, region: str) -> Any:
    """boto3's EventBridge client for `endpoint`, signed with the credentials boto3 finds (placeholders when
    there are none: a local EventBridge takes any), one try per call (this thread retries with back-off)."""
    import boto3
    from botocore.config import Config as BotoConfig
    session = boto3.session.Session()
    keys = {} if session.get_credentials() is not None else {
        "aws_access_key_id": "batchemu", "aws_secret_access_key": "batchemu"}
    return session.client("events", endpoint_url=endpoint, region_name=region, **keys,
                          config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))


class EventDelivery:
    """The thread delivering and pruning the outbox of `ctx.store`. `client` replaces boto3's (tests)."""

    def __init__(self, ctx: Context, client: Any = None) -> None:
        self.ctx = ctx
        self._client = client
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0  # events this process delivered (tests and the health report read it)
        self.failures = 0   # PutEvents calls that failed in a row
        if ctx.config.events_endpoint:
            # Delivery begins with what happens from now on; a state that delivered before resumes where it was.
            with ctx.store.transaction() as tx:
                if tx.events.delivered() is None:
                    tx.events.mark_delivered(tx.events.last_seq())

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="batchemu-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self.ctx.store.events_recorded:
            self.ctx.store.events_recorded.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        pruned_at = -PRUNE_EVERY
        back_off = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if now - pruned_at >= PRUNE_EVERY:
                pruned_at = now
                self._prune()
            sent = False
            if self.ctx.config.events_endpoint:
                try:
                    sent = self.deliver_some()
                    back_off = 0.0
                    self.failures = 0
                except Exception as exc:  # noqa: BLE001 - endpoint down or refusing: try again later, in order
                    self.failures += 1
                    back_off = min(MAX_BACK_OFF, max(FIRST_BACK_OFF, back_off * 2))
                    log.warning("events: PutEvents to %s failed (%s); again in %.1f s",
                                self.ctx.config.events_endpoint, exc, back_off)
                    self._stopping.wait(back_off)
                    continue
            if not sent:
                with self.ctx.store.events_recorded:
                    self.ctx.store.events_recorded.wait(IDLE_WAIT)

    def deliver_some(self) -> bool:
        """Send the next events after the last delivered one; whether there were any. Raises when PutEvents
        failed for the first of them (those before a failed one are recorded as delivered)."""
        config = self.ctx.config
        with self.ctx.store.read() as tx:
            after = tx.events.delivered() or 0
            batch = job_events.read(tx, config, after, PUT_BATCH)
        if not batch:
            return False
        if self._client is None:
            self._client = events_client(config.events_endpoint, config.region)
        answer = self._client.put_events(Entries=put_events_entries([event for _, event in batch], config.events_bus))
        results = answer.get("Entries") or []
        done = 0
        for result in results:
            if result.get("ErrorCode") or not result.get("EventId"):
                break
            done += 1
        if done:
            with self.ctx.store.transaction() as tx:
                tx.events.mark_delivered(batch[done - 1][0])
            self.delivered += done
        if done < len(batch):
            failed = results[done] if done < len(results) else {}
            raise RuntimeError(f"PutEvents refused event {batch[done][0]}: "
                               f"{failed.get('ErrorCode', 'no answer')} {failed.get('ErrorMessage', '')}".strip())
        return True

    def _prune(self) -> None:
        config = self.ctx.config
        try:
            pruned = PRUNE_AT_ONCE
            while pruned == PRUNE_AT_ONCE and not self._stopping.is_set():
                with self.ctx.store.transaction() as tx:
                    pruned = tx.events.prune(config.events_kept, keep_undelivered=bool(config.events_endpoint),
                                             at_most=PRUNE_AT_ONCE)
        except Exception:  # pruning again at the next turn is enough
            log.exception("events: pruning the outbox failed")
