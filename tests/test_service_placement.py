"""Service-job placement as a pure function: capacity in instances, queue priority, fair share, quota shares
lending and borrowing, and who is preempted."""

from __future__ import annotations

import pytest

from batchemu.scheduler.placement import FairShare
from batchemu.scheduler.service_placement import Environment, Job, Queue, QuotaShare, decide

M5 = "ml.m5.large"
G5 = "ml.g5.xlarge"


def job(job_id: str, seq: int, instances: int = 1, kind: str = M5, **extra) -> Job:
    return Job(job_id=job_id, seq=seq, instances=instances, instance_type=kind, **extra)


def env(limits: dict[str, int]) -> dict[str, Environment]:
    return {"se": Environment(arn="se", name="se", limits=dict(limits))}


def placed(decision) -> list[str]:
    return [job_id for job_id, _ in decision.placements]


def test_instances_count_against_num_instances_and_smaller_jobs_backfill():
    queue = Queue(arn="q", priority=1, environment="se",
                  candidates=[job("a", 1, 3), job("b", 2, 2), job("c", 3, 1)])
    decision = decide([queue], env({"NUM_INSTANCES": 4}))
    assert placed(decision) == ["a", "c"]
    assert decision.waiting == {}


@pytest.mark.rule("CapacityLimit.capacityUnit.instance_type")
def test_instance_type_limits_and_a_job_that_can_never_fit():
    queue = Queue(arn="q", priority=1, environment="se",
                  candidates=[job("big", 1, 5), job("gpu", 2, 1, G5), job("m5", 3, 2)])
    decision = decide([queue], env({M5: 4}))
    assert placed(decision) == ["m5"]
    assert "cannot meet the capacity requirement of the job: 5 instances of ml.m5.large" in decision.waiting["big"]
    assert "has no capacity limit for ml.g5.xlarge" in decision.waiting["gpu"]


def test_running_jobs_hold_capacity_and_higher_priority_queues_go_first():
    environments = env({"NUM_INSTANCES": 2})
    environments["se"].used = {"NUM_INSTANCES": 1, M5: 1}
    low = Queue(arn="low", priority=1, environment="se", candidates=[job("old", 1)])
    high = Queue(arn="high", priority=9, environment="se", candidates=[job("new", 2)])
    assert placed(decide([low, high], environments)) == ["new"]


@pytest.mark.rule("UpdateServiceJob.schedulingPriority.order")
def test_fair_share_offers_the_share_with_fewest_instances_then_priority():
    queue = Queue(arn="q", priority=1, environment="se", fair_share=FairShare(),
                  running=[job("r", 0, 2, share="busy")],
                  candidates=[job("b1", 1, share="busy"), job("i1", 2, share="idle", priority=1),
                              job("i2", 3, share="idle", priority=5)])
    assert placed(decide([queue], env({"NUM_INSTANCES": 5}))) == ["i2", "i1", "b1"]


def quota_queue(candidates, running=(), **shares) -> Queue:
    return Queue(arn="q", priority=1, environment="se", candidates=list(candidates), running=list(running),
                 quota_shares={name: QuotaShare(name=name, **config) for name, config in shares.items()})


def test_a_reserve_share_lends_nothing():
    queue = quota_queue([job("b1", 1, quota_share="b"), job("b2", 2, quota_share="b")],
                        a={"limits": {M5: 1}, "strategy": "RESERVE"},
                        b={"limits": {M5: 1}, "strategy": "LEND_AND_BORROW"})
    decision = decide([queue], env({M5: 2}))
    assert placed(decision) == ["b1"]
    assert decision.preempt == []


def test_borrowing_idle_capacity_up_to_the_borrow_limit():
    lender = {"limits": {M5: 4}, "strategy": "LEND"}
    jobs = [job(f"b{i}", i, quota_share="b") for i in range(1, 6)]
    unlimited = quota_queue(jobs, a=lender, b={"limits": {M5: 2}, "strategy": "LEND_AND_BORROW"})
    assert placed(decide([unlimited], env({M5: 6}))) == ["b1", "b2", "b3", "b4", "b5"]
    half = quota_queue(jobs, a=lender, b={"limits": {M5: 2}, "strategy": "LEND_AND_BORROW", "borrow_limit": 50})
    assert placed(decide([half], env({M5: 6}))) == ["b1", "b2", "b3"]
    lend_only = quota_queue(jobs, a=lender, b={"limits": {M5: 2}, "strategy": "LEND"})
    assert placed(decide([lend_only], env({M5: 6}))) == ["b1", "b2"]


def test_a_lender_reclaims_by_preempting_borrowed_jobs_lowest_priority_newest_first():
    running = [job("own", 1, quota_share="b", priority=0), job("x", 2, quota_share="b", priority=5),
               job("y", 3, quota_share="b", priority=1), job("z", 4, quota_share="b", priority=1)]
    environments = env({M5: 4})
    environments["se"].used = {"NUM_INSTANCES": 4, M5: 4}
    queue = quota_queue([job("a1", 5, 2, quota_share="a")], running,
                        a={"limits": {M5: 3}, "strategy": "LEND"},
                        b={"limits": {M5: 1}, "strategy": "LEND_AND_BORROW"})
    decision = decide([queue], environments)
    assert placed(decision) == []
    # b holds 3 instances beyond its own 1: two of its jobs go, lowest priority first, then newest first.
    assert [job_id for job_id, _ in decision.preempt] == ["own", "z"]
    assert decision.preempt[0][1] == "Preempted: capacity reclaimed by quota share a"
    # The next pass, with those two still stopping, preempts nobody else.
    again = quota_queue([job("a1", 5, 2, quota_share="a")],
                        [r if r.job_id not in ("own", "z") else job(r.job_id, r.seq, quota_share="b", preempting=True)
                         for r in running],
                        a={"limits": {M5: 3}, "strategy": "LEND"}, b={"limits": {M5: 1}, "strategy": "LEND_AND_BORROW"})
    assert decide([again], environments).preempt == []


def test_in_share_preemption_only_when_enabled_and_only_lower_priority():
    running = [job("low", 1, quota_share="a", priority=1)]
    environments = env({M5: 2})
    environments["se"].used = {"NUM_INSTANCES": 1, M5: 1}
    for enabled, expected in ((True, ["low"]), (False, [])):
        queue = quota_queue([job("high", 2, quota_share="a", priority=9), job("same", 3, quota_share="a", priority=1)],
                            running, a={"limits": {M5: 1}, "strategy": "RESERVE", "in_share_preemption": enabled})
        assert [job_id for job_id, _ in decide([queue], environments).preempt] == expected


def test_jobs_of_a_disabled_quota_share_wait_with_a_reason():
    queue = quota_queue([job("a1", 1, quota_share="a")], a={"limits": {M5: 1}, "enabled": False})
    decision = decide([queue], env({M5: 1}))
    assert placed(decision) == [] and "quota share a is not ENABLED" in decision.waiting["a1"]


def test_capacity_a_share_waits_for_is_not_idle_for_borrowers():
    queue = quota_queue([job("b-old", 1, quota_share="b"), job("a-new", 2, quota_share="a")],
                        [job("b-own", 0, quota_share="b")],
                        a={"limits": {M5: 1}, "strategy": "LEND"}, b={"limits": {M5: 1}, "strategy": "LEND_AND_BORROW"})
    environments = env({M5: 2})
    environments["se"].used = {"NUM_INSTANCES": 1, M5: 1}
    assert placed(decide([queue], environments)) == ["a-new"]
