"""Reads the store into placement's snapshot: usable queues and compute environments, the RUNNABLE jobs
each queue offers, fair-share usage and free consumable quantities. Also serves GetJobQueueSnapshot."""

from __future__ import annotations

import json

from batchemu.model import compute_capacity, consumables
from batchemu.model.resources import COMPUTE_ENVIRONMENT, CONSUMABLE_RESOURCE, ENABLED, JOB_QUEUE, USABLE
from batchemu.scheduler import placement, usage
from batchemu.store import JobRow, Tx

PLACEMENT_SCAN = 1000  # RUNNABLE jobs looked at per queue (per share on fair-share queues) and pass
FULL_SCAN = 50         # ... when every compute environment of the queue is full (only the head matters)
HEAD_SCAN = 4          # rows read first of a full FIFO queue: usually its head is a job that just waits


def candidate(row: JobRow) -> placement.Candidate:
    consumables = tuple(sorted(json.loads(row["consumables"]).items())) if row["consumables"] else ()
    return placement.Candidate(job_id=row["job_id"], seq=row["seq"], vcpus=row["vcpus"], platform=row["platform"],
                               share=row["share_identifier"], priority=row["priority"], consumables=consumables)


def _stops_placement(row: JobRow, largest: dict[str, float]) -> bool:
    """Whether placement stops at this job of a full FIFO queue: it fits the queue's largest compute
    environment and holds no consumable resources, so it just waits for room, and so does every job behind it."""
    return row["vcpus"] <= largest.get(row["platform"], 0.0) and not row["consumables"]


def _fifo_rows(tx: Tx, queue_arn: str, limit: int, ready, largest: dict[str, float] | None) -> list[JobRow]:
    """The ready RUNNABLE rows of a FIFO queue that placement looks at. Of a full queue (`largest` given) only
    those up to the first job placement stops at: read a few first, and up to `limit` only when none of those
    stops it (heads too big for the queue or waiting for consumable resources)."""
    if largest is not None:
        rows = [row for row in tx.jobs.runnable(queue_arn, limit=min(HEAD_SCAN, limit)) if ready(row)]
        for index, row in enumerate(rows):
            if _stops_placement(row, largest):
                return rows[:index + 1]
    return [row for row in tx.jobs.runnable(queue_arn, limit=limit) if ready(row)]


def build(tx: Tx, config, now: int, *, ready=lambda row: True, only_queue: str | None = None,
          scan: int = PLACEMENT_SCAN) -> tuple[placement.Snapshot, dict[str, JobRow]]:
    """The snapshot, and the rows of the candidates in it by job id."""
    ces = {doc["computeEnvironmentArn"]: doc for _, doc in tx.resources.of_kind(COMPUTE_ENVIRONMENT)}
    used = tx.capacity.vcpus_in_use()
    views = {arn: placement.ComputeEnvironment(
        arn=arn, platform=compute_capacity.platform_of(ce), used=used.get(arn, 0.0),
        capacity=compute_capacity.capacity_vcpus(ce, config.unmanaged_default_vcpus))
        for arn, ce in ces.items() if compute_capacity.accepts_jobs(ce)}
    queues: list[placement.Queue] = []
    rows_by_id: dict[str, JobRow] = {}
    for _, doc in tx.resources.of_kind(JOB_QUEUE):
        if only_queue is not None and doc["jobQueueArn"] != only_queue:
            continue
        if only_queue is None and (doc.get("state") != ENABLED or doc.get("status") not in USABLE):
            continue
        order = sorted(doc.get("computeEnvironmentOrder") or [], key=lambda e: e.get("order", 0))
        attached = [ces[e["computeEnvironment"]] for e in order if e["computeEnvironment"] in ces]
        largest: dict[str, float] = {}
        for ce in attached:
            capacity = compute_capacity.capacity_vcpus(ce, config.unmanaged_default_vcpus)
            platform = compute_capacity.platform_of(ce)
            largest[platform] = max(largest.get(platform, 0.0), capacity)
        queue_ces = [ce["computeEnvironmentArn"] for ce in attached if ce["computeEnvironmentArn"] in views]
        full = all(views[arn].used >= views[arn].capacity for arn in queue_ces)
        limit = min(scan, FULL_SCAN) if full and only_queue is None else scan
        policy = usage.fair_share_policy(tx, doc["jobQueueArn"])
        if policy is None:
            rows = _fifo_rows(tx, doc["jobQueueArn"], limit, ready, largest if full and only_queue is None else None)
            fair = None
        else:
            rows = [row for share in tx.capacity.runnable_shares(doc["jobQueueArn"])
                    for row in tx.jobs.runnable(doc["jobQueueArn"], share=share, by_priority=True, limit=limit)]
            fair = placement.FairShare(
                weights=[(d["shareIdentifier"], float(d.get("weightFactor", 1.0)))
                         for d in policy.get("shareDistribution") or []],
                usage=usage.current_usage(tx, doc["jobQueueArn"], policy, now),
                compute_reservation=int(policy.get("computeReservation") or 0),
                active_shares=tx.capacity.active_shares(doc["jobQueueArn"]))
            rows = [row for row in rows if ready(row)]
        rows_by_id.update((row["job_id"], row) for row in rows)
        running = sum(row["vcpus"] for row in tx.jobs.on_host(doc["jobQueueArn"])) if fair else 0.0
        queues.append(placement.Queue(
            arn=doc["jobQueueArn"], priority=int(doc.get("priority", 0)), compute_environments=queue_ces,
            candidates=[candidate(row) for row in rows], largest=largest, fair_share=fair, running_vcpus=running))
    needed = {arn for queue in queues for job in queue.candidates for arn, _ in job.consumables}
    available = {}
    for arn in needed:
        resource = tx.resources.get(CONSUMABLE_RESOURCE, arn)
        available[arn] = consumables.available(resource) if resource else 0
    return placement.Snapshot(queues=queues, compute_environments=views, available=available), rows_by_id
