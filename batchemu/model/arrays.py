"""Array jobs: children `<parent>:<index>` as plain rows, and the parent's status rolled up from them.

A child that never started has no document of its own: `child_doc` builds it from the parent's document
and the child's row whenever it is read, and the scheduler stores it when the child's first attempt begins.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from batchemu.model import states
from batchemu.store import JobRow, Tx

MIN_SIZE, MAX_SIZE = 2, 10_000
CHILD_FAILED = "Array Child Job failed"
ALL_STATUSES = (states.SUBMITTED, states.PENDING, states.RUNNABLE, states.STARTING, states.RUNNING,
                states.SUCCEEDED, states.FAILED)
# What a child does not inherit from its parent's document.
_PARENT_ONLY = ("arrayProperties", "attempts", "statusReason", "startedAt", "stoppedAt", "dependsOn",
                "batchemu", "isCancelled", "isTerminated")
# Bookkeeping a child inherits: what it needs to be placed and run.
_INHERITED = ("vcpus", "memoryMib", "gpus", "platform", "definitionName", "consumables")


def child_dependencies(parent: dict, index: int) -> list[dict]:
    """The dependencies of child `index`: SEQUENTIAL on the previous child, N_TO_N on the same index."""
    out = []
    for dependency in parent.get("dependsOn") or []:
        if dependency.get("type") == "SEQUENTIAL" and index > 0:
            out.append({"jobId": f"{parent['jobId']}:{index - 1}", "type": "SEQUENTIAL"})
        elif dependency.get("type") == "N_TO_N":
            out.append({"jobId": f"{dependency['jobId']}:{index}", "type": "N_TO_N"})
    return out


def child_doc(parent: dict, row: JobRow, *, shared: bool = False, only: tuple[str, ...] | None = None) -> dict:
    """The document of an array child that has none yet (its row and its parent's document). With
    shared, it shares the parent's nested values: only for a document serialized and then dropped. With
    `only`, just those top-level keys (a ListJobs summary reads a few: a page of children is built 100 at once)."""
    index = row["array_index"]
    if only is None:
        doc = {key: value if shared else copy.deepcopy(value) for key, value in parent.items()
               if key not in _PARENT_ONLY}
    else:
        doc = {key: parent[key] if shared else copy.deepcopy(parent[key]) for key in only
               if key in parent and key not in _PARENT_ONLY}
    doc.update(jobId=row["job_id"], jobArn=f"{parent['jobArn']}:{index}", status=row["status"],
               createdAt=row["created_at"], arrayProperties={"index": index}, isCancelled=bool(row["is_cancelled"]),
               isTerminated=bool(row["is_terminated"]))
    if row["status_reason"]:
        doc["statusReason"] = row["status_reason"]
    if row["stopped_at"]:
        doc["stoppedAt"] = row["stopped_at"]
    if only is not None:
        return doc
    doc.update(attempts=[], dependsOn=child_dependencies(parent, index))
    info = parent.get("batchemu") or {}
    doc["batchemu"] = {key: info[key] for key in _INHERITED if key in info}
    doc["batchemu"].update(transitions=[[row["status"], row["entered_at"]]], parentId=parent["jobId"],
                           arraySize=parent["arrayProperties"]["size"], attempt=0)
    return doc


def status_summary(counts: dict[str, int]) -> dict[str, int]:
    """All seven status keys, zeros included, as AWS reports them."""
    return {status: counts.get(status, 0) for status in ALL_STATUSES}


def roll_up(tx: Tx, now: int, ready: Callable[[dict, int], bool]) -> bool:
    """Refresh each unfinished parent's statusSummary from one grouped count of its children, and end
    the parent when every child has: SUCCEEDED if all did, else FAILED. `ready(doc, now)` says whether a
    parent has dwelt long enough in its status. Whether any parent ended."""
    parents = tx.jobs.active_array_parents()
    counts = tx.arrays.children_by_status([p["jobId"] for p in parents])
    ended = False
    for parent in parents:
        if parent["status"] != states.PENDING:
            continue  # SUBMITTED parents move on with every other job (dependencies)
        summary = status_summary(counts[parent["jobId"]])
        properties = parent["arrayProperties"]
        changed = properties.get("statusSummary") != summary
        if changed:
            properties["statusSummary"] = summary
            properties["statusSummaryLastUpdatedAt"] = now
        done = summary[states.SUCCEEDED] + summary[states.FAILED]
        if done >= properties["size"] and ready(parent, now):
            if summary[states.FAILED] == 0:
                states.transition(parent, states.SUCCEEDED, now)
            else:
                reason = states.internal(parent).get("intentReason") or CHILD_FAILED
                states.transition(parent, states.FAILED, now, reason)
            ended = changed = True
        if changed:
            tx.jobs.update(parent)
    return ended
