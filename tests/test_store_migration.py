"""A state file written by the previous version (jobs as documents only) opens with every job kept, and gains
the tables added since (the event outbox)."""

from __future__ import annotations

import json
import sqlite3

from batchemu.model import states
from batchemu.model.arrays import child_doc
from batchemu.store import Store

V1_JOBS = """
CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE,
    job_queue_arn TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, job_name TEXT NOT NULL,
    job_definition_arn TEXT NOT NULL, parent_id TEXT, summary TEXT NOT NULL, wire TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX jobs_by_queue ON jobs (job_queue_arn, status, seq);
CREATE INDEX jobs_by_parent ON jobs (parent_id, status, seq);
CREATE INDEX jobs_by_status ON jobs (status, seq);
"""


def v1_job(job_id: str, status: str, **extra) -> dict:
    return {"jobId": job_id, "jobArn": f"arn:aws:batch:us-east-1:1:job/{job_id}", "jobName": "n",
            "jobQueue": "q", "jobDefinition": "d", "status": status, "createdAt": 1000, **extra}


def test_previous_version_store_is_migrated(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    old = sqlite3.connect(path)
    old.executescript(V1_JOBS)
    running = v1_job("run", "RUNNING", startedAt=1500, batchemu={
        "transitions": [["SUBMITTED", 1000], ["RUNNING", 1500]], "attempt": 2, "vcpus": 2.0,
        "computeEnvironment": "ce-arn", "containerId": "c1", "exit": {"exit_code": 3, "oom_killed": False}})
    waiting = v1_job("wait", "PENDING", dependsOn=[{"jobId": "run"}], shareIdentifier="A",
                     batchemu={"transitions": [["PENDING", 1200]]})
    for doc in (running, waiting):
        old.execute("INSERT INTO jobs (job_id, job_queue_arn, status, created_at, job_name, job_definition_arn,"
                    " summary, wire, doc) VALUES (?, 'q', ?, 1000, 'n', 'd', '{}', '{}', ?)",
                    (doc["jobId"], doc["status"], json.dumps(doc)))
    old.commit()
    old.close()
    store = Store(path, job_wire=json.dumps, summary_wire=json.dumps, child_doc=child_doc)
    with store.transaction() as tx:
        row = tx.jobs.row("run")
        assert (row["vcpus"], row["compute_environment"], row["entered_at"], row["started_at"]) == (2.0, "ce-arn",
                                                                                                   1500, 1500)
        attempt = tx.attempts.get("run", 2)
        assert (attempt["phase"], attempt["container_id"], attempt["exit_code"]) == ("EXITED", "c1", 3)
        assert tx.jobs.row("wait")["share_identifier"] == "A"
        # The dependency became an edge: the waiting job waits until "run" has succeeded.
        assert tx.dependencies.pending_verdicts(10_000) == [("wait", 1, None, 1)]
        assert tx.jobs.get("wait")["dependsOn"] == [{"jobId": "run"}]
    store.close()


def test_summaries_stored_with_false_flags_lose_them_when_the_store_opens(tmp_path):
    """API_JobSummary: isCancelled and isTerminated are "only present when the value is true"; summaries an
    earlier version stored with false ones are corrected when the file is opened."""
    path = str(tmp_path / "state.sqlite3")
    store = Store(path, job_wire=json.dumps, summary_wire=lambda v: json.dumps(v, separators=(",", ":")),
                  child_doc=child_doc)
    with store.transaction() as tx:
        tx.jobs.insert(v1_job("a", "FAILED", isCancelled=True, isTerminated=False))
        tx.jobs.insert(v1_job("b", "RUNNING", isCancelled=False, isTerminated=False))
    store.close()
    old = sqlite3.connect(path)  # as an earlier version stored them
    for job_id, flags in (("a", '"isCancelled":true,"isTerminated":false'),
                          ("b", '"isCancelled":false,"isTerminated":false')):
        old.execute("UPDATE jobs SET summary = ? WHERE job_id = ?", (f'{{"jobId":"{job_id}",{flags}}}', job_id))
    old.commit()
    old.close()
    store = Store(path, job_wire=json.dumps, summary_wire=json.dumps, child_doc=child_doc)
    with store.transaction() as tx:
        summaries = {json.loads(summary)["jobId"]: json.loads(summary)
                     for _, summary in tx.jobs.query({}, summaries=True)}
    assert summaries == {"a": {"jobId": "a", "isCancelled": True}, "b": {"jobId": "b"}}
    store.close()


def test_a_state_file_without_the_event_outbox_gets_one(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    old = sqlite3.connect(path)
    old.executescript(V1_JOBS)
    waiting = v1_job("wait", "PENDING", batchemu={"transitions": [["PENDING", 1200]]})
    old.execute("INSERT INTO jobs (job_id, job_queue_arn, status, created_at, job_name, job_definition_arn,"
                " summary, wire, doc) VALUES ('wait', 'q', 'PENDING', 1000, 'n', 'd', '{}', '{}', ?)",
                (json.dumps(waiting),))
    old.commit()
    old.close()
    store = Store(path, job_wire=json.dumps, summary_wire=json.dumps, child_doc=child_doc)
    with store.transaction() as tx:
        assert tx.events.last_seq() == 0
        job = tx.jobs.require("wait")
        states.transition(job, states.RUNNABLE, 2000)
        tx.jobs.update(job)
    with store.read() as tx:
        [event] = tx.events.after(0)
        assert (event["seq"], event["job_id"], event["status"], event["at"]) == (1, "wait", "RUNNABLE", 2000)
        assert json.loads(event["detail"])["status"] == "RUNNABLE"
        assert "events" not in tx.jobs.get("wait")["batchemu"]  # taken off the document into the outbox
    store.close()
