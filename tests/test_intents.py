"""Cancel and terminate: one path (batchemu.model.intents) for container and service jobs alike."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

import batchemu
from batchemu.model import intents, states
from batchemu.model.arrays import child_doc
from batchemu.store import Store

NOW = 1_000


def _job(status: str, job_id: str = "j") -> dict:
    return {"jobId": job_id, "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/{job_id}", "jobName": job_id,
            "jobQueue": "q", "jobDefinition": "d", "status": status, "createdAt": NOW,
            "batchemu": {"transitions": [[status, NOW]]}}


@pytest.mark.parametrize("status", states.QUEUED)
@pytest.mark.parametrize("intent", [intents.CANCEL, intents.TERMINATE])
def test_a_queued_job_fails_at_once_with_the_callers_reason(status, intent):
    job = _job(status)
    intents.apply(job, intent, "by request", NOW + 1)
    assert (job["status"], job["statusReason"], job["stoppedAt"]) == (states.FAILED, "by request", NOW + 1)
    assert job["isCancelled" if intent == intents.CANCEL else "isTerminated"] is True


@pytest.mark.parametrize("status", states.ON_HOST)
def test_a_job_on_a_host_is_stopped_by_terminate_and_left_alone_by_cancel(status):
    cancelled, terminated = _job(status), _job(status)
    intents.apply(cancelled, intents.CANCEL, "cancel it", NOW + 1)
    assert cancelled == _job(status)  # AWS cancels queued jobs only
    intents.apply(terminated, intents.TERMINATE, "stop it", NOW + 1)
    assert terminated["status"] == status and terminated["isTerminated"] is True
    assert terminated["batchemu"]["terminateReason"] == "stop it"  # the on-host pass stops the container


def test_service_jobs_take_the_same_path_with_their_own_table():
    queued, scheduled = _job(states.RUNNABLE), _job(states.SCHEDULED)
    intents.apply(queued, intents.TERMINATE, "stop", NOW + 1, service=True)
    assert (queued["status"], queued["isTerminated"]) == (states.FAILED, True)
    intents.apply(scheduled, intents.TERMINATE, "stop", NOW + 1, service=True)
    assert (scheduled["status"], scheduled["batchemu"]["terminateReason"]) == (states.SCHEDULED, "stop")


def test_terminating_a_service_job_twice_changes_nothing_the_second_time():
    store = Store(":memory:", job_wire=json.dumps, summary_wire=json.dumps, child_doc=child_doc)
    job = {**_job(states.RUNNING, "s"), "serviceJobType": "SAGEMAKER_TRAINING"}
    with store.transaction() as tx:
        tx.service_jobs.insert(job)
        assert intents.terminate_service_job(tx, tx.service_jobs.get("s"), "first", NOW + 1)
        assert not intents.terminate_service_job(tx, tx.service_jobs.get("s"), "second", NOW + 2)
        stored = tx.service_jobs.get("s")
    store.close()
    assert (stored["status"], stored["isTerminated"], stored["batchemu"]["terminateReason"]) == (
        states.RUNNING, True, "first")


def test_only_the_model_records_intents():
    """Intents are recorded through the store's intents aggregate by model/intents.py alone: one path cancels
    or terminates every kind of job."""
    root = pathlib.Path(batchemu.__file__).parent
    callers = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                     if re.search(r"\.intents\.(record|record_for_children|terminate_queue)\(", path.read_text()))
    assert callers == ["model/intents.py"]
