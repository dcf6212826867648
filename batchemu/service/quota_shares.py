"""Quota shares: virtual queues with their own capacity inside a quota-managed SageMaker Training job
queue (one whose scheduling policy has a quotaSharePolicy). Create/Update/Delete/DescribeQuotaShare and
ListQuotaShares, with the CREATING/UPDATING/DELETING lifecycle that the scheduler finishes
(scheduler/resource_status.py).

A stored quota share is its `DescribeQuotaShare` output in wire form plus "batchemu" bookkeeping. Its ARN,
`job-queue/<queue>/quota-share/<name>`, is our inference: AWS documents none, and names are unique per
queue only. Capacity accounting, borrowing and preemption are the scheduler's (scheduler/service_placement.py).
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
    QUOTA_SHARE,
    SCHEDULING_POLICY,
    TRANSIENT,
    UPDATING,
    VALID,
    set_status,
    settled,
)
from batchemu.service import job_queues, lookup, service_environments
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

KIND = QUOTA_SHARE
NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_PER_QUEUE = 20
MAX_CAPACITY_LIMITS = 5
MAX_LIST = 100
LEND_AND_BORROW = "LEND_AND_BORROW"
UNLIMITED_BORROW = -1


def _quota_share(tx: Tx, arn: str) -> dict:
    doc = tx.resources.get(KIND, arn)
    if doc is None:
        raise ClientException(f"quotaShare {arn} does not exist")
    return doc


def _sharing(config: dict) -> dict:
    """resourceSharingConfiguration as stored: borrowLimit only with LEND_AND_BORROW, default -1."""
    strategy, limit = config["strategy"], config.get("borrowLimit")
    if strategy != LEND_AND_BORROW:
        if limit is not None:
            raise ClientException(f"borrowLimit can only be specified with the {LEND_AND_BORROW} strategy, "
                                  f"not {strategy}")
        return {"strategy": strategy}
    if limit is None:
        limit = UNLIMITED_BORROW
    if limit < UNLIMITED_BORROW:
        raise ClientException(f"borrowLimit must be a percentage of 0 or more, or {UNLIMITED_BORROW} for "
                              f"unlimited borrowing, got {limit}")
    return {"strategy": strategy, "borrowLimit": limit}


def _quota_managed_queue(ctx: Context, tx: Tx, ref: str) -> dict:
    """The VALID, quota-managed job queue a quota share is created in."""
    queue = job_queues.job_queue(tx, ref)
    if queue is None or queue["status"] in GOING:
        raise ClientException(f"jobQueue {ref} does not exist")
    name = queue["jobQueueName"]
    if queue["status"] != VALID and not (queue["status"] in TRANSIENT and settled(ctx, queue)):
        raise ClientException(f"jobQueue {name} must be VALID to have quota shares, it is {queue['status']}")
    policy_arn = queue.get("schedulingPolicyArn")
    policy = tx.resources.get(SCHEDULING_POLICY, policy_arn) if policy_arn else None
    if queue.get("jobQueueType") != job_queues.SAGEMAKER_TRAINING or policy is None or \
            "quotaSharePolicy" not in policy:
        raise ClientException(f"jobQueue {name} is not quota managed: quota shares need a "
                              f"{job_queues.SAGEMAKER_TRAINING} job queue whose scheduling policy has a "
                              "quotaSharePolicy")
    return queue


def _shares_of(tx: Tx, queue_arn: str) -> list[tuple[int, dict]]:
    return [(seq, doc) for seq, doc in tx.resources.of_kind(KIND) if doc["jobQueueArn"] == queue_arn]


def create_quota_share(ctx: Context, request: dict) -> dict:
    name = request["quotaShareName"]
    if not NAME.fullmatch(name):
        raise ClientException(
            "quotaShareName must be 1-128 characters long and contain only letters, numbers, hyphens (-) "
            "and underscores (_)")
    limits = service_environments.check_capacity_limits(request["capacityLimits"], most=MAX_CAPACITY_LIMITS)
    sharing = _sharing(request["resourceSharingConfiguration"])
    tags = validate_tags(request.get("tags"))
    with ctx.store.transaction() as tx:
        queue = _quota_managed_queue(ctx, tx, request["jobQueue"])
        arn = ctx.arn(f"{JOB_QUEUE}/{queue['jobQueueName']}/{KIND}/{name}")
        existing = tx.resources.get(KIND, arn)
        if existing is not None:
            if existing["status"] != DELETING or not settled(ctx, existing):
                raise ClientException("Object already exists")
            tx.resources.delete(arn)  # a due deletion, finished here
        if len(_shares_of(tx, queue["jobQueueArn"])) >= MAX_PER_QUEUE:
            raise ClientException(f"jobQueue {queue['jobQueueName']} already has the maximum of {MAX_PER_QUEUE} "
                                  "quota shares")
        doc: dict = {
            "quotaShareName": name,
            "quotaShareArn": arn,
            "jobQueueArn": queue["jobQueueArn"],
            "capacityLimits": limits,
            "resourceSharingConfiguration": sharing,
            "preemptionConfiguration": {"inSharePreemption":
                                        request["preemptionConfiguration"]["inSharePreemption"]},
            "state": request.get("state") or ENABLED,
        }
        if tags:
            doc["tags"] = tags
        set_status(doc, CREATING, ctx.clock())
        tx.resources.put(KIND, arn, name, doc)
    ctx.notify()
    return {"quotaShareName": name, "quotaShareArn": arn}


def update_quota_share(ctx: Context, request: dict) -> dict:
    arn = request["quotaShareArn"]
    changes: dict = {}
    if request.get("capacityLimits") is not None:
        changes["capacityLimits"] = service_environments.check_capacity_limits(
            request["capacityLimits"], most=MAX_CAPACITY_LIMITS)
    if request.get("resourceSharingConfiguration") is not None:
        changes["resourceSharingConfiguration"] = _sharing(request["resourceSharingConfiguration"])
    if request.get("preemptionConfiguration") is not None:
        changes["preemptionConfiguration"] = {
            "inSharePreemption": request["preemptionConfiguration"]["inSharePreemption"]}
    if request.get("state") is not None:
        changes["state"] = request["state"]
    with ctx.store.transaction() as tx:
        doc = _quota_share(tx, arn)
        if doc["status"] == DELETING:
            raise ClientException(f"Cannot update, quota share {doc['quotaShareName']} is being deleted")
        doc.update(changes)
        set_status(doc, UPDATING, ctx.clock())
        tx.resources.put(KIND, arn, doc["quotaShareName"], doc)
    ctx.notify()
    return {"quotaShareName": doc["quotaShareName"], "quotaShareArn": arn}


def delete_quota_share(ctx: Context, request: dict) -> dict:
    arn = request["quotaShareArn"]
    with ctx.store.transaction() as tx:
        doc = _quota_share(tx, arn)
        if not lookup.deletable(ctx, doc, "quota share", doc["quotaShareName"]):
            return {}
        set_status(doc, DELETING, ctx.clock())
        tx.resources.put(KIND, arn, doc["quotaShareName"], doc)
    ctx.notify()
    return {}


def describe_quota_share(ctx: Context, request: dict) -> dict:
    with ctx.store.transaction() as tx:
        return _quota_share(tx, request["quotaShareArn"])


def list_quota_shares(ctx: Context, request: dict) -> dict:
    size = page_size(request.get("maxResults"), default=MAX_LIST, limit=MAX_LIST)
    after = decode_token(request.get("nextToken"))
    with ctx.store.transaction() as tx:
        queue = job_queues.job_queue(tx, request["jobQueue"])
        if queue is None:
            raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
        rows = [(seq, doc) for seq, doc in _shares_of(tx, queue["jobQueueArn"]) if seq > after][:size + 1]
    page = rows[:size]
    # QuotaShareDetail has no tags: the output shape drops them.
    result: dict = {"quotaShares": [doc for _, doc in page]}
    if len(rows) > size:
        result["nextToken"] = encode_token(page[-1][0])
    return result


OPERATIONS = {
    "CreateQuotaShare": create_quota_share,
    "UpdateQuotaShare": update_quota_share,
    "DeleteQuotaShare": delete_quota_share,
    "DescribeQuotaShare": describe_quota_share,
    "ListQuotaShares": list_quota_shares,
}
