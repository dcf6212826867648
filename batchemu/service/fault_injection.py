"""POST /_batchemu/faults: check a fault request against the store and hand it to the executor.

The handler edits no job: the executor ends the attempt's container (or fails the job's next start) and
reports it as an engine outcome; the scheduler records that on the attempt, and batchemu.model.attempts gives it
AWS's words, so retry strategies see exactly what they would see on AWS.
"""

from __future__ import annotations

from batchemu.context import Context
from batchemu.errors import ClientException
from batchemu.executors import EngineUnavailable, Executor
from batchemu.executors.faults import FAULTS, PULL_FAILURE, FaultRefused
from batchemu.model import attempts, states
from batchemu.service.jobs import job_id_from


def _field(request: dict, name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ClientException(f"{name} must be a non-empty string")
    return value


def inject(ctx: Context, executor: Executor | None, request: dict) -> dict:
    """Apply `{"jobId": ..., "fault": ...}`; ClientException with the reason it cannot apply."""
    job_ref, fault = _field(request, "jobId"), _field(request, "fault")
    if fault not in FAULTS:
        raise ClientException(f"fault {fault!r} is none of {', '.join(FAULTS)}")
    unknown = set(request) - {"jobId", "fault"}
    if unknown:
        raise ClientException(f"unknown field(s) {', '.join(sorted(unknown))}; a fault takes jobId and fault")
    if executor is None:
        raise ClientException("faults need the scheduler: this server runs with --no-scheduler")
    job_id = job_id_from(job_ref)
    with ctx.store.read() as tx:
        job = tx.jobs.get(job_id)
        if job is None:
            raise ClientException(f"Job {job_ref} does not exist")
        status = job["status"]
        attempt_number = states.internal(job).get("attempt", 0)
        attempt = tx.attempts.get(job_id, attempt_number) if status in states.ON_HOST else None
    if (job.get("arrayProperties") or {}).get("size") is not None:
        raise ClientException(f"Job {job_ref} is an array job: name one of its children ({job_id}:INDEX)")
    if status in states.FINISHED:
        raise ClientException(f"Job {job_ref} is {status}: it has no attempt left to fault")
    try:
        if fault == PULL_FAILURE:
            executor.inject_fault(job_id, attempt_number, None, fault)
            applies_to = "next start"
        else:
            if attempt is None or attempt["phase"] != attempts.STARTED or not attempt["container_id"]:
                raise ClientException(f"Job {job_ref} has no running attempt (status {status}): {fault} ends a "
                                      f"running attempt; pull-failure fails the next start")
            executor.inject_fault(job_id, attempt_number, attempt["container_id"], fault)
            applies_to = f"attempt {attempt_number}"
    except FaultRefused as exc:
        raise ClientException(f"Job {job_ref}: {exc}") from None
    except EngineUnavailable as exc:
        raise ClientException(f"the container engine cannot be reached: {exc}") from None
    ctx.notify()
    return {"jobId": job_id, "fault": fault, "status": status, "appliesTo": applies_to}

