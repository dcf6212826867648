"""What every operation handler and the scheduler receive: the store, the settings, the clock, a way to wake
the scheduler, and the scheduler's read of a queue's front (wired by server.py: service/ never imports the
scheduler)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchemu.config import Config
from batchemu.store import Store


def now_ms() -> int:
    return int(time.time() * 1000)


def _unwired(*_args: Any) -> Any:
    raise RuntimeError("Context.queue_front is the scheduler's, wired by server.py")


@dataclass
class Context:
    store: Store
    config: Config
    notify: Callable[[], None] = lambda: None
    clock: Callable[[], int] = field(default=now_ms)
    # (tx, config, queue, now, size) -> batchemu.scheduler.queue_front.QueueFront
    queue_front: Callable[..., Any] = field(default=_unwired)

    def arn(self, resource: str) -> str:
        """`arn:aws:batch:<region>:<account>:<resource>`."""
        return f"arn:aws:batch:{self.config.region}:{self.config.account_id}:{resource}"
