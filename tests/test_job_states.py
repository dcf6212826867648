"""The job state machine: one table, one function that moves a job, and the bulk moves (the store's fast
paths) checked against the same table before the store is asked."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

import batchemu
from batchemu.model import states
from batchemu.model.arrays import child_doc
from batchemu.store import JobRow, Store, job_columns

NOW = 1_000


def _job(job_id: str, status: str, **extra) -> dict:
    return {"jobId": job_id, "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/{job_id}", "jobName": job_id,
            "jobQueue": "q", "jobDefinition": "d", "status": status, "createdAt": NOW,
            "batchemu": {"transitions": [[status, NOW]]}, **extra}


@pytest.fixture
def store():
    store = Store(":memory:", job_wire=json.dumps, summary_wire=json.dumps, child_doc=child_doc)
    yield store
    store.close()


def _array(tx, parent_id: str, size: int) -> list[str]:
    """An array parent with `size` children as rows without documents, PENDING, as SubmitJob stores them."""
    parent = _job(parent_id, states.PENDING, arrayProperties={"size": size})
    tx.jobs.insert(parent)
    child = child_doc(parent, JobRow(job_id="", array_index=0, status=states.PENDING, created_at=NOW,
                                     entered_at=NOW, status_reason=None, stopped_at=None, is_cancelled=0,
                                     is_terminated=0))
    columns = job_columns(child)
    for key in ("job_id", "array_index", "has_doc", "parent_id", "array_size"):
        columns.pop(key)
    tx.arrays.insert_children(parent, columns, size)
    return [f"{parent_id}:{i}" for i in range(size)]


def test_transition_keeps_the_time_of_each_move_and_refuses_what_the_table_lacks():
    job = _job("j", states.SUBMITTED)
    states.transition(job, states.PENDING, NOW + 1)
    states.transition(job, states.FAILED, NOW + 2, "cancelled")
    assert (job["status"], job["statusReason"], job["stoppedAt"]) == (states.FAILED, "cancelled", NOW + 2)
    assert job["batchemu"]["transitions"] == [[states.SUBMITTED, NOW], [states.PENDING, NOW + 1],
                                              [states.FAILED, NOW + 2]]
    with pytest.raises(states.IllegalTransition):
        states.transition(job, states.RUNNABLE, NOW + 3)
    assert job["status"] == states.FAILED


def test_bulk_move_of_rows_follows_the_table(store):
    with store.transaction() as tx:
        children = _array(tx, "a", 3)
        states.move_rows(tx, children[:2], [states.PENDING], states.RUNNABLE, NOW + 5)
        states.move_rows(tx, children[2:], [states.PENDING], states.FAILED, NOW + 6, "Dependent Job failed",
                         is_cancelled=1)
        rows = [tx.jobs.row(job_id) for job_id in children]
    assert [(r["status"], r["entered_at"]) for r in rows] == [(states.RUNNABLE, NOW + 5), (states.RUNNABLE, NOW + 5),
                                                             (states.FAILED, NOW + 6)]
    assert (rows[2]["status_reason"], rows[2]["stopped_at"], rows[2]["is_cancelled"]) == ("Dependent Job failed",
                                                                                          NOW + 6, 1)


@pytest.mark.parametrize(("was", "status"), [
    ([states.SUCCEEDED], states.RUNNABLE),          # a finished job never moves again
    ([states.PENDING, states.FAILED], states.RUNNABLE),
    ([states.RUNNABLE], states.RUNNING),            # RUNNABLE goes through STARTING
    ([states.SUBMITTED], states.SUCCEEDED),
])
def test_a_disallowed_bulk_move_is_refused_before_the_store_is_asked(store, was, status):
    with store.transaction() as tx:
        children = _array(tx, "a", 2)
        with pytest.raises(states.IllegalTransition):
            states.move_rows(tx, children, was, status, NOW + 5)
        assert {tx.jobs.row(job_id)["status"] for job_id in children} == {states.PENDING}


def test_the_sql_fast_path_moves_as_the_table_does(store, monkeypatch):
    with store.transaction() as tx:
        tx.jobs.insert(_job("ready", states.SUBMITTED))
        tx.jobs.insert(_job("waits", states.SUBMITTED, dependsOn=[{"jobId": "ready"}]))
        assert states.queue_ready_submitted(tx, NOW + 7) == 1
        ready, waits = tx.jobs.get("ready"), tx.jobs.get("waits")
    assert ready["status"] == states.RUNNABLE and waits["status"] == states.SUBMITTED
    assert ready["batchemu"]["transitions"] == [[states.SUBMITTED, NOW], [states.PENDING, NOW + 7],
                                                [states.RUNNABLE, NOW + 7]]
    # A table without PENDING -> RUNNABLE: the fast path must refuse rather than move behind its back.
    monkeypatch.setitem(states.TRANSITIONS, states.PENDING, frozenset({states.FAILED}))
    with store.transaction() as tx:
        tx.jobs.insert(_job("later", states.SUBMITTED))
        with pytest.raises(states.IllegalTransition):
            states.queue_ready_submitted(tx, NOW + 8)
        assert tx.jobs.get("later")["status"] == states.SUBMITTED


def test_a_node_starts_over_from_anywhere_but_other_moves_are_the_jobs():
    for status, targets in states.TRANSITIONS.items():
        assert states.NODE_TRANSITIONS[status] - targets <= {states.RUNNABLE}
        assert targets <= states.NODE_TRANSITIONS[status]
    node = _job("p#1", states.FAILED)
    states.transition(node, states.RUNNABLE, NOW + 1, table=states.NODE_TRANSITIONS)
    assert node["status"] == states.RUNNABLE


def test_only_the_model_moves_rows_in_bulk():
    """The store's fast paths change statuses without reading the table: only model/states.py may call them."""
    root = pathlib.Path(batchemu.__file__).parent
    fast_paths = re.compile(r"(?<!states)\.(set_children_status|queue_ready_submitted)\(")  # tx.X(, not states.X(
    callers = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                     if fast_paths.search(path.read_text()))
    assert callers == ["model/states.py"]
