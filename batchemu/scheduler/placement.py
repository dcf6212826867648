"""Placement: a pure function from a snapshot of queues, compute environments and consumable resources
to the jobs that start now, where, and why the head of a queue waits.

Queues are served by priority. A FIFO queue offers its RUNNABLE jobs oldest first; a fair-share queue
offers next the job of the share with the lowest usage (decayed vCPU-seconds x weightFactor), highest
scheduling priority first within a share. A job that does not fit now lets the jobs behind it start
(backfill), except that jobs behind one waiting for a consumable resource may not take that resource.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

TOO_BIG = ("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue cannot "
           "meet the CPU requirement of the job.")
CONSUMABLE_WAIT = "CONSUMABLE_RESOURCE:INSUFFICIENT_QUANTITY"
# Usage a job adds to its share the moment it starts, so that jobs placed in one pass spread over shares.
START_CHARGE_SECONDS = 1.0


@dataclass(frozen=True)
class Candidate:
    """A RUNNABLE job as placement sees it."""

    job_id: str
    seq: int
    vcpus: float = 1.0
    platform: str = "EC2"
    share: str | None = None
    priority: int = 0
    consumables: tuple[tuple[str, int], ...] = ()  # (resource ARN, quantity)


@dataclass
class ComputeEnvironment:
    arn: str
    platform: str
    capacity: float  # vCPUs it runs at once
    used: float = 0.0


@dataclass
class FairShare:
    """A queue's fair-share policy and the usage it is measured by."""

    weights: list[tuple[str, float]] = field(default_factory=list)  # (shareIdentifier, weightFactor)
    usage: dict[str | None, float] = field(default_factory=dict)     # share -> decayed vCPU-seconds
    compute_reservation: int = 0                                     # percent
    active_shares: int = 0

    def weight(self, share: str | None) -> float:
        """weightFactor of a share: an exact entry, else the longest matching `prefix*` entry, else 1."""
        best, best_length = 1.0, -1
        for identifier, weight in self.weights:
            if identifier == share:
                return weight
            if identifier.endswith("*") and share is not None and fnmatch.fnmatchcase(share, identifier) \
                    and len(identifier) > best_length:
                best, best_length = weight, len(identifier)
        return best

    def score(self, share: str | None) -> float:
        return self.usage.get(share, 0.0) * self.weight(share)


@dataclass
class Queue:
    arn: str
    priority: int
    compute_environments: list[str]           # usable ones, in the queue's order
    candidates: list[Candidate]               # FIFO order (fair share reorders them)
    largest: dict[str, float] = field(default_factory=dict)  # platform -> biggest CE attached, any state
    fair_share: FairShare | None = None
    running_vcpus: float = 0.0                # of this queue's jobs on hosts


@dataclass
class Snapshot:
    queues: list[Queue]
    compute_environments: dict[str, ComputeEnvironment]
    available: dict[str, int] = field(default_factory=dict)  # consumable resource ARN -> quantity free


@dataclass
class Decision:
    placements: list[tuple[str, str, str]] = field(default_factory=list)  # (job id, CE ARN, queue ARN)
    waiting: dict[str, str] = field(default_factory=dict)                 # job id -> statusReason


def _next(queue: Queue, pending: dict[str | None, list[Candidate]]) -> Candidate | None:
    """The job the queue offers next, removed from `pending`."""
    shares = [share for share, jobs in pending.items() if jobs]
    if not shares:
        return None
    if queue.fair_share is None:
        share = min(shares, key=lambda s: pending[s][0].seq)
    else:
        fair = queue.fair_share
        share = min(shares, key=lambda s: (fair.score(s), pending[s][0].seq))
    return pending[share].pop(0)


def _grouped(queue: Queue) -> dict[str | None, list[Candidate]]:
    if queue.fair_share is None:
        return {None: list(queue.candidates)}
    groups: dict[str | None, list[Candidate]] = {}
    for job in queue.candidates:
        groups.setdefault(job.share, []).append(job)
    for jobs in groups.values():
        jobs.sort(key=lambda j: (-j.priority, j.seq))
    return groups


def _reserved_limit(queue: Queue, ces: dict[str, ComputeEnvironment]) -> float | None:
    """vCPUs the queue's active shares may use while computeReservation keeps room for new shares."""
    fair = queue.fair_share
    if fair is None or not fair.compute_reservation:
        return None
    total = sum(ces[arn].capacity for arn in queue.compute_environments if arn in ces)
    return total * (1 - (fair.compute_reservation / 100) ** max(fair.active_shares, 1))


def dispatch_order(queue: Queue) -> list[Candidate]:
    """The queue's RUNNABLE jobs in the order it would start them, capacity aside."""
    pending = _grouped(queue)
    usage = dict(queue.fair_share.usage) if queue.fair_share else {}
    order = []
    while (job := _next(queue, pending)) is not None:
        order.append(job)
        if queue.fair_share is not None:
            queue.fair_share.usage[job.share] = queue.fair_share.usage.get(job.share, 0.0) + \
                job.vcpus * START_CHARGE_SECONDS
    if queue.fair_share is not None:
        queue.fair_share.usage = usage
    return order


def decide(snapshot: Snapshot) -> Decision:
    """Which RUNNABLE jobs start now and on which compute environment, and why a queue's head waits."""
    decision = Decision()
    ces = snapshot.compute_environments
    available = dict(snapshot.available)
    for queue in sorted(snapshot.queues, key=lambda q: -q.priority):
        usable = [ces[arn] for arn in queue.compute_environments if arn in ces]
        limit = _reserved_limit(queue, ces)
        placed_vcpus = queue.running_vcpus
        pending = _grouped(queue)
        head_seen = False
        while (job := _next(queue, pending)) is not None:
            if queue.largest.get(job.platform, 0.0) < job.vcpus:
                if not head_seen:
                    decision.waiting[job.job_id] = TOO_BIG
                head_seen = True
                continue
            short = [(arn, need) for arn, need in job.consumables if available.get(arn, 0) < need]
            if short:
                arn, need = short[0]
                name = arn.rsplit("/", 1)[-1]
                decision.waiting[job.job_id] = (
                    f"{CONSUMABLE_WAIT} - waiting for {need} of consumable resource {name} "
                    f"({max(available.get(arn, 0), 0)} available)")
                for arn, _ in job.consumables:
                    available[arn] = -1  # held for this job: nobody behind it takes what it waits for
                head_seen = True
                continue
            if not usable or all(ce.used >= ce.capacity for ce in usable):
                break
            if limit is not None and placed_vcpus + job.vcpus > limit:
                break
            target = next((ce for ce in usable if ce.platform == job.platform
                           and ce.used + job.vcpus <= ce.capacity), None)
            if target is None:
                head_seen = True
                continue
            target.used += job.vcpus
            placed_vcpus += job.vcpus
            for arn, need in job.consumables:
                available[arn] = available.get(arn, 0) - need
            if queue.fair_share is not None:
                queue.fair_share.usage[job.share] = queue.fair_share.usage.get(job.share, 0.0) + \
                    job.vcpus * START_CHARGE_SECONDS
            decision.placements.append((job.job_id, target.arn, queue.arn))
            head_seen = True
    return decision
