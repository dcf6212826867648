"""Job queues: Create/Update/Delete/DescribeJobQueues and their status lifecycle.

A stored job queue is its DescribeJobQueues `JobQueueDetail` in wire form (compute environments named by
ARN), plus our bookkeeping under "batchemu" (which the output shape drops). Handlers set CREATING,
UPDATING or DELETING; the scheduler (scheduler/resource_status.py) moves them on to VALID or, once
a deleted queue holds no unfinished job, out of the store.
"""

from __future__ import annotations

import re

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model.compute_capacity import is_fargate
from batchemu.model.resources import (
    CREATING,
    DELETING,
    ENABLED,
    GOING,
    INVALID,
    JOB_QUEUE,
    SCHEDULING_POLICY,
    UPDATING,
    queue_deletion_due,
    set_status,
)
from batchemu.service import compute_environments, lookup, service_environments
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

KIND = JOB_QUEUE
NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_DESCRIBE = 100
MAX_COMPUTE_ENVIRONMENTS = 3
TIME_LIMIT_SECONDS = (600, 86400)
PRIORITY_RANGE = (0, 1000)
SAGEMAKER_TRAINING = "SAGEMAKER_TRAINING"
MAX_SERVICE_ENVIRONMENTS = 1
BOTH_ORDERS = ("computeEnvironmentOrder and serviceEnvironmentOrder are mutually exclusive: a job queue orders "
               "either compute environments or a service environment")


def job_queue(tx: Tx, name_or_arn: str) -> dict | None:
    """The stored job queue (JobQueueDetail wire form) named or ARN'd, or None."""
    return lookup.find(tx, KIND, name_or_arn)


def _platform(ce: dict) -> str:
    """The jobQueueType a compute environment calls for."""
    if ce.get("containerOrchestrationType") == "EKS":
        return "EKS"
    return "ECS_FARGATE" if is_fargate(ce) else "ECS"


def _compute_environment_order(tx: Tx, entries: list[dict]) -> tuple[list[dict], str]:
    """The entries with every compute environment named by ARN, and the jobQueueType they make up."""
    if not entries:
        raise ClientException("computeEnvironmentOrder must contain at least one compute environment")
    if len(entries) > MAX_COMPUTE_ENVIRONMENTS:
        raise ClientException(
            f"computeEnvironmentOrder can contain at most {MAX_COMPUTE_ENVIRONMENTS} compute environments")
    orders = [entry["order"] for entry in entries]
    if len(set(orders)) != len(orders):
        raise ClientException("computeEnvironmentOrder must not give two compute environments the same order")
    resolved: list[dict] = []
    platforms = set()
    for entry in entries:
        ce = compute_environments.compute_environment(tx, entry["computeEnvironment"])
        if ce is None or ce["status"] in GOING:
            raise ClientException(f"computeEnvironment {entry['computeEnvironment']} does not exist")
        if ce["status"] == INVALID:
            raise ClientException(f"computeEnvironment {ce['computeEnvironmentName']} is INVALID")
        if any(r["computeEnvironment"] == ce["computeEnvironmentArn"] for r in resolved):
            raise ClientException(
                f"computeEnvironment {ce['computeEnvironmentName']} appears more than once in "
                "computeEnvironmentOrder")
        resolved.append({"order": entry["order"], "computeEnvironment": ce["computeEnvironmentArn"]})
        platforms.add(_platform(ce))
    if "EKS" in platforms and len(platforms) > 1:
        raise ClientException("Amazon EKS and Amazon ECS compute environments can't be mixed in a job queue")
    if len(platforms) > 1:
        raise ClientException(
            "All compute environments of a job queue must be either EC2 (EC2, SPOT or UNMANAGED) or Fargate "
            "(FARGATE or FARGATE_SPOT); EC2 and Fargate compute environments can't be mixed")
    return resolved, platforms.pop()


def _service_environment_order(tx: Tx, entries: list[dict], *, allow_empty: bool = False) -> list[dict]:
    """The entries with the service environment named by ARN (a job queue orders at most one)."""
    if not entries and not allow_empty:
        raise ClientException("serviceEnvironmentOrder must contain a service environment for a "
                              f"{SAGEMAKER_TRAINING} job queue")
    if len(entries) > MAX_SERVICE_ENVIRONMENTS:
        raise ClientException(
            f"serviceEnvironmentOrder can contain at most {MAX_SERVICE_ENVIRONMENTS} service environment")
    resolved = []
    for entry in entries:
        env = service_environments.service_environment(tx, entry["serviceEnvironment"])
        if env is None or env["status"] in GOING:
            raise ClientException(f"serviceEnvironment {entry['serviceEnvironment']} does not exist")
        if env["status"] == INVALID:
            raise ClientException(f"serviceEnvironment {env['serviceEnvironmentName']} is INVALID")
        resolved.append({"order": entry["order"], "serviceEnvironment": env["serviceEnvironmentArn"]})
    return resolved


def _queue_order(tx: Tx, request: dict) -> dict:
    """computeEnvironmentOrder, serviceEnvironmentOrder and jobQueueType of a new job queue."""
    queue_type = request.get("jobQueueType")
    if request.get("serviceEnvironmentOrder") is None and queue_type != SAGEMAKER_TRAINING:
        order, platform = _compute_environment_order(tx, request.get("computeEnvironmentOrder") or [])
        if queue_type not in (None, platform):
            raise ClientException(
                f"jobQueueType {queue_type} does not match the compute environments of the queue, which call "
                f"for {platform}")
        return {"computeEnvironmentOrder": order, "jobQueueType": platform}
    if request.get("computeEnvironmentOrder"):
        raise ClientException(BOTH_ORDERS)
    if queue_type not in (None, SAGEMAKER_TRAINING):
        raise ClientException(f"jobQueueType {queue_type} can't order service environments: only "
                              f"{SAGEMAKER_TRAINING} job queues can")
    # computeEnvironmentOrder is required in JobQueueDetail: a service queue shows it empty.
    return {"computeEnvironmentOrder": [], "jobQueueType": SAGEMAKER_TRAINING,
            "serviceEnvironmentOrder": _service_environment_order(tx, request.get("serviceEnvironmentOrder") or [])}


def _check_scheduling_policy(tx: Tx, arn: str) -> None:
    if tx.resources.get(SCHEDULING_POLICY, arn) is None:
        raise ClientException(f"Scheduling policy {arn} does not exist")


def _quota_managed(tx: Tx, queue: dict) -> bool:
    arn = queue.get("schedulingPolicyArn")
    return arn is not None and "quotaSharePolicy" in (tx.resources.get(SCHEDULING_POLICY, arn) or {})


def _check_quota_managed_environment(tx: Tx, doc: dict) -> None:
    """A service environment with a quota-managed job queue has no other job queue (service_limits.html)."""
    mine = {e["serviceEnvironment"] for e in doc.get("serviceEnvironmentOrder") or []}
    if not mine:
        return
    managed = _quota_managed(tx, doc)
    for _, other in tx.resources.of_kind(KIND):
        if other["jobQueueName"] == doc["jobQueueName"] or other["status"] in GOING:
            continue
        shared = mine & {e["serviceEnvironment"] for e in other.get("serviceEnvironmentOrder") or []}
        if shared and (managed or _quota_managed(tx, other)):
            raise ClientException(f"serviceEnvironment {shared.pop()} already has a job queue: a service environment "
                                  "with quota management takes one job queue only")


def _check_time_limit_actions(actions: list[dict], queue_type: str) -> None:
    low, high = TIME_LIMIT_SECONDS
    # CANCEL for queues of ECS, EKS or Fargate compute environments, TERMINATE for SageMaker Training queues.
    allowed = "TERMINATE" if queue_type == SAGEMAKER_TRAINING else "CANCEL"
    for action in actions:
        if not low <= action["maxTimeSeconds"] <= high:
            raise ClientException(f"jobStateTimeLimitActions maxTimeSeconds must be between {low} and {high}")
        if action["action"] != allowed:
            raise ClientException(f"jobStateTimeLimitActions action {action['action']} is not supported for a "
                                  f"{queue_type} job queue: the only supported action is {allowed}")


def _check_priority(priority: int) -> None:
    low, high = PRIORITY_RANGE
    if not low <= priority <= high:
        raise ClientException(f"priority must be between {low} and {high}")


def create_job_queue(ctx: Context, request: dict) -> dict:
    name = request["jobQueueName"]
    if not NAME.fullmatch(name):
        raise ClientException(
            "jobQueueName must be 1-128 characters long and contain only letters, numbers, hyphens (-) "
            "and underscores (_)")
    _check_priority(request["priority"])
    arn = ctx.arn(f"{KIND}/{name}")
    with ctx.store.transaction() as tx:
        doc: dict = {
            "jobQueueName": name,
            "jobQueueArn": arn,
            "state": request.get("state") or ENABLED,
            "priority": request["priority"],
            **_queue_order(tx, request),
            "tags": validate_tags(request.get("tags")),
        }
        if request.get("schedulingPolicyArn") is not None:
            _check_scheduling_policy(tx, request["schedulingPolicyArn"])
            doc["schedulingPolicyArn"] = request["schedulingPolicyArn"]
        if request.get("jobStateTimeLimitActions") is not None:
            _check_time_limit_actions(request["jobStateTimeLimitActions"], doc["jobQueueType"])
            doc["jobStateTimeLimitActions"] = request["jobStateTimeLimitActions"]
        existing = job_queue(tx, name)
        if existing is not None:
            if not queue_deletion_due(ctx, tx, existing):
                raise ClientException("Object already exists")
            tx.resources.delete(existing["jobQueueArn"])  # a due deletion, finished here
        _check_quota_managed_environment(tx, doc)
        set_status(doc, CREATING, ctx.clock())
        tx.resources.put(KIND, arn, name, doc)
    ctx.notify()
    return {"jobQueueName": name, "jobQueueArn": arn}


def update_job_queue(ctx: Context, request: dict) -> dict:
    ref = request["jobQueue"]
    if request.get("priority") is not None:
        _check_priority(request["priority"])
    with ctx.store.transaction() as tx:
        doc = job_queue(tx, ref)
        if doc is None:
            raise ClientException(f"jobQueue {ref} does not exist")
        name = doc["jobQueueName"]
        if doc["status"] in GOING:
            raise ClientException(f"Cannot update, job queue {name} is being deleted")
        for member in ("state", "priority"):
            if request.get(member) is not None:
                doc[member] = request[member]
        service_queue = doc.get("jobQueueType") == SAGEMAKER_TRAINING
        if request.get("serviceEnvironmentOrder") is not None:
            if not service_queue:
                raise ClientException(f"Job queue {name} is a {doc.get('jobQueueType')} job queue: only "
                                      f"{SAGEMAKER_TRAINING} job queues order service environments")
            if request.get("computeEnvironmentOrder"):
                raise ClientException(BOTH_ORDERS)
            # An empty order disassociates the service environment, so that it can be deleted.
            doc["serviceEnvironmentOrder"] = _service_environment_order(
                tx, request["serviceEnvironmentOrder"], allow_empty=True)
        elif request.get("computeEnvironmentOrder") is not None and service_queue:
            raise ClientException(f"Job queue {name} is a {SAGEMAKER_TRAINING} job queue: it orders a service "
                                  "environment, not compute environments")
        if request.get("computeEnvironmentOrder") is not None and not service_queue:
            order, platform = _compute_environment_order(tx, request["computeEnvironmentOrder"])
            if platform != doc.get("jobQueueType", platform):
                raise ClientException(
                    f"The compute environments of job queue {name} must stay {doc['jobQueueType']}: a job "
                    f"queue's type can't change to {platform}")
            doc["computeEnvironmentOrder"] = order
        if request.get("schedulingPolicyArn") is not None:
            if "schedulingPolicyArn" not in doc:
                raise ClientException(
                    f"Job queue {name} has no scheduling policy: a FIFO job queue can't have one added")
            _check_scheduling_policy(tx, request["schedulingPolicyArn"])
            doc["schedulingPolicyArn"] = request["schedulingPolicyArn"]
        if request.get("jobStateTimeLimitActions") is not None:
            _check_time_limit_actions(request["jobStateTimeLimitActions"], doc.get("jobQueueType", "ECS"))
            doc["jobStateTimeLimitActions"] = request["jobStateTimeLimitActions"]
        _check_quota_managed_environment(tx, doc)
        set_status(doc, UPDATING, ctx.clock())
        tx.resources.put(KIND, doc["jobQueueArn"], name, doc)
    ctx.notify()
    return {"jobQueueName": name, "jobQueueArn": doc["jobQueueArn"]}


def delete_job_queue(ctx: Context, request: dict) -> dict:
    ref = request["jobQueue"]
    with ctx.store.transaction() as tx:
        doc = job_queue(tx, ref)
        if doc is None:
            raise ClientException(f"jobQueue {ref} does not exist")
        if not lookup.deletable(ctx, doc, "job queue", doc["jobQueueName"]):
            return {}
        set_status(doc, DELETING, ctx.clock())
        tx.resources.put(KIND, doc["jobQueueArn"], doc["jobQueueName"], doc)
    ctx.notify()
    return {}


def describe_job_queues(ctx: Context, request: dict) -> dict:
    return lookup.describe_page(ctx, request, kind=KIND, member="jobQueues", label="JobQueues",
                                arn_key="jobQueueArn", limit_max=MAX_DESCRIBE)


OPERATIONS = {
    "CreateJobQueue": create_job_queue,
    "UpdateJobQueue": update_job_queue,
    "DeleteJobQueue": delete_job_queue,
    "DescribeJobQueues": describe_job_queues,
}
