"""Managed scaling: desiredvCpus follows demand between minvCpus and maxvCpus and falls back after a delay."""

from __future__ import annotations

import contextlib

import pytest

from batchemu.config import Config
from batchemu.context import Context
from batchemu.model.arrays import child_doc
from batchemu.scheduler import resource_status, scaling
from batchemu.service import compute_environments
from batchemu.store import Store
from tests.conftest import make_queue, needs_docker, register, unique, wait_for_status, wait_until

EC2 = {"type": "EC2", "minvCpus": 0, "maxvCpus": 16, "desiredvCpus": 0}
DELAY_MS = 60_000
T0 = 1_700_000_000_000
DELAY_SECONDS = 30


def step(resources: dict, demand: float, timer: dict | None, now: int, enabled: bool = True) -> tuple[dict, dict]:
    """One reconcile of a CE by the pure functions: (computeResources after, scale-down clock after)."""
    desired = scaling.desired_vcpus(resources, demand, timer and timer["since"], now, DELAY_MS, enabled)
    after = {**resources, "desiredvCpus": desired}
    return after, scaling.scale_down_timer(after, demand, timer, now)


# -- the pure functions, on a fixed clock ------------------------------------------------------------------
def test_desired_rises_with_demand_in_whole_vcpus():
    assert scaling.desired_vcpus(EC2, 2.5, None, T0, DELAY_MS, True) == 3
    assert scaling.desired_vcpus(EC2, 0.2 + 2.2 + 0.6, None, T0, DELAY_MS, True) == 3
    assert scaling.desired_vcpus(EC2, 3.0, None, T0, DELAY_MS, True) == 3
    assert scaling.desired_vcpus({**EC2, "desiredvCpus": 3}, 7, None, T0, DELAY_MS, True) == 7


def test_desired_is_clamped_to_min_and_max():
    assert scaling.desired_vcpus(EC2, 40, None, T0, DELAY_MS, True) == 16
    at_min = {**EC2, "minvCpus": 4, "desiredvCpus": 4}
    assert scaling.desired_vcpus(at_min, 1, None, T0, DELAY_MS, True) == 4
    assert scaling.desired_vcpus(at_min, 0, T0, T0 + 10 * DELAY_MS, DELAY_MS, True) == 4
    # A fully used CE starts no scale-down clock, even with the demand past maxvCpus.
    assert scaling.scale_down_timer({**EC2, "desiredvCpus": 16}, 40, None, T0) is None
    assert scaling.scale_down_timer(at_min, 0, None, T0) is None


def test_idle_ce_falls_back_to_min_after_the_delay_and_not_before():
    resources, timer = step({**EC2, "minvCpus": 2, "desiredvCpus": 2}, 6, None, T0)
    assert (resources["desiredvCpus"], timer) == (6, None)
    resources, timer = step(resources, 0, timer, T0 + 1000)  # the last job ends
    assert (resources["desiredvCpus"], timer) == (6, {"since": T0 + 1000, "vcpus": 2})
    resources, timer = step(resources, 0, timer, T0 + 1000 + DELAY_MS - 1)
    assert resources["desiredvCpus"] == 6
    resources, timer = step(resources, 0, timer, T0 + 1000 + DELAY_MS)
    assert (resources["desiredvCpus"], timer) == (2, None)


def test_scale_down_clock_restarts_when_demand_drops_again():
    resources, timer = step({**EC2, "desiredvCpus": 8}, 8, None, T0)
    resources, timer = step(resources, 3, timer, T0 + 1000)  # five vCPUs freed
    resources, timer = step(resources, 5, timer, T0 + 2000)  # demand comes back part way: same clock
    assert timer == {"since": T0 + 1000, "vcpus": 5}
    resources, timer = step(resources, 0, timer, T0 + 3000)  # the last jobs end: their vCPUs get the whole delay
    assert timer == {"since": T0 + 3000, "vcpus": 0}
    resources, timer = step(resources, 0, timer, T0 + 1000 + DELAY_MS)
    assert resources["desiredvCpus"] == 8
    resources, timer = step(resources, 0, timer, T0 + 3000 + DELAY_MS)
    assert (resources["desiredvCpus"], timer) == (0, None)


def test_part_of_desired_unused_for_the_delay_comes_down_to_the_demand():
    resources, timer = step({**EC2, "desiredvCpus": 8}, 3, None, T0)
    resources, timer = step(resources, 3, timer, T0 + DELAY_MS)
    assert (resources["desiredvCpus"], timer) == (3, None)


def test_disabled_ce_does_not_scale_out_but_still_falls_back_to_min():
    resources = {**EC2, "minvCpus": 1, "desiredvCpus": 2}
    resources, timer = step(resources, 10, None, T0, enabled=False)
    assert (resources["desiredvCpus"], timer) == (2, None)
    resources, timer = step(resources, 0, timer, T0 + 1000, enabled=False)
    resources, timer = step(resources, 0, timer, T0 + 1000 + DELAY_MS, enabled=False)
    assert (resources["desiredvCpus"], timer) == (1, None)  # minvCpus is kept while DISABLED


def test_only_managed_ec2_and_spot_compute_environments_scale():
    assert scaling.scales({"type": "MANAGED", "computeResources": {"type": "EC2"}})
    assert scaling.scales({"type": "MANAGED", "computeResources": {"type": "SPOT"}})
    assert not scaling.scales({"type": "MANAGED", "computeResources": {"type": "FARGATE"}})
    assert not scaling.scales({"type": "MANAGED", "computeResources": {"type": "FARGATE_SPOT"}})
    assert not scaling.scales({"type": "UNMANAGED", "unmanagedvCpus": 8})


def test_scale_down_delay_from_policy_default_and_server_setting():
    policy = {**EC2, "scalingPolicy": {"minScaleDownDelayMinutes": 30}}
    unset = {**EC2, "scalingPolicy": {"minScaleDownDelayMinutes": 0}}
    assert scaling.scale_down_delay_ms(policy, None) == 30 * 60_000
    assert scaling.scale_down_delay_ms(unset, None) == scaling.DEFAULT_DELAY_SECONDS * 1000
    assert scaling.scale_down_delay_ms(EC2, None) == scaling.DEFAULT_DELAY_SECONDS * 1000
    assert scaling.scale_down_delay_ms(EC2, 2.5) == 2500      # the setting replaces the default
    assert scaling.scale_down_delay_ms(policy, 2.5) == 2500   # and caps the policy
    assert scaling.scale_down_delay_ms(policy, 7200) == 30 * 60_000


# -- reconcile against a store, on a fixed clock, with a given demand ----------------------------------------
@pytest.fixture
def now() -> list[int]:
    """The fixed clock of `ctx`: tests move it by changing now[0]."""
    return [T0]


@pytest.fixture
def ctx(now):
    store = Store(":memory:", job_wire=lambda doc: "{}", summary_wire=lambda doc: "{}", child_doc=child_doc)
    yield Context(store=store, config=Config(state=":memory:", scale_down_delay=60), clock=lambda: now[0])
    store.close()


def create_ce(ctx, name: str, **request) -> str:
    arn = compute_environments.create_compute_environment(
        ctx, {"computeEnvironmentName": name, "type": "MANAGED", **request})["computeEnvironmentArn"]
    resource_status.settle_compute_environments(ctx)
    return arn


def stored(ctx, arn: str) -> dict:
    with ctx.store.transaction() as tx:
        return tx.resources.get(compute_environments.KIND, arn)


def test_reconcile_scales_managed_ec2_only_and_keeps_its_clock_internal(ctx, now):
    ec2 = create_ce(ctx, "ec2", computeResources={**EC2, "minvCpus": 1, "desiredvCpus": 1})
    fargate = create_ce(ctx, "fargate", computeResources={"type": "FARGATE", "maxvCpus": 8, "securityGroupIds": ["sg-1"]})
    unmanaged = create_ce(ctx, "unmanaged", type="UNMANAGED")
    demand = {ec2: 5.0, fargate: 4.0, unmanaged: 4.0}
    untouched = {arn: stored(ctx, arn) for arn in (fargate, unmanaged)}
    scaling.reconcile(ctx, lambda tx, config: demand)
    assert stored(ctx, ec2)["computeResources"]["desiredvCpus"] == 5
    assert {arn: stored(ctx, arn) for arn in (fargate, unmanaged)} == untouched
    demand[ec2] = 0.0
    now[0] += 1000
    scaling.reconcile(ctx, lambda tx, config: demand)
    doc = stored(ctx, ec2)
    assert doc["computeResources"]["desiredvCpus"] == 5
    assert doc["batchemu"][scaling.TIMER_KEY] == {"since": T0 + 1000, "vcpus": 1}
    now[0] += 60_000
    scaling.reconcile(ctx, lambda tx, config: demand)
    doc = stored(ctx, ec2)
    assert doc["computeResources"]["desiredvCpus"] == 1
    assert scaling.TIMER_KEY not in doc["batchemu"]


# -- end to end: boto3 against a server whose scale-down delay is shortened ----------------------------------
@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, scale_down_delay=DELAY_SECONDS)


@contextlib.contextmanager
def clock_ahead(server, ahead_ms: int):
    """Run the server's clock `ahead_ms` in the future inside the block (delays without waiting)."""
    real_clock = server.ctx.clock
    server.ctx.clock = lambda: real_clock() + ahead_ms
    try:
        server.scheduler.notify()
        yield
    finally:
        server.ctx.clock = real_clock


def resources_of(batch_client, name: str) -> dict:
    ce = batch_client.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert "batchemu" not in ce and "batchemu" not in ce["computeResources"]
    return ce["computeResources"]


def desired_becomes(batch_client, name: str, vcpus: int, timeout: float = 10) -> dict:
    def check():
        resources = resources_of(batch_client, name)
        return resources if resources["desiredvCpus"] == vcpus else None
    return wait_until(check, timeout)


def scale_down_clock_started(server, arn: str) -> None:
    """Wait until a pass has seen the CE's vCPUs unused (its clock is internal: not on the wire)."""
    def started():
        with server.store.transaction() as tx:
            return scaling.TIMER_KEY in tx.resources.get(compute_environments.KIND, arn).get("batchemu", {})
    wait_until(started, 10)


def with_min_vcpus(batch_client, queue: dict, vcpus: int) -> None:
    batch_client.update_compute_environment(computeEnvironment=queue["ce"], computeResources={"minvCpus": vcpus})
    wait_until(lambda: batch_client.describe_compute_environments(
        computeEnvironments=[queue["ce"]])["computeEnvironments"][0]["status"] == "VALID", 10)


def test_runnable_demand_raises_desired_and_falls_back_once_the_queue_is_disabled(batch_client, batchemu_server):
    queue = make_queue(batch_client, max_vcpus=8)
    batchemu_server.executor.status = lambda: (False, "engine held away by the test")  # jobs wait in RUNNABLE
    definition = register(batch_client, ["true"], vcpus="2")
    ids = [batch_client.submit_job(jobName=unique("job"), jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"])["jobId"] for _ in range(3)]
    for job_id in ids:
        wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    assert desired_becomes(batch_client, queue["ce"], 6)["minvCpus"] == 0
    batch_client.update_job_queue(jobQueue=queue["name"], state="DISABLED")  # its jobs ask for nothing now
    wait_until(lambda: batch_client.describe_job_queues(jobQueues=[queue["name"]])["jobQueues"][0]["status"]
               == "VALID", 10)
    scale_down_clock_started(batchemu_server, queue["ceArn"])
    assert resources_of(batch_client, queue["ce"])["desiredvCpus"] == 6  # the delay has not passed
    with clock_ahead(batchemu_server, (DELAY_SECONDS + 1) * 1000):
        desired_becomes(batch_client, queue["ce"], 0)


@needs_docker
def test_desired_follows_running_jobs_and_falls_back_to_min_after_the_delay(batch_client, batchemu_server):
    queue = make_queue(batch_client, max_vcpus=4)
    with_min_vcpus(batch_client, queue, 1)
    assert resources_of(batch_client, queue["ce"])["desiredvCpus"] == 1
    definition = register(batch_client, ["sleep", "60"])
    ids = [batch_client.submit_job(jobName=unique("job"), jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"])["jobId"] for _ in range(3)]
    for job_id in ids:
        wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    desired_becomes(batch_client, queue["ce"], 3)
    for job_id in ids:
        batch_client.terminate_job(jobId=job_id, reason="test over")
    for job_id in ids:
        assert wait_for_status(batch_client, job_id, timeout=30)["status"] == "FAILED"
    scale_down_clock_started(batchemu_server, queue["ceArn"])
    assert resources_of(batch_client, queue["ce"])["desiredvCpus"] == 3  # idle, but not for the delay yet
    with clock_ahead(batchemu_server, (DELAY_SECONDS + 1) * 1000):
        assert desired_becomes(batch_client, queue["ce"], 1)["minvCpus"] == 1
