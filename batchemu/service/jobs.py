"""SubmitJob, DescribeJobs, CancelJob(s) and TerminateJob(s): jobs as the store keeps them.

A stored job is its DescribeJobs `JobDetail` in wire form, plus our bookkeeping under "batchemu" (which
the output shape drops). The scheduler moves jobs on from SUBMITTED; these handlers only record intent.
"""

from __future__ import annotations

import re
import uuid

from batchemu import job_states as states
from batchemu.errors import ClientException, NotBuiltError
from batchemu.protocol.serializer import Serialized
from batchemu.service import compute_environments, job_definitions, job_queues
from batchemu.service.context import Context
from batchemu.service.job_container import memory_mib_of, resolve_container, vcpus_of

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
MAX_DESCRIBE = 100
MAX_BULK = 50
MAX_DEPENDENCIES = 20
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")


def job_id_from(ref: str) -> str:
    """A job id from an id or a job ARN (`arn:aws:batch:...:job/<id>`)."""
    return ref.rsplit(":job/", 1)[1] if ref.startswith("arn:") and ":job/" in ref else ref


def _platform(definition: dict) -> str:
    return "FARGATE" if "FARGATE" in (definition.get("platformCapabilities") or []) else "EC2"


def _check_queue_platform(tx, queue: dict, platform: str) -> None:
    for entry in queue.get("computeEnvironmentOrder") or []:
        ce = compute_environments.compute_environment(tx, entry["computeEnvironment"])
        if ce is None:
            continue
        ce_type = (ce.get("computeResources") or {}).get("type")
        ce_platform = "FARGATE" if ce_type in FARGATE_TYPES else "EC2"
        if ce_platform != platform:
            raise ClientException(
                "Job Queue is attached to Compute Environment that can not run Jobs with capability "
                f"{platform}")


def submit_job(ctx: Context, request: dict) -> dict:
    name = request["jobName"]
    if not JOB_NAME.fullmatch(name):
        raise ClientException(
            "jobName must be 1-128 characters long, start with a letter or number, and contain only "
            "letters, numbers, hyphens (-) and underscores (_)")
    if request.get("arrayProperties") is not None:
        raise NotBuiltError("SubmitJob with arrayProperties (array jobs)")
    for unsupported in ("nodeOverrides", "eksPropertiesOverride", "ecsPropertiesOverride"):
        if request.get(unsupported) is not None:
            raise NotBuiltError(f"SubmitJob with {unsupported}")
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        queue = job_queues.job_queue(tx, request["jobQueue"])
        if queue is None or queue.get("status") in ("DELETING", "DELETED"):
            raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
        if queue.get("state") != "ENABLED":
            raise ClientException(
                f"jobQueue {queue['jobQueueName']} is DISABLED: a disabled job queue accepts no new jobs")
        definition = job_definitions.resolve_job_definition(tx, ctx, request["jobDefinition"])
        if definition is None or definition.get("status") != "ACTIVE":
            raise ClientException(f"jobDefinition {request['jobDefinition']} does not exist or is INACTIVE")
        if definition.get("type") == "multinode" or definition.get("nodeProperties"):
            raise NotBuiltError("SubmitJob of a multinode job definition")
        if not definition.get("containerProperties"):
            raise NotBuiltError("SubmitJob of an ecsProperties or eksProperties job definition")
        _check_queue_platform(tx, queue, _platform(definition))
        depends_on = request.get("dependsOn") or []
        if len(depends_on) > MAX_DEPENDENCIES:
            raise ClientException(f"A job can depend on at most {MAX_DEPENDENCIES} jobs")
        for dependency in depends_on:
            if dependency.get("type") == "N_TO_N":
                raise NotBuiltError("SubmitJob with an N_TO_N dependency (array jobs)")
            if not dependency.get("jobId") or tx.get_job(job_id_from(dependency["jobId"])) is None:
                raise ClientException(f"Dependent job {dependency.get('jobId')} does not exist")
        parameters = {**(definition.get("parameters") or {}), **(request.get("parameters") or {})}
        container = resolve_container(definition["containerProperties"],
                                      request.get("containerOverrides") or {}, parameters)
        job_id = str(uuid.uuid4())
        job = {
            "jobArn": ctx.arn(f"job/{job_id}"),
            "jobName": name,
            "jobId": job_id,
            "jobQueue": queue["jobQueueArn"],
            "status": states.SUBMITTED,
            "createdAt": now,
            "jobDefinition": definition["jobDefinitionArn"],
            "parameters": parameters,
            "container": container,
            "dependsOn": [{"jobId": job_id_from(d["jobId"]), **({"type": d["type"]} if d.get("type") else {})}
                          for d in depends_on],
            "attempts": [],
            "tags": request.get("tags") or {},
            "propagateTags": request.get("propagateTags", definition.get("propagateTags", False)),
            "isCancelled": False,
            "isTerminated": False,
            "batchemu": {
                "transitions": [[states.SUBMITTED, now]],
                "vcpus": vcpus_of(container),
                "memoryMib": memory_mib_of(container),
                "platform": _platform(definition),
                "definitionName": definition["jobDefinitionName"],
                "attempt": 0,
            },
        }
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
        consumables = request.get("consumableResourcePropertiesOverride") or definition.get(
            "consumableResourceProperties")
        if consumables:
            job["consumableResourceProperties"] = consumables
        tx.insert_job(job)
    ctx.notify()
    return {"jobArn": job["jobArn"], "jobName": name, "jobId": job_id}


def describe_jobs(ctx: Context, request: dict) -> dict:
    ids = [job_id_from(ref) for ref in request["jobs"]]
    if len(ids) > MAX_DESCRIBE:
        raise ClientException(f"jobs can contain at most {MAX_DESCRIBE} job IDs")
    with ctx.store.transaction() as tx:
        details = tx.get_jobs_wire(ids)
    # Each detail was serialized against JobDetail when stored: join them instead of re-encoding.
    return Serialized(b'{"jobs":[' + ",".join(details).encode() + b"]}")


def cancel(ctx: Context, tx, job: dict, reason: str) -> None:
    if job["status"] in states.QUEUED:
        states.transition(job, states.FAILED, ctx.clock(), reason)
        job["isCancelled"] = True
        tx.update_job(job)


def terminate(ctx: Context, tx, job: dict, reason: str) -> None:
    if job["status"] in states.QUEUED:
        states.transition(job, states.FAILED, ctx.clock(), reason)
        job["isTerminated"] = True
        tx.update_job(job)
    elif job["status"] in states.ON_HOST:
        # The scheduler stops the container; the job fails with this reason when it has exited.
        states.internal(job)["terminateReason"] = reason
        job["isTerminated"] = True
        tx.update_job(job)


def _one(ctx: Context, request: dict, act) -> dict:
    with ctx.store.transaction() as tx:
        job = tx.get_job(job_id_from(request["jobId"]))
        if job is None:
            raise ClientException(f"Job {request['jobId']} does not exist")
        act(ctx, tx, job, request["reason"])
    ctx.notify()
    return {}


def _bulk(ctx: Context, request: dict, act) -> dict:
    refs = request["jobs"]
    if not 1 <= len(refs) <= MAX_BULK:
        raise ClientException(f"jobs must contain between 1 and {MAX_BULK} job IDs")
    successful, errors = [], []
    with ctx.store.transaction() as tx:
        for ref in refs:
            job = tx.get_job(job_id_from(ref))
            if job is None:
                errors.append({"job": ref, "code": "ClientException", "message": f"Job {ref} does not exist"})
                continue
            act(ctx, tx, job, request["reason"])
            successful.append(ref)
    ctx.notify()
    return {"successful": successful, "errors": errors}


def cancel_job(ctx: Context, request: dict) -> dict:
    return _one(ctx, request, cancel)


def terminate_job(ctx: Context, request: dict) -> dict:
    return _one(ctx, request, terminate)


def cancel_jobs(ctx: Context, request: dict) -> dict:
    return _bulk(ctx, request, cancel)


def terminate_jobs(ctx: Context, request: dict) -> dict:
    return _bulk(ctx, request, terminate)


OPERATIONS = {
    "SubmitJob": submit_job,
    "DescribeJobs": describe_jobs,
    "CancelJob": cancel_job,
    "TerminateJob": terminate_job,
    "CancelJobs": cancel_jobs,
    "TerminateJobs": terminate_jobs,
}
