"""TagResource, UntagResource and ListTagsForResource on every taggable Batch resource.

Tags live in each resource document under "tags": resources in the resources table (compute
environments, job queues, job definition revisions, scheduling policies, consumable resources, service
environments, quota shares), jobs and service jobs.
`validate_tags` is the check every create operation that accepts `tags` runs.
"""

from __future__ import annotations

import re

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.store import Tx

MAX_TAGS = 50
RESERVED_PREFIX = "aws:"
JOB, SERVICE_JOB = "job", "service-job"  # the kinds of the ARNs kept outside the resources table
ARN_PATTERN = re.compile(r"arn:(aws[a-zA-Z-]*):batch:([a-z0-9-]+):(\d{12}):([a-z-]+)/(.+)")


def validate_tags(tags: dict | None) -> dict:
    """The tags of a create request, checked as AWS checks them (at most 50, no aws: prefix on keys or values)."""
    if not tags:
        return {}
    if len(tags) > MAX_TAGS:
        raise ClientException(f"Number of tags exceeds the limit of {MAX_TAGS}")
    _refuse_reserved(tags)
    _refuse_reserved_values(tags)
    return dict(tags)


def _refuse_reserved(keys) -> None:
    for key in keys:
        if key.lower().startswith(RESERVED_PREFIX):
            raise ClientException(f"Tag keys prefixed with '{RESERVED_PREFIX}' are reserved for AWS use: {key}")


def _refuse_reserved_values(tags: dict) -> None:
    """The tag restrictions page reserves the aws: prefix "for either keys or values"."""
    for key, value in tags.items():
        if value.lower().startswith(RESERVED_PREFIX):
            raise ClientException(f"Tag values prefixed with '{RESERVED_PREFIX}' are reserved for AWS use: "
                                  f"{key}={value}")


def _load(tx: Tx, ctx: Context, arn: str) -> tuple[str, dict]:
    """(resource kind, or JOB or SERVICE_JOB, and document) of the resource `arn` names."""
    match = ARN_PATTERN.fullmatch(arn)
    if match is None:
        raise ClientException(f"Invalid resource ARN: {arn}")
    kind = tx.resources.kind(arn)
    if kind is not None:
        doc = tx.resources.get(kind, arn)
        if doc is not None:
            return kind, doc
    resource_type, resource_id = match.group(4), match.group(5)
    if resource_type == JOB and arn == ctx.arn(f"{JOB}/{resource_id}"):
        if ":" in resource_id or "#" in resource_id:
            raise ClientException(f"Tagging is not supported for child jobs of array and multi-node parallel "
                                  f"jobs: {arn}")
        job = tx.jobs.get(resource_id)
        if job is not None:
            return JOB, job
    if resource_type == SERVICE_JOB and arn == ctx.arn(f"{SERVICE_JOB}/{resource_id}"):
        service_job = tx.service_jobs.get(resource_id)
        if service_job is not None:
            return SERVICE_JOB, service_job
    raise ClientException(f"Resource {arn} not found")


def _save(tx: Tx, kind: str, arn: str, doc: dict) -> None:
    if kind == JOB:
        tx.jobs.update(doc)
    elif kind == SERVICE_JOB:
        tx.service_jobs.update(doc)
    else:
        name = doc.get("jobDefinitionName") or doc.get("consumableResourceName") or \
            doc.get("computeEnvironmentName") or doc.get("jobQueueName") or doc.get("serviceEnvironmentName") or \
            doc.get("quotaShareName") or doc.get("name") or arn
        tx.resources.put(kind, arn, name, doc)


def tag_resource(ctx: Context, request: dict) -> dict:
    arn, tags = request["resourceArn"], request["tags"]
    _refuse_reserved(tags)
    _refuse_reserved_values(tags)
    with ctx.store.transaction() as tx:
        kind, doc = _load(tx, ctx, arn)
        merged = {**(doc.get("tags") or {}), **tags}
        if len(merged) > MAX_TAGS:
            raise ClientException(f"Number of tags exceeds the limit of {MAX_TAGS}")
        doc["tags"] = merged
        _save(tx, kind, arn, doc)
    return {}


def untag_resource(ctx: Context, request: dict) -> dict:
    arn, keys = request["resourceArn"], request["tagKeys"]
    _refuse_reserved(keys)
    with ctx.store.transaction() as tx:
        kind, doc = _load(tx, ctx, arn)
        remaining = {k: v for k, v in (doc.get("tags") or {}).items() if k not in set(keys)}
        if remaining:
            doc["tags"] = remaining
        else:
            doc.pop("tags", None)
        _save(tx, kind, arn, doc)
    return {}


def list_tags_for_resource(ctx: Context, request: dict) -> dict:
    with ctx.store.transaction() as tx:
        _, doc = _load(tx, ctx, request["resourceArn"])
    return {"tags": doc.get("tags") or {}}


OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
