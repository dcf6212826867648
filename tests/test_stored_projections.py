"""The scheduler's SUBMITTED -> RUNNABLE write patches the stored DescribeJobs and ListJobs projections
(tx.jobs.update_status) instead of serializing the job again: they must be what serializing would give."""

from __future__ import annotations

import json

from tests.conftest import make_queue, register, submit, unique, wait_until


def _fresh(ctx, job_id: str) -> tuple[str, str, str, str]:
    """(stored summary, stored wire, summary and wire serialized now from the stored document, as the server
    serializes them)."""
    from batchemu.protocol.serializer import projector
    from batchemu.store import job_summary
    with ctx.store.read() as tx:
        [(_, summary)] = tx.jobs.query({"job_id": job_id}, summaries=True)
        [wire] = tx.jobs.wire([job_id])
        doc = tx.jobs.get(job_id)
    return summary, wire, projector("batch", "JobSummary")(job_summary(doc)), projector("batch", "JobDetail")(doc)


def test_jobs_made_runnable_by_the_scheduler_have_the_projections_serializing_gives(batchemu_server, batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")
    plain = register(batch_client)
    rich = register(batch_client, ["echo", "Ref::word"], parameters={"word": "hi"},
                    retryStrategy={"attempts": 2}, timeout={"attemptDurationSeconds": 120}, tags={"a": "b"},
                    propagateTags=True, containerProperties={"environment": [{"name": "K", "value": "\u00e9\"status\":"}]})
    ids = [submit(batch_client, queue, plain),
           submit(batch_client, queue, rich, parameters={"word": '"status":"SUBMITTED"'}, tags={"t": "SUBMITTED"},
                  containerOverrides={"command": ["true"], "environment": [{"name": "X", "value": "1"}]}),
           batch_client.submit_job(jobName=unique("ecs"), jobQueue=queue["name"], jobDefinition=plain["jobDefinitionArn"],
                                   timeout={"attemptDurationSeconds": 60})["jobId"]]
    wait_until(lambda: {j["status"] for j in batch_client.describe_jobs(jobs=ids)["jobs"]} == {"RUNNABLE"})
    for job_id in ids:
        summary, wire, fresh_summary, fresh_wire = _fresh(batchemu_server.ctx, job_id)
        assert json.loads(wire)["status"] == "RUNNABLE"
        assert (summary, wire) == (fresh_summary, fresh_wire)
        with batchemu_server.ctx.store.read() as tx:
            doc = tx.jobs.get(job_id)
            row = tx.jobs.row(job_id)
        history = doc["batchemu"]["transitions"]
        assert [status for status, _ in history] == ["SUBMITTED", "PENDING", "RUNNABLE"]
        assert (doc["status"], row["status"], row["entered_at"]) == ("RUNNABLE", "RUNNABLE", history[-1][1])


def test_jobs_with_control_characters_are_described_and_listed_whole(batchemu_server, batch_client):
    """DescribeJobs and ListJobs read the stored projections back joined by control characters, which a
    serialized job holds only escaped."""
    queue = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client)
    odd = "a\x00b\x01c"
    ids = [submit(batch_client, queue, definition, tags={"k": odd}, parameters={"p": odd}) for _ in range(3)]
    wait_until(lambda: {j["status"] for j in batch_client.describe_jobs(jobs=ids)["jobs"]} == {"RUNNABLE"})
    described = batch_client.describe_jobs(jobs=[ids[2], ids[0], ids[2], ids[1]])["jobs"]
    assert [j["jobId"] for j in described] == [ids[2], ids[0], ids[1]]
    assert [(j["tags"], j["parameters"]["p"]) for j in described] == [({"k": odd}, odd)] * 3
    listed = batch_client.list_jobs(jobQueue=queue["name"], jobStatus="RUNNABLE")["jobSummaryList"]
    assert [j["jobId"] for j in listed] == ids
