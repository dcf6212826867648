"""The reconcile loop that moves jobs through their states (being written; see issue 3)."""

from __future__ import annotations

from batchemu.service.context import Context


class Scheduler:
    def __init__(self, ctx: Context, executor) -> None:
        self.ctx = ctx
        self.executor = executor

    def notify(self) -> None:
        pass

    def request_stop(self, job_id: str) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
