"""SubmitJob, DescribeJobs, CancelJob(s) and TerminateJob(s): jobs as the store keeps them.

A stored job is its DescribeJobs `JobDetail` in wire form, plus our bookkeeping under "batchemu" (which
the output shape drops). The scheduler moves jobs on from SUBMITTED; these handlers only record intents
(cancel, terminate) and carry out at once what needs only the store (batchemu.model.intents); the scheduler
stops containers. An array job is its parent plus one plain row per
child (batchemu.model.arrays).
"""

from __future__ import annotations

import re

from batchemu import ids
from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model import arrays, intents, multinode, node_ranges, propagated_tags, states, task_definitions
from batchemu.model.containers import gpus_of, memory_mib_of, resolve_container, vcpus_of
from batchemu.model.resources import ENABLED, GOING
from batchemu.protocol.serializer import Serialized
from batchemu.service import (
    compute_environments,
    consumable_resources,
    host_access,
    job_definitions,
    job_queues,
    scheduling_policies,
)
from batchemu.service.retry_strategies import check_retry_strategy
from batchemu.service.tags import validate_tags
from batchemu.store import JobRow, job_columns

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
MAX_DESCRIBE = 100
MAX_BULK = 50
MAX_DEPENDENCIES = 20
MIN_TIMEOUT = 60
MAX_REASON = 1024
PRIORITY_RANGE = (0, 9999)
# Job queues with a scheduling policy: active share identifiers at a time (API_SubmitJob).
MAX_ACTIVE_SHARES = 500
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")
# (definition field, SubmitJob override) of each kind of job definition (task_definitions.kind_of).
KINDS = {None: ("containerProperties", "containerOverrides"),
         task_definitions.ECS: ("ecsProperties", "ecsPropertiesOverride"),
         task_definitions.EKS: ("eksProperties", "eksPropertiesOverride")}


def job_id_from(ref: str) -> str:
    """A job id from an id or a job ARN (`arn:aws:batch:...:job/<id>`)."""
    return ref.rsplit(":job/", 1)[1] if ref.startswith("arn:") and ":job/" in ref else ref


def _platform(definition: dict) -> str:
    return "FARGATE" if "FARGATE" in (definition.get("platformCapabilities") or []) else "EC2"


def _check_queue_platform(tx, queue: dict, platform: str) -> None:
    """`platform` (EC2, FARGATE or EKS) must be what the queue's compute environments run."""
    for entry in queue.get("computeEnvironmentOrder") or []:
        ce = compute_environments.compute_environment(tx, entry["computeEnvironment"])
        if ce is None:
            continue
        ce_type = (ce.get("computeResources") or {}).get("type")
        ce_platform = "FARGATE" if ce_type in FARGATE_TYPES else "EC2"
        if ce.get("containerOrchestrationType") == "EKS":
            ce_platform = "EKS"
        if ce_platform != platform:
            raise ClientException(
                "Job Queue is attached to Compute Environment that can not run Jobs with capability "
                f"{platform}")


def _check_dependencies(tx, depends_on: list[dict], array_size: int | None) -> list[dict]:
    """The dependencies in stored form, after AWS's rules: at most 20; SEQUENTIAL (no jobId) and N_TO_N
    (the jobId of an array job of the same size) only on array jobs."""
    if len(depends_on) > MAX_DEPENDENCIES:
        raise ClientException(f"Job cannot have more than {MAX_DEPENDENCIES} dependencies")
    out = []
    for dependency in depends_on:
        kind = dependency.get("type")
        if kind == "SEQUENTIAL":
            if array_size is None:
                raise ClientException("A SEQUENTIAL dependency is only valid on an array job")
            if dependency.get("jobId"):
                raise ClientException("A SEQUENTIAL dependency takes no jobId: each child waits for the previous one")
            out.append({"type": "SEQUENTIAL"})
            continue
        if not dependency.get("jobId"):
            raise ClientException("A dependency needs a jobId (only SEQUENTIAL dependencies have none)")
        job_id = job_id_from(dependency["jobId"])
        target = tx.jobs.row(job_id)
        if target is None:
            raise ClientException(f"Dependent job {dependency['jobId']} does not exist")
        if kind == "N_TO_N":
            if array_size is None:
                raise ClientException("An N_TO_N dependency is only valid on an array job")
            if target["array_size"] is None:
                raise ClientException(f"N_TO_N dependency {job_id} is not an array job")
            if target["array_size"] != array_size:
                raise ClientException(f"N_TO_N dependency {job_id} is an array job of size "
                                      f"{target['array_size']}, this job's size is {array_size}")
        out.append({"jobId": job_id, **({"type": kind} if kind else {})})
    return out


def _check_share_request(request: dict) -> None:
    """What SubmitJob's shareIdentifier and schedulingPriorityOverride may be, whatever the queue."""
    if request.get("shareIdentifier") is not None:
        scheduling_policies.check_share_identifier(request["shareIdentifier"])
    priority = request.get("schedulingPriorityOverride")
    if priority is not None and not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
        raise ClientException(f"schedulingPriorityOverride must be between {PRIORITY_RANGE[0]} and "
                              f"{PRIORITY_RANGE[1]}.")


def _check_share(tx, queue: dict, request: dict) -> None:
    fair_share = bool(queue.get("schedulingPolicyArn"))
    if fair_share and not request.get("shareIdentifier"):
        raise ClientException("shareIdentifier must be specified.")
    if not fair_share and request.get("shareIdentifier"):
        raise ClientException("shareIdentifier can only be specified for a job queue with a fair share "
                              "scheduling policy.")
    share = request.get("shareIdentifier")
    if fair_share and tx.capacity.active_shares(queue["jobQueueArn"]) >= MAX_ACTIVE_SHARES and not tx.jobs.query(
            {"job_queue_arn": queue["jobQueueArn"], "share_identifier": share}, statuses=list(states.ACTIVE),
            limit=1, rows_only=True):
        raise ClientException(f"jobQueue {queue['jobQueueName']} already has {MAX_ACTIVE_SHARES} active share "
                              f"identifiers: a job of a new one, {share}, can't be submitted until one is inactive")
    if not fair_share and request.get("schedulingPriorityOverride") is not None:
        raise ClientException("schedulingPriorityOverride can only be specified for a job queue with a fair "
                              "share scheduling policy.")


def _what_it_runs(definition: dict, kind: str | None, request: dict, parameters: dict[str, str]) -> dict:
    """The JobDetail fields of what the job runs (`container`, `ecsProperties` or `eksProperties`), with the
    override its kind of definition takes; an override meant for another kind is refused."""
    properties, accepted = KINDS[kind]
    for _, field in KINDS.values():
        if field != accepted and request.get(field):
            raise ClientException(f"{field} can't be specified for a job definition with {properties}; "
                                  f"use {accepted}")
    override = request.get(accepted)
    if kind == task_definitions.ECS:
        return {"ecsProperties": task_definitions.resolve_ecs(definition["ecsProperties"], override, parameters,
                                                              fargate=_platform(definition) == "FARGATE")}
    if kind == task_definitions.EKS:
        return {"eksProperties": task_definitions.resolve_eks(definition["eksProperties"], override, parameters),
                "eksAttempts": []}
    return {"container": resolve_container(definition["containerProperties"], override or {}, parameters,
                                           fargate=_platform(definition) == "FARGATE")}


def _reservation(job: dict) -> tuple[float, int | None, int]:
    """(vCPUs, memory MiB, GPUs) the job holds on a compute environment while it runs."""
    if "container" in job:
        container = job["container"]
        return vcpus_of(container), memory_mib_of(container), gpus_of(container)
    return task_definitions.reservation(job)


def check_job_name(name: str) -> None:
    """AWS's rule for the jobName of SubmitJob and SubmitServiceJob."""
    if not JOB_NAME.fullmatch(name):
        raise ClientException(
            "jobName must be 1-128 characters long, start with a letter or number, and contain only "
            "letters, numbers, hyphens (-) and underscores (_)")


def _create_children(tx, job: dict, multi_node: bool, depends_on: list[dict], now: int) -> None:
    """A submitted job's nodes or array children, and the dependency edges the scheduler waits on."""
    job_id, array_size = job["jobId"], (job.get("arrayProperties") or {}).get("size")
    if multi_node:
        multinode.create_nodes(tx, job, now)
    tx.dependencies.add((job_id, d["jobId"], None) for d in depends_on if "jobId" in d and "type" not in d)
    if array_size is not None:
        child = arrays.child_doc(job, JobRow(job_id="", array_index=0, status=states.PENDING, created_at=now,
                                             entered_at=now, status_reason=None, stopped_at=None,
                                             is_cancelled=0, is_terminated=0))
        columns = job_columns(child)
        for key in ("job_id", "array_index", "has_doc", "parent_id", "array_size"):
            columns.pop(key)
        tx.arrays.insert_children(job, columns, array_size)
        tx.dependencies.add((f"{job_id}:{i}", d["jobId"], d["type"]) for i in range(array_size)
                            for d in arrays.child_dependencies(job, i))


def submit_job(ctx: Context, request: dict) -> dict:
    name = request["jobName"]
    check_job_name(name)
    # An empty arrayProperties (no size) submits an ordinary job.
    array_size = (request.get("arrayProperties") or {}).get("size")
    if array_size is not None and not arrays.MIN_SIZE <= array_size <= arrays.MAX_SIZE:
        raise ClientException(f"Array job size must be between {arrays.MIN_SIZE} and {arrays.MAX_SIZE}, "
                              f"got {array_size}")
    if request.get("containerOverrides") is not None and request.get("nodeOverrides") is not None:
        raise ClientException("Container overrides and node overrides are mutually exclusive, only one can be set.")
    timeout = (request.get("timeout") or {}).get("attemptDurationSeconds")
    if timeout is not None and timeout < MIN_TIMEOUT:
        raise ClientException("The minimum value for the timeout is 60 seconds.")
    # An empty retryStrategy leaves the definition's in place, as an absent one does.
    if request.get("retryStrategy"):
        check_retry_strategy(request["retryStrategy"])
    _check_share_request(request)
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        queue = job_queues.job_queue(tx, request["jobQueue"])
        if queue is None or queue.get("status") in GOING:
            raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
        if queue.get("state") != ENABLED:
            raise ClientException(
                f"jobQueue {queue['jobQueueName']} is DISABLED: a disabled job queue accepts no new jobs")
        if queue.get("jobQueueType") == job_queues.SAGEMAKER_TRAINING:
            raise ClientException(
                f"jobQueue {queue['jobQueueName']} is a SAGEMAKER_TRAINING job queue: it takes service jobs "
                "(SubmitServiceJob), not container jobs")
        definition = job_definitions.resolve_job_definition(tx, ctx, request["jobDefinition"])
        if definition is None or definition.get("status") != "ACTIVE":
            raise ClientException(f"jobDefinition {request['jobDefinition']} does not exist or is INACTIVE")
        multi_node = definition.get("type") == "multinode" or bool(definition.get("nodeProperties"))
        if multi_node and array_size is not None:
            raise ClientException("Array properties are not supported for multi-node parallel jobs.")
        if not multi_node and request.get("nodeOverrides") is not None:
            raise ClientException("Node overrides can only be specified for multi-node parallel jobs.")
        # A definition registered before the server denied host access is refused when used.
        host_access.check(definition, ctx.config)
        kind = task_definitions.kind_of(definition)
        _check_queue_platform(tx, queue, "EKS" if kind == task_definitions.EKS else _platform(definition))
        _check_share(tx, queue, request)
        depends_on = _check_dependencies(tx, request.get("dependsOn") or [], array_size)
        parameters = {**(definition.get("parameters") or {}), **(request.get("parameters") or {})}
        if multi_node:
            for field in ("ecsPropertiesOverride", "eksPropertiesOverride"):
                if request.get(field):
                    raise ClientException(f"{field} can't be specified for a multi-node parallel job; use "
                                          "nodeOverrides")
            node_properties = node_ranges.resolve(definition["nodeProperties"], request.get("nodeOverrides"),
                                                  parameters)
            runs, held = {"nodeProperties": node_properties}, node_ranges.totals(node_properties)
        else:
            runs, held = _what_it_runs(definition, kind, request, parameters), None
        consumable_properties = request.get("consumableResourcePropertiesOverride") or definition.get(
            "consumableResourceProperties")
        job_id = ids.uuid4_str()
        job = {
            "jobArn": ctx.arn(f"job/{job_id}"),
            "jobName": name,
            "jobId": job_id,
            "jobQueue": queue["jobQueueArn"],
            "status": states.SUBMITTED,
            "createdAt": now,
            "jobDefinition": definition["jobDefinitionArn"],
            "parameters": parameters,
            **runs,
            "dependsOn": depends_on,
            "attempts": [],
            "tags": validate_tags(request.get("tags")),
            "propagateTags": request.get("propagateTags", definition.get("propagateTags", False)),
            "isCancelled": False,
            "isTerminated": False,
            "batchemu": {
                "transitions": [[states.SUBMITTED, now]],
                "platform": _platform(definition),
                "definitionName": definition["jobDefinitionName"],
                "consumables": consumable_resources.held_quantities(tx, ctx, consumable_properties),
                "attempt": 0,
            },
        }
        if held is None:
            held = dict(zip(("vcpus", "memoryMib", "gpus"), _reservation(job)))
        states.internal(job).update(held)
        for key, source in (("retryStrategy", "retryStrategy"), ("timeout", "timeout")):
            value = request.get(source) or definition.get(source)
            if value:
                job[key] = value
        if definition.get("platformCapabilities"):
            job["platformCapabilities"] = definition["platformCapabilities"]
        priority = request.get("schedulingPriorityOverride", definition.get("schedulingPriority"))
        if priority is not None:
            job["schedulingPriority"] = priority
        if request.get("shareIdentifier"):
            job["shareIdentifier"] = request["shareIdentifier"]
        if consumable_properties:
            job["consumableResourceProperties"] = consumable_properties
        if array_size is not None:
            job["arrayProperties"] = {"size": array_size,
                                      "statusSummary": arrays.status_summary({states.PENDING: array_size}),
                                      "statusSummaryLastUpdatedAt": now}
        failure = propagated_tags.over_limit(job, definition)
        if failure is not None:
            # AWS accepts the job and moves it to FAILED: its task could not carry that many tags.
            states.transition(job, states.FAILED, now, failure)
            if array_size is not None:
                job["arrayProperties"]["statusSummary"] = arrays.status_summary({})
        tx.jobs.insert(job)
        if failure is None:
            _create_children(tx, job, multi_node, depends_on, now)
    ctx.notify()
    return {"jobArn": job["jobArn"], "jobName": name, "jobId": job_id}


def describe_jobs(ctx: Context, request: dict) -> dict | Serialized:
    ids = [job_id_from(ref) for ref in request["jobs"]]
    if len(ids) > MAX_DESCRIBE:
        # AWS's words, spacing included, as seen in pegasus-isi/pegasus#2086.
        raise ClientException(f"Error executing request, Exception : Maximum number of jobs supported is  "
                              f"{MAX_DESCRIBE} .")
    with ctx.store.read() as tx:
        details = tx.jobs.wire(ids)
    # Each detail was serialized against JobDetail when stored: join them instead of re-encoding.
    return Serialized(b'{"jobs":[' + ",".join(details).encode() + b"]}")


def _check_reason(reason: str) -> None:
    if len(reason) > MAX_REASON:
        raise ClientException(f"reason must be at most {MAX_REASON} characters, got {len(reason)}")


def _one(ctx: Context, request: dict, intent: str) -> dict:
    _check_reason(request["reason"])
    with ctx.store.transaction() as tx:
        if not intents.record(tx, job_id_from(request["jobId"]), intent, request["reason"]):
            raise ClientException(f"Job {request['jobId']} does not exist")
        intents.carry_out(tx, ctx.clock())
    ctx.notify()
    return {}


def _malformed(ref: str) -> bool:
    """A job identifier no job can have: empty, or the ARN of something other than a job."""
    return not ref.strip() or (ref.startswith("arn:") and ":job/" not in ref)


def _bulk(ctx: Context, request: dict, intent: str) -> dict:
    """CancelJobs and TerminateJobs: each job reported on its own, with HTTP 200. A job that can't be found
    counts as processed (API_CancelJobs, API_TerminateJobs); only a malformed identifier is an error."""
    refs = request["jobs"]
    if not 1 <= len(refs) <= MAX_BULK:
        raise ClientException(f"jobs must contain between 1 and {MAX_BULK} job IDs")
    _check_reason(request["reason"])
    successful, errors = [], []
    with ctx.store.transaction() as tx:
        for ref in refs:
            if _malformed(ref):
                errors.append({"job": ref, "code": "ValidationException",
                               "message": f"Job identifier {ref!r} is not a job ID or job ARN"})
                continue
            intents.record(tx, job_id_from(ref), intent, request["reason"])
            successful.append(ref)
        intents.carry_out(tx, ctx.clock())
    ctx.notify()
    return {"successful": successful, "errors": errors}


def cancel_job(ctx: Context, request: dict) -> dict:
    return _one(ctx, request, intents.CANCEL)


def terminate_job(ctx: Context, request: dict) -> dict:
    return _one(ctx, request, intents.TERMINATE)


def cancel_jobs(ctx: Context, request: dict) -> dict:
    return _bulk(ctx, request, intents.CANCEL)


def terminate_jobs(ctx: Context, request: dict) -> dict:
    return _bulk(ctx, request, intents.TERMINATE)


OPERATIONS = {
    "SubmitJob": submit_job,
    "DescribeJobs": describe_jobs,
    "CancelJob": cancel_job,
    "TerminateJob": terminate_job,
    "CancelJobs": cancel_jobs,
    "TerminateJobs": terminate_jobs,
}
