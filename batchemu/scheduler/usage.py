"""What jobs on hosts hold: consumable resources (from STARTING until the attempt ends) and the vCPU-seconds
that fair-share scheduling measures each share by."""

from __future__ import annotations

import math

from batchemu.model import consumables, states
from batchemu.model.resources import JOB_QUEUE, SCHEDULING_POLICY
from batchemu.scheduler.placement import START_CHARGE_SECONDS
from batchemu.store import Tx

DEFAULT_DECAY_SECONDS = 600  # shareDecaySeconds 0 means "the default minimum time window (600 seconds)"


def attempt_began(tx: Tx, job: dict) -> None:
    info = states.internal(job)
    info["consumablesHeld"] = consumables.hold(tx, info.get("consumables") or {})


def attempt_ended(tx: Tx, ctx, job: dict, now: int) -> None:
    """Give back what the attempt held (a NON_REPLENISHABLE quantity is used up), and add its vCPU-seconds
    to its share's usage."""
    info = states.internal(job)
    consumables.release(tx, info.get("consumables") or {}, info.get("consumablesHeld"))
    share = job.get("shareIdentifier")
    policy = fair_share_policy(tx, job["jobQueue"])
    if share is None or policy is None:
        return
    began = _attempt_start(job)
    decayed = decayed_usage(tx, job["jobQueue"], policy, now).get(share, 0.0)
    vcpu_seconds = float(info.get("vcpus", 1.0)) * max(now - began, 0) / 1000
    tx.capacity.put_share_usage(job["jobQueue"], share, decayed + vcpu_seconds, now)


def _attempt_start(job: dict) -> int:
    for status, at in reversed(states.internal(job).get("transitions") or []):
        if status == states.STARTING:
            return at
    return job.get("startedAt") or job["createdAt"]


def fair_share_policy(tx: Tx, queue_arn: str) -> dict | None:
    queue = tx.resources.get(JOB_QUEUE, queue_arn)
    arn = (queue or {}).get("schedulingPolicyArn")
    policy = tx.resources.get(SCHEDULING_POLICY, arn) if arn else None
    return (policy or {}).get("fairsharePolicy")


def decayed_usage(tx: Tx, queue_arn: str, policy: dict, now: int) -> dict[str, float]:
    """share -> vCPU-seconds of its finished attempts, decayed exponentially over shareDecaySeconds."""
    window = (policy.get("shareDecaySeconds") or DEFAULT_DECAY_SECONDS) * 1000
    return {share: value * math.exp(-max(now - at, 0) / window)
            for share, (value, at) in tx.capacity.share_usage(queue_arn).items()}


def current_usage(tx: Tx, queue_arn: str, policy: dict, now: int) -> dict[str | None, float]:
    """Decayed usage plus the vCPU-seconds of attempts still on hosts (each counted at least
    START_CHARGE_SECONDS, so that a job that has just started counts)."""
    usage: dict[str | None, float] = dict(decayed_usage(tx, queue_arn, policy, now).items())
    for row in tx.jobs.on_host(queue_arn):
        began = row["started_at"] or row["entered_at"]
        seconds = max((now - began) / 1000, START_CHARGE_SECONDS)
        usage[row["share_identifier"]] = usage.get(row["share_identifier"], 0.0) + row["vcpus"] * seconds
    return usage
