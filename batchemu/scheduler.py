"""The reconcile loop: reads the store, decides, and acts through an executor.

Level-triggered like a Kubernetes controller: every pass looks at the state in the store, so the loop can
stop and restart at any point and converge again. It wakes on events (submit, container exit, queue or CE
change) through notify(), and otherwise every `config.tick` seconds. Slow engine calls (starting and
stopping containers) run on a small worker pool and report back through the store.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from batchemu import attempts, scaling
from batchemu import job_states as states
from batchemu.executors import EngineUnavailable, ImagePullError
from batchemu.service import compute_environments, job_queues
from batchemu.service.context import Context

log = logging.getLogger("batchemu.scheduler")

# Resource families whose statuses (CREATING -> VALID, DELETING -> gone, ...) advance in each pass.
RESOURCE_RECONCILERS = (compute_environments, job_queues)
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")
PLACEMENT_SCAN = 1000      # RUNNABLE jobs looked at per queue and pass
STOP_TIMEOUT = 2.0         # seconds between SIGTERM and SIGKILL when a job is terminated
VANISHED_CHECK_EVERY = 2.0
COALESCE_SECONDS = 0.005
VANISHED_GRACE_MS = 1000  # a job that became RUNNING just before the listing may not be in it yet
TOO_BIG = ("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue cannot "
           "meet the CPU requirement of the job.")
BLOCKED_CODES = ("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
                 "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")


def _platform_of(ce: dict) -> str:
    return "FARGATE" if (ce.get("computeResources") or {}).get("type") in FARGATE_TYPES else "EC2"


def _usable(ce: dict | None) -> bool:
    return ce is not None and ce.get("state") == "ENABLED" and ce.get("status") in ("VALID", "UPDATING")


class Scheduler:
    def __init__(self, ctx: Context, executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="batchemu-engine")
        self._busy: set[str] = set()  # job ids with an engine call under way
        self._busy_lock = threading.Lock()
        self._next_due: float | None = None
        self._last_vanished_check = 0.0
        self._exits_pending = False
        self._streams_seen: set[tuple[str, str]] = set()  # log streams shipped to by this process
        self._engine: bool | None = None
        executor.set_listener(self.notify)
        executor.set_log_sink(self._ship_logs)

    # -- lifecycle -------------------------------------------------------------------------------------
    def notify(self) -> None:
        """Ask for a pass as soon as possible (safe from any thread)."""
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="batchemu-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.executor.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.reconcile()
            except Exception:  # one bad pass must not kill the loop; the next pass retries from the store
                log.exception("scheduler pass failed")
            timeout = self.ctx.config.tick
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - time.time()))
            if self._wake.wait(timeout) and not self._stopping.is_set():
                # Let a burst of events (many SubmitJobs) arrive, so that one pass serves them all.
                time.sleep(COALESCE_SECONDS)

    # -- one pass --------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """One pass over the store. The engine is asked only when a job on it or a job to place needs it,
        so a busy API with nothing to run costs no Docker calls."""
        self._next_due = None
        self._engine = None
        for family in RESOURCE_RECONCILERS:
            family.reconcile(self.ctx)
        with self.ctx.store.transaction() as tx:
            on_host = sum(tx.count_jobs(list(states.ON_HOST)).values())
        running = None
        if on_host and self._engine_up() and time.monotonic() - self._last_vanished_check >= VANISHED_CHECK_EVERY:
            # Listed before exits are collected: a container missing from both is really gone.
            self._last_vanished_check = time.monotonic()
            running = (set(self.executor.running()), self.ctx.clock())
        if (on_host or self._exits_pending) and self._engine_up():
            self._collect_exits()
        self._advance_queued()
        if on_host:
            self._progress_on_host(self._engine_up(), running)
        self._place()
        self._head_of_queue()
        scaling.reconcile(self.ctx, scaling.demand_by_compute_environment)

    def _engine_up(self) -> bool:
        """Whether the engine answers, asked at most once a pass."""
        if self._engine is None:
            self._engine = self.executor.status()[0]
        return self._engine

    def _ready(self, job: dict, now: int) -> bool:
        """Whether the job has spent the configured minimum dwell in its current state."""
        dwell = self.ctx.config.state_dwell
        if dwell <= 0:
            return True
        due = states.entered_at(job) + dwell * 1000
        if now >= due:
            return True
        self._next_due = min(self._next_due or due / 1000, due / 1000)
        return False

    def _collect_exits(self) -> None:
        exits = self.executor.collect_exits()
        # The executor removes reported containers on its next call: make sure there is one.
        self._exits_pending = bool(exits)
        if not exits:
            return
        with self.ctx.store.transaction() as tx:
            for exit in exits:
                job = tx.get_job(exit.job_id)
                info = states.internal(job) if job else {}
                if job is None or job["status"] not in states.ON_HOST or info.get("attempt") != exit.attempt:
                    continue
                info["exit"] = {"exit_code": exit.exit_code, "oom_killed": exit.oom_killed, "error": exit.error}
                info.setdefault("containerId", exit.container_id)
                tx.update_job(job)

    def _advance_queued(self) -> None:
        """SUBMITTED -> PENDING -> RUNNABLE once dependencies have succeeded (FAILED if one failed)."""
        with self.ctx.store.transaction() as tx:
            rows = tx.query_jobs({}, statuses=[states.SUBMITTED, states.PENDING])
            for _, job in rows:
                now = self.ctx.clock()
                changed = False
                if job["status"] == states.SUBMITTED and self._ready(job, now):
                    states.transition(job, states.PENDING, now)
                    changed = True
                if job["status"] == states.PENDING and self._ready(job, now):
                    outcome = self._dependencies(tx, job)
                    if outcome == "failed":
                        states.transition(job, states.FAILED, now, "Dependent Job failed")
                        changed = True
                    elif outcome == "succeeded":
                        states.transition(job, states.RUNNABLE, now)
                        changed = True
                if changed:
                    tx.update_job(job)

    @staticmethod
    def _dependencies(tx, job: dict) -> str:
        ids = [d["jobId"] for d in job.get("dependsOn") or []]
        found = {d["jobId"]: d["status"] for d in tx.get_jobs(ids)}
        if any(found.get(i, states.FAILED) == states.FAILED for i in ids):
            return "failed"
        if all(found.get(i) == states.SUCCEEDED for i in ids):
            return "succeeded"
        return "waiting"

    def _progress_on_host(self, engine_up: bool, running: tuple[set, int] | None) -> None:
        """STARTING -> RUNNING once the container runs; finish attempts; stop terminated or timed-out jobs.

        `running` is (the (job id, attempt) of every running container, when that was listed), or None."""
        restart, stop = [], []
        with self.ctx.store.transaction() as tx:
            for _, job in tx.query_jobs({}, statuses=list(states.ON_HOST)):
                if self._is_busy(job["jobId"]):
                    continue
                now = self.ctx.clock()
                info = states.internal(job)
                before = (job["status"], len(job.get("attempts") or []), dict(info))
                if job["status"] == states.STARTING:
                    self._progress_starting(job, info, now, restart, stop, engine_up)
                if job["status"] == states.RUNNING:
                    self._progress_running(job, info, now, stop, running)
                if (job["status"], len(job.get("attempts") or []), info) != before:
                    tx.update_job(job)
        for job_id in restart:
            self._submit(job_id, self._start_container, job_id)
        for job_id, container_id in stop:
            self._submit(job_id, self._stop_container, job_id, container_id)

    def _progress_starting(self, job: dict, info: dict, now: int, restart: list, stop: list,
                           engine_up: bool) -> None:
        if info.get("requeue"):
            info.pop("requeue")
            info["attempt"] -= 1
            states.transition(job, states.RUNNABLE, now)
        elif info.get("startError"):
            reason = info["startError"]
            attempts.finish_attempt(job, now, exit_code=None, reason=reason, status_reason=reason)
        elif info.get("containerId"):
            if info.get("terminateReason") and not info.get("stopRequested"):
                info["stopRequested"] = True
                stop.append((job["jobId"], info["containerId"]))
            if self._ready(job, now):
                states.transition(job, states.RUNNING, now)
                job["startedAt"] = now
        elif info.get("terminateReason"):
            # Terminated before its container was ever created.
            attempts.finish_attempt(job, now, exit_code=None, reason=None, status_reason=info["terminateReason"])
        elif engine_up:
            restart.append(job["jobId"])  # start lost (server restarted mid-start): same attempt again

    def _progress_running(self, job: dict, info: dict, now: int, stop: list,
                          running: tuple[set, int] | None) -> None:
        if info.get("exit"):
            if self._ready(job, now):
                exit_code, reason, status_reason = attempts.end_of(job, info["exit"])
                attempts.finish_attempt(job, now, exit_code=exit_code, reason=reason, status_reason=status_reason)
            return
        timeout = (job.get("timeout") or {}).get("attemptDurationSeconds")
        if timeout and not info.get("timedOut") and now - job.get("startedAt", now) >= timeout * 1000:
            info["timedOut"] = True
        if (info.get("terminateReason") or info.get("timedOut")) and not info.get("stopRequested"):
            info["stopRequested"] = True
            stop.append((job["jobId"], info["containerId"]))
        elif (running is not None and states.entered_at(job) < running[1] - VANISHED_GRACE_MS
              and (job["jobId"], info.get("attempt")) not in running[0]):
            # Neither running nor reported stopped: the engine lost it (restart, manual removal).
            info["exit"] = {"exit_code": None, "oom_killed": False, "error": attempts.VANISHED_REASON}
            self.notify()

    def _place(self) -> None:
        """RUNNABLE -> STARTING where a compute environment of the queue has room, by queue priority."""
        config = self.ctx.config
        placed: list[str] = []
        with self.ctx.store.transaction() as tx:
            queues = [doc for _, doc in tx.list_resources("job-queue")
                      if doc.get("state") == "ENABLED" and doc.get("status") in ("VALID", "UPDATING")]
            queues.sort(key=lambda q: -int(q.get("priority", 0)))
            ces = {doc["computeEnvironmentArn"]: doc for _, doc in tx.list_resources("compute-environment")}
            used: dict[str, float] = {}
            for _, job in tx.query_jobs({}, statuses=list(states.ON_HOST)):
                ce_arn = states.internal(job).get("computeEnvironment")
                used[ce_arn] = used.get(ce_arn, 0.0) + states.internal(job).get("vcpus", 1.0)
            for queue in queues:
                order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda e: e.get("order", 0))
                usable = [ces.get(e["computeEnvironment"]) for e in order]
                usable = [ce for ce in usable if _usable(ce)]
                if not usable:
                    continue
                capacity = {ce["computeEnvironmentArn"]: compute_environments.capacity_vcpus(
                    ce, config.unmanaged_default_vcpus) for ce in usable}
                if all(used.get(arn, 0.0) >= cap for arn, cap in capacity.items()):
                    continue
                for _, job in tx.query_jobs({"job_queue_arn": queue["jobQueueArn"]},
                                            statuses=[states.RUNNABLE], limit=PLACEMENT_SCAN):
                    now = self.ctx.clock()
                    if not self._ready(job, now):
                        continue
                    info = states.internal(job)
                    need = info.get("vcpus", 1.0)
                    for ce in usable:
                        arn = ce["computeEnvironmentArn"]
                        fits = _platform_of(ce) == info.get("platform", "EC2") and used.get(arn, 0.0) + need <= capacity[arn]
                        if not fits:
                            continue
                        if not self._engine_up():
                            break
                        attempts.begin_attempt(job, config, ce, now)
                        if job.get("statusReason", "").startswith(BLOCKED_CODES):
                            job.pop("statusReason")
                        info["jobQueueName"] = queue["jobQueueName"]
                        used[arn] = used.get(arn, 0.0) + need
                        tx.ensure_log_stream(info["logGroup"], job["container"]["logStreamName"], now)
                        tx.update_job(job)
                        placed.append(job["jobId"])
                        break
                    if all(used.get(arn, 0.0) >= cap for arn, cap in capacity.items()):
                        break
        for job_id in placed:
            self._submit(job_id, self._start_container, job_id)

    def _head_of_queue(self) -> None:
        """Say why the job at the head of each queue is blocked, and apply jobStateTimeLimitActions."""
        config = self.ctx.config
        with self.ctx.store.transaction() as tx:
            ces = {doc["computeEnvironmentArn"]: doc for _, doc in tx.list_resources("compute-environment")}
            for _, queue in tx.list_resources("job-queue"):
                head = tx.query_jobs({"job_queue_arn": queue["jobQueueArn"]}, statuses=[states.RUNNABLE], limit=1)
                if not head:
                    continue
                job = head[0][1]
                now = self.ctx.clock()
                info = states.internal(job)
                attached = [ces[e["computeEnvironment"]] for e in queue.get("computeEnvironmentOrder") or []
                            if e["computeEnvironment"] in ces]
                fits = [ce for ce in attached if _platform_of(ce) == info.get("platform", "EC2")
                        and compute_environments.capacity_vcpus(ce, config.unmanaged_default_vcpus)
                        >= info.get("vcpus", 1.0)]
                changed = False
                if not fits and job.get("statusReason") != TOO_BIG:
                    job["statusReason"] = TOO_BIG
                    changed = True
                reason = job.get("statusReason") or ""
                for action in queue.get("jobStateTimeLimitActions") or []:
                    if action.get("state", "RUNNABLE") != states.RUNNABLE or not reason.startswith(BLOCKED_CODES):
                        continue
                    if action["reason"] in BLOCKED_CODES and not reason.startswith(action["reason"]):
                        continue
                    if now - states.entered_at(job) >= action["maxTimeSeconds"] * 1000:
                        states.transition(job, states.FAILED, now, action["reason"])
                        job["isCancelled"] = True
                        changed = True
                        self.notify()
                        break
                if changed:
                    tx.update_job(job)

    # -- engine calls on the worker pool ---------------------------------------------------------------
    def _is_busy(self, job_id: str) -> bool:
        with self._busy_lock:
            return job_id in self._busy

    def _submit(self, job_id: str, fn, *args) -> None:
        with self._busy_lock:
            if job_id in self._busy:
                return
            self._busy.add(job_id)

        def run() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("engine call for job %s failed", job_id)
            finally:
                with self._busy_lock:
                    self._busy.discard(job_id)
                self.notify()
        try:
            self._pool.submit(run)
        except RuntimeError:  # pool shut down: the server is stopping
            with self._busy_lock:
                self._busy.discard(job_id)

    def _start_container(self, job_id: str) -> None:
        with self.ctx.store.transaction() as tx:
            job = tx.get_job(job_id)
            if job is None or job["status"] != states.STARTING:
                return
            info = states.internal(job)
            spec = attempts.container_spec(job, self.ctx.config, info.get("jobQueueName", ""))
            attempt = info["attempt"]
        outcome: dict = {}
        try:
            outcome["containerId"] = self.executor.start(spec)
        except ImagePullError as exc:
            outcome["startError"] = str(exc)
        except EngineUnavailable:
            outcome["requeue"] = True
        except Exception as exc:  # noqa: BLE001 - any engine refusal is CannotStartContainerError, as AWS says
            outcome["startError"] = f"CannotStartContainerError: {exc}"
        with self.ctx.store.transaction() as tx:
            job = tx.get_job(job_id)
            if job is None or states.internal(job).get("attempt") != attempt or job["status"] != states.STARTING:
                return
            states.internal(job).update(outcome)
            tx.update_job(job)

    def _stop_container(self, job_id: str, container_id: str) -> None:
        self.executor.stop(container_id, timeout=STOP_TIMEOUT)

    def _ship_logs(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if not events:
            return
        with self.ctx.store.transaction() as tx:
            if (group, stream) not in self._streams_seen:
                # First lines of a stream in this process: a container adopted after a restart is read
                # from its start again, so drop what the previous server already stored.
                self._streams_seen.add((group, stream))
                last, at_last = tx.last_log_events(group, stream)
                events = [(ts, line) for ts, line in events if ts > last or (ts == last and line not in at_last)]
                if not events:
                    return
            tx.ensure_log_stream(group, stream, events[0][0])
            tx.append_log_events(group, stream, events, self.ctx.clock())
