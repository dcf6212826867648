"""The rules of a compute environment's members that the API reference states in words (API_ComputeResource,
API_ComputeResourceUpdate, API_EksConfiguration, API_UpdateComputeEnvironment), checked before a
CreateComputeEnvironment or UpdateComputeEnvironment request changes anything.

Each refusal is a ClientException in AWS's style; batchemu/model/documented_rules/resource_rules.py lists the
rules with their sources."""

from __future__ import annotations

import re

from batchemu.errors import ClientException
from batchemu.model.compute_capacity import FARGATE_TYPES

FARGATE_MAX_SUBNETS = 16
FARGATE_MAX_SECURITY_GROUPS = 5
MAX_LAUNCH_TEMPLATE_OVERRIDES = 10
MAX_EC2_CONFIGURATIONS = 2
MAX_COMPUTE_ENVIRONMENTS_PER_EKS_CLUSTER = 5
# Allocation strategies API_ComputeResource documents as available to one type of compute resources only.
ONLY_FOR = {"BEST_FIT_PROGRESSIVE_ORDERED": "EC2", "SPOT_CAPACITY_OPTIMIZED": "SPOT",
            "SPOT_PRICE_CAPACITY_OPTIMIZED": "SPOT", "SPOT_CAPACITY_OPTIMIZED_PRIORITIZED": "SPOT"}
# Members API_ComputeResource documents as valid for ECS_MANAGED_INSTANCES compute environments only.
MANAGED_INSTANCES = "ECS_MANAGED_INSTANCES"
MANAGED_INSTANCES_ONLY = ("managedInstancesProvider", "capacityTags")
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SERVICE_LINKED_ROLE = "/aws-service-role/batch.amazonaws.com/"


def check_resources(resources: dict, *, eks: bool) -> None:
    """The "required when", "only for" and count rules of a new compute environment's computeResources."""
    cr_type = resources["type"]
    for member in MANAGED_INSTANCES_ONLY:
        if member in resources:
            raise ClientException(f"computeResources.{member} is only valid for ECS_MANAGED_INSTANCES compute "
                                  f"environments, not {cr_type}")
    if cr_type in FARGATE_TYPES:
        if not resources.get("securityGroupIds"):
            raise ClientException(f"computeResources.securityGroupIds must contain at least one security group "
                                  f"for a {cr_type} compute environment")
        _check_fargate_network(resources)
        return
    strategy = resources.get("allocationStrategy")
    if eks and strategy is None:
        raise ClientException("computeResources.allocationStrategy is required for Amazon EKS compute environments")
    if cr_type == "SPOT" and strategy in (None, "BEST_FIT") and not resources.get("spotIamFleetRole"):
        raise ClientException("computeResources.spotIamFleetRole is required for a SPOT compute environment with "
                              "the BEST_FIT allocation strategy (the default)")
    _check_strategy(cr_type, strategy)
    _check_launch_template(resources.get("launchTemplate"))
    if len(resources.get("ec2Configuration") or []) > MAX_EC2_CONFIGURATIONS:
        raise ClientException(f"computeResources.ec2Configuration can contain at most {MAX_EC2_CONFIGURATIONS} "
                              "values")


def check_update(current: dict, update: dict, *, eks: bool) -> dict:
    """An UpdateComputeEnvironment computeResources checked against the compute environment's current one, with
    what AWS treats as "no change" left out: a Fargate compute environment's empty subnets or security groups."""
    cr_type = update.get("type", current["type"])
    if MANAGED_INSTANCES in (cr_type, current["type"]) and cr_type != current["type"]:
        raise ClientException(f"computeResources.type can't change from {current['type']} to {cr_type}: the type "
                              f"can't change to or from {MANAGED_INSTANCES}")
    for member in MANAGED_INSTANCES_ONLY:
        if member in update:
            raise ClientException(f"computeResources.{member} is only valid for ECS_MANAGED_INSTANCES compute "
                                  f"environments, not {cr_type}")
    if cr_type in FARGATE_TYPES:
        update = {k: v for k, v in update.items() if not (k in ("subnets", "securityGroupIds") and v == [])}
        _check_fargate_network(update)
        return update
    if eks and "desiredvCpus" in update:
        raise ClientException("computeResources.desiredvCpus can't be updated for Amazon EKS compute environments")
    _check_strategy(cr_type, update.get("allocationStrategy", current.get("allocationStrategy")))
    _check_launch_template(update.get("launchTemplate"))
    if len(update.get("ec2Configuration") or []) > MAX_EC2_CONFIGURATIONS:
        raise ClientException(f"computeResources.ec2Configuration can contain at most {MAX_EC2_CONFIGURATIONS} "
                              "values")
    return update


def merge_update(current: dict, update: dict) -> dict:
    """computeResources after an update: an empty ec2KeyPair or imageId, or a launch template whose id or name is
    empty, removes the member (API_ComputeResourceUpdate); updateToLatestImageVersion is an instruction, not kept."""
    merged = {**current, **{k: v for k, v in update.items() if k != "updateToLatestImageVersion"}}
    for member in ("ec2KeyPair", "imageId"):
        if merged.get(member) == "":
            del merged[member]
    template = update.get("launchTemplate")
    if template is not None and "" in (template.get("launchTemplateId"), template.get("launchTemplateName")):
        del merged["launchTemplate"]
    return merged


def check_service_role_change(current: str, new: str) -> None:
    """A compute environment keeps the kind of service role it was created with (API_UpdateComputeEnvironment)."""
    if (SERVICE_LINKED_ROLE in current) != (SERVICE_LINKED_ROLE in new):
        raise ClientException("serviceRole can't change between the AWSServiceRoleForBatch service-linked role and "
                              "a regular IAM role")


def check_eks_configuration(eks: dict, same_cluster: int) -> None:
    """kubernetesNamespace's documented form, and at most 5 compute environments per Amazon EKS cluster;
    `same_cluster` counts the compute environments already on the cluster."""
    namespace = eks["kubernetesNamespace"]
    if (not namespace or len(namespace) >= 64 or namespace == "default" or namespace.startswith("kube-")
            or not NAMESPACE.fullmatch(namespace)):
        raise ClientException(f"Invalid kubernetesNamespace {namespace}: it must be fewer than 64 characters, "
                              "match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, not be default and not start with kube-")
    if same_cluster >= MAX_COMPUTE_ENVIRONMENTS_PER_EKS_CLUSTER:
        raise ClientException(f"Amazon EKS cluster {eks['eksClusterArn']} already has the maximum of "
                              f"{MAX_COMPUTE_ENVIRONMENTS_PER_EKS_CLUSTER} compute environments")


def _check_fargate_network(resources: dict) -> None:
    if len(resources.get("subnets") or []) > FARGATE_MAX_SUBNETS:
        raise ClientException(f"computeResources.subnets can contain at most {FARGATE_MAX_SUBNETS} subnets for "
                              "Fargate compute resources")
    if len(resources.get("securityGroupIds") or []) > FARGATE_MAX_SECURITY_GROUPS:
        raise ClientException(f"computeResources.securityGroupIds can contain at most {FARGATE_MAX_SECURITY_GROUPS} "
                              "security groups for Fargate compute resources")


def _check_strategy(cr_type: str, strategy: str | None) -> None:
    only = ONLY_FOR.get(strategy or "")
    if only is not None and only != cr_type:
        raise ClientException(f"allocationStrategy {strategy} is only available for {only} compute resources, "
                              f"not {cr_type}")


def _check_launch_template(template: dict | None) -> None:
    if not template:
        return
    for spec in (template, *(template.get("overrides") or [])):
        if spec.get("launchTemplateId") and spec.get("launchTemplateName"):
            raise ClientException("Specify either launchTemplateId or launchTemplateName in a launch template, "
                                  "not both")
    if len(template.get("overrides") or []) > MAX_LAUNCH_TEMPLATE_OVERRIDES:
        raise ClientException(f"launchTemplate.overrides can contain at most {MAX_LAUNCH_TEMPLATE_OVERRIDES} "
                              "launch template overrides")
