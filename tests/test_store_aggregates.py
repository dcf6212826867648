"""The store's aggregates one by one, on a throw-away store: what the API and the scheduler rely on each for."""

from __future__ import annotations

import json

import pytest

from batchemu.store import Store, job_columns
from batchemu.store.log_lines import LOG_GROUP_KIND


def _child_doc(parent: dict, row, *, shared: bool = False, only=None) -> dict:
    return {"jobId": row["job_id"], "status": row["status"], "parentJobId": parent["jobId"]}


@pytest.fixture
def store():
    store = Store(":memory:", job_wire=json.dumps, summary_wire=json.dumps, child_doc=_child_doc)
    yield store
    store.close()


def _job(job_id: str, status: str = "RUNNABLE", queue: str = "q", **info) -> dict:
    return {"jobId": job_id, "jobArn": f"arn:aws:batch:us-east-1:1:job/{job_id}", "jobName": job_id,
            "jobQueue": queue, "jobDefinition": "arn:aws:batch:us-east-1:1:job-definition/d:1", "status": status,
            "createdAt": 1000, "batchemu": info}


def test_counters_count_from_one_each_on_its_own(store):
    with store.transaction() as tx:
        assert [tx.counters.next_value("a"), tx.counters.next_value("a"), tx.counters.next_value("b")] == [1, 2, 1]


def test_resources_keep_their_creation_order_when_replaced(store):
    revision = store.resource_revision
    with store.transaction() as tx:
        for name in ("one", "two", "three"):
            tx.resources.put("job-queue", f"arn:{name}", name, {"name": name, "status": "CREATING"})
        tx.resources.put("job-queue", "arn:one", "one", {"name": "one", "status": "VALID"})
        assert [doc["name"] for _, doc in tx.resources.of_kind("job-queue")] == ["one", "two", "three"]
        first, second = tx.resources.of_kind("job-queue", limit=2)
        assert [doc["name"] for _, doc in tx.resources.of_kind("job-queue", after_seq=first[0])] == ["two", "three"]
        assert second[0] == tx.resources.seq("arn:two") and tx.resources.kind("arn:two") == "job-queue"
        assert tx.resources.get("job-queue", "arn:one")["status"] == "VALID"
        assert tx.resources.get("compute-environment", "arn:one") is None
        assert tx.resources.find("job-queue", "two") == [{"name": "two", "status": "CREATING"}]
        assert tx.resources.any_in(["job-queue"], ["VALID"]) and not tx.resources.any_in(["job-queue"], ["DELETING"])
        tx.resources.delete("arn:two")
        assert (tx.resources.seq("arn:two"), tx.resources.kind("arn:two")) == (None, None)
    # Every write counts, so that the scheduler settles resources again.
    assert store.resource_revision == revision + 5


def test_a_transaction_that_raises_leaves_nothing_behind(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.jobs.insert(_job("j"))
        with store.transaction() as inner:  # joins the outer transaction
            inner.counters.next_value("c")
        raise RuntimeError
    with store.transaction() as tx:
        assert tx.jobs.get("j") is None
        assert tx.counters.next_value("c") == 1


def test_an_intent_is_recorded_on_unfinished_jobs_and_never_downgraded(store):
    with store.transaction() as tx:
        for job in (_job("a"), _job("b"), _job("done", "SUCCEEDED")):
            tx.jobs.insert(job)
        assert tx.intents.record("done", "cancel", "too late") == 0
        assert tx.intents.record("a", "terminate", "stop") == 1
        assert tx.intents.record("a", "cancel", "no") == 0
        assert tx.intents.record("b", "cancel", "first") == 1
        assert tx.intents.record("b", "terminate", "then") == 1
        pending = tx.intents.pending()
        assert [(r["job_id"], r["intent"], r["intent_reason"]) for r in pending] == [
            ("a", "terminate", "stop"), ("b", "terminate", "then")]
        tx.intents.clear("a")
        assert [r["job_id"] for r in tx.intents.pending()] == ["b"]
        assert tx.intents.record("missing", "cancel", "x") == 0


def test_a_deleted_queue_terminates_only_jobs_not_yet_terminated(store):
    with store.transaction() as tx:
        for job in (_job("new"), _job("marked"), _job("other", queue="q2"), _job("ended", "FAILED")):
            tx.jobs.insert(job)
        tx.intents.record("marked", "terminate", "earlier")
        assert tx.intents.terminate_queue("q", "Queue deleted") == 1
        assert tx.intents.terminate_queue("q", "Queue deleted") == 0
        intents = {r["job_id"]: (r["intent"], r["intent_reason"]) for r in tx.intents.pending()}
    assert intents == {"new": ("terminate", "Queue deleted"), "marked": ("terminate", "earlier")}


def test_array_children_live_as_rows_until_they_start(store):
    parent = _job("p", "PENDING")
    parent["arrayProperties"] = {"size": 3}
    with store.transaction() as tx:
        tx.jobs.insert(parent)
        columns = {name: value for name, value in job_columns(_job("child", "PENDING")).items()
                   if name not in ("job_id", "array_index", "has_doc", "parent_id", "array_size")}
        tx.arrays.insert_children(parent, columns, 3)
        assert tx.intents.record_for_children("p", "cancel", "stop them") == 3
        tx.arrays.set_children_status(["p:0", "p:1"], "FAILED", 2000, "stop them", is_cancelled=1)
        tx.arrays.set_children_status(["p:2"], "RUNNABLE", 2100)
        tx.arrays.set_child_status_reason("p:2", "waiting")
        with pytest.raises(ValueError):
            tx.arrays.set_children_status(["p:2"], "FAILED", 2200, is_anything=1)
        rows = {job_id: tx.jobs.row(job_id) for job_id in ("p:0", "p:2")}
        assert tx.arrays.children_by_status(["p"]) == {"p": {"FAILED": 2, "RUNNABLE": 1}}
        assert tx.jobs.get("p:2") == {"jobId": "p:2", "status": "RUNNABLE", "parentJobId": "p"}
        assert [doc["jobId"] for doc in tx.jobs.active_array_parents()] == ["p"]
    failed, waiting = rows["p:0"], rows["p:2"]
    assert (failed["stopped_at"], failed["is_cancelled"], failed["intent"], failed["status_reason"]) == (
        2000, 1, None, "stop them")
    assert (waiting["entered_at"], waiting["stopped_at"], waiting["intent"], waiting["status_reason"]) == (
        2100, None, "cancel", "waiting")


def test_attempts_are_updated_field_by_field(store):
    with store.transaction() as tx:
        tx.attempts.insert("j", 1, "arn:ce", 1000)
        tx.attempts.update("j", 1, phase="STARTED", container_id="c1")
        with pytest.raises(ValueError):
            tx.attempts.update("j", 1, colour="blue")
        attempt = tx.attempts.get("j", 1)
        assert (attempt["phase"], attempt["container_id"], attempt["compute_environment"], attempt["began_at"]) == (
            "STARTED", "c1", "arn:ce", 1000)
        tx.attempts.delete("j", 1)
        assert tx.attempts.get("j", 1) is None


def test_require_reads_what_the_caller_knows_exists_and_refuses_what_does_not(store):
    with store.transaction() as tx:
        tx.jobs.insert(_job("j"))
        tx.attempts.insert("j", 1, None, 1000)  # an attempt of a job whose document names no environment
        assert tx.jobs.require("j")["jobId"] == "j"
        assert tx.attempts.require("j", 1)["compute_environment"] is None
        with pytest.raises(LookupError, match="job missing does not exist"):
            tx.jobs.require("missing")
        with pytest.raises(LookupError, match="attempt 2 of job j does not exist"):
            tx.attempts.require("j", 2)


def test_a_pending_job_waits_until_its_dependency_succeeds_and_fails_with_it(store):
    with store.transaction() as tx:
        for job in (_job("first", "RUNNING"), _job("then", "PENDING"), _job("gone", "FAILED"),
                    _job("doomed", "PENDING")):
            tx.jobs.insert(job)
        tx.dependencies.add([("then", "first", None), ("doomed", "gone", None)])
        assert tx.dependencies.pending_verdicts(1000) == [("then", 1, None, 1), ("doomed", 1, "gone", 1)]
        first = tx.jobs.get("first")
        first["status"] = "SUCCEEDED"
        tx.jobs.update(first)
        assert tx.dependencies.pending_verdicts(1000)[0] == ("then", 1, None, 0)


def test_capacity_counts_the_vcpus_on_hosts_and_the_shares_of_a_queue(store):
    with store.transaction() as tx:
        for job_id, status, ce, vcpus, share in (("a", "RUNNING", "ce1", 2, "A"), ("b", "STARTING", "ce1", 1, "B"),
                                                 ("c", "RUNNING", "ce2", 4, "A"), ("d", "RUNNABLE", None, 8, "C"),
                                                 ("e", "SUCCEEDED", "ce2", 16, "D")):
            job = _job(job_id, status, computeEnvironment=ce, vcpus=vcpus)
            job["shareIdentifier"] = share
            tx.jobs.insert(job)
        assert tx.capacity.vcpus_in_use() == {"ce1": 3.0, "ce2": 4.0}
        assert tx.capacity.runnable_shares("q") == ["C"]
        assert tx.capacity.active_shares("q") == 3
        tx.capacity.put_share_usage("q", "A", 12.5, 3000)
        assert tx.capacity.share_usage("q") == {"A": (12.5, 3000)}
        assert [row["job_id"] for row in tx.jobs.on_host("q")] == ["a", "b", "c"]
        assert [row["job_id"] for row in tx.jobs.runnable("q", share="C", by_priority=True)] == ["d"]


def test_service_jobs_are_queried_by_their_own_columns(store):
    with store.transaction() as tx:
        for n, (status, queue) in enumerate((("RUNNABLE", "q"), ("RUNNING", "q"), ("RUNNABLE", "q2"))):
            tx.service_jobs.insert({"jobId": f"s{n}", "jobQueue": queue, "status": status, "createdAt": 1000 + n,
                                    "jobName": f"Train-{n}", "quotaShareName": "share"})
        job = tx.service_jobs.get("s1")
        job["status"] = "SUCCEEDED"
        tx.service_jobs.update(job)
        assert [doc["jobId"] for doc in tx.service_jobs.in_statuses(["RUNNABLE"])] == ["s0", "s2"]
        assert tx.service_jobs.count(["RUNNABLE", "SUCCEEDED"], queue_arn="q") == 2
        assert [doc["jobId"] for _, doc in tx.service_jobs.query(queue_arn="q", descending=True)] == ["s1", "s0"]
        assert [doc["jobId"] for _, doc in tx.service_jobs.query(name_prefix="train-2")] == ["s2"]
        assert tx.service_jobs.get("missing") is None


def test_log_lines_keep_arrival_order_and_groups_exist_through_streams_or_creation(store):
    with store.transaction() as tx:
        assert not tx.logs.group_exists("g") and tx.logs.last_event_seq() == 0
        tx.logs.ensure_stream("g", "s", 100)
        tx.logs.ensure_stream("g", "s", 999)  # already there: its creation time stays
        tx.logs.append("g", "s", [(5, "one"), (7, "two"), (7, "three")], 10)
        tx.resources.put(LOG_GROUP_KIND, "arn:created", "created", {"logGroupName": "created", "creationTime": 50})
        assert tx.logs.group_exists("g") and tx.logs.group_exists("created") and tx.logs.stream_exists("g", "s")
        assert tx.logs.last_events("g", "s") == (7, {"two", "three"})
        assert tx.logs.last_events("g", "none") == (0, set())
        events = tx.logs.stream_events("g", "s", limit=10)
        assert [e.message for e in events] == ["one", "two", "three"]
        assert [e.message for e in tx.logs.stream_events("g", "s", after_seq=events[0].seq, limit=10,
                                                         newest_first=True)] == ["three", "two"]
        assert [e.message for e in tx.logs.group_events("g", any_terms=["t"], limit=10)] == ["two", "three"]
        assert [(s.name, s.created_at, s.first_event, s.last_event) for s in tx.logs.streams("g", limit=10)] == [
            ("s", 100, 5, 7)]
        assert [(g.name, g.created_at, g.stored_bytes) for g in tx.logs.groups(limit=10)] == [
            ("created", 50, 0), ("g", 100, 11)]
        assert tx.logs.last_event_seq() == events[-1].seq
