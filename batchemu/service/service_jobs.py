"""Service jobs (SageMaker Training through Batch): SubmitServiceJob, DescribeServiceJob, ListServiceJobs,
UpdateServiceJob, TerminateServiceJob and TerminateServiceJobs.

A stored service job is its DescribeServiceJob output in wire form plus "batchemu" bookkeeping, in a table
of its own (ListJobs never sees it). The serviceRequestPayload is kept exactly as given; Batch reads its
ResourceConfig to count capacity, so it must be a JSON object of at most 10 KiB. What SageMaker itself
would refuse fails the job when it is scheduled, with SageMaker's message as statusReason. The scheduler
(scheduler/service_job_progress.py) moves jobs on from SUBMITTED and runs their training containers.
"""

from __future__ import annotations

import uuid

from batchemu import ids
from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.model import intents, states, training
from batchemu.model.resources import DELETING, ENABLED, GOING, QUOTA_SHARE, SCHEDULING_POLICY
from batchemu.service import job_listing, job_queues
from batchemu.service.jobs import MAX_BULK, MIN_TIMEOUT, check_job_name
from batchemu.service.pagination import decode_token, encode_token, page_size
from batchemu.service.tags import validate_tags
from batchemu.store import Tx

MAX_PRIORITY = 9999
MAX_ATTEMPTS = 10
MAX_EVALUATE_ON_EXIT = 5
MAX_STATUS_REASON_PATTERN = 512
# A clientToken names the job it submitted: the job's ID is derived from it, so a second submit finds the first.
CLIENT_TOKEN_IDS = uuid.UUID("6f1d2a3c-5b4e-4c8d-9a7f-0e1b2c3d4e5f")
MAX_LIST = 100
FILTERS = ("JOB_NAME", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER", "QUOTA_SHARE_NAME")
SUMMARY_FIELDS = ("latestAttempt", "capacityUsage", "createdAt", "jobArn", "jobId", "jobName", "scheduledAt",
                  "serviceJobType", "shareIdentifier", "quotaShareName", "status", "statusReason", "startedAt",
                  "stoppedAt", "isTerminated")


def _job_id(ref: str) -> str:
    return ref.rsplit(":service-job/", 1)[1] if ref.startswith("arn:") and ":service-job/" in ref else ref


def _get(tx: Tx, ref: str) -> dict:
    job = tx.service_jobs.get(_job_id(ref))
    if job is None:
        raise ClientException(f"Job {ref} does not exist")
    return job


def _check_priority(priority: int | None) -> None:
    if priority is not None and not 0 <= priority <= MAX_PRIORITY:
        raise ClientException(f"schedulingPriority must be between 0 and {MAX_PRIORITY}, got {priority}")


def _check_retry_strategy(strategy: dict | None) -> dict | None:
    if strategy is None:
        return None
    if not 1 <= strategy["attempts"] <= MAX_ATTEMPTS:
        raise ClientException(f"retryStrategy attempts must be between 1 and {MAX_ATTEMPTS}")
    rules = strategy.get("evaluateOnExit") or []
    if len(rules) > MAX_EVALUATE_ON_EXIT:
        raise ClientException(f"evaluateOnExit can contain at most {MAX_EVALUATE_ON_EXIT} conditions")
    for rule in rules:
        if not rule.get("action"):
            raise ClientException("Each evaluateOnExit condition needs an action: RETRY or EXIT")
        reason = rule.get("onStatusReason")
        if not reason:
            raise ClientException("Each evaluateOnExit condition of a service job needs onStatusReason")
        if len(reason) > MAX_STATUS_REASON_PATTERN or not reason.isprintable():
            raise ClientException(f"onStatusReason must be at most {MAX_STATUS_REASON_PATTERN} printable "
                                  "characters")
    return strategy


def _check_sharing(tx: Tx, queue: dict, request: dict) -> None:
    """shareIdentifier on fair-share queues only (and required there); quotaShareName required on
    quota-managed queues, naming one of the queue's quota shares."""
    arn = queue.get("schedulingPolicyArn")
    policy = (tx.resources.get(SCHEDULING_POLICY, arn) or {}) if arn else {}
    share, quota_share = request.get("shareIdentifier"), request.get("quotaShareName")
    if "quotaSharePolicy" in policy:
        if not quota_share:
            raise ClientException("quotaShareName must be specified for a job queue with a quota share policy.")
        found = tx.resources.get(QUOTA_SHARE, f"{queue['jobQueueArn']}/{QUOTA_SHARE}/{quota_share}")
        if found is None or found["status"] == DELETING:
            raise ClientException(f"quotaShare {quota_share} does not exist in jobQueue {queue['jobQueueName']}")
        if found["state"] != ENABLED:
            raise ClientException(f"quotaShare {quota_share} is DISABLED: a disabled quota share accepts no new jobs")
        if share:
            raise ClientException("shareIdentifier can only be specified for a job queue with a fair share "
                                  "scheduling policy.")
        return
    if quota_share:
        raise ClientException("quotaShareName can only be specified for a job queue with a quota share policy.")
    if "fairsharePolicy" in policy and not share:
        raise ClientException("shareIdentifier must be specified.")
    if "fairsharePolicy" not in policy and share:
        raise ClientException("shareIdentifier can only be specified for a job queue with a fair share "
                              "scheduling policy.")


def _new_job_id(tx: Tx, client_token: str | None) -> str:
    """A new job's ID; with a clientToken, the one ID that token gives, refused when a job already has it
    (API_SubmitServiceJob: two submits with the same clientToken are the same request, the second rejected)."""
    if client_token is None:
        return ids.uuid4_str()
    job_id = str(uuid.uuid5(CLIENT_TOKEN_IDS, client_token))
    if tx.service_jobs.get(job_id) is not None:
        raise ClientException(f"clientToken {client_token} was already used to submit service job {job_id}")
    return job_id


def submit_service_job(ctx: Context, request: dict) -> dict:
    name = request["jobName"]
    check_job_name(name)
    if request["serviceJobType"] != job_queues.SAGEMAKER_TRAINING:
        raise ClientException(f"serviceJobType must be {job_queues.SAGEMAKER_TRAINING}")
    payload = training.parse_payload(request["serviceRequestPayload"])
    _check_priority(request.get("schedulingPriority"))
    retry = _check_retry_strategy(request.get("retryStrategy"))
    timeout = (request.get("timeoutConfig") or {}).get("attemptDurationSeconds")
    if timeout is not None and timeout < MIN_TIMEOUT:
        raise ClientException("The minimum value for the timeout is 60 seconds.")
    retries = (request.get("preemptionConfiguration") or {}).get("preemptionRetriesBeforeTermination")
    if retries is not None and retries < 0:
        raise ClientException("preemptionRetriesBeforeTermination must be 0 or more")
    tags = validate_tags(request.get("tags"))
    instances, instance_type = training.instances(payload)
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        queue = job_queues.job_queue(tx, request["jobQueue"])
        if queue is None or queue.get("status") in GOING:
            raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
        if queue.get("jobQueueType") != job_queues.SAGEMAKER_TRAINING:
            raise ClientException(f"jobQueue {queue['jobQueueName']} is not a {job_queues.SAGEMAKER_TRAINING} job "
                                  "queue: service jobs need one (SubmitJob takes container jobs)")
        if queue.get("state") != ENABLED:
            raise ClientException(
                f"jobQueue {queue['jobQueueName']} is DISABLED: a disabled job queue accepts no new jobs")
        _check_sharing(tx, queue, request)
        job_id = _new_job_id(tx, request.get("clientToken"))
        job: dict = {
            "jobArn": ctx.arn(f"service-job/{job_id}"),
            "jobId": job_id,
            "jobName": name,
            "jobQueue": queue["jobQueueArn"],
            "serviceJobType": request["serviceJobType"],
            "serviceRequestPayload": request["serviceRequestPayload"],
            "status": states.SUBMITTED,
            "createdAt": now,
            "attempts": [],
            "isTerminated": False,
            "capacityUsage": [{"capacityUnit": instance_type or "NUM_INSTANCES", "quantity": float(instances)}],
            "batchemu": {"transitions": [[states.SUBMITTED, now]], "seq": tx.counters.next_value("service-job-seq"),
                         "instances": instances, "instanceType": instance_type, "attempt": 0},
        }
        for key in ("schedulingPriority", "shareIdentifier", "quotaShareName", "preemptionConfiguration",
                    "timeoutConfig"):
            if request.get(key) is not None:
                job[key] = request[key]
        if retry:
            job["retryStrategy"] = retry
        if tags:
            job["tags"] = tags
        tx.service_jobs.insert(job)
    ctx.notify()
    return {"jobArn": job["jobArn"], "jobName": name, "jobId": job_id}


def describe_service_job(ctx: Context, request: dict) -> dict:
    with ctx.store.read() as tx:
        job = _get(tx, request["jobId"])
    # The model requires startedAt: 0 until an attempt has started (our inference of AWS's value).
    return {**job, "startedAt": job.get("startedAt", 0)}


def _summary(job: dict) -> dict:
    """A ServiceJobSummary: isTerminated "is only present when the value is true" (API_ServiceJobSummary)."""
    summary = {key: job[key] for key in SUMMARY_FIELDS if key in job}
    if not summary.get("isTerminated"):
        summary.pop("isTerminated", None)
    return summary


def list_service_jobs(ctx: Context, request: dict) -> dict:
    limit = page_size(request.get("maxResults"), default=MAX_LIST, limit=MAX_LIST)
    after = decode_token(request.get("nextToken"))
    filters = job_listing.filter_arguments(request.get("filters") or [], FILTERS)
    with ctx.store.read() as tx:
        queue_arn = None
        if request.get("jobQueue"):
            queue = job_queues.job_queue(tx, request["jobQueue"])
            if queue is None:
                raise ClientException(f"jobQueue {request['jobQueue']} does not exist")
            queue_arn = queue["jobQueueArn"]
        # As ListJobs: a filter (other than by share) ignores jobStatus and lists the newest first.
        by_status = not (set(filters) - {"share", "quota_share"})
        statuses = [request.get("jobStatus") or states.RUNNING] if by_status else None
        rows = tx.service_jobs.query(queue_arn=queue_arn, statuses=statuses, after_seq=after, limit=limit + 1,
                                     descending=not by_status, **filters)
    page = rows[:limit]
    result: dict = {"jobSummaryList": [_summary(job) for _, job in page]}
    if len(rows) > limit:
        result["nextToken"] = encode_token(page[-1][0])
    return result


def update_service_job(ctx: Context, request: dict) -> dict:
    _check_priority(request["schedulingPriority"])
    with ctx.store.transaction() as tx:
        job = _get(tx, request["jobId"])
        if job["status"] in states.FINISHED:
            raise ClientException(f"Job {request['jobId']} is {job['status']}: only an unfinished service job's "
                                  "schedulingPriority can be updated")
        job["schedulingPriority"] = request["schedulingPriority"]
        tx.service_jobs.update(job)
    ctx.notify()
    return {"jobArn": job["jobArn"], "jobName": job["jobName"], "jobId": job["jobId"]}


def terminate_service_job(ctx: Context, request: dict) -> dict:
    with ctx.store.transaction() as tx:
        intents.terminate_service_job(tx, _get(tx, request["jobId"]), request["reason"], ctx.clock())
    ctx.notify()
    return {}


def terminate_service_jobs(ctx: Context, request: dict) -> dict:
    refs = request["jobs"]
    if not 1 <= len(refs) <= MAX_BULK:
        raise ClientException(f"jobs must contain between 1 and {MAX_BULK} job IDs")
    with ctx.store.transaction() as tx:
        for ref in refs:
            job = tx.service_jobs.get(_job_id(ref))
            if job is not None:  # unknown IDs count as successful, as AWS documents
                intents.terminate_service_job(tx, job, request["reason"], ctx.clock())
    ctx.notify()
    return {"successful": list(refs), "errors": []}


OPERATIONS = {
    "SubmitServiceJob": submit_service_job,
    "DescribeServiceJob": describe_service_job,
    "ListServiceJobs": list_service_jobs,
    "UpdateServiceJob": update_service_job,
    "TerminateServiceJob": terminate_service_job,
    "TerminateServiceJobs": terminate_service_jobs,
}
