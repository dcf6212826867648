"""Capacity history: the scheduler's samples of each compute environment's vCPUs in use and desiredvCpus (the
dashboard's capacity chart), written on change at most every few seconds and kept for a bounded time."""

from __future__ import annotations

from itertools import pairwise

import pytest

from batchemu.config import Config
from batchemu.model import arrays
from batchemu.protocol.serializer import projector
from batchemu.scheduler import capacity_history
from batchemu.store import Store
from tests.conftest import make_queue, register, wait_for_status
from tests.waiting import wait_for


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2)


def test_a_sample_is_due_on_change_at_most_every_few_seconds_and_at_least_every_minute():
    assert capacity_history.due(None, False, 0)
    assert not capacity_history.due(0, True, 1_000)
    assert capacity_history.due(0, True, 2_000)
    assert not capacity_history.due(0, False, 59_000)
    assert capacity_history.due(0, False, 60_000)


def test_samples_are_read_from_a_time_on_with_the_one_before_and_forgotten_when_old():
    store = Store(":memory:", job_wire=projector("batch", "JobDetail"), summary_wire=projector("batch", "JobSummary"),
                  child_doc=arrays.child_doc)
    with store.transaction() as tx:
        tx.capacity_samples.add([("ce-a", 1_000, 0.0, 0), ("ce-a", 5_000, 2.0, 2), ("ce-a", 9_000, 1.0, 2),
                                 ("ce-b", 1_000, 0.0, None)])
    with store.read() as tx:
        # From 6 s on: the sample before (the value at 6 s) and those after.
        assert tx.capacity_samples.since(6_000) == {"ce-a": [(5_000, 2.0, 2), (9_000, 1.0, 2)],
                                                    "ce-b": [(1_000, 0.0, None)]}
    with store.transaction() as tx:
        tx.capacity_samples.forget_before(9_000)
    with store.read() as tx:
        assert tx.capacity_samples.since(0) == {"ce-a": [(9_000, 1.0, 2)]}


def test_the_scheduler_samples_the_vcpus_of_running_jobs_and_desired_vcpus(batch_client, batchemu_server):
    batchemu_server.config.scale_down_delay = 1
    queue = make_queue(batch_client, max_vcpus=4)
    environment = [{"name": "BATCHEMU_SIMULATE_SECONDS", "value": "3"}]
    definition = register(batch_client, ["true"], vcpus="2", image="registry.invalid/nothing:1",
                          containerProperties={"environment": environment})
    jobs = [batch_client.submit_job(jobName=f"busy-{i}", jobQueue=queue["name"],
                                    jobDefinition=definition["jobDefinitionArn"])["jobId"] for i in range(2)]
    for job_id in jobs:
        wait_for_status(batch_client, job_id)

    def samples() -> list:
        with batchemu_server.store.read() as tx:
            return tx.capacity_samples.since(0).get(queue["ceArn"], [])
    seen = wait_for(samples, lambda found: found and found[-1][1:] == (0.0, 0),
                    "a sample of the compute environment scaled in again", timeout=15)
    assert any(used == 4.0 and desired == 4 for _, used, desired in seen), seen
    times = [at for at, _, _ in seen]
    assert all(later - earlier >= capacity_history.SAMPLE_SECONDS * 1000 for earlier, later in pairwise(times))
