"""One attempt of a job: the container it runs, and what its end means (succeed, retry or fail).

An attempt is a row of the store's attempts table, moved through PHASES by the scheduler and by what the
engine reports; the job's document keeps AWS's view of it (`attempts[]`, `container`). Pure functions;
the scheduler calls them inside its transactions.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json

from batchemu import ids
from batchemu.config import Config
from batchemu.executors import ContainerResult, ContainerSpec, Outcome, StartFailure, TaskExit, TaskSpec
from batchemu.model import states, task_attempts, task_definitions
from batchemu.model.containers import gpus_of, linux_parameters
from batchemu.model.environment import batch_environment, container_environment

# Phases of an attempt, as data: PLACED (recorded; the engine not asked yet) -> STARTED (container running)
# -> EXITED (the engine reported its end, or lost it) -> ENDED (counted in the job's attempts). A container
# that could not start is START_FAILED; an attempt the engine could not take at all (unreachable) is
# REQUEUED: it never happened, the job goes back to RUNNABLE and the row is removed.
PLACED, STARTED, EXITED, START_FAILED, REQUEUED, ENDED = (
    "PLACED", "STARTED", "EXITED", "START_FAILED", "REQUEUED", "ENDED")
PHASES: dict[str, frozenset[str]] = {
    # A fast container's exit can be reported before the call that started it has returned.
    PLACED: frozenset({STARTED, EXITED, START_FAILED, REQUEUED, ENDED}),
    STARTED: frozenset({EXITED, ENDED}),
    EXITED: frozenset({ENDED}),
    START_FAILED: frozenset({ENDED}),
    REQUEUED: frozenset(),
    ENDED: frozenset(),
}


def can_move(attempt: dict, phase: str) -> bool:
    return phase in PHASES[attempt["phase"]]


DEFAULT_LOG_GROUP = "/aws/batch/job"
ESSENTIAL_EXITED = "Essential container in task exited"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
# statusReason of an attempt whose container never started (pull or start failure); the engine's words,
# e.g. `CannotPullContainerError: ...`, are the container's reason.
START_FAILED_REASON = "Task failed to start"
# ContainerDetail.reason and AttemptContainerDetail.reason: "A short (255 max characters)" string.
MAX_CONTAINER_REASON = 255
# Engine errors that are start failures though reported as the container's end (it never ran).
LATE_START_FAILURES = ("CannotPullContainerError:", "CannotStartContainerError:", "CannotCreateContainerError:")
# What AWS reports when the host under a task disappears; Nextflow retries on "Host EC2*".
VANISHED_REASON = "Host EC2 (instance i-batchemu) terminated."
# The container reason of a container the engine could not pull, create or start, as ECS words it.
START_ERRORS = {Outcome.PULL_FAILED: "CannotPullContainerError", Outcome.CREATE_FAILED: "CannotCreateContainerError",
                Outcome.START_FAILED: "CannotStartContainerError"}


def instance_id(job_id: str, attempt: int) -> str:
    """A stable made-up EC2 instance id for the host of one attempt."""
    return "i-" + hashlib.sha1(f"{job_id}/{attempt}".encode()).hexdigest()[:17]


def lost_host_reason(job_id: str, attempt: int) -> str:
    """What AWS gives a job whose host went away (Spot reclaim, instance failure)."""
    return f"Host EC2 (instance {instance_id(job_id, attempt)}) terminated."


def short_reason(reason: str) -> str:
    """A container reason as AWS gives it: "A short (255 max characters)" string (API_ContainerDetail)."""
    return reason[:MAX_CONTAINER_REASON]


def start_error(failure: StartFailure) -> str:
    """The container reason of a task that could not start."""
    return short_reason(f"{START_ERRORS.get(failure.outcome, START_ERRORS[Outcome.START_FAILED])}: {failure.detail}")


def _engine_reason(exit: TaskExit, result: ContainerResult) -> str:
    """AWS's words for a container that ended without an exit code of its own."""
    if result.outcome is Outcome.HOST_LOST:
        # An engine that knows the lost host names it (a swarm node), else the attempt's own instance.
        detail = result.detail or ""
        if detail.startswith("Host EC2"):
            return detail
        return lost_host_reason(exit.job_id, exit.attempt)
    if result.outcome is Outcome.NOT_STARTED:
        return short_reason(f"CannotStartContainerError: container {result.name} never started: its dependencies "
                            "were not met")
    return start_error(StartFailure(result.outcome, result.detail or "", result.name))


def exit_fields(exit: TaskExit) -> dict:
    """The attempt's exit_code, oom_killed and engine_error (AWS's statusReason when the engine, not the
    job, ended it) from the container whose end decides the task, and how each container ended."""
    main = exit.main
    fields = {"containers": json.dumps([_container_end(exit, result) for result in exit.containers])}
    if main.outcome in (Outcome.EXITED, Outcome.OOM_KILLED):
        return {**fields, "exit_code": main.exit_code, "oom_killed": int(main.outcome is Outcome.OOM_KILLED),
                "engine_error": None}
    return {**fields, "exit_code": None, "oom_killed": 0, "engine_error": _engine_reason(exit, main)}


def _container_end(exit: TaskExit, result: ContainerResult) -> dict:
    """One container's end as a task job's DescribeJobs shows it: {name, exitCode, reason, containerId}."""
    end: dict = {"name": result.name}
    if result.container_id:
        end["containerId"] = result.container_id
    if result.outcome in (Outcome.EXITED, Outcome.OOM_KILLED):
        end["exitCode"] = result.exit_code
        if result.outcome is Outcome.OOM_KILLED:
            end["reason"] = OOM_REASON
    else:
        end["reason"] = _engine_reason(exit, result)
    return end


def start_failure_containers(failure: StartFailure) -> str:
    """The attempt's `containers` for a task that could not start: the container that could not."""
    return json.dumps([{"name": failure.container, "reason": start_error(failure)}])


def log_location(job: dict) -> tuple[str, str]:
    """(group, stream prefix) from the awslogs options of the job's logConfiguration, else AWS's defaults."""
    config = (job.get("container") or {}).get("logConfiguration") or {}
    options = config.get("options") or {} if config.get("logDriver", "awslogs") == "awslogs" else {}
    prefix = options.get("awslogs-stream-prefix") or states.internal(job).get("definitionName") or job["jobName"]
    return options.get("awslogs-group") or DEFAULT_LOG_GROUP, prefix


def begin_attempt(job: dict, config: Config, compute_environment: dict, now: int) -> None:
    """RUNNABLE -> STARTING on `compute_environment`: name the task, its log stream and the attempt."""
    info = states.internal(job)
    info["attempt"] = info.get("attempt", 0) + 1
    info["computeEnvironment"] = compute_environment["computeEnvironmentArn"]
    info["computeEnvironmentName"] = compute_environment["computeEnvironmentName"]
    task_id = ids.uuid4().hex
    cluster = compute_environment.get("ecsClusterArn", "").rsplit("/", 1)[-1] or "batchemu"
    task_arn = f"arn:aws:ecs:{config.region}:{config.account_id}:task/{cluster}/{task_id}"
    instance_arn = f"arn:aws:ecs:{config.region}:{config.account_id}:container-instance/{cluster}/{ids.uuid4().hex}"
    if task_definitions.kind_of(job):
        task_attempts.begin(job, config, compute_environment, task_arn, instance_arn)
    else:
        group, prefix = log_location(job)
        info["logGroup"] = group
        container = job["container"]
        container["taskArn"], container["containerInstanceArn"] = task_arn, instance_arn
        container["logStreamName"] = f"{prefix}/default/{task_id}"
        container.pop("exitCode", None)
        container.pop("reason", None)
    states.transition(job, states.STARTING, now)


def log_streams(job: dict) -> list[tuple[str, str]]:
    """(group, stream) of each container of the job's current attempt."""
    if task_definitions.kind_of(job):
        return task_attempts.log_streams(job)
    return [(states.internal(job)["logGroup"], job["container"]["logStreamName"])]


def task_spec(job: dict, config: Config, queue_name: str, *, network: str | None = None,
              environment: dict[str, str] | None = None) -> TaskSpec:
    """The task of the job's current attempt, with the environment AWS Batch gives every job (plus
    `environment`), on `network` if given: one container, or those of an ecsProperties or eksProperties job."""
    info = states.internal(job)
    labels = {"batchemu.job-queue": queue_name, "batchemu.job-name": job["jobName"]}
    batch = batch_environment(job, config, queue_name, environment, network=network)
    if task_definitions.kind_of(job):
        return task_attempts.task_spec(job, batch, labels, network)
    container = job["container"]
    environment = container_environment(container.get("environment") or [], batch)
    only = ContainerSpec(
        image=container.get("image", ""), command=list(container.get("command") or []), environment=environment,
        vcpus=float(info.get("vcpus", 1.0)), memory_mib=info.get("memoryMib"),
        log_group=info["logGroup"], log_stream=container["logStreamName"],
        user=container.get("user"), privileged=bool(container.get("privileged")),
        readonly_root_filesystem=bool(container.get("readonlyRootFilesystem")),
        ulimits=container.get("ulimits") or [], linux_parameters=linux_parameters(container),
        mount_points=container.get("mountPoints") or [], gpus=gpus_of(container))
    return TaskSpec(job_id=job["jobId"], attempt=info["attempt"], containers=[only],
                    volumes=container.get("volumes") or [], network=network, labels=labels)


def matches(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and fnmatch.fnmatchcase(value.lower(), pattern.lower())


def should_retry(job: dict, exit_code: int | None, status_reason: str, reason: str | None,
                 timed_out: bool = False) -> bool:
    """AWS's retry rule: attempts left, and the first matching evaluateOnExit says RETRY (none matching
    means retry). Terminated and timed-out attempts are never retried."""
    if job.get("isTerminated") or timed_out or job.get("isCancelled"):
        return False
    strategy = job.get("retryStrategy") or {}
    made = len(job.get("attempts") or []) + len(job.get("eksAttempts") or [])
    if made >= (strategy.get("attempts") or 1):
        return False
    code = None if exit_code is None else str(exit_code)
    for rule in strategy.get("evaluateOnExit") or []:
        if (matches(rule.get("onStatusReason"), status_reason) and matches(rule.get("onReason"), reason)
                and matches(rule.get("onExitCode"), code)):
            return rule.get("action", "").upper() == "RETRY"
    return True


def finish_attempt(job: dict, now: int, *, exit_code: int | None, reason: str | None,
                   status_reason: str, timed_out: bool = False, attempt_container: dict | None = None,
                   containers: str | None = None) -> None:
    """Record the ended attempt and move the job to SUCCEEDED, back to RUNNABLE (retry) or FAILED.
    `exit_code` and `reason` are the deciding container's. A job without a container of its own gives, if a
    multi-node parent, its main node's as `attempt_container`; if an ecsProperties or eksProperties job, how
    each of its containers ended as `containers` (the attempt row's JSON)."""
    if task_definitions.kind_of(job):
        task_attempts.end(job, json.loads(containers) if containers else None, job.get("startedAt") or now, now,
                          status_reason)
        # The deciding container's end, which a task job shows nowhere else (a multi-node parent reads its
        # main node's).
        states.internal(job)["taskExit"] = [exit_code, reason]
    else:
        container = job.get("container")
        if container is not None:
            attempt_container = {key: container.get(key)
                                 for key in ("containerInstanceArn", "taskArn", "logStreamName")}
        attempt_container = dict(attempt_container or {})
        container = container if container is not None else {}
        if exit_code is not None:
            attempt_container["exitCode"] = exit_code
            container["exitCode"] = exit_code
        if reason:
            attempt_container["reason"] = reason
            container["reason"] = reason
        job.setdefault("attempts", []).append({
            "container": attempt_container,
            "startedAt": job.get("startedAt") or now,
            "stoppedAt": now,
            "statusReason": status_reason,
        })
    if exit_code == 0 and not job.get("isTerminated") and not timed_out:
        states.transition(job, states.SUCCEEDED, now, status_reason)
    elif should_retry(job, exit_code, status_reason, reason, timed_out):
        states.transition(job, states.RUNNABLE, now, status_reason)
    else:
        states.transition(job, states.FAILED, now, status_reason)


def start_failure(start_error: str) -> tuple[str, str]:
    """(container reason, statusReason) of an attempt whose container could not be pulled or started."""
    return start_error, START_FAILED_REASON


def end_of(job: dict, attempt: dict) -> tuple[int | None, str | None, str]:
    """(exitCode, container reason, statusReason) for an attempt whose container ended, in AWS's words."""
    if attempt.get("engine_error"):
        if attempt["engine_error"].startswith(LATE_START_FAILURES):
            # The engine found out after start() returned (a Swarm task rejected on its node): still a start
            # failure, in AWS's words.
            return (None, *start_failure(attempt["engine_error"]))
        return None, None, attempt["engine_error"]
    exit_code = attempt.get("exit_code")
    reason = OOM_REASON if attempt.get("oom_killed") else None
    terminated = states.internal(job).get("terminateReason")
    if terminated:
        return exit_code, reason, terminated
    if attempt.get("timed_out"):
        return exit_code, reason, TIMEOUT_REASON
    return exit_code, reason, ESSENTIAL_EXITED
