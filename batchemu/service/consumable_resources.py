"""Consumable resources: create, describe, update, delete, list, and the jobs that require one.

`inUseQuantity` is kept on the resource document; the scheduler moves it (batchemu.model.consumables).
"""

from __future__ import annotations

import hashlib
import json
import re

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model.consumables import available, save
from batchemu.model.resources import CONSUMABLE_RESOURCE
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

KIND = CONSUMABLE_RESOURCE
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
RESOURCE_TYPES = ("REPLENISHABLE", "NON_REPLENISHABLE")
OPERATIONS_ALLOWED = ("SET", "ADD", "REMOVE")
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
CLIENT_TOKEN_TTL_MS = 8 * 3600 * 1000
MAX_CONSUMABLE_RESOURCES = 50_000  # per account (user guide, "AWS Batch service quotas")
SUMMARY_FIELDS = ("consumableResourceArn", "consumableResourceName", "totalQuantity", "inUseQuantity",
                  "resourceType")


def find(tx: Tx, ctx: Context, ref: str) -> dict | None:
    """The consumable resource named by name or ARN, or None."""
    arn = ref if ref.startswith("arn:") else ctx.arn(f"{KIND}/{ref}")
    return tx.resources.get(KIND, arn)


def held_quantities(tx: Tx, ctx: Context, properties: dict | None) -> dict[str, int]:
    """resource ARN -> quantity of a consumableResourceProperties (a job definition's, or SubmitJob's override):
    each requirement names an existing resource and a quantity of at least 1, at both operations alike."""
    held: dict[str, int] = {}
    for requirement in (properties or {}).get("consumableResourceList") or []:
        ref = requirement.get("consumableResource")
        resource = find(tx, ctx, ref) if ref else None
        if resource is None:
            raise ClientException(f"Consumable resource {ref} does not exist")
        quantity = requirement.get("quantity")
        if quantity is None or quantity < 1:
            raise ClientException(f"Quantity of consumable resource {ref} must be at least 1")
        arn = resource["consumableResourceArn"]
        held[arn] = held.get(arn, 0) + quantity
    return held


def _get(tx: Tx, ctx: Context, ref: str) -> dict:
    doc = find(tx, ctx, ref)
    if doc is None:
        raise ClientException(f"Consumable resource {ref} does not exist")
    return doc


def create_consumable_resource(ctx: Context, request: dict) -> dict:
    name = request["consumableResourceName"]
    if not NAME_PATTERN.fullmatch(name):
        raise ClientException(f"Provided name {name} is not supported pattern[a-zA-Z_0-9-]{{1,128}}")
    total = request.get("totalQuantity", 0)
    if total < 0:
        raise ClientException("totalQuantity must be non-negative")
    resource_type = request.get("resourceType", "REPLENISHABLE")
    if resource_type not in RESOURCE_TYPES:
        raise ClientException(f"resourceType must be one of {', '.join(RESOURCE_TYPES)}")
    tags = validate_tags(request.get("tags"))
    arn = ctx.arn(f"{KIND}/{name}")
    with ctx.store.transaction() as tx:
        if tx.resources.get(KIND, arn) is not None:
            raise ClientException(f"Consumable resource {name} already exists")
        if tx.resources.count(KIND) >= MAX_CONSUMABLE_RESOURCES:
            raise ClientException(f"Consumable resource limit exceeded: an account can have at most "
                                  f"{MAX_CONSUMABLE_RESOURCES} consumable resources")
        doc = {"consumableResourceName": name, "consumableResourceArn": arn, "totalQuantity": total,
               "inUseQuantity": 0, "resourceType": resource_type, "createdAt": ctx.clock()}
        if tags:
            doc["tags"] = tags
        save(tx, doc)
    ctx.notify()
    return {"consumableResourceName": name, "consumableResourceArn": arn}


def describe_consumable_resource(ctx: Context, request: dict) -> dict:
    with ctx.store.transaction() as tx:
        doc = _get(tx, ctx, request["consumableResource"])
    return {**doc, "availableQuantity": available(doc)}


def _payload_hash(request: dict) -> str:
    payload = {k: request.get(k) for k in ("operation", "quantity")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def update_consumable_resource(ctx: Context, request: dict) -> dict:
    operation = request.get("operation", "SET")
    if operation not in OPERATIONS_ALLOWED:
        raise ClientException(f"operation must be one of {', '.join(OPERATIONS_ALLOWED)}")
    quantity = request.get("quantity")
    if quantity is None:
        raise ClientException("quantity must be specified")
    if quantity < 0:
        raise ClientException("quantity must be non-negative")
    token = request.get("clientToken")
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        doc = _get(tx, ctx, request["consumableResource"])
        tokens = {t: v for t, v in (doc.get("_clientTokens") or {}).items() if v["expiresAt"] > now}
        if token is not None and token in tokens:
            if tokens[token]["payload"] != _payload_hash(request):
                raise ClientException(f"clientToken {token} was already used with a different request")
            total = tokens[token]["totalQuantity"]
        else:
            total = {"SET": quantity, "ADD": doc["totalQuantity"] + quantity,
                     "REMOVE": doc["totalQuantity"] - quantity}[operation]
            if total < 0:
                raise ClientException(f"Cannot remove {quantity} from consumable resource "
                                      f"{doc['consumableResourceName']}: totalQuantity is {doc['totalQuantity']}")
            doc["totalQuantity"] = total
            if token is not None:
                tokens[token] = {"payload": _payload_hash(request), "totalQuantity": total,
                                 "expiresAt": now + CLIENT_TOKEN_TTL_MS}
        doc["_clientTokens"] = tokens
        save(tx, doc)
    ctx.notify()
    return {"consumableResourceName": doc["consumableResourceName"],
            "consumableResourceArn": doc["consumableResourceArn"], "totalQuantity": total}


def delete_consumable_resource(ctx: Context, request: dict) -> dict:
    with ctx.store.transaction() as tx:
        doc = _get(tx, ctx, request["consumableResource"])
        tx.resources.delete(doc["consumableResourceArn"])
    ctx.notify()
    return {}


def _name_matcher(values: list[str]):
    """Case-insensitive equality, or prefix match when a value ends with '*'."""
    lowered = [v.lower() for v in values]

    def matches(name: str) -> bool:
        name = name.lower()
        return any(name.startswith(v[:-1]) if v.endswith("*") else name == v for v in lowered)
    return matches


def list_consumable_resources(ctx: Context, request: dict) -> dict:
    size = page_size(request.get("maxResults"), default=100, limit=100)
    after = decode_token(request.get("nextToken"))
    checks = []
    for entry in request.get("filters") or []:
        if entry.get("name") != "CONSUMABLE_RESOURCE_NAME":
            raise ClientException(f"Invalid filter name {entry.get('name')}; supported: CONSUMABLE_RESOURCE_NAME")
        checks.append(_name_matcher(entry.get("values") or []))
    with ctx.store.transaction() as tx:
        rows = [(seq, doc) for seq, doc in tx.resources.of_kind(KIND, after)
                if all(check(doc["consumableResourceName"]) for check in checks)]
    page = rows[:size]
    result: dict = {"consumableResources": [{k: doc[k] for k in SUMMARY_FIELDS} for _, doc in page]}
    if len(rows) > size:
        result["nextToken"] = encode_token(page[-1][0])
    return result


def _required_quantity(job: dict, arn: str, name: str) -> int | None:
    """How much of the resource a job (DescribeJobs wire form) requires, or None if it requires none."""
    entries = [e for e in (job.get("consumableResourceProperties") or {}).get("consumableResourceList") or []
               if e.get("consumableResource") in (arn, name)]
    return sum(e.get("quantity") or 0 for e in entries) if entries else None


def list_jobs_by_consumable_resource(ctx: Context, request: dict) -> dict:
    size = page_size(request.get("maxResults"), default=100, limit=100)
    after = decode_token(request.get("nextToken"))
    statuses: list[str] = []
    name_checks = []
    for entry in request.get("filters") or []:
        values = entry.get("values") or []
        if entry.get("name") == "JOB_STATUS":
            bad = [v for v in values if v not in JOB_STATUSES]
            if bad:
                raise ClientException(f"Invalid JOB_STATUS filter value {bad[0]}")
            statuses.extend(values)
        elif entry.get("name") == "JOB_NAME":
            name_checks.append(_name_matcher(values))
        else:
            raise ClientException(f"Invalid filter name {entry.get('name')}; supported: JOB_STATUS, JOB_NAME")
    summaries: list[tuple[int, dict]] = []
    with ctx.store.transaction() as tx:
        resource = _get(tx, ctx, request["consumableResource"])
        arn, name = resource["consumableResourceArn"], resource["consumableResourceName"]
        cursor = after
        while len(summaries) <= size:
            chunk = tx.jobs.query({}, statuses=statuses or None, after_seq=cursor, limit=500)
            for seq, job in chunk:
                quantity = _required_quantity(job, arn, name)
                if quantity is None or not all(check(job["jobName"]) for check in name_checks):
                    continue
                summaries.append((seq, {
                    "jobArn": job.get("jobArn"), "jobQueueArn": job.get("jobQueue"), "jobName": job["jobName"],
                    "jobDefinitionArn": job.get("jobDefinition"), "shareIdentifier": job.get("shareIdentifier"),
                    "jobStatus": job["status"], "quantity": quantity, "statusReason": job.get("statusReason"),
                    "startedAt": job.get("startedAt"), "createdAt": job["createdAt"],
                    "consumableResourceProperties": job["consumableResourceProperties"]}))
            if len(chunk) < 500:
                break
            cursor = chunk[-1][0]
    page = summaries[:size]
    result: dict = {"jobs": [summary for _, summary in page]}
    if len(summaries) > size:
        result["nextToken"] = encode_token(page[-1][0])
    return result


OPERATIONS = {
    "CreateConsumableResource": create_consumable_resource,
    "DescribeConsumableResource": describe_consumable_resource,
    "UpdateConsumableResource": update_consumable_resource,
    "DeleteConsumableResource": delete_consumable_resource,
    "ListConsumableResources": list_consumable_resources,
    "ListJobsByConsumableResource": list_jobs_by_consumable_resource,
}
