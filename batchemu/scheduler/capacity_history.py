"""Capacity history: each compute environment's vCPUs in use and desiredvCpus, sampled by the scheduler for the
dashboard's capacity chart.

A sample is written when a value changed since the last one written, at most every SAMPLE_SECONDS, and at
least every HEARTBEAT_SECONDS while nothing changes (so an idle server writes little); samples older than
KEEP_SECONDS are dropped, which bounds the table to a few thousand rows per compute environment.
"""

from __future__ import annotations

from batchemu.context import Context
from batchemu.model.resources import COMPUTE_ENVIRONMENT

SAMPLE_SECONDS = 2.0
HEARTBEAT_SECONDS = 60.0
KEEP_SECONDS = 6 * 3600.0


def due(last_at: int | None, changed: bool, now: int) -> bool:
    """Whether to write a sample now, given when the last was written and whether a value changed since."""
    if last_at is None:
        return True
    elapsed = now - last_at
    return elapsed >= HEARTBEAT_SECONDS * 1000 or (changed and elapsed >= SAMPLE_SECONDS * 1000)


class CapacityHistory:
    """The sampler of one scheduler: remembers what it wrote last, so that an unchanged value costs no write."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._last_at: int | None = None
        self._last: dict[str, tuple[float, int | None]] = {}

    def sample(self, _run: object = None) -> None:
        """The loop's reconciler (it needs nothing of the pass): write a sample of every compute environment
        when one is due (see the module text)."""
        ctx = self._ctx
        now = ctx.clock()
        if self._last_at is not None and now - self._last_at < SAMPLE_SECONDS * 1000:
            return
        with ctx.store.read() as tx:
            in_use = tx.capacity.vcpus_in_use()
            values = {ce["computeEnvironmentArn"]: (float(in_use.get(ce["computeEnvironmentArn"]) or 0.0),
                                                    (ce.get("computeResources") or {}).get("desiredvCpus"))
                      for _, ce in tx.resources.of_kind(COMPUTE_ENVIRONMENT)}
        if not due(self._last_at, values != self._last, now):
            return
        with ctx.store.transaction() as tx:
            tx.capacity_samples.add((arn, now, used, desired) for arn, (used, desired) in values.items())
            tx.capacity_samples.forget_before(now - int(KEEP_SECONDS * 1000))
        self._last_at, self._last = now, values
