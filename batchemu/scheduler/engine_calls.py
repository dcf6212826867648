"""Engine calls on a small worker pool: starting a job's container or a service job's training container,
and stopping one. One call per job at a time, never inside a store transaction; each records its outcome on
the job's attempt and asks the loop for a pass."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from batchemu.context import Context
from batchemu.executors import EngineUnavailable, StartFailure
from batchemu.model import attempts, multinode, states
from batchemu.scheduler import on_host, service_job_progress

log = logging.getLogger("batchemu.scheduler")

STOP_TIMEOUT = 2.0  # seconds between SIGTERM and SIGKILL when a job is terminated


class EngineCalls:
    def __init__(self, ctx: Context, executor, again: Callable[[], None],
                 ready: Callable[[dict, int], bool]) -> None:
        self.ctx = ctx
        self.executor = executor
        self._again = again  # ask the loop for a pass
        self._ready = ready  # whether a job has spent the configured dwell in its status
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="batchemu-engine")
        self._busy: set[str] = set()  # job ids with an engine call under way
        self._busy_lock = threading.Lock()

    def start(self, work: on_host.Work) -> None:
        """Make the starts and stops a pass decided."""
        for job_id in work.start:
            self._submit(job_id, self._start_container, job_id)
        for job_id in work.start_service:
            self._submit(job_id, self._start_training, job_id)
        for job_id, container_id in work.stop:
            self._submit(job_id, self._stop_container, job_id, container_id)

    def shutdown(self) -> None:
        """Wait for the calls under way; drop the ones not begun."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def is_busy(self, job_id: str) -> bool:
        """Whether an engine call for the job is under way (a pass then leaves the job alone)."""
        with self._busy_lock:
            return job_id in self._busy

    def _submit(self, job_id: str, fn, *args) -> None:
        """Run `fn` on the worker pool, one call per job at a time, then a pass: unless `fn` answers False
        (it left the job RUNNING with nothing to do) and no stop was asked for meanwhile, which the passes
        made during the call left to the pass after it."""
        with self._busy_lock:
            if job_id in self._busy:
                return
            self._busy.add(job_id)

        def run() -> None:
            again = True
            try:
                again = fn(*args) is not False
            except Exception:
                log.exception("engine call for job %s failed", job_id)
            finally:
                with self._busy_lock:
                    self._busy.discard(job_id)
                if again or self._stop_asked(job_id):  # read once the passes may take the job again
                    self._again()
        try:
            self._pool.submit(run)
        except RuntimeError:  # pool shut down: the server is stopping
            with self._busy_lock:
                self._busy.discard(job_id)

    def _stop_asked(self, job_id: str) -> bool:
        with self.ctx.store.read() as tx:
            job = tx.jobs.get(job_id)
        return job is None or bool(states.internal(job).get("terminateReason"))

    def _start_container(self, job_id: str) -> bool:
        """Whether a pass must follow (not when a plain job is RUNNING now)."""
        with self.ctx.store.read() as tx:
            job = tx.jobs.get(job_id)
            if job is None or job["status"] != states.STARTING:
                return True
            info = states.internal(job)
            network, environment = (multinode.node_environment(tx, job) if info.get("nodeIndex") is not None
                                    else (None, None))
            spec = attempts.task_spec(job, self.ctx.config, info.get("jobQueueName", ""), network=network,
                                      environment=environment)
            attempt = info["attempt"]
        outcome, address = self._launch(spec)
        if info.get("nodeIndex") is not None:
            self._record_start(job_id, attempt, outcome, node_address=address)
            return True
        return self._record_start(job_id, attempt, outcome, running=True)

    def _start_training(self, job_id: str) -> None:
        attempt, spec, problem = service_job_progress.start_spec(self.ctx.store, self.ctx.config, job_id)
        if not attempt:
            return
        if spec is None:
            self._record_start(job_id, attempt, {"phase": attempts.START_FAILED, "start_error": problem})
        else:
            self._record_start(job_id, attempt, self._launch(spec)[0])

    def _launch(self, spec) -> tuple[dict, str | None]:
        """The attempt's phase (and task id, or start error) after asking the engine to start the task, and
        the task's address on its network."""
        try:
            started = self.executor.start(spec)
            return {"phase": attempts.STARTED, "container_id": started.task_id}, started.address
        except StartFailure as exc:
            return {"phase": attempts.START_FAILED, "start_error": attempts.start_error(exc),
                    "containers": attempts.start_failure_containers(exc)}, None
        except EngineUnavailable:
            return {"phase": attempts.REQUEUED}, None
        except Exception as exc:  # noqa: BLE001 - any engine refusal is CannotStartContainerError, as AWS says
            return {"phase": attempts.START_FAILED, "start_error": f"CannotStartContainerError: {exc}"}, None

    def _record_start(self, job_id: str, attempt: int, outcome: dict, node_address: str | None = None, *,
                      running: bool = False) -> bool:
        """Store the start's outcome on its attempt; with `running`, a started job with nothing else to do
        (no stop asked for, no state dwell left) also becomes RUNNING here, as its next pass would make it.
        Whether a pass must follow."""
        with self.ctx.store.transaction() as tx:
            row = tx.attempts.get(job_id, attempt)
            if row is None or not attempts.can_move(row, outcome["phase"]):
                return True  # ended meanwhile (terminated before the container was created)
            tx.attempts.update(job_id, attempt, **outcome)
            if node_address:
                multinode.started(tx, tx.jobs.require(job_id), node_address)  # the job of the attempt row
            if not running or outcome["phase"] != attempts.STARTED:
                return True
            job, now = tx.jobs.get(job_id), self.ctx.clock()
            if (job is None or job["status"] != states.STARTING or job.get("nodeProperties")
                    or states.internal(job).get("terminateReason") or not self._ready(job, now)):
                return True
            states.transition(job, states.RUNNING, now)
            job["startedAt"] = now
            tx.jobs.update(job)
            return False

    def _stop_container(self, job_id: str, task_id: str) -> None:
        self.executor.stop(task_id, timeout=STOP_TIMEOUT)
