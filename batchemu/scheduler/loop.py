"""The reconcile loop: reads the store, decides, and acts through an executor.

Level-triggered like a Kubernetes controller: every pass looks at the state in the store, so the loop can
stop and restart at any point and converge again. It wakes on events (submit, container exit, queue or CE
change) through notify(), and otherwise every `config.tick` seconds. Engine calls (starting and stopping
containers) run on a small worker pool after the pass's transactions, never inside one, and report back
through the store. One pass is a list of named reconcilers (`Scheduler.reconcile`), in order: resource
statuses, exits the engine reports, recorded intents (cancel, terminate), jobs on hosts, array parents and
dependencies, placement, managed scaling, a sample of capacity for the dashboard (capacity_history), and
the engine calls they decided.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from batchemu.context import Context
from batchemu.model import arrays, attempts, intents, job_events, multinode, states
from batchemu.model.resources import COMPUTE_ENVIRONMENT, JOB_QUEUE, TRANSIENT
from batchemu.scheduler import (
    capacity_history,
    dependencies,
    engine_calls,
    on_host,
    placement,
    resource_status,
    scaling,
    service_job_progress,
    service_placement,
    snapshot,
    usage,
)

log = logging.getLogger("batchemu.scheduler")

VANISHED_CHECK_EVERY = 2.0
ENGINE_UP_SECONDS = 1.0    # how long the engine's last "up" answer is trusted (an engine call that fails
                           # meanwhile requeues its attempt or fails the pass, as it would have anyway)
COALESCE_SECONDS = 0.005
API_PASS_SECONDS = 0.025   # requests (a burst of SubmitJobs) wake at most one pass per this, after the last one
# Reasons the scheduler gives a RUNNABLE job that waits; cleared when it starts.
BLOCKED_CODES = ("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
                 "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", placement.CONSUMABLE_WAIT)


@dataclass
class Pass:
    """What the reconcilers of one pass share."""
    hosted: int = 0  # jobs on hosts, service jobs included
    hosted_service: int = 0
    running: tuple[set, int] | None = None  # the tasks the engine runs and when it said so, when it was asked
    work: on_host.Work = field(default_factory=on_host.Work)  # engine calls to make once the pass is done
    again: bool = False  # a pass must follow soon


class Scheduler:
    def __init__(self, ctx: Context, executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine_calls = engine_calls.EngineCalls(ctx, executor, self._again, self._ready)
        self._next_due: float | None = None
        self._last_vanished_check = 0.0
        self._exits_pending = False
        self._streams_seen: set[tuple[str, str]] = set()  # log streams shipped to by this process
        self._engine: bool | None = None
        self._engine_up_until = 0.0
        self._resources_settled_at: int | None = None  # store.resource_revision when none was in transit
        self._prompt = False  # the wake is for a container's end: no waiting for a burst of submits
        self._internal = False  # the wake is the scheduler's own (work left, an engine call done)
        self._sample_capacity = capacity_history.CapacityHistory(ctx).sample  # a reconciler of its own
        self.passes = 0  # passes completed: tests (and GET /_batchemu/health) count them to see one go by
        executor.set_listener(self._task_ended)
        executor.set_log_sink(self._ship_logs)

    # -- lifecycle -------------------------------------------------------------------------------------
    def notify(self) -> None:
        """Ask for a pass soon (safe from any thread): an API request's news, which a burst of requests shares."""
        self._wake.set()

    def _again(self) -> None:
        """Ask for the next pass after a short wait for other news: work this process left or found."""
        self._internal = True
        self._wake.set()

    def _task_ended(self) -> None:
        """The executor's news (a container ended): a pass at once, since it may free room for the next job."""
        self._prompt = True
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
        self._engine_calls.shutdown()
        self.executor.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            began = time.monotonic()
            try:
                self.reconcile()
                self.passes += 1
            except Exception:  # one bad pass must not kill the loop; the next pass retries from the store
                self._engine_up_until = 0.0  # ask the engine again: it may be what failed
                log.exception("scheduler pass failed")
            timeout = self.ctx.config.tick
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - time.time()))
            if self._wake.wait(timeout) and not self._stopping.is_set() and not self._prompt:
                # Let a burst of events arrive, so that one pass serves them all; requests alone (many
                # SubmitJobs, each a wake) get one pass per API_PASS_SECONDS at most.
                wait = COALESCE_SECONDS if self._internal else began + API_PASS_SECONDS - time.monotonic()
                time.sleep(max(COALESCE_SECONDS, wait))
            self._prompt = self._internal = False

    # -- one pass --------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """One pass over the store: the named reconcilers below, in order, each reading, deciding and applying one
        concern. The engine is asked only when a job on it or a job to place needs it, so a busy API with
        nothing to run costs no Docker calls."""
        self._next_due = None
        self._engine = None
        run = Pass()
        for reconciler in (self._settle_resources, self._count_hosted, self._record_exits, self._carry_out_intents,
                           self._progress_on_host, self._progress_service_jobs, self._advance_waiting, self._place,
                           self._place_service_jobs, self._scale, self._sample_capacity, self._start_engine_calls):
            reconciler(run)
        if run.again:
            self._again()
        elif self._dwell_ms():
            # Rows waiting out their dwell are looked at again soon.
            self._due(time.time() + self.ctx.config.state_dwell / 4)

    def _count_hosted(self, run: Pass) -> None:
        """How many jobs are on hosts: the engine is asked about them only when there are some."""
        with self.ctx.store.read() as tx:
            run.hosted_service = tx.service_jobs.count(states.SERVICE_ON_HOST)
            run.hosted = sum(tx.jobs.count_by_status(list(states.ON_HOST)).values()) + run.hosted_service

    def _record_exits(self, run: Pass) -> None:
        """Containers the engine still runs (every VANISHED_CHECK_EVERY) and the exits it reports, recorded."""
        store, clock = self.ctx.store, self.ctx.clock
        if run.hosted and self._engine_up() and time.monotonic() - self._last_vanished_check >= VANISHED_CHECK_EVERY:
            # Listed before exits are collected: a container missing from both is really gone.
            self._last_vanished_check = time.monotonic()
            run.running = (set(self.executor.running()), clock())
        if (run.hosted or self._exits_pending) and self._engine_up():
            exits = self.executor.collect_exits()
            self._exits_pending = False
            if exits:
                with store.transaction() as tx:
                    on_host.record_exits(tx, exits)
                # The executor removes reported tasks on its next call, once they are recorded: call it now.
                # What it reports meanwhile is recorded too, and removed by the next pass's call.
                exits = self.executor.collect_exits()
                if exits:
                    with store.transaction() as tx:
                        on_host.record_exits(tx, exits)
                    self._exits_pending = True
        run.again = self._exits_pending

    def _carry_out_intents(self, run: Pass) -> None:
        """Recorded cancels and terminates."""
        with self.ctx.store.transaction() as tx:
            run.again |= intents.carry_out(tx, self.ctx.clock())

    def _progress_on_host(self, run: Pass) -> None:
        """Container jobs on hosts (and multi-node parents): starts, exits, timeouts, stops."""
        if not run.hosted:
            return
        engine_up = self._engine_up()  # asked before the transaction: no engine call inside one
        with self.ctx.store.transaction() as tx:
            # Room a job leaves is placed later in this same pass: no second pass for it.
            on_host.progress(tx, self.ctx, self.ctx.clock, self._ready, self._engine_calls.is_busy, engine_up, run.running,
                             run.work)
            now = self.ctx.clock()
            ended, nodes = multinode.progress(tx, self.ctx.config, now)
            for parent in ended:  # what the parent held on its host, given back
                usage.attempt_ended(tx, self.ctx, parent, now)
            run.again |= bool(ended) or bool(nodes)
            run.work.start.extend(nodes)

    def _progress_service_jobs(self, run: Pass) -> None:
        """Service jobs on hosts: SCHEDULED -> STARTING -> RUNNING, and the end of their attempts."""
        if not run.hosted_service:
            return
        engine_up = self._engine_up()
        with self.ctx.store.transaction() as tx:
            run.again |= service_job_progress.progress(tx, self.ctx.config, self.ctx.clock(), self._ready,
                                                       self._engine_calls.is_busy, engine_up, run.running, run.work)

    def _advance_waiting(self, run: Pass) -> None:
        """Array parents, dependencies, multi-node parents, and service jobs on their way to RUNNABLE."""
        clock = self.ctx.clock
        with self.ctx.store.transaction() as tx:
            run.again |= arrays.roll_up(tx, clock(), self._ready)
            run.again |= dependencies.advance(tx, clock(), self._dwell_ms(), self._ready)
            multinode.follow_parents(tx, clock())
            run.again |= service_job_progress.advance(tx, clock(), self._ready)

    def _scale(self, run: Pass) -> None:
        """desiredvCpus of managed compute environments follows the demand on them."""
        scaling.reconcile(self.ctx, scaling.demand_by_compute_environment)

    def _start_engine_calls(self, run: Pass) -> None:
        """The starts and stops the pass decided, on the worker pool."""
        self._engine_calls.start(run.work)

    def _settle_resources(self, run: Pass) -> None:
        """Advance resource statuses (CREATING -> VALID, DELETING -> gone, ...). Skipped while no resource
        was written since a pass found none in a transient status: they only change by a write or in one."""
        revision = self.ctx.store.resource_revision
        if revision == self._resources_settled_at:
            return
        for reconcile in resource_status.RECONCILERS.values():
            reconcile(self.ctx)
        with self.ctx.store.read() as tx:
            transient = tx.resources.any_in(resource_status.RECONCILERS, TRANSIENT)
        self._resources_settled_at = None if transient else revision

    def _engine_up(self) -> bool:
        """Whether the engine answers, asked at most once a pass."""
        if self._engine is None:
            if time.monotonic() < self._engine_up_until:
                self._engine = True
            else:
                self._engine = self.executor.status()[0]
                self._engine_up_until = time.monotonic() + ENGINE_UP_SECONDS if self._engine else 0.0
        return self._engine

    def _dwell_ms(self) -> int:
        return int(self.ctx.config.state_dwell * 1000)

    def _due(self, at: float) -> None:
        self._next_due = at if self._next_due is None else min(self._next_due, at)

    def _ready(self, job: dict, now: int) -> bool:
        """Whether the job has spent the configured minimum dwell in its current state."""
        due = states.entered_at(job) + self._dwell_ms()
        if now >= due:
            return True
        self._due(due / 1000)
        return False

    def _place(self, run: Pass) -> None:
        """RUNNABLE -> STARTING where placement finds room; say why a queue's head waits, and apply the
        queue's jobStateTimeLimitActions to it. Placement decides on a read snapshot; the write
        transaction then starts only jobs still RUNNABLE."""
        config = self.ctx.config
        now = self.ctx.clock()
        dwell = self._dwell_ms()

        def ready(row) -> bool:
            if row["entered_at"] + dwell <= now:
                return True
            self._due((row["entered_at"] + dwell) / 1000)
            return False
        with self.ctx.store.read() as tx:
            view, _ = snapshot.build(tx, config, now, ready=ready)
        decision = placement.decide(view)
        if not decision.waiting and not decision.placements:
            return
        # The engine is asked before the write transaction, never inside it.
        engine_up = self._engine_up() if decision.placements else False
        with self.ctx.store.transaction() as tx:
            for job_id, reason in decision.waiting.items():
                row = tx.jobs.row(job_id)
                if row is not None and row["status"] == states.RUNNABLE:
                    self._wait(tx, row, reason, now)
            if not engine_up:
                return
            ces = {doc["computeEnvironmentArn"]: doc for _, doc in tx.resources.of_kind(COMPUTE_ENVIRONMENT)}
            queue_names = {doc["jobQueueArn"]: doc["jobQueueName"] for _, doc in tx.resources.of_kind(JOB_QUEUE)}
            for job_id, ce_arn, queue_arn in decision.placements:
                job = tx.jobs.get(job_id)
                if job is None or job["status"] != states.RUNNABLE or ce_arn not in ces:
                    continue  # cancelled (or its CE deleted) since the snapshot
                if job.get("statusReason", "").startswith(BLOCKED_CODES):
                    job.pop("statusReason")
                states.internal(job)["jobQueueName"] = queue_names.get(queue_arn, "")
                if multinode.is_parent(job):
                    run.work.start.extend(multinode.begin(tx, config, job, ces[ce_arn], now))
                else:
                    attempts.begin_attempt(job, config, ces[ce_arn], now)
                    tx.attempts.insert(job_id, states.internal(job)["attempt"], ce_arn, now)
                    for group, stream in attempts.log_streams(job):
                        tx.logs.ensure_stream(group, stream, now)
                    run.work.start.append(job_id)
                usage.attempt_began(tx, job)
                tx.jobs.update(job)

    def _place_service_jobs(self, run: Pass) -> None:
        """RUNNABLE -> SCHEDULED for service jobs that fit their service environment and quota share, and
        preemptions that make room; decided on a read snapshot, applied to jobs still as it saw them."""
        now = self.ctx.clock()
        with self.ctx.store.read() as tx:
            queues, environments = service_job_progress.snapshot(tx, lambda job: self._ready(job, now))
        decision = service_placement.decide(queues, environments)
        if decision.placements and not self._engine_up():
            decision.placements = []
        if decision.placements or decision.waiting or decision.preempt:
            with self.ctx.store.transaction() as tx:
                service_job_progress.apply(tx, self.ctx.config, decision, now, run.work)
        if decision.preempt:
            self._again()

    def _wait(self, tx, row, reason: str, now: int) -> None:
        """Give a waiting job its reason, and cancel it when a time limit action of its queue is due."""
        queue = tx.resources.get(JOB_QUEUE, row["job_queue_arn"]) or {}
        due = None
        for action in queue.get("jobStateTimeLimitActions") or []:
            if action.get("state", "RUNNABLE") != states.RUNNABLE:
                continue
            if action["reason"] in BLOCKED_CODES and not reason.startswith(action["reason"]):
                continue
            if now - row["entered_at"] >= action["maxTimeSeconds"] * 1000:
                due = action
                break
        if due is None and row["status_reason"] == reason:
            return
        job = tx.jobs.get(row["job_id"])
        if due is not None:
            intents.apply(job, intents.CANCEL, due["reason"], now)
            self._again()
        else:
            job_events.queue_blocked(job, reason, now)
        if row["has_doc"] or due is not None:
            tx.jobs.update(job)
        else:
            job_events.child_blocked(tx, row["job_id"], reason, now)

    def _ship_logs(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if not events:
            return
        with self.ctx.store.transaction() as tx:
            if (group, stream) not in self._streams_seen:
                # First lines of a stream in this process: a container adopted after a restart is read
                # from its start again, so drop what the previous server already stored.
                self._streams_seen.add((group, stream))
                last, at_last = tx.logs.last_events(group, stream)
                events = [(ts, line) for ts, line in events if ts > last or (ts == last and line not in at_last)]
                if not events:
                    return
            tx.logs.ensure_stream(group, stream, events[0][0])
            tx.logs.append(group, stream, events, self.ctx.clock())
