"""What every operation handler receives: the store, the settings and a way to wake the scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchemu.config import Config
from batchemu.store import Store


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Context:
    store: Store
    config: Config
    notify: Callable[[], None] = lambda: None
    clock: Callable[[], int] = field(default=now_ms)

    def arn(self, resource: str) -> str:
        """`arn:aws:batch:<region>:<account>:<resource>`."""
        return f"arn:aws:batch:{self.config.region}:{self.config.account_id}:{resource}"
