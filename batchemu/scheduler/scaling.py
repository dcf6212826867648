"""Managed scaling: the desiredvCpus of a MANAGED EC2 or SPOT compute environment follows the demand on it.

Demand is the vCPUs of the CE's STARTING and RUNNING jobs plus those of the RUNNABLE jobs of ENABLED queues
that placement would put on it. desiredvCpus rises to the demand at once (never while the CE is DISABLED)
and never leaves [minvCpus, maxvCpus]; it comes down to the demand (at least minvCpus) once the unused part
has stood unused for the scale-down delay, counted again from each further drop in demand, the way AWS
keeps an instance for the delay after its last job. It is bookkeeping: jobs are placed against maxvCpus at
once, without waiting for instances.

`desired_vcpus` and `scale_down_timer` are pure; `reconcile` applies them to the store on each scheduler pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from batchemu.config import Config
from batchemu.context import Context
from batchemu.model import compute_capacity, states
from batchemu.model.resources import COMPUTE_ENVIRONMENT, ENABLED, JOB_QUEUE, USABLE
from batchemu.store import Tx

# Scale-down delay when the CE sets no scalingPolicy and the server no --scale-down-delay: AWS keeps idle
# instances for minutes; a local emulator gives capacity back sooner.
DEFAULT_DELAY_SECONDS = 60.0
RUNNABLE_PAGE = 500  # RUNNABLE jobs read at a time while a queue's CEs still have room for more demand
TIMER_KEY = "scaleDown"  # under the CE's "batchemu" bookkeeping, which the output shape drops


def scales(ce: dict) -> bool:
    """Whether Batch manages this CE's desiredvCpus: MANAGED EC2 or SPOT (not Fargate, not UNMANAGED)."""
    return (ce.get("type") == "MANAGED"
            and (ce.get("computeResources") or {}).get("type") in compute_capacity.EC2_TYPES)


def target_vcpus(resources: dict, demand: float) -> int:
    """The demand in whole vCPUs (rounded up), clamped to [minvCpus, maxvCpus]."""
    wanted = math.ceil(round(demand, 6))  # 0.2 + 2.2 + 0.6 sums to 3.0000000000000004: 3 vCPUs, not 4
    return min(max(resources.get("minvCpus", 0), wanted), resources["maxvCpus"])


def scale_down_delay_ms(resources: dict, setting_seconds: float | None) -> int:
    """scalingPolicy.minScaleDownDelayMinutes (0 = unset), else DEFAULT_DELAY_SECONDS; a server setting
    replaces the default and caps the policy."""
    minutes = (resources.get("scalingPolicy") or {}).get("minScaleDownDelayMinutes") or 0
    default = DEFAULT_DELAY_SECONDS if setting_seconds is None else setting_seconds
    seconds = minutes * 60 if minutes else default
    if setting_seconds is not None:
        seconds = min(seconds, setting_seconds)
    return int(seconds * 1000)


def desired_vcpus(resources: dict, demand: float, idle_since_ms: int | None, now_ms: int, delay_ms: int,
                  enabled: bool) -> int:
    """The CE's next desiredvCpus, given its computeResources and the vCPUs asked of it.

    `idle_since_ms` is when part of the current desiredvCpus last became unused (see `scale_down_timer`),
    or None when all of it is in use. A DISABLED CE (`enabled` False) does not scale out but does scale in.
    """
    low, high = resources.get("minvCpus", 0), resources["maxvCpus"]
    current = min(max(resources.get("desiredvCpus", low), low), high)
    target = target_vcpus(resources, demand)
    if target > current:
        return target if enabled else current
    if target < current and idle_since_ms is not None and now_ms - idle_since_ms >= delay_ms:
        return target
    return current


def scale_down_timer(resources: dict, demand: float, timer: dict | None, now_ms: int) -> dict | None:
    """The scale-down clock after a pass whose computeResources (desiredvCpus already updated) and demand
    are given: None while all of desiredvCpus is in use; else {"since", "vcpus"}, restarted whenever the
    demand drops below the `vcpus` it last saw, so the vCPUs freed last get the whole delay."""
    target = target_vcpus(resources, demand)
    if target >= resources.get("desiredvCpus", 0):
        return None
    if timer is None or target < timer["vcpus"]:
        return {"since": now_ms, "vcpus": target}
    return {"since": timer["since"], "vcpus": target}


def demand_by_compute_environment(tx: Tx, config: Config) -> dict[str, float]:
    """vCPUs asked of each compute environment, by ARN: its STARTING and RUNNING jobs, plus each RUNNABLE
    job of an ENABLED queue on the first usable CE of the queue (in order, of the job's platform) with room
    left for it, or else the first such CE big enough for it."""
    demand: dict[str, float] = {arn: vcpus for arn, vcpus in tx.capacity.vcpus_in_use().items() if arn}
    ces = {doc["computeEnvironmentArn"]: doc for _, doc in tx.resources.of_kind(COMPUTE_ENVIRONMENT)}
    for _, queue in tx.resources.of_kind(JOB_QUEUE):
        if queue.get("state") != ENABLED or queue.get("status") not in USABLE:
            continue
        order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda e: e.get("order", 0))
        usable = [ces[e["computeEnvironment"]] for e in order
                  if compute_capacity.accepts_jobs(ces.get(e["computeEnvironment"]))]
        capacity = {ce["computeEnvironmentArn"]: compute_capacity.capacity_vcpus(
            ce, config.unmanaged_default_vcpus) for ce in usable}
        after = 0
        # Demand past every CE's maxvCpus changes nothing, so reading stops there.
        while any(demand.get(arn, 0.0) < cap for arn, cap in capacity.items()):
            page = tx.jobs.query({"job_queue_arn": queue["jobQueueArn"]}, statuses=[states.RUNNABLE],
                                 after_seq=after, limit=RUNNABLE_PAGE, rows_only=True)
            for _, row in page:
                need, platform = row["vcpus"], row["platform"]
                fits = [ce["computeEnvironmentArn"] for ce in usable
                        if compute_capacity.platform_of(ce) == platform
                        and capacity[ce["computeEnvironmentArn"]] >= need]
                room = [arn for arn in fits if demand.get(arn, 0.0) + need <= capacity[arn]]
                if fits:
                    arn = (room or fits)[0]
                    demand[arn] = demand.get(arn, 0.0) + need
            if len(page) < RUNNABLE_PAGE:
                break
            after = page[-1][0]
    return demand


def reconcile(ctx: Context, demand: Callable[[Tx, Config], dict[str, float]]) -> None:
    """Move the desiredvCpus of every scaling CE towards `demand(tx, config)` (vCPUs by CE ARN), read in the
    same transaction; a CE document is written only when its desiredvCpus or scale-down clock changes."""
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        wanted = demand(tx, ctx.config)
        for _, ce in tx.resources.of_kind(COMPUTE_ENVIRONMENT):
            if not scales(ce) or ce.get("status") not in USABLE:
                continue
            resources = ce["computeResources"]
            info = ce.setdefault("batchemu", {})
            vcpus = wanted.get(ce["computeEnvironmentArn"], 0.0)
            timer = info.get(TIMER_KEY)
            delay = scale_down_delay_ms(resources, ctx.config.scale_down_delay)
            desired = desired_vcpus(resources, vcpus, timer and timer["since"], now, delay,
                                    ce.get("state") == ENABLED)
            next_timer = scale_down_timer({**resources, "desiredvCpus": desired}, vcpus, timer, now)
            if desired == resources.get("desiredvCpus") and next_timer == timer:
                continue
            resources["desiredvCpus"] = desired
            if next_timer is None:
                info.pop(TIMER_KEY, None)
            else:
                info[TIMER_KEY] = next_timer
            tx.resources.put(COMPUTE_ENVIRONMENT, ce["computeEnvironmentArn"], ce["computeEnvironmentName"], ce)
