"""The front of a job queue as the scheduler would dispatch it, for GetJobQueueSnapshot: its RUNNABLE jobs in
placement's dispatch order (service placement's, for a SAGEMAKER_TRAINING queue). server.py hands
`queue_front` to the handlers through the Context, so that service/ never imports the scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field

from batchemu.config import Config
from batchemu.model import states
from batchemu.scheduler import placement, service_job_progress, service_placement, snapshot
from batchemu.store import Tx


@dataclass(frozen=True)
class Position:
    """A job at the front of a queue: since when it has been there (epoch ms), and its share."""
    job_id: str
    entered_at: int
    share: str | None = None
    job_arn: str | None = None  # service jobs only: container jobs' ARNs are the handler's to make


@dataclass(frozen=True)
class QueueFront:
    positions: list[Position] = field(default_factory=list)
    instances_in_use: int = 0  # SAGEMAKER_TRAINING queues: held by their scheduled, starting and running jobs
    # Quota-managed queues only (None for the others): the first RUNNABLE job of each quota share, by share
    # name, however far back in the queue; and the instances each (share, instance type) holds.
    quota_share_heads: dict[str, Position] | None = None
    quota_share_instances: dict[tuple[str, str], int] | None = None


def queue_front(tx: Tx, config: Config, queue: dict, now: int, size: int) -> QueueFront:
    """The first `size` jobs the scheduler would dispatch from `queue` (a stored JobQueueDetail) now."""
    if queue.get("jobQueueType") == service_job_progress.SAGEMAKER_TRAINING:
        return _service_queue_front(tx, queue, size)
    view, rows = snapshot.build(tx, config, now, only_queue=queue["jobQueueArn"], scan=size)
    order = placement.dispatch_order(view.queues[0])[:size] if view.queues else []
    return QueueFront([Position(job.job_id, rows[job.job_id]["entered_at"], job.share) for job in order])


def _service_queue_front(tx: Tx, queue: dict, size: int) -> QueueFront:
    queues, _ = service_job_progress.snapshot(tx, lambda job: True)
    view = next((q for q in queues if q.arn == queue["jobQueueArn"]), None)
    if view is None:
        return QueueFront()
    order = service_placement.dispatch_order(view)
    positions = [position for candidate in order[:size] if (position := _service_position(tx, candidate.job_id))]
    if view.quota_shares is None:
        return QueueFront(positions, sum(job.instances for job in view.running))
    heads: dict[str, Position] = {}
    for candidate in order:
        if candidate.quota_share and candidate.quota_share not in heads:
            position = _service_position(tx, candidate.job_id)
            if position is not None:
                heads[candidate.quota_share] = position
    held: dict[tuple[str, str], int] = {}
    for job in view.running:
        key = (job.quota_share or "", job.instance_type)
        held[key] = held.get(key, 0) + job.instances
    return QueueFront(positions, sum(job.instances for job in view.running), heads, held)


def _service_position(tx: Tx, job_id: str) -> Position | None:
    job = tx.service_jobs.get(job_id)
    if job is None:
        return None
    return Position(job["jobId"], states.entered_at(job), job.get("shareIdentifier"), job["jobArn"])
