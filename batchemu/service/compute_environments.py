"""Compute environments: Create/Update/Delete/DescribeComputeEnvironments and their status lifecycle.

A stored compute environment is its DescribeComputeEnvironments `ComputeEnvironmentDetail` in wire form,
plus our bookkeeping under "batchemu" (which the output shape drops). Handlers set CREATING, UPDATING or
DELETING; the scheduler (scheduler/resource_status.py) moves them on to VALID or out of the store.
"""

from __future__ import annotations

import re
import uuid

from batchemu.context import Context
from batchemu.errors import ClientException, NotBuiltError
from batchemu.model.compute_capacity import EC2_TYPES, FARGATE_TYPES, is_fargate
from batchemu.model.resources import (
    COMPUTE_ENVIRONMENT,
    CREATING,
    DELETING,
    ENABLED,
    GOING,
    UPDATING,
    set_status,
    settled,
)
from batchemu.service import compute_checks, lookup
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

KIND = COMPUTE_ENVIRONMENT
NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_DESCRIBE = 100
# ComputeResource members AWS documents as "isn't applicable to jobs that are running on Fargate
# resources. Don't specify it."
NOT_FOR_FARGATE = ("allocationStrategy", "minvCpus", "desiredvCpus", "instanceTypes", "imageId", "ec2KeyPair",
                   "instanceRole", "tags", "placementGroup", "bidPercentage", "spotIamFleetRole",
                   "launchTemplate", "ec2Configuration", "scalingPolicy")
DEFAULT_UPDATE_POLICY = {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 30}
SCALE_DOWN_DELAY_MINUTES = (20, 10080)  # scalingPolicy.minScaleDownDelayMinutes; 0 unsets it
MANUAL_SCALE_DOWN = ("Manually scaling down compute environment is not supported. Disconnecting job queues from "
                     "compute environment will cause it to scale-down to minvCpus.")


def compute_environment(tx: Tx, name_or_arn: str) -> dict | None:
    """The stored compute environment (ComputeEnvironmentDetail wire form) named or ARN'd, or None."""
    return lookup.find(tx, KIND, name_or_arn)


def _service_linked_role(ctx: Context) -> str:
    return (f"arn:aws:iam::{ctx.config.account_id}:role/aws-service-role/batch.amazonaws.com/"
            "AWSServiceRoleForBatch")


def _check_vcpus(resources: dict) -> None:
    low, high = resources.get("minvCpus", 0), resources["maxvCpus"]
    if low < 0 or high < 0:
        raise ClientException("minvCpus and maxvCpus must not be negative")
    if low > high:
        raise ClientException(f"minvCpus ({low}) must be less than or equal to maxvCpus ({high})")
    desired = resources.get("desiredvCpus")
    if desired is not None and not low <= desired <= high:
        raise ClientException(
            f"desiredvCpus ({desired}) must be between minvCpus ({low}) and maxvCpus ({high})")
    delay = (resources.get("scalingPolicy") or {}).get("minScaleDownDelayMinutes") or 0
    shortest, longest = SCALE_DOWN_DELAY_MINUTES
    if delay and not shortest <= delay <= longest:
        raise ClientException(f"scalingPolicy.minScaleDownDelayMinutes ({delay}) must be between {shortest} and "
                              f"{longest}, or 0 to unset it")


def _check_fargate_members(cr_type: str, resources: dict) -> None:
    if cr_type in FARGATE_TYPES:
        for member in NOT_FOR_FARGATE:
            if member in resources:
                raise ClientException(
                    f"computeResources.{member} is not applicable to {cr_type} compute environments")


def _managed_resources(given: dict, eks: bool) -> dict:
    cr_type = given["type"]
    if cr_type not in FARGATE_TYPES + EC2_TYPES:
        raise NotBuiltError(f"CreateComputeEnvironment with computeResources.type {cr_type}")
    if eks and cr_type in FARGATE_TYPES:
        raise ClientException("Amazon EKS compute environments support only EC2 and SPOT compute resources")
    _check_fargate_members(cr_type, given)
    compute_checks.check_resources(given, eks=eks)
    resources = dict(given)
    if cr_type in EC2_TYPES:
        # AWS fills these in: minvCpus 0, desiredvCpus from minvCpus, allocationStrategy BEST_FIT.
        resources.setdefault("minvCpus", 0)
        resources.setdefault("desiredvCpus", resources["minvCpus"])
        resources.setdefault("allocationStrategy", "BEST_FIT")
        resources.setdefault("ec2Configuration", [{"imageType": "EKS_AL2023" if eks else "ECS_AL2023"}])
    _check_vcpus(resources)
    return resources


def create_compute_environment(ctx: Context, request: dict) -> dict:
    name = request["computeEnvironmentName"]
    if not NAME.fullmatch(name):
        raise ClientException(
            "computeEnvironmentName must be 1-128 characters long and contain only letters, numbers, "
            "hyphens (-) and underscores (_)")
    ce_type = request["type"]
    eks = request.get("eksConfiguration")
    doc: dict = {
        "computeEnvironmentName": name,
        "computeEnvironmentArn": ctx.arn(f"{KIND}/{name}"),
        "tags": validate_tags(request.get("tags")),
        "type": ce_type,
        "state": request.get("state") or ENABLED,
        "serviceRole": request.get("serviceRole") or _service_linked_role(ctx),
        "updatePolicy": dict(DEFAULT_UPDATE_POLICY),
        "containerOrchestrationType": "EKS" if eks else "ECS",
        "uuid": str(uuid.uuid4()),
    }
    if ce_type == "MANAGED":
        if request.get("computeResources") is None:
            raise ClientException("computeResources must be specified for a MANAGED compute environment")
        if request.get("unmanagedvCpus") is not None:
            raise ClientException("unmanagedvCpus can only be specified for an UNMANAGED compute environment")
        doc["computeResources"] = _managed_resources(request["computeResources"], bool(eks))
    else:
        if request.get("computeResources") is not None:
            raise ClientException("computeResources can't be specified for an UNMANAGED compute environment")
        unmanaged = request.get("unmanagedvCpus")
        if unmanaged is not None:
            if unmanaged < 0:
                raise ClientException("unmanagedvCpus must not be negative")
            doc["unmanagedvCpus"] = unmanaged
    if eks:
        doc["eksConfiguration"] = eks
    else:
        doc["ecsClusterArn"] = (f"arn:aws:ecs:{ctx.config.region}:{ctx.config.account_id}:cluster/"
                                f"{name}_Batch_{uuid.uuid4()}")
    for member in ("context", "ecsSettings"):
        if request.get(member) is not None:
            doc[member] = request[member]
    set_status(doc, CREATING, ctx.clock())
    with ctx.store.transaction() as tx:
        if eks:
            compute_checks.check_eks_configuration(eks, sum(
                1 for _, other in tx.resources.of_kind(KIND)
                if (other.get("eksConfiguration") or {}).get("eksClusterArn") == eks["eksClusterArn"]
                and other["computeEnvironmentName"] != name and other["status"] not in GOING))
        existing = compute_environment(tx, name)
        if existing is not None:
            if existing["status"] != DELETING or not settled(ctx, existing):
                raise ClientException("Object already exists")
            tx.resources.delete(existing["computeEnvironmentArn"])  # a due deletion, finished here
        tx.resources.put(KIND, doc["computeEnvironmentArn"], name, doc)
    ctx.notify()
    return {"computeEnvironmentName": name, "computeEnvironmentArn": doc["computeEnvironmentArn"]}


def _update_resources(current: dict, update: dict, *, eks: bool) -> dict:
    cr_type = update.get("type", current["type"])
    if (cr_type in FARGATE_TYPES) != (current["type"] in FARGATE_TYPES):
        raise ClientException(
            f"computeResources.type can't change from {current['type']} to {cr_type}: Fargate and EC2 "
            "compute environments can't be converted into each other")
    _check_fargate_members(cr_type, update)
    update = compute_checks.check_update(current, update, eks=eks)
    merged = compute_checks.merge_update(current, update)
    if cr_type in EC2_TYPES:
        desired = update.get("desiredvCpus")
        if desired is not None and desired < current.get("desiredvCpus", 0):
            raise ClientException(MANUAL_SCALE_DOWN)
        if desired is None:
            # Batch keeps desiredvCpus inside the new [minvCpus, maxvCpus].
            merged["desiredvCpus"] = min(max(merged.get("desiredvCpus", 0), merged.get("minvCpus", 0)),
                                         merged["maxvCpus"])
    _check_vcpus(merged)
    return merged


def update_compute_environment(ctx: Context, request: dict) -> dict:
    ref = request["computeEnvironment"]
    with ctx.store.transaction() as tx:
        doc = compute_environment(tx, ref)
        if doc is None:
            raise ClientException(f"computeEnvironment {ref} does not exist")
        name = doc["computeEnvironmentName"]
        if doc["status"] in GOING:
            raise ClientException(f"Cannot update, compute environment {name} is being deleted")
        if request.get("state") is not None:
            doc["state"] = request["state"]
        if request.get("unmanagedvCpus") is not None:
            if doc["type"] != "UNMANAGED":
                raise ClientException("unmanagedvCpus can only be specified for an UNMANAGED compute environment")
            if request["unmanagedvCpus"] < 0:
                raise ClientException("unmanagedvCpus must not be negative")
            doc["unmanagedvCpus"] = request["unmanagedvCpus"]
        if request.get("computeResources") is not None:
            if doc["type"] != "MANAGED":
                raise ClientException("computeResources can't be specified for an UNMANAGED compute environment")
            doc["computeResources"] = _update_resources(doc["computeResources"], request["computeResources"],
                                                        eks="eksConfiguration" in doc)
        # API_UpdatePolicy: Batch ignores an updatePolicy given for a Fargate compute environment.
        if request.get("updatePolicy") is not None and not is_fargate(doc):
            doc["updatePolicy"] = {**doc.get("updatePolicy", {}), **request["updatePolicy"]}
        if request.get("eksConfiguration") is not None:
            if "eksConfiguration" not in doc:
                raise ClientException(f"Compute environment {name} is not an Amazon EKS compute environment")
            doc["eksConfiguration"] = {**doc["eksConfiguration"], **request["eksConfiguration"]}
        if request.get("serviceRole") is not None:
            compute_checks.check_service_role_change(doc["serviceRole"], request["serviceRole"])
        for member in ("serviceRole", "context", "ecsSettings"):
            if request.get(member) is not None:
                doc[member] = request[member]
        set_status(doc, UPDATING, ctx.clock())
        tx.resources.put(KIND, doc["computeEnvironmentArn"], name, doc)
    ctx.notify()
    return {"computeEnvironmentName": name, "computeEnvironmentArn": doc["computeEnvironmentArn"]}


def delete_compute_environment(ctx: Context, request: dict) -> dict:
    ref = request["computeEnvironment"]
    with ctx.store.transaction() as tx:
        doc = compute_environment(tx, ref)
        if doc is None:
            raise ClientException(f"computeEnvironment {ref} does not exist")
        if not lookup.deletable(ctx, doc, "compute environment", doc["computeEnvironmentName"]):
            return {}
        if lookup.queues_using(ctx, tx, doc["computeEnvironmentArn"]):
            raise ClientException("Cannot delete, found existing JobQueue relationship")
        set_status(doc, DELETING, ctx.clock())
        tx.resources.put(KIND, doc["computeEnvironmentArn"], doc["computeEnvironmentName"], doc)
    ctx.notify()
    return {}


def describe_compute_environments(ctx: Context, request: dict) -> dict:
    return lookup.describe_page(ctx, request, kind=KIND, member="computeEnvironments",
                                label="ComputeEnvironments", arn_key="computeEnvironmentArn", limit_max=MAX_DESCRIBE)


OPERATIONS = {
    "CreateComputeEnvironment": create_compute_environment,
    "UpdateComputeEnvironment": update_compute_environment,
    "DeleteComputeEnvironment": delete_compute_environment,
    "DescribeComputeEnvironments": describe_compute_environments,
}
