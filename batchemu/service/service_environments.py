"""Service environments (SageMaker Training capacity for service jobs): Create/Update/Delete/
DescribeServiceEnvironments and their status lifecycle.

A stored service environment is its `ServiceEnvironmentDetail` in wire form, plus our bookkeeping under
"batchemu" (which the output shape drops). Handlers set CREATING, UPDATING or DELETING; the scheduler
(scheduler/resource_status.py) moves them on to VALID or out of the store, as for compute
environments. Service jobs run against this capacity (scheduler/service_placement.py).
"""

from __future__ import annotations

import re

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model.resources import (
    CREATING,
    DELETING,
    ENABLED,
    GOING,
    JOB_QUEUE,
    SERVICE_ENVIRONMENT,
    UPDATING,
    queue_deletion_due,
    set_status,
    settled,
)
from batchemu.service import lookup
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

KIND = SERVICE_ENVIRONMENT
NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_DESCRIBE = 100
MAX_SERVICE_ENVIRONMENTS = 50  # per account and Region (user guide, "AWS Batch service quotas")
NUM_INSTANCES = "NUM_INSTANCES"
# capacityUnit is NUM_INSTANCES, or a SageMaker instance type for quota-management environments.
INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")


def service_environment(tx: Tx, name_or_arn: str) -> dict | None:
    """The stored service environment (ServiceEnvironmentDetail wire form) named or ARN'd, or None."""
    return lookup.find(tx, KIND, name_or_arn)


def check_capacity_limits(limits: list[dict], *, most: int | None = None) -> list[dict]:
    """capacityLimits as service environments and quota shares take them: each a positive maxCapacity
    of a capacityUnit (NUM_INSTANCES or an ml.* instance type), no unit twice."""
    if not limits:
        raise ClientException("capacityLimits must contain at least one capacity limit")
    if most is not None and len(limits) > most:
        raise ClientException(f"capacityLimits can contain at most {most} capacity limits")
    units: list[str] = []
    for limit in limits:
        unit, capacity = limit.get("capacityUnit"), limit.get("maxCapacity")
        if unit is None or capacity is None:
            raise ClientException("Each capacity limit needs both maxCapacity and capacityUnit")
        if unit != NUM_INSTANCES and not INSTANCE_TYPE.fullmatch(unit):
            raise ClientException(f"capacityUnit {unit} is not supported: use {NUM_INSTANCES} or a SageMaker "
                                  "instance type such as ml.m5.large")
        if capacity < 1:
            raise ClientException(f"maxCapacity of {unit} must be at least 1, got {capacity}")
        if unit in units:
            raise ClientException(f"capacityUnit {unit} appears more than once in capacityLimits")
        units.append(unit)
    return [{"maxCapacity": limit["maxCapacity"], "capacityUnit": limit["capacityUnit"]} for limit in limits]


def _count(ctx: Context, tx: Tx) -> int:
    """The service environments that count against the quota: every one but those whose deletion is due."""
    return sum(1 for _, doc in tx.resources.of_kind(KIND) if not (doc["status"] == DELETING and settled(ctx, doc)))


def create_service_environment(ctx: Context, request: dict) -> dict:
    name = request["serviceEnvironmentName"]
    if not NAME.fullmatch(name):
        raise ClientException(
            "serviceEnvironmentName must be 1-128 characters long and contain only letters, numbers, "
            "hyphens (-) and underscores (_)")
    doc: dict = {
        "serviceEnvironmentName": name,
        "serviceEnvironmentArn": ctx.arn(f"{KIND}/{name}"),
        "serviceEnvironmentType": request["serviceEnvironmentType"],
        "state": request.get("state") or ENABLED,
        "capacityLimits": check_capacity_limits(request["capacityLimits"]),
    }
    tags = validate_tags(request.get("tags"))
    if tags:
        doc["tags"] = tags
    set_status(doc, CREATING, ctx.clock())
    with ctx.store.transaction() as tx:
        existing = service_environment(tx, name)
        if existing is not None:
            if existing["status"] != DELETING or not settled(ctx, existing):
                raise ClientException("Object already exists")
            tx.resources.delete(existing["serviceEnvironmentArn"])  # a due deletion, finished here
        if _count(ctx, tx) >= MAX_SERVICE_ENVIRONMENTS:
            raise ClientException(f"Service environment limit exceeded: an account can have at most "
                                  f"{MAX_SERVICE_ENVIRONMENTS} service environments")
        tx.resources.put(KIND, doc["serviceEnvironmentArn"], name, doc)
    ctx.notify()
    return {"serviceEnvironmentName": name, "serviceEnvironmentArn": doc["serviceEnvironmentArn"]}


def update_service_environment(ctx: Context, request: dict) -> dict:
    ref = request["serviceEnvironment"]
    limits = request.get("capacityLimits")
    if limits is not None:
        limits = check_capacity_limits(limits)
    with ctx.store.transaction() as tx:
        doc = service_environment(tx, ref)
        if doc is None:
            raise ClientException(f"serviceEnvironment {ref} does not exist")
        name = doc["serviceEnvironmentName"]
        if doc["status"] in GOING:
            raise ClientException(f"Cannot update, service environment {name} is being deleted")
        if request.get("state") is not None:
            doc["state"] = request["state"]
        if limits is not None:
            doc["capacityLimits"] = limits
        set_status(doc, UPDATING, ctx.clock())
        tx.resources.put(KIND, doc["serviceEnvironmentArn"], name, doc)
    ctx.notify()
    return {"serviceEnvironmentName": name, "serviceEnvironmentArn": doc["serviceEnvironmentArn"]}


def queues_using(ctx: Context, tx: Tx, service_environment_arn: str) -> bool:
    """Whether a job queue that is not on its way out orders this service environment."""
    return any(service_environment_arn in (e["serviceEnvironment"] for e in queue.get("serviceEnvironmentOrder") or [])
               for _, queue in tx.resources.of_kind(JOB_QUEUE)
               if not queue_deletion_due(ctx, tx, queue))


def delete_service_environment(ctx: Context, request: dict) -> dict:
    ref = request["serviceEnvironment"]
    with ctx.store.transaction() as tx:
        doc = service_environment(tx, ref)
        if doc is None:
            raise ClientException(f"serviceEnvironment {ref} does not exist")
        if not lookup.deletable(ctx, doc, "service environment", doc["serviceEnvironmentName"]):
            return {}
        if queues_using(ctx, tx, doc["serviceEnvironmentArn"]):
            raise ClientException("Cannot delete, found existing JobQueue relationship")
        set_status(doc, DELETING, ctx.clock())
        tx.resources.put(KIND, doc["serviceEnvironmentArn"], doc["serviceEnvironmentName"], doc)
    ctx.notify()
    return {}


def describe_service_environments(ctx: Context, request: dict) -> dict:
    return lookup.describe_page(ctx, request, kind=KIND, member="serviceEnvironments", label="ServiceEnvironments",
                                arn_key="serviceEnvironmentArn", limit_max=MAX_DESCRIBE)


OPERATIONS = {
    "CreateServiceEnvironment": create_service_environment,
    "UpdateServiceEnvironment": update_service_environment,
    "DeleteServiceEnvironment": delete_service_environment,
    "DescribeServiceEnvironments": describe_service_environments,
}
