"""Service-job placement: a pure function from queues, service environments and quota shares to the jobs
that are scheduled now, the jobs preempted to make room, and why a job waits.

Capacity is counted in instances (the payload's ResourceConfig.InstanceCount) against the service
environment's capacityLimits: NUM_INSTANCES bounds every instance, an instance-type unit bounds that type.
Queues sharing an environment are served by priority. A FIFO queue offers its jobs oldest first; a
fair-share queue the job of the share with the fewest instances in use (x weightFactor), highest
schedulingPriority first within a share; a quota-managed queue the oldest head of its quota shares, each
share's jobs by schedulingPriority, then age.

Quota shares: a share runs within its own capacityLimits; a LEND_AND_BORROW share may go beyond them up
to borrowLimit percent of its own limit (-1: no limit) while shares that LEND (or LEND_AND_BORROW) leave
theirs idle. A share whose job fits its own limits but not the environment reclaims what was lent:
borrowing jobs of other shares are preempted, lowest schedulingPriority and newest first. With
inSharePreemption ENABLED a job also preempts lower-priority jobs of its own share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from batchemu.scheduler.placement import FairShare

NUM_INSTANCES = "NUM_INSTANCES"
LENDERS = ("LEND", "LEND_AND_BORROW")
RECLAIMED = "Preempted: capacity reclaimed by quota share {share}"
IN_SHARE = "Preempted: a higher priority job of quota share {share} needed the capacity"


@dataclass(frozen=True)
class Job:
    job_id: str
    seq: int
    instances: int
    instance_type: str
    priority: int = 0
    share: str | None = None        # shareIdentifier (fair-share queues)
    quota_share: str | None = None  # quotaShareName (quota-managed queues)
    preempting: bool = False        # a preemption already asked for (its capacity frees soon)


@dataclass
class Environment:
    arn: str
    name: str
    limits: dict[str, int]                                  # capacityUnit -> maxCapacity
    used: dict[str, int] = field(default_factory=dict)      # NUM_INSTANCES and per instance type

    def misfit(self, job: Job) -> str | None:
        """Why the job can never run here, or None."""
        units = [unit for unit in (NUM_INSTANCES, job.instance_type) if unit in self.limits]
        if not units:
            return (f"MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service environment {self.name} has no "
                    f"capacity limit for {job.instance_type or 'the instance type'} nor {NUM_INSTANCES}")
        for unit in units:
            if job.instances > self.limits[unit]:
                return (f"MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service environment {self.name} "
                        f"cannot meet the capacity requirement of the job: {job.instances} instances of "
                        f"{job.instance_type}, maxCapacity {self.limits[unit]} {unit}")
        return None

    def short(self, job: Job) -> int:
        """Instances missing for the job to fit now (0: it fits)."""
        return max([0] + [self.used.get(unit, 0) + job.instances - self.limits[unit]
                          for unit in (NUM_INSTANCES, job.instance_type) if unit in self.limits])

    def take(self, job: Job, sign: int = 1) -> None:
        for unit in {NUM_INSTANCES, job.instance_type}:
            self.used[unit] = self.used.get(unit, 0) + sign * job.instances


@dataclass
class QuotaShare:
    name: str
    limits: dict[str, int]           # instance type -> maxCapacity
    strategy: str = "RESERVE"
    borrow_limit: int = -1           # percent of its own limit; -1 unlimited
    in_share_preemption: bool = False
    enabled: bool = True

    def borrow_cap(self, instance_type: str) -> float:
        if self.strategy != "LEND_AND_BORROW":
            return 0
        if self.borrow_limit < 0:
            return float("inf")
        return self.limits.get(instance_type, 0) * self.borrow_limit // 100


@dataclass
class Queue:
    arn: str
    priority: int
    environment: str | None                       # service environment ARN, None when none is usable
    candidates: list[Job]                         # RUNNABLE, oldest first
    running: list[Job] = field(default_factory=list)
    fair_share: FairShare | None = None
    quota_shares: dict[str, QuotaShare] | None = None


@dataclass
class Decision:
    placements: list[tuple[str, str]] = field(default_factory=list)   # (job id, service environment ARN)
    waiting: dict[str, str] = field(default_factory=dict)             # job id -> statusReason
    preempt: list[tuple[str, str]] = field(default_factory=list)      # (job id, statusReason)


def dispatch_order(queue: Queue) -> list[Job]:
    """The queue's RUNNABLE jobs in the order it offers them."""
    if queue.fair_share is None and queue.quota_shares is None:
        return list(queue.candidates)
    key = (lambda j: j.quota_share) if queue.quota_shares is not None else (lambda j: j.share)
    groups: dict[str | None, list[Job]] = {}
    for job in sorted(queue.candidates, key=lambda j: (-j.priority, j.seq)):
        groups.setdefault(key(job), []).append(job)
    in_use: dict[str | None, int] = {}
    for job in queue.running:
        in_use[key(job)] = in_use.get(key(job), 0) + job.instances
    order = []
    while any(groups.values()):
        heads = [share for share, jobs in groups.items() if jobs]
        if queue.fair_share is not None:
            fair = queue.fair_share
            share = min(heads, key=lambda s: (in_use.get(s, 0) * fair.weight(s), groups[s][0].seq))
        else:
            share = min(heads, key=lambda s: groups[s][0].seq)
        job = groups[share].pop(0)
        in_use[share] = in_use.get(share, 0) + job.instances
        order.append(job)
    return order


class _Quota:
    """Instances each quota share of a queue holds, per instance type."""

    def __init__(self, shares: dict[str, QuotaShare], running: list[Job]) -> None:
        self.shares = shares
        self.used: dict[tuple[str | None, str], int] = {}
        for job in running:
            self.add(job, 1)

    def add(self, job: Job, sign: int) -> None:
        key = (job.quota_share, job.instance_type)
        self.used[key] = self.used.get(key, 0) + sign * job.instances

    def own(self, share: str | None, instance_type: str) -> int:
        quota = self.shares.get(share or "")
        return quota.limits.get(instance_type, 0) if quota else 0

    def over(self, share: str | None, instance_type: str) -> int:
        """Instances the share holds beyond its own limit (borrowed)."""
        return max(0, self.used.get((share, instance_type), 0) - self.own(share, instance_type))

    def within_own(self, job: Job) -> bool:
        return self.used.get((job.quota_share, job.instance_type), 0) + job.instances <= \
            self.own(job.quota_share, job.instance_type)

    def may_borrow(self, job: Job) -> bool:
        """Whether the job fits by borrowing idle capacity lent by the other shares."""
        share, kind = self.shares[job.quota_share or ""], job.instance_type
        excess = self.used.get((job.quota_share, kind), 0) + job.instances - self.own(job.quota_share, kind)
        if excess > share.borrow_cap(kind):
            return False
        idle = sum(max(0, self.own(name, kind) - self.used.get((name, kind), 0))
                   for name, other in self.shares.items()
                   if name != job.quota_share and other.enabled and other.strategy in LENDERS)
        borrowed = sum(self.over(name, kind) for name in self.shares if name != job.quota_share)
        return borrowed + excess <= idle


def _victims(pool: list[Job], need: int, quota: _Quota | None, borrowed_only: bool) -> list[Job]:
    """Jobs to preempt, lowest priority and newest first, until `need` instances would be free."""
    chosen, freed = [], 0
    for job in sorted(pool, key=lambda j: (j.priority, -j.seq)):
        if freed >= need:
            break
        if borrowed_only and quota is not None and quota.over(job.quota_share, job.instance_type) <= 0:
            continue
        chosen.append(job)
        freed += job.instances
        if quota is not None:
            quota.add(job, -1)
    if freed >= need:
        return chosen
    if quota is not None:
        for job in chosen:
            quota.add(job, 1)  # not enough to free: nobody is preempted
    return []


def _reclaim(queue: Queue, job: Job, env: Environment, quota: _Quota, decision: Decision) -> None:
    """Preempt so that `job` can run later: borrowed jobs of other shares when it is within its own limits
    (the environment is full), lower-priority jobs of its own share when inSharePreemption allows."""
    same_type = [r for r in queue.running if r.instance_type == job.instance_type or NUM_INSTANCES in env.limits]
    freeing = sum(r.instances for r in same_type if r.preempting)
    if quota.within_own(job):
        need = env.short(job) - freeing
        pool = [r for r in same_type if not r.preempting and r.quota_share != job.quota_share]
        reason = RECLAIMED.format(share=job.quota_share)
        chosen = _victims(pool, need, quota, borrowed_only=True) if need > 0 else []
    elif quota.shares[job.quota_share or ""].in_share_preemption:
        kind = job.instance_type
        need = quota.used.get((job.quota_share, kind), 0) + job.instances - quota.own(job.quota_share, kind) - freeing
        pool = [r for r in same_type if not r.preempting and r.quota_share == job.quota_share
                and r.instance_type == kind and r.priority < job.priority]
        reason = IN_SHARE.format(share=job.quota_share)
        chosen = _victims(pool, need, None, borrowed_only=False) if need > 0 else []
        for victim in chosen:
            quota.add(victim, -1)
    else:
        return
    for victim in chosen:
        decision.preempt.append((victim.job_id, reason))
        queue.running = [r if r.job_id != victim.job_id else Job(**{**r.__dict__, "preempting": True})
                         for r in queue.running]


def _place(queue: Queue, job: Job, env: Environment, decision: Decision) -> None:
    env.take(job)
    queue.running.append(job)
    decision.placements.append((job.job_id, env.arn))


def _quota_pass(queue: Queue, shares: dict[str, QuotaShare], order: list[Job], env: Environment,
                decision: Decision) -> None:
    """Jobs within their share's own limits (`shares`: the queue's quota shares) first, reclaiming lent
    capacity when the environment is full, then jobs that borrow: only capacity nobody's own jobs wait for
    is idle."""
    quota = _Quota(shares, queue.running)
    borrowing = []
    for job in order:
        share = shares.get(job.quota_share or "")
        if share is None or not share.enabled:
            decision.waiting[job.job_id] = (f"MISCONFIGURATION:QUOTA_SHARE - quota share {job.quota_share} "
                                            "is not ENABLED in this job queue")
        elif not quota.within_own(job):
            borrowing.append(job)
        elif env.short(job):
            _reclaim(queue, job, env, quota, decision)
        else:
            quota.add(job, 1)
            _place(queue, job, env, decision)
    for job in borrowing:
        if quota.may_borrow(job) and not env.short(job):
            quota.add(job, 1)
            _place(queue, job, env, decision)
        else:
            _reclaim(queue, job, env, quota, decision)


def decide(queues: list[Queue], environments: dict[str, Environment]) -> Decision:
    """Which RUNNABLE service jobs are scheduled now and where, which running ones are preempted, and why
    a job waits."""
    decision = Decision()
    for queue in sorted(queues, key=lambda q: -q.priority):
        env = environments.get(queue.environment or "")
        if env is None:
            continue
        order = []
        for job in dispatch_order(queue):
            misfit = env.misfit(job)
            if misfit:
                decision.waiting[job.job_id] = misfit
            else:
                order.append(job)
        if queue.quota_shares is not None:
            _quota_pass(queue, queue.quota_shares, order, env, decision)
            continue
        for job in order:
            if not env.short(job):  # a job that does not fit lets smaller ones behind it start (backfill)
                _place(queue, job, env, decision)
    return decision
