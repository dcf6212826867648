"""Tag propagation (SubmitJob and RegisterJobDefinition propagateTags): the tags a job's task would carry, and
AWS's limit on them, which fails the job rather than the request."""

from __future__ import annotations

MAX_TAGS = 50


def propagates(job: dict) -> bool:
    """Whether the job's tags propagate: its own propagateTags, taken from the definition when not given."""
    return bool(job.get("propagateTags"))


def propagated(job_tags: dict[str, str], definition_tags: dict[str, str]) -> dict[str, str]:
    """The tags a task of the job carries: the definition's and the job's, the job's winning on a shared key."""
    return {**definition_tags, **job_tags}


def over_limit(job: dict, definition: dict) -> str | None:
    """The statusReason of a job whose propagated tags number more than 50, which AWS moves to FAILED
    (API_SubmitJob, propagateTags); None when the job propagates no tags or few enough."""
    if not propagates(job):
        return None
    count = len(propagated(job.get("tags") or {}, definition.get("tags") or {}))
    if count <= MAX_TAGS:
        return None
    return (f"Tags could not be propagated: the job and its job definition have {count} tags together, "
            f"more than the {MAX_TAGS} a task can carry")
