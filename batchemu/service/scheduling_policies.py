"""Scheduling policies (fair-share or quota-share): create, describe, list, update and delete."""

from __future__ import annotations

import re

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model.resources import JOB_QUEUE, SCHEDULING_POLICY
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.service.tags import validate_tags

KIND = SCHEDULING_POLICY
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
SHARE_IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9]{1,255}\*?")
MAX_SHARE_DECAY_SECONDS = 604800
MAX_COMPUTE_RESERVATION = 99
MAX_SHARE_IDENTIFIERS = 500
WEIGHT_FACTOR_RANGE = (0.0001, 999.9999)
MAX_DESCRIBE = 100


def check_share_identifier(identifier: str) -> str:
    """A share identifier as a fair-share policy and SubmitJob take it: up to 255 letters and numbers, optionally
    followed by an asterisk."""
    if not SHARE_IDENTIFIER_PATTERN.fullmatch(identifier):
        raise ClientException(f"Invalid shareIdentifier {identifier}: up to 255 letters and numbers, optionally "
                              "followed by an asterisk (*)")
    return identifier


def _check_fairshare(policy: dict) -> dict:
    decay = policy.get("shareDecaySeconds")
    if decay is not None and not 0 <= decay <= MAX_SHARE_DECAY_SECONDS:
        raise ClientException(f"shareDecaySeconds must be between 0 and {MAX_SHARE_DECAY_SECONDS}")
    reservation = policy.get("computeReservation")
    if reservation is not None and not 0 <= reservation <= MAX_COMPUTE_RESERVATION:
        raise ClientException(f"computeReservation must be between 0 and {MAX_COMPUTE_RESERVATION}")
    shares = policy.get("shareDistribution") or []
    if len(shares) > MAX_SHARE_IDENTIFIERS:
        raise ClientException(f"shareDistribution can contain at most {MAX_SHARE_IDENTIFIERS} share identifiers")
    identifiers = []
    for share in shares:
        identifier = check_share_identifier(share["shareIdentifier"])
        weight = share.get("weightFactor")
        if weight is not None and not WEIGHT_FACTOR_RANGE[0] <= weight <= WEIGHT_FACTOR_RANGE[1]:
            raise ClientException(f"weightFactor of {identifier} must be between {WEIGHT_FACTOR_RANGE[0]} and "
                                  f"{WEIGHT_FACTOR_RANGE[1]}")
        identifiers.append(identifier)
    for i, first in enumerate(identifiers):
        for second in identifiers[i + 1:]:
            if _overlap(first, second):
                raise ClientException(f"Share identifiers {first} and {second} overlap")
    return {k: v for k, v in policy.items() if v is not None}


def _overlap(first: str, second: str) -> bool:
    """Whether two share identifiers (exact or prefix*) can match the same share."""
    if first == second:
        return True
    for a, b in ((first, second), (second, first)):
        if a.endswith("*") and b.rstrip("*").startswith(a[:-1]):
            return True
    return False


def _policy_fields(request: dict) -> dict:
    if request.get("fairsharePolicy") is not None and request.get("quotaSharePolicy") is not None:
        raise ClientException("Only one of fairsharePolicy or quotaSharePolicy can be set")
    fields = {}
    if request.get("fairsharePolicy") is not None:
        fields["fairsharePolicy"] = _check_fairshare(request["fairsharePolicy"])
    if request.get("quotaSharePolicy") is not None:
        fields["quotaSharePolicy"] = dict(request["quotaSharePolicy"])
    return fields


def create_scheduling_policy(ctx: Context, request: dict) -> dict:
    name = request["name"]
    if not NAME_PATTERN.fullmatch(name):
        raise ClientException(f"Provided name {name} is not supported pattern[a-zA-Z_0-9-]{{1,128}}")
    doc = {"name": name, "arn": ctx.arn(f"{KIND}/{name}"), **_policy_fields(request)}
    tags = validate_tags(request.get("tags"))
    if tags:
        doc["tags"] = tags
    with ctx.store.transaction() as tx:
        if tx.resources.get(KIND, doc["arn"]) is not None:
            raise ClientException(f"Scheduling policy {name} already exists")
        tx.resources.put(KIND, doc["arn"], name, doc)
    return {"name": name, "arn": doc["arn"]}


def describe_scheduling_policies(ctx: Context, request: dict) -> dict:
    if len(request["arns"]) > MAX_DESCRIBE:
        raise ClientException(f"arns can contain at most {MAX_DESCRIBE} scheduling policy ARNs")
    with ctx.store.transaction() as tx:
        docs = [tx.resources.get(KIND, arn) for arn in dict.fromkeys(request["arns"])]
    return {"schedulingPolicies": [doc for doc in docs if doc is not None]}


def list_scheduling_policies(ctx: Context, request: dict) -> dict:
    size = page_size(request.get("maxResults"), default=100, limit=100)
    after = decode_token(request.get("nextToken"))
    with ctx.store.transaction() as tx:
        rows = tx.resources.of_kind(KIND, after, size + 1)
    page = rows[:size]
    result: dict = {"schedulingPolicies": [{"arn": doc["arn"]} for _, doc in page]}
    if len(rows) > size:
        result["nextToken"] = encode_token(page[-1][0])
    return result


def update_scheduling_policy(ctx: Context, request: dict) -> dict:
    arn = request["arn"]
    fields = _policy_fields(request)
    with ctx.store.transaction() as tx:
        doc = tx.resources.get(KIND, arn)
        if doc is None:
            raise ClientException(f"Scheduling policy {arn} does not exist")
        for kind, other in (("fairsharePolicy", "quotaSharePolicy"), ("quotaSharePolicy", "fairsharePolicy")):
            if kind in fields and other in doc:
                raise ClientException(f"A {other} can't be changed to a {kind}")
        doc.update(fields)
        tx.resources.put(KIND, arn, doc["name"], doc)
    ctx.notify()
    return {}


def delete_scheduling_policy(ctx: Context, request: dict) -> dict:
    arn = request["arn"]
    with ctx.store.transaction() as tx:
        if tx.resources.get(KIND, arn) is None:
            raise ClientException(f"Scheduling policy {arn} does not exist")
        if any(queue.get("schedulingPolicyArn") == arn for _, queue in tx.resources.of_kind(JOB_QUEUE)):
            raise ClientException("Cannot delete, found existing JobQueue relationship")
        tx.resources.delete(arn)
    return {}


OPERATIONS = {
    "CreateSchedulingPolicy": create_scheduling_policy,
    "DescribeSchedulingPolicies": describe_scheduling_policies,
    "ListSchedulingPolicies": list_scheduling_policies,
    "UpdateSchedulingPolicy": update_scheduling_policy,
    "DeleteSchedulingPolicy": delete_scheduling_policy,
}
