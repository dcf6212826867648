"""The scheduler: one reconcile loop (loop.py) whose pass is a list of named reconcilers: resource statuses
(resource_status.py), waiting jobs (dependencies.py; intents are the model's, model/intents.py), placement
(placement.py and service_placement.py, pure functions over snapshot.py's view of the store), jobs on hosts
(on_host.py, service_job_progress.py), managed scaling (scaling.py), samples of capacity for the dashboard
(capacity_history.py) and the engine calls (engine_calls.py)."""

from batchemu.scheduler.loop import Scheduler

__all__ = ["Scheduler"]
