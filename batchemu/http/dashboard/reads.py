"""What the dashboard shows, read through the service layer's operation handlers (never SQL of its own).

Each function calls the handlers the AWS API calls, with the server's Context and well-formed requests, and
returns plain dicts in wire form (camelCase keys) for the templates.
"""

from __future__ import annotations

import json
from typing import Any

from batchemu.context import Context
from batchemu.errors import ServiceError
from batchemu.model import states
from batchemu.model.attempts import DEFAULT_LOG_GROUP
from batchemu.protocol.serializer import Serialized
from batchemu.service import cloudwatch_logs, compute_environments, job_listing, job_queues, jobs

STATUSES = (states.SUBMITTED, states.PENDING, states.RUNNABLE, states.STARTING, states.RUNNING,
            states.SUCCEEDED, states.FAILED)
PAGE = 50  # jobs per page of a queue (or of an array's children)
SCAN_LIMIT = 2000  # jobs looked at per page when filtering by status, so a rare status costs bounded work
COUNT_CAP = 10_000  # counts beyond this show as "10000+"
LOG_LINES = 1000  # newest log events shown


class NotFound(Exception):
    """The queue or job a page names does not exist (answered 404)."""


def _plain(result: Any) -> dict:
    return json.loads(result) if isinstance(result, Serialized) else result


def job_queue_list(ctx: Context) -> list[dict]:
    return _describe_all(ctx, job_queues.describe_job_queues, "jobQueues")


def compute_environment_list(ctx: Context) -> list[dict]:
    return _describe_all(ctx, compute_environments.describe_compute_environments, "computeEnvironments")


def _describe_all(ctx: Context, handler, member: str) -> list[dict]:
    items: list[dict] = []
    request: dict = {"maxResults": 100}
    while True:
        page = handler(ctx, request)
        items += page[member]
        if not page.get("nextToken"):
            return items
        request = {"maxResults": 100, "nextToken": page["nextToken"]}


def job_queue(ctx: Context, name: str) -> dict:
    found = job_queues.describe_job_queues(ctx, {"jobQueues": [name]})["jobQueues"]
    if not found:
        raise NotFound(f"Job queue {name} does not exist")
    return found[0]


def vcpus_in_use(ctx: Context) -> dict[str, float]:
    """Compute environment ARN -> vCPUs of its STARTING and RUNNING jobs. No AWS operation reports this, so
    it is the store's own read (the one managed scaling uses), not a handler."""
    with ctx.store.read() as tx:
        return {arn: vcpus for arn, vcpus in tx.capacity.vcpus_in_use().items() if arn}


def status_counts(ctx: Context, scope: dict) -> dict[str, str]:
    """Status -> number of jobs in it (ListJobs of `scope`, e.g. {"jobQueue": arn}), "10000+" past the cap."""
    counts = {}
    for status in STATUSES:
        total, token = 0, None
        while True:
            request = {**scope, "jobStatus": status, "maxResults": 1000}
            if token:
                request["nextToken"] = token
            page = _plain(job_listing.list_jobs(ctx, request))
            total += len(page["jobSummaryList"])
            token = page.get("nextToken")
            if not token or total >= COUNT_CAP:
                break
        counts[status] = f"{total}+" if token else str(total)
    return counts


def job_page(ctx: Context, scope: dict, status: str | None, token: str | None) -> tuple[list[dict], str | None]:
    """Jobs of `scope`, newest first, optionally of one status, and the token of the next page (None on the
    last). ListJobs lists newest first only with a filter, which makes it ignore jobStatus, so the status is
    matched here, over at most SCAN_LIMIT jobs a page. A malformed token raises ClientException."""
    found: list[dict] = []
    scanned = 0
    while True:
        request = {**scope, "maxResults": PAGE, "filters": [{"name": "AFTER_CREATED_AT", "values": ["0"]}]}
        if token:
            request["nextToken"] = token
        page = _plain(job_listing.list_jobs(ctx, request))
        summaries = page["jobSummaryList"]
        scanned += len(summaries)
        found += [job for job in summaries if status is None or job["status"] == status]
        token = page.get("nextToken")
        if not token or len(found) >= PAGE or scanned >= SCAN_LIMIT:
            return found, token


def job(ctx: Context, job_id: str) -> dict:
    found = _plain(jobs.describe_jobs(ctx, {"jobs": [job_id]}))["jobs"]
    if not found:
        raise NotFound(f"Job {job_id} does not exist")
    return found[0]


def log_group(job_detail: dict) -> str:
    """The job's log group: its awslogs-group option, else AWS's default."""
    configuration = (job_detail.get("container") or {}).get("logConfiguration") or {}
    if configuration.get("logDriver", "awslogs") != "awslogs":
        return DEFAULT_LOG_GROUP
    return (configuration.get("options") or {}).get("awslogs-group") or DEFAULT_LOG_GROUP


def log_events(ctx: Context, group: str, stream: str | None) -> list[dict]:
    """The newest LOG_LINES events of a stream, oldest first; none when the stream does not exist (yet)."""
    if not stream:
        return []
    try:
        return cloudwatch_logs.get_log_events(ctx, {"logGroupName": group, "logStreamName": stream,
                                         "limit": LOG_LINES})["events"]
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            return []
        raise
