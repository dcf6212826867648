"""What the store keeps beside a job's document, read off it: the indexed columns of the jobs table (a JobRow)
and the ListJobs summary. The document stays the truth; these are projections of it."""

from __future__ import annotations

import json
from typing import Any

# A node of a multi-node job: a child that is not an array child. Its parent is queued and placed for it.
NODE = "(parent_id IS NOT NULL AND array_index IS NULL)"
NOT_NODE = "(parent_id IS NULL OR array_index IS NOT NULL)"

# The few fields ListJobs returns, kept beside the document so a page does not decode whole jobs.
SUMMARY_FIELDS = ("jobArn", "jobId", "jobName", "createdAt", "shareIdentifier", "status", "statusReason",
                  "startedAt", "stoppedAt", "jobDefinition", "isCancelled", "isTerminated", "arrayProperties",
                  "nodeProperties")


# JobSummary members AWS sends "only when the value is true" (API_JobSummary).
ONLY_WHEN_TRUE = ("isCancelled", "isTerminated")

# The top-level keys of a job's document that job_summary reads.
SUMMARY_SOURCES = (*SUMMARY_FIELDS, "container")


def job_summary(doc: dict) -> dict:
    """The ListJobs JobSummary of a stored job."""
    summary = {key: doc[key] for key in SUMMARY_FIELDS if doc.get(key) is not None}
    for key in ONLY_WHEN_TRUE:
        if not summary.get(key):
            summary.pop(key, None)
    if doc.get("nodeProperties"):
        summary["nodeProperties"] = {"numNodes": doc["nodeProperties"]["numNodes"]}
    elif doc.get("nodeDetails"):
        summary["nodeProperties"] = {**doc["nodeDetails"], "numNodes": (doc.get("batchemu") or {}).get("numNodes")}
    container = doc.get("container") or {}
    if container.get("exitCode") is not None or container.get("reason"):
        summary["container"] = {"exitCode": container.get("exitCode"), "reason": container.get("reason")}
    return summary


def job_columns(doc: dict) -> dict[str, Any]:
    """The indexed columns of a stored job, read off its document (the document stays the truth)."""
    info = doc.get("batchemu") or {}
    history = info.get("transitions") or [[doc["status"], doc["createdAt"]]]
    array = doc.get("arrayProperties") or {}
    consumables = info.get("consumables")
    return {
        "job_id": doc["jobId"], "job_queue_arn": doc["jobQueue"], "status": doc["status"],
        "created_at": doc["createdAt"], "job_name": doc["jobName"], "job_definition_arn": doc["jobDefinition"],
        "parent_id": info.get("parentId"), "array_index": array.get("index"), "array_size": array.get("size"),
        "entered_at": history[-1][1], "status_reason": doc.get("statusReason"),
        "started_at": doc.get("startedAt"), "stopped_at": doc.get("stoppedAt"),
        "is_cancelled": int(bool(doc.get("isCancelled"))), "is_terminated": int(bool(doc.get("isTerminated"))),
        # A node of a multi-node job holds no vCPUs of its own: its parent holds every node's.
        "platform": info.get("platform", "EC2"),
        "vcpus": 0.0 if info.get("nodeIndex") is not None else float(info.get("vcpus", 1.0)),
        "memory": info.get("memoryMib"), "gpus": int(info.get("gpus", 0)),
        "share_identifier": doc.get("shareIdentifier"), "priority": int(doc.get("schedulingPriority") or 0),
        "consumables": json.dumps(consumables) if consumables else None,
        "compute_environment": info.get("computeEnvironment"), "has_doc": 1,
    }


COLUMNS = tuple(job_columns({"jobId": "", "jobQueue": "", "status": "", "createdAt": 0, "jobName": "",
                             "jobDefinition": ""}))
# Columns a JobRow carries (everything but the three serialized forms).
ROW_COLUMNS = ("seq",) + COLUMNS + ("intent", "intent_reason")
ROW_SELECT = ", ".join(ROW_COLUMNS)


class JobRow(dict):
    """A job's columns as a dict (`row["status"]`): enough to schedule it without its document."""


def job_row(values: tuple) -> JobRow:
    """The JobRow of the values of ROW_COLUMNS, in that order."""
    return JobRow(zip(ROW_COLUMNS, values))
