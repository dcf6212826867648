"""AWS Batch's EventBridge events, made of the store's event outbox (batchemu.store.event_outbox).

A status change of a job is a "Batch Job State Change" (a service job's, "Batch Service Job State Change"); a
waiting job given a blocking reason is a "Batch Job Queue Blocked" ("Batch Service Job Queue Blocked"). The
envelope is EventBridge's (version "0", id, detail-type, source "aws.batch", account, time, region, resources);
`detail` is the job as DescribeJobs (DescribeServiceJob, without `tags` and `serviceRequestPayload`) returned it
at that moment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cache

from batchemu.config import Config
from batchemu.model import states
from batchemu.protocol.serializer import projector
from batchemu.store import Tx
from batchemu.store.event_outbox import JOB, SERVICE_JOB, EventRow

SOURCE = "aws.batch"
DETAIL_TYPES = {  # (kind, blocked) -> detail-type
    (JOB, False): "Batch Job State Change",
    (JOB, True): "Batch Job Queue Blocked",
    (SERVICE_JOB, False): "Batch Service Job State Change",
    (SERVICE_JOB, True): "Batch Service Job Queue Blocked",
}
SERVICE_DETAIL_OMITS = ("tags", "serviceRequestPayload")


def queue_blocked(job: dict, reason: str, now: int) -> None:
    """Give a waiting (RUNNABLE) job the reason it blocks its queue, and note the queue-blocked event on it for
    the outbox of the transaction that writes it."""
    job["statusReason"] = reason
    states.internal(job).setdefault("events", []).append([job["status"], now, True])


def child_blocked(tx: Tx, job_id: str, reason: str, now: int) -> None:
    """queue_blocked() of a waiting array child that has no document (its row is written at once)."""
    tx.arrays.set_child_status_reason(job_id, reason)
    tx.events.record_rows([job_id], states.RUNNABLE, now, blocked=True)


@cache
def _service_job_wire() -> Callable[[dict], str]:
    return projector("batch", "DescribeServiceJobResponse")


def iso_time(epoch_ms: int) -> str:
    """EventBridge's `time`: ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def detail_of(tx: Tx, row: EventRow) -> dict:
    """The job as it was when the event was recorded. An array child that had no document then is described
    from its parent's as it is now, with the event's status and reason."""
    if row["kind"] == SERVICE_JOB:
        doc = json.loads(row["detail"] or "{}")
        doc = {key: value for key, value in doc.items() if key not in SERVICE_DETAIL_OMITS}
        return json.loads(_service_job_wire()({**doc, "startedAt": doc.get("startedAt", 0)}))
    if row["detail"] is not None:
        return json.loads(row["detail"])
    if row["detail_in_next"]:
        detail = json.loads(tx.events.detail_after(row["seq"]) or "{}")
        detail["status"] = row["status"]
        return detail
    wire = tx.jobs.wire_as_child_row(row["job_id"], row["status"], row["status_reason"], row["at"])
    return json.loads(wire) if wire else {"jobId": row["job_id"], "jobQueue": row["job_queue_arn"],
                                          "status": row["status"]}


def envelope(row: EventRow, detail: dict, config: Config) -> dict:
    """The EventBridge event of an outbox row."""
    blocked = bool(row["blocked"])
    resources = [detail.get("jobArn") or f"arn:aws:batch:{config.region}:{config.account_id}:job/{row['job_id']}"]
    if blocked and row["kind"] != SERVICE_JOB:
        resources.append(row["job_queue_arn"])
    return {"version": "0", "id": row["id"], "detail-type": DETAIL_TYPES[(row["kind"], blocked)], "source": SOURCE,
            "account": config.account_id, "time": iso_time(row["at"]), "region": config.region,
            "resources": resources, "detail": detail}


def read(tx: Tx, config: Config, after: int, limit: int = 100, *, job_id: str | None = None,
         queue_arn: str | None = None) -> list[tuple[int, dict]]:
    """(sequence, event) of the events after sequence `after`, oldest first; of one job (with its array
    children and nodes) or one queue."""
    return [(row["seq"], envelope(row, detail_of(tx, row), config))
            for row in tx.events.after(after, limit, job_id=job_id, queue_arn=queue_arn)]
