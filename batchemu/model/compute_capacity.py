"""What a compute environment offers the jobs of its queues: its platform (EC2 or Fargate), whether it takes
jobs now, and how many vCPUs it can run at once. Read by the handlers and the scheduler alike."""

from __future__ import annotations

from batchemu.model.resources import ENABLED, USABLE

FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")
EC2_TYPES = ("EC2", "SPOT")


def is_fargate(ce: dict) -> bool:
    """Whether a compute environment runs on Fargate (FARGATE or FARGATE_SPOT) capacity."""
    return (ce.get("computeResources") or {}).get("type") in FARGATE_TYPES


def platform_of(ce: dict) -> str:
    """The platform a job needs to run on this compute environment: FARGATE or EC2."""
    return "FARGATE" if is_fargate(ce) else "EC2"


def accepts_jobs(ce: dict | None) -> bool:
    """Whether jobs may be placed on a compute environment now: it exists, is ENABLED, and VALID or UPDATING."""
    return ce is not None and ce.get("state") == ENABLED and ce.get("status") in USABLE


def capacity_vcpus(ce: dict, default_unmanaged: int) -> float:
    """The vCPUs a compute environment can run at once, whatever its state.

    MANAGED (EC2, SPOT, Fargate): `computeResources.maxvCpus`. UNMANAGED: `unmanagedvCpus` when set to
    more than 0, else `default_unmanaged` (on AWS the capacity is whatever instances the user launched
    into the cluster; the config default stands for them).
    """
    if ce.get("type") == "MANAGED":
        return float((ce.get("computeResources") or {}).get("maxvCpus", 0))
    return float(ce.get("unmanagedvCpus") or default_unmanaged)
