"""Service jobs in the reconcile loop: SUBMITTED -> PENDING -> RUNNABLE, placement against service
environments and quota shares (service_placement), SCHEDULED -> STARTING -> RUNNING as the training
container starts, and the end of an attempt: succeed, retry, go back to RUNNABLE when preempted, or fail.

An attempt is a row of the store's attempts table, as for container jobs, so container exits reported by
the executor land on it the same way; the job's document keeps AWS's view (`attempts[]`, `latestAttempt`,
`preemptionSummary`).
"""

from __future__ import annotations

import json
import logging

from batchemu.executors import TaskSpec
from batchemu.model import attempts, job_events, states, training
from batchemu.model.resources import (
    DELETING,
    ENABLED,
    JOB_QUEUE,
    QUOTA_SHARE,
    SCHEDULING_POLICY,
    SERVICE_ENVIRONMENT,
    USABLE,
)
from batchemu.scheduler import on_host
from batchemu.scheduler import service_placement as sp
from batchemu.scheduler.placement import FairShare
from batchemu.store import Tx

log = logging.getLogger("batchemu.scheduler")

SAGEMAKER_TRAINING = "SAGEMAKER_TRAINING"
SCAN = 1000            # RUNNABLE service jobs looked at per queue and pass
RECENT_PREEMPTIONS = 5
MAX_RUNTIME_REASON = "MaxRuntimeExceeded: Training job runtime exceeded MaxRuntimeInSeconds of {seconds} seconds"
EXIT_REASON = "AlgorithmError: training container exited with code {code}"


def move(job: dict, status: str, now: int, reason: str | None = None) -> None:
    states.transition(job, status, now, reason, table=states.SERVICE_TRANSITIONS)


def payload_of(job: dict) -> dict:
    """The stored CreateTrainingJob request (a JSON object: SubmitServiceJob refuses anything else)."""
    return json.loads(job["serviceRequestPayload"])


def advance(tx: Tx, now: int, ready) -> bool:
    """SUBMITTED -> PENDING -> RUNNABLE (service jobs have no dependencies); whether any moved."""
    changed = False
    for job in tx.service_jobs.in_statuses((states.SUBMITTED, states.PENDING)):
        if not ready(job, now):
            continue
        move(job, states.PENDING if job["status"] == states.SUBMITTED else states.RUNNABLE, now)
        tx.service_jobs.update(job)
        changed = True
    return changed


# -- placement ---------------------------------------------------------------------------------------------

def _view(job: dict) -> sp.Job:
    info = states.internal(job)
    return sp.Job(job_id=job["jobId"], seq=info.get("seq", 0), instances=info["instances"],
                  instance_type=info["instanceType"], priority=int(job.get("schedulingPriority") or 0),
                  share=job.get("shareIdentifier"), quota_share=job.get("quotaShareName"),
                  preempting=bool(info.get("preemptReason")))


def _quota_shares(tx: Tx, queue_arn: str) -> dict[str, sp.QuotaShare]:
    shares = {}
    for _, doc in tx.resources.of_kind(QUOTA_SHARE):
        if doc["jobQueueArn"] != queue_arn or doc["status"] == DELETING:
            continue
        sharing = doc["resourceSharingConfiguration"]
        shares[doc["quotaShareName"]] = sp.QuotaShare(
            name=doc["quotaShareName"], limits={lim["capacityUnit"]: lim["maxCapacity"] for lim in doc["capacityLimits"]},
            strategy=sharing["strategy"], borrow_limit=sharing.get("borrowLimit", -1),
            in_share_preemption=doc["preemptionConfiguration"]["inSharePreemption"] == "ENABLED",
            enabled=doc["state"] == ENABLED)
    return shares


def snapshot(tx: Tx, ready) -> tuple[list[sp.Queue], dict[str, sp.Environment]]:
    """Usable service environments with the instances in use, and the SAGEMAKER_TRAINING queues."""
    environments = {
        doc["serviceEnvironmentArn"]: sp.Environment(
            arn=doc["serviceEnvironmentArn"], name=doc["serviceEnvironmentName"],
            limits={lim["capacityUnit"]: lim["maxCapacity"] for lim in doc["capacityLimits"]})
        for _, doc in tx.resources.of_kind(SERVICE_ENVIRONMENT)
        if doc.get("state") == ENABLED and doc.get("status") in USABLE}
    hosted: dict[str, list[sp.Job]] = {}
    for job in tx.service_jobs.in_statuses(states.SERVICE_ON_HOST):
        view = _view(job)
        env = environments.get(states.internal(job).get("serviceEnvironment", ""))
        if env is not None:
            env.take(view)
        hosted.setdefault(job["jobQueue"], []).append(view)
    queues = []
    for _, doc in tx.resources.of_kind(JOB_QUEUE):
        if doc.get("jobQueueType") != SAGEMAKER_TRAINING or doc.get("state") != ENABLED \
                or doc.get("status") not in USABLE:
            continue
        order = sorted(doc.get("serviceEnvironmentOrder") or [], key=lambda e: e.get("order", 0))
        policy = tx.resources.get(SCHEDULING_POLICY, doc["schedulingPolicyArn"]) \
            if doc.get("schedulingPolicyArn") else None
        fair = None
        if policy and "fairsharePolicy" in policy:
            fair = FairShare(weights=[(d["shareIdentifier"], float(d.get("weightFactor", 1.0)))
                                      for d in policy["fairsharePolicy"].get("shareDistribution") or []])
        quota = _quota_shares(tx, doc["jobQueueArn"]) if policy and "quotaSharePolicy" in policy else None
        candidates = [_view(job) for _, job in tx.service_jobs.query(
            queue_arn=doc["jobQueueArn"], statuses=[states.RUNNABLE], limit=SCAN) if ready(job)]
        queues.append(sp.Queue(arn=doc["jobQueueArn"], priority=int(doc.get("priority", 0)),
                               environment=order[0]["serviceEnvironment"] if order else None,
                               candidates=candidates, running=hosted.get(doc["jobQueueArn"], []),
                               fair_share=fair, quota_shares=quota))
    return queues, environments


def apply(tx: Tx, config, decision: sp.Decision, now: int, work: on_host.Work) -> None:
    """Carry a placement decision out on jobs still in the state it saw."""
    for job_id, reason in decision.waiting.items():
        job = tx.service_jobs.get(job_id)
        if job is not None and job["status"] == states.RUNNABLE and job.get("statusReason") != reason:
            job_events.queue_blocked(job, reason, now)
            tx.service_jobs.update(job)
    for job_id, reason in decision.preempt:
        job = tx.service_jobs.get(job_id)
        if job is not None and job["status"] in states.SERVICE_ON_HOST and not job.get("isTerminated"):
            states.internal(job)["preemptReason"] = reason
            tx.service_jobs.update(job)
    for job_id, environment_arn in decision.placements:
        job = tx.service_jobs.get(job_id)
        if job is None or job["status"] != states.RUNNABLE:
            continue
        info = states.internal(job)
        info["attempt"] = info.get("attempt", 0) + 1
        info["serviceEnvironment"] = environment_arn
        payload = payload_of(job)
        name = payload.get("TrainingJobName")
        if not isinstance(name, str):
            name = job["jobName"]
        info["logStreams"] = [training.log_stream(name, host, now // 1000) for host in training.hosts(payload)]
        job["scheduledAt"] = now
        job["latestAttempt"] = {"serviceResourceId": {"name": "TrainingJobArn",
                                                      "value": training.training_job_arn(config, name)}}
        job.pop("statusReason", None)
        move(job, states.SCHEDULED, now)
        tx.attempts.insert(job_id, info["attempt"], environment_arn, now)
        for stream in info["logStreams"]:
            tx.logs.ensure_stream(training.LOG_GROUP, stream, now)
        tx.service_jobs.update(job)
        work.start_service.append(job_id)


def start_spec(store, config, job_id: str) -> tuple[int, TaskSpec | None, str | None]:
    """(attempt, the training task, or why the attempt cannot start) of a SCHEDULED job; attempt 0
    when the job is no longer SCHEDULED. Writes the attempt's /opt/ml/input/config files."""
    with store.read() as tx:
        job = tx.service_jobs.get(job_id)
    if job is None or job["status"] != states.SCHEDULED:
        return 0, None, None
    info = states.internal(job)
    payload = payload_of(job)
    problem = training.validation_error(payload)
    if problem:
        return info["attempt"], None, problem
    try:
        return info["attempt"], training.task_spec(job, payload, info["attempt"], config, info["logStreams"]), None
    except training.TrainingError as exc:
        return info["attempt"], None, str(exc)
    except OSError as exc:
        return info["attempt"], None, f"ClientError: cannot prepare the training folders: {exc}"
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a member of the wrong JSON type
        return info["attempt"], None, f"ValidationException: the CreateTrainingJob request is malformed: {exc!r}"


# -- jobs on a host ----------------------------------------------------------------------------------------

def progress(tx: Tx, config, now: int, ready, busy, engine_up: bool, running: tuple[set, int] | None,
             work: on_host.Work) -> bool:
    """One step for every SCHEDULED, STARTING or RUNNING service job; whether one left (capacity freed)."""
    freed = False
    for job in tx.service_jobs.in_statuses(states.SERVICE_ON_HOST):
        if busy(job["jobId"]):
            continue
        info = states.internal(job)
        attempt = tx.attempts.get(job["jobId"], info["attempt"])
        if attempt is None:  # placed by a server that crashed before recording it
            tx.attempts.insert(job["jobId"], info["attempt"], info.get("serviceEnvironment"), now)
            attempt = tx.attempts.require(job["jobId"], info["attempt"])
        before = json.dumps(job, sort_keys=True)
        changes: dict = {}
        try:
            _step(job, info, attempt, changes, now, ready, work, engine_up, running, config)
        except Exception:  # one job's fault must not stop the pass for the others; it is tried again
            log.exception("progress of service job %s failed", job["jobId"])
            continue
        on_host.save_attempt(tx, attempt, changes)
        if json.dumps(job, sort_keys=True) != before:
            freed |= job["status"] not in states.SERVICE_ON_HOST
            tx.service_jobs.update(job)
    return freed


def _step(job: dict, info: dict, attempt: dict, changes: dict, now: int, ready, work: on_host.Work,
          engine_up: bool, running: tuple[set, int] | None, config) -> None:
    if job["status"] == states.SCHEDULED:
        _scheduled(job, info, attempt, changes, now, ready, work, engine_up, config)
    elif job["status"] == states.STARTING:
        if (info.get("terminateReason") or info.get("preemptReason")) and attempt["phase"] == attempts.STARTED:
            on_host.request_stop(job, attempt, changes, now, work)
        if ready(job, now):
            move(job, states.RUNNING, now)
            job["startedAt"] = now
    elif job["status"] == states.RUNNING:
        _running(job, info, attempt, changes, now, ready, work, running, config)


def _scheduled(job: dict, info: dict, attempt: dict, changes: dict, now: int, ready, work: on_host.Work,
               engine_up: bool, config) -> None:
    phase = attempt["phase"]
    if phase == attempts.REQUEUED:  # the engine could not be reached: the attempt never happened
        changes["_delete"] = True
        info["attempt"] -= 1
        move(job, states.RUNNABLE, now)
    elif phase == attempts.START_FAILED:
        _finish(job, info, {**attempt, **changes}, changes, now, config)
    elif phase in (attempts.STARTED, attempts.EXITED):
        if ready(job, now):
            move(job, states.STARTING, now)
    elif info.get("terminateReason") or info.get("preemptReason"):
        _finish(job, info, attempt, changes, now, config)  # stopped before its container was created
    elif engine_up:
        work.start_service.append(job["jobId"])


def _running(job: dict, info: dict, attempt: dict, changes: dict, now: int, ready, work: on_host.Work,
             running: tuple[set, int] | None, config) -> None:
    if attempt["phase"] == attempts.EXITED:
        if ready(job, now):
            _finish(job, info, attempt, changes, now, config)
        return
    started = job.get("startedAt", now)
    max_runtime = training.max_runtime_ms(payload_of(job))
    timeout = (job.get("timeoutConfig") or {}).get("attemptDurationSeconds")
    if not attempt.get("timed_out"):
        if max_runtime is not None and now - started >= max_runtime:
            info["timeoutReason"] = MAX_RUNTIME_REASON.format(seconds=max_runtime // 1000)
        elif timeout and now - started >= timeout * 1000:
            info["timeoutReason"] = attempts.TIMEOUT_REASON
        if info.get("timeoutReason"):
            changes["timed_out"] = 1
            attempt = {**attempt, "timed_out": 1}
    if info.get("terminateReason") or info.get("preemptReason") or attempt.get("timed_out"):
        on_host.request_stop(job, attempt, changes, now, work)
    elif (running is not None and states.entered_at(job) < running[1] - on_host.VANISHED_GRACE_MS
          and (job["jobId"], info["attempt"]) not in running[0]):
        changes.update(phase=attempts.EXITED, engine_error=attempts.VANISHED_REASON)


def _end_reason(job: dict, info: dict, attempt: dict, config) -> str | None:
    """The attempt's statusReason; None when it succeeded."""
    if attempt["phase"] == attempts.START_FAILED:
        return attempt["start_error"]
    for reason in (attempt.get("engine_error"), info.get("terminateReason"), info.get("preemptReason"),
                   info.get("timeoutReason")):
        if reason:
            return reason
    if attempt["phase"] == attempts.PLACED:
        return None
    code = attempt.get("exit_code")
    if code == 0:
        return None
    failure = training.failure_reason(config, job["jobId"], info["attempt"], payload_of(job))
    if failure:
        return failure
    if attempt.get("oom_killed"):
        return attempts.OOM_REASON
    return EXIT_REASON.format(code=code)


def should_retry(job: dict, status_reason: str, timed_out: bool) -> bool:
    """ServiceJobRetryStrategy: attempts left, and the first evaluateOnExit whose onStatusReason matches
    says RETRY (none matching: retry). Terminated and timed-out attempts are never retried."""
    if job.get("isTerminated") or timed_out:
        return False
    strategy = job.get("retryStrategy") or {}
    if len(job.get("attempts") or []) >= (strategy.get("attempts") or 1):
        return False
    for rule in strategy.get("evaluateOnExit") or []:
        if attempts.matches(rule.get("onStatusReason"), status_reason):
            return rule.get("action", "").upper() == "RETRY"
    return True


def _finish(job: dict, info: dict, attempt: dict, changes: dict, now: int, config) -> None:
    reason = _end_reason(job, info, attempt, config)
    record = {"serviceResourceId": job["latestAttempt"]["serviceResourceId"], "startedAt": job.get("startedAt"),
              "stoppedAt": now, **({"statusReason": reason} if reason else {})}
    record = {key: value for key, value in record.items() if value is not None}
    preempted = bool(info.pop("preemptReason", None)) and not job.get("isTerminated") and reason is not None
    timed_out = bool(info.pop("timeoutReason", None))
    changes.update(phase=attempts.ENDED, ended_at=now)
    if preempted:
        summary = job.setdefault("preemptionSummary", {"preemptedAttemptCount": 0, "recentPreemptedAttempts": []})
        summary["preemptedAttemptCount"] += 1
        summary["recentPreemptedAttempts"] = (summary["recentPreemptedAttempts"] + [record])[-RECENT_PREEMPTIONS:]
        limit = (job.get("preemptionConfiguration") or {}).get("preemptionRetriesBeforeTermination")
        if limit is not None and summary["preemptedAttemptCount"] > limit:
            move(job, states.FAILED, now, f"{reason}; preemptionRetriesBeforeTermination ({limit}) reached")
        else:
            move(job, states.RUNNABLE, now, reason)
        return
    job.setdefault("attempts", []).append(record)
    if reason is None:
        job.pop("statusReason", None)
        move(job, states.SUCCEEDED, now)
    elif should_retry(job, reason, timed_out):
        move(job, states.RUNNABLE, now, reason)
    else:
        move(job, states.FAILED, now, reason)
