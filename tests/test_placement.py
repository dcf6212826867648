"""Placement as a pure function: FIFO and fair-share order, capacity, reservation, consumable resources."""

from __future__ import annotations

from batchemu.scheduler.placement import (
    CONSUMABLE_WAIT,
    TOO_BIG,
    Candidate,
    ComputeEnvironment,
    FairShare,
    Queue,
    Snapshot,
    decide,
    dispatch_order,
)


def jobs(*specs) -> list[Candidate]:
    """Candidates in submit order from (share, priority) or keyword dicts."""
    out = []
    for seq, spec in enumerate(specs, 1):
        fields = spec if isinstance(spec, dict) else {"share": spec[0], "priority": spec[1]}
        out.append(Candidate(job_id=f"j{seq}", seq=seq, **fields))
    return out


def one_queue(candidates, *, capacity: float = 4, fair: FairShare | None = None, running: float = 0.0,
              used: float = 0.0, available=None) -> Snapshot:
    ce = ComputeEnvironment(arn="ce", platform="EC2", capacity=capacity, used=used)
    queue = Queue(arn="q", priority=1, compute_environments=["ce"], candidates=candidates,
                  largest={"EC2": capacity}, fair_share=fair, running_vcpus=running)
    return Snapshot(queues=[queue], compute_environments={"ce": ce}, available=available or {})


def placed(snapshot: Snapshot) -> list[str]:
    return [job_id for job_id, _, _ in decide(snapshot).placements]


def test_fifo_takes_the_oldest_first_and_backfills_smaller_jobs():
    candidates = jobs({"vcpus": 2}, {"vcpus": 3}, {"vcpus": 1}, {"vcpus": 1})
    assert placed(one_queue(candidates, capacity=4)) == ["j1", "j3", "j4"]


def test_fair_share_alternates_between_equal_shares():
    candidates = jobs(*[("A", 0)] * 4, *[("B", 0)] * 4)
    order = [job.job_id for job in dispatch_order(one_queue(candidates, fair=FairShare()).queues[0])]
    assert order == ["j1", "j5", "j2", "j6", "j3", "j7", "j4", "j8"]
    assert placed(one_queue(candidates, capacity=4, fair=FairShare())) == ["j1", "j5", "j2", "j6"]


def test_lower_weight_factor_gets_more_capacity_and_prefixes_match():
    fair = FairShare(weights=[("gold*", 0.5), ("bronze", 1.0)])
    candidates = jobs(*[("bronze", 0)] * 6, *[("gold-team", 0)] * 6)
    picked = placed(one_queue(candidates, capacity=6, fair=fair))
    gold = [j for j in picked if int(j[1:]) > 6]
    assert len(gold) == 4 and len(picked) == 6


def test_share_with_less_decayed_usage_goes_first():
    fair = FairShare(usage={"A": 500.0, "B": 10.0})
    candidates = jobs(("A", 0), ("A", 0), ("B", 0))
    assert placed(one_queue(candidates, capacity=1, fair=fair)) == ["j3"]


def test_higher_scheduling_priority_first_within_a_share():
    candidates = jobs(("A", 1), ("A", 50), ("A", 10))
    assert placed(one_queue(candidates, capacity=3, fair=FairShare())) == ["j2", "j3", "j1"]


def test_compute_reservation_keeps_room_for_shares_not_yet_active():
    # 50% reserved with one active share: only half of the 4 vCPUs may be used.
    fair = FairShare(compute_reservation=50, active_shares=1)
    assert placed(one_queue(jobs(*[("A", 0)] * 4), capacity=4, fair=fair)) == ["j1", "j2"]
    # Two active shares: 25% reserved, 3 vCPUs usable.
    fair = FairShare(compute_reservation=50, active_shares=2)
    assert len(placed(one_queue(jobs(*[("A", 0)] * 2, *[("B", 0)] * 2), capacity=4, fair=fair))) == 3


def test_job_bigger_than_every_compute_environment_waits_with_aws_reason():
    decision = decide(one_queue(jobs({"vcpus": 8}, {"vcpus": 1}), capacity=4))
    assert decision.waiting == {"j1": TOO_BIG}
    assert [p[0] for p in decision.placements] == ["j2"]


def test_consumable_resource_gates_and_is_held_for_the_waiting_job():
    need = {"consumables": (("lic", 2),)}
    small = {"consumables": (("lic", 1),)}
    decision = decide(one_queue(jobs(need, small, {"vcpus": 1}), capacity=4, available={"lic": 1}))
    # j1 waits for 2 licences; j2 may not take the one free licence from it; j3 needs none and runs.
    assert [p[0] for p in decision.placements] == ["j3"]
    assert decision.waiting["j1"].startswith(CONSUMABLE_WAIT) and "lic" in decision.waiting["j1"]
    decision = decide(one_queue(jobs(need, need), capacity=4, available={"lic": 3}))
    assert [p[0] for p in decision.placements] == ["j1"]


def test_full_compute_environment_places_nothing():
    assert placed(one_queue(jobs({"vcpus": 1}), capacity=4, used=4)) == []


def test_attempt_phases_are_a_table_every_phase_reaches_ended_or_is_requeued():
    from batchemu.model.attempts import ENDED, PHASES, REQUEUED

    def reaches_end(phase, seen=()):
        return phase in (ENDED, REQUEUED) or any(reaches_end(n, seen + (phase,)) for n in PHASES[phase]
                                                 if n not in seen)
    assert all(reaches_end(phase) for phase in PHASES)
    assert PHASES[ENDED] == frozenset() and PHASES[REQUEUED] == frozenset()
