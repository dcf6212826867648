"""ListJobs and GetJobQueueSnapshot: reading jobs by queue, status and filters, a page at a time."""

from __future__ import annotations

import json

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model import states
from batchemu.protocol.serializer import Serialized
from batchemu.service import compute_environments, job_queues
from batchemu.service.pagination import decode_token, encode_token, page_size

FILTERS = ("JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER")
SNAPSHOT_SIZE = 100
# Shares listed in a snapshot's fairshareUtilization.topCapacityUtilization (API_FairshareUtilizationDetail).
TOP_SHARES = 20
# ListJobs pages: up to 1000 jobs, up to 100 when a filter is used (API_ListJobs, maxResults).
MAX_PAGE, MAX_FILTERED_PAGE = 1000, 100


def _epoch_ms(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ClientException(
            f"The value of filter {name} must be a number of milliseconds since the epoch, not {value}") from None


def filter_arguments(filters: list[dict], allowed: tuple[str, ...] = FILTERS) -> dict:
    """Keyword arguments of a store query for a ListJobs (or ListServiceJobs) filter list."""
    if len(filters) > 1:
        raise ClientException("Only one filter can be used at a time")
    if not filters:
        return {}
    name, values = filters[0].get("name"), filters[0].get("values") or []
    if not name:
        raise ClientException(f"A filter needs a name: one of {', '.join(allowed)}")
    if name not in allowed:
        raise ClientException(f"Invalid filter name {name}: must be one of {', '.join(allowed)}")
    if len(values) != 1:
        raise ClientException(f"Filter {name} takes exactly one value")
    value = values[0]
    if name == "JOB_NAME":
        # Case-insensitive, with an optional trailing * wildcard (AWS ListJobs documentation).
        if value.endswith("*"):
            return {"name_prefix": value[:-1].lower()}
        return {"name_equals": value.lower()}
    if name == "JOB_DEFINITION":
        # A name (every revision), name:revision, an ARN, or a name prefix ending in *; not an ARN with *.
        if value.startswith("arn:") and value.endswith("*"):
            raise ClientException("The JOB_DEFINITION filter supports an asterisk (*) only after a job "
                                  "definition name, not after an ARN")
        return {"definition": value}
    if name == "SHARE_IDENTIFIER":
        return {"share": value}
    if name == "QUOTA_SHARE_NAME":
        return {"quota_share": value}
    if name == "BEFORE_CREATED_AT":
        return {"created_before": _epoch_ms(name, value)}
    return {"created_after": _epoch_ms(name, value)}


def list_jobs(ctx: Context, request: dict) -> dict | Serialized:
    scopes = [key for key in ("jobQueue", "arrayJobId", "multiNodeJobId") if request.get(key)]
    if len(scopes) != 1:
        raise ClientException("Exactly one of jobQueue, arrayJobId or multiNodeJobId must be specified")
    limit = page_size(request.get("maxResults"), default=MAX_PAGE, limit=MAX_PAGE)
    if request.get("filters"):
        limit = min(limit, MAX_FILTERED_PAGE)
    after = decode_token(request.get("nextToken"))
    filters = filter_arguments(request.get("filters") or [])
    share = filters.pop("share", None)
    with ctx.store.read() as tx:
        if request.get("jobQueue"):
            queue = job_queues.job_queue(tx, request["jobQueue"])
            if queue is None:
                raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
            # Array children are listed through their parent (arrayJobId), not with the queue's jobs.
            where: dict = {"job_queue_arn": queue["jobQueueArn"], "parent_id": None}
        elif request.get("arrayJobId"):
            array_job = tx.jobs.row(request["arrayJobId"])
            if array_job is None or array_job["array_size"] is None:
                raise ClientException(f"Job {request['arrayJobId']} does not exist or is not an array job")
            where = {"parent_id": array_job["job_id"]}
        else:
            multi_node_job = tx.jobs.get(request["multiNodeJobId"])
            if multi_node_job is None or not multi_node_job.get("nodeProperties"):
                raise ClientException(f"Job {request['multiNodeJobId']} does not exist or is not a multi-node "
                                      "parallel job")
            where = {"parent_id": multi_node_job["jobId"]}
        if share is not None:
            where["share_identifier"] = share
        # With a filter, jobStatus is ignored and the newest jobs come first (AWS ListJobs documentation);
        # SHARE_IDENTIFIER is the one filter that combines with jobStatus.
        statuses = None if filters else [request.get("jobStatus") or states.RUNNING]
        rows = tx.jobs.query(where, statuses=statuses, after_seq=after, limit=limit + 1,
                             descending=bool(filters), summaries=True, **filters)
    page = rows[:limit]
    # Summaries were serialized against JobSummary when stored: join them instead of re-encoding.
    body = '{"jobSummaryList":[' + ",".join(summary for _, summary in page) + "]"
    if len(rows) > limit:
        body += ',"nextToken":' + json.dumps(encode_token(page[-1][0]))
    return Serialized((body + "}").encode())


def _service_queue_snapshot(front, now: int) -> dict:
    """GetJobQueueSnapshot of a SAGEMAKER_TRAINING queue: its RUNNABLE service jobs in dispatch order, and the
    instances its scheduled, starting and running jobs hold; for a quota-managed queue also the first RUNNABLE
    job of each quota share and the instances each share holds, per instance type (API_GetJobQueueSnapshot)."""
    result: dict = {
        "frontOfQueue": {"jobs": [{"jobArn": job.job_arn, "earliestTimeAtPosition": job.entered_at}
                                  for job in front.positions], "lastUpdatedAt": now},
        "queueUtilization": {"totalCapacityUsage": [{"capacityUnit": "NUM_INSTANCES",
                                                     "quantity": float(front.instances_in_use)}],
                             "lastUpdatedAt": now},
    }
    if front.quota_share_heads is None or front.quota_share_instances is None:
        return result
    result["frontOfQuotaShares"] = {"quotaShares": {
        share: [{"jobArn": job.job_arn, "earliestTimeAtPosition": job.entered_at}]
        for share, job in front.quota_share_heads.items()}, "lastUpdatedAt": now}
    by_share: dict[str, list[dict]] = {}
    for (share, instance_type), instances in sorted(front.quota_share_instances.items()):
        by_share.setdefault(share, []).append({"capacityUnit": instance_type, "quantity": float(instances)})
    result["queueUtilization"]["quotaShareUtilization"] = {"topCapacityUtilization": [
        {"quotaShareName": share, "capacityUsage": usage}
        for share, usage in sorted(by_share.items(), key=lambda item: -sum(u["quantity"] for u in item[1]))]}
    return result


def _capacity_unit(tx, queue: dict) -> str:
    """VCPU for a queue on Amazon EC2 (and Fargate), cpu for one on Amazon EKS (API_FairshareCapacityUsage)."""
    for entry in queue.get("computeEnvironmentOrder") or []:
        ce = compute_environments.compute_environment(tx, entry["computeEnvironment"])
        if ce is not None and ce.get("containerOrchestrationType") == "EKS":
            return "cpu"
    return "VCPU"


def get_job_queue_snapshot(ctx: Context, request: dict) -> dict:
    now = ctx.clock()
    with ctx.store.read() as tx:
        queue = job_queues.job_queue(tx, request["jobQueue"])
        if queue is None:
            raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
        # The dispatch order is the scheduler's: server.py hands its queue_front over in the Context.
        front = ctx.queue_front(tx, ctx.config, queue, now, SNAPSHOT_SIZE)
        if queue.get("jobQueueType") == job_queues.SAGEMAKER_TRAINING:
            return _service_queue_snapshot(front, now)
        on_host = tx.jobs.on_host(queue["jobQueueArn"])
        unit = _capacity_unit(tx, queue)
    used = sum(row["vcpus"] for row in on_host)
    result: dict = {
        "frontOfQueue": {
            "jobs": [{"jobArn": ctx.arn(f"job/{job.job_id}"), "earliestTimeAtPosition": job.entered_at}
                     for job in front.positions],
            "lastUpdatedAt": now,
        },
        "queueUtilization": {
            "totalCapacityUsage": [{"capacityUnit": unit, "quantity": float(used)}],
            "lastUpdatedAt": now,
        },
    }
    if queue.get("schedulingPolicyArn"):
        per_share: dict = {}
        for row in on_host:
            per_share[row["share_identifier"]] = per_share.get(row["share_identifier"], 0.0) + row["vcpus"]
        result["queueUtilization"]["fairshareUtilization"] = {
            # "active shares ... that are currently utilizing capacity" (API_FairshareUtilizationDetail).
            "activeShareCount": len({r["share_identifier"] for r in on_host if r["share_identifier"] is not None}),
            "topCapacityUtilization": [
                {"shareIdentifier": share, "capacityUsage": [{"capacityUnit": unit, "quantity": float(vcpus)}]}
                for share, vcpus in sorted(per_share.items(), key=lambda item: -item[1])
                if share is not None][:TOP_SHARES],
        }
    return result


OPERATIONS = {
    "ListJobs": list_jobs,
    "GetJobQueueSnapshot": get_job_queue_snapshot,
}
