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
TIMELINE_JOBS = 100  # newest jobs of a queue's timeline
GRAPH_JOBS = 40  # jobs on each side of a dependency graph


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


def timeline(ctx: Context, queue_arn: str, since: int, until: int) -> list[dict]:
    """The TIMELINE_JOBS newest jobs of a queue that were unfinished at some time in [since, until] (of the
    finished ones, among the SCAN_LIMIT newest), newest first, with their history of statuses (the store's
    read: no AWS operation returns it)."""
    with ctx.store.read() as tx:
        return tx.jobs.timeline(queue_arn, since, until, TIMELINE_JOBS, SCAN_LIMIT)


def dependency_graph(ctx: Context, detail: dict) -> tuple[list[dict], list[dict]]:
    """The summaries (jobId, jobName, status, and the edge's type) of the jobs a job depends on and of those
    that depend on it, GRAPH_JOBS at most on each side, read with DescribeJobs."""
    upstream = [(d["jobId"], d.get("type")) for d in detail.get("dependsOn") or [] if d.get("jobId")]
    with ctx.store.read() as tx:
        downstream = tx.dependencies.dependents(detail["jobId"], GRAPH_JOBS)
    edges = upstream[:GRAPH_JOBS] + downstream
    found = {}
    for start in range(0, len(edges), 100):
        ids = [job_id for job_id, _ in edges[start:start + 100]]
        found.update({j["jobId"]: j for j in _plain(jobs.describe_jobs(ctx, {"jobs": ids}))["jobs"]})

    def side(pairs: list[tuple[str, str | None]]) -> list[dict]:
        return [{"jobId": job_id, "jobName": found.get(job_id, {}).get("jobName", job_id),
                 "status": found.get(job_id, {}).get("status"), "type": kind} for job_id, kind in pairs]
    return side(upstream[:GRAPH_JOBS]), side(downstream)


def array_progress(ctx: Context, parent_ids: list[str]) -> dict[str, dict[str, int]]:
    """Array parent id -> {status: number of its children in it}, from the store's one grouped count (ListJobs
    summaries carry no statusSummary)."""
    with ctx.store.read() as tx:
        return tx.arrays.children_by_status(parent_ids)


def capacity_history(ctx: Context, since: int) -> dict[str, list[tuple[int, float, int | None]]]:
    """Compute environment ARN -> samples (epoch ms, vCPUs in use, desiredvCpus) written by the scheduler
    since `since` (with the one before), oldest first."""
    with ctx.store.read() as tx:
        return tx.capacity_samples.since(since)
