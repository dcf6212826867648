"""The scheduler: one reconcile loop (loop.py) over waiting jobs (dependencies.py, intents.py), placement
(placement.py, a pure function over snapshot.py's view of the store) and jobs on hosts (on_host.py)."""

from batchemu.scheduler.loop import Scheduler

__all__ = ["Scheduler"]
