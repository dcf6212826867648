"""The Swarm executor's node choice (batchemu.executors.swarm.node_choice), a pure function of the nodes as the
manager lists them and what batchemu's tasks take of each, and launch.place_task, which counts each choice
until its start returns. No Docker: the nodes are the manager's listing, written out."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from batchemu.executors import ContainerSpec, TaskSpec
from batchemu.executors.docker.arguments import MIN_MEMORY_MIB
from batchemu.executors.swarm import launch, survey
from batchemu.executors.swarm.node_choice import (
    Needs,
    NodeUse,
    choose_node,
    needs_of,
    node_report,
    tally,
    weighs_use,
)

GIB = 2**30


def node(node_id: str, cpus: float, memory_gib: int = 8, state: str = "ready", availability: str = "active",
         **resources) -> dict:
    """A node as `GET /nodes` lists it."""
    return {"ID": node_id, "Status": {"State": state, "Addr": "10.0.0.1"},
            "Spec": {"Availability": availability, "Role": "worker"},
            "Description": {"Hostname": node_id, "Resources": {"NanoCPUs": int(cpus * 10**9),
                                                              "MemoryBytes": memory_gib * GIB, **resources}}}


def container(vcpus: float = 1, memory_mib: int | None = 64, gpus: int = 0, name: str = "default") -> ContainerSpec:
    return ContainerSpec(image="busybox", command=["true"], environment={}, vcpus=vcpus, memory_mib=memory_mib,
                         log_group="/aws/batch/job", log_stream=f"jd/{name}/j", name=name, gpus=gpus)


def task(*containers: ContainerSpec) -> TaskSpec:
    return TaskSpec(job_id="j", attempt=1, containers=list(containers) or [container()])


def needs(vcpus: float, memory_gib: float = 0) -> Needs:
    return Needs(nano_cpus=int(vcpus * 10**9), memory_bytes=int(memory_gib * GIB))


def test_a_tasks_needs_are_its_containers_limits_added_up():
    assert needs_of(task(container(1.5, 100), container(0.25, None, name="side"))) == Needs(
        nano_cpus=1_750_000_000, memory_bytes=(100 + MIN_MEMORY_MIB) * 2**20)
    assert needs_of(task(container(memory_mib=1))).memory_bytes == MIN_MEMORY_MIB * 2**20  # the limit it gets
    assert needs_of(task(container(gpus=1))).gpus


def test_the_freest_node_that_holds_the_task_and_with_room_on_none_the_freest_anyway():
    nodes = [node("big", 4), node("small", 2)]
    assert choose_node(nodes, needs(2), {}) == "big"
    assert choose_node(nodes, needs(2), {"big": NodeUse(nano_cpus=3 * 10**9, memory_bytes=GIB, tasks=1)}) == "small"
    # Neither holds 3 vCPUs once big runs 3 of its 4: the freest anyway (small, 2 free against big's 1).
    assert choose_node(nodes, needs(3), {"big": NodeUse(nano_cpus=3 * 10**9)}) == "small"
    # The same free CPUs: the one with more memory free.
    assert choose_node([node("a", 2, 4), node("b", 2, 8)], needs(1), {}) == "b"
    # One that holds the task comes before a freer one that does not (here by memory).
    assert choose_node([node("cpus", 16, 1), node("memory", 2, 8)], needs(1, 4), {}) == "memory"


def test_only_ready_active_nodes_are_chosen_and_one_is_chosen_whatever_it_holds():
    down, drained = node("down", 64, state="down"), node("drained", 64, availability="drain")
    full = {"one": NodeUse(nano_cpus=10**12, memory_bytes=10**15, tasks=9)}
    assert choose_node([node("one", 1), down, drained], needs(8), full) == "one"
    assert choose_node([node("small", 1), node("big", 2), down, drained], needs(1), {}) == "big"
    assert choose_node([down, drained], needs(1), {}) is None   # no ready node: Swarm waits for one


def test_a_task_that_asks_for_gpus_is_placed_by_swarm():
    gpu_needs = needs_of(task(container(gpus=1)))
    nodes = [node("a", 4), node("b", 4)]
    assert choose_node(nodes, gpu_needs, {}) is None
    assert not weighs_use(nodes, gpu_needs)


def test_what_the_nodes_hold_is_weighed_only_with_two_ready_nodes_or_more():
    assert not weighs_use([node("one", 4), node("down", 4, state="down")], needs(1))
    assert weighs_use([node("one", 4), node("two", 4)], needs(1))


def test_what_tasks_take_adds_up_per_node_and_the_report_shows_what_is_free():
    used = tally([("a", 10**9, GIB), ("a", 2 * 10**9, GIB), ("b", 5 * 10**9, GIB)])
    assert used == {"a": NodeUse(3 * 10**9, 2 * GIB, 2), "b": NodeUse(5 * 10**9, GIB, 1)}
    gpu = {"GenericResources": [{"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 2}}]}
    report = node_report([node("a", 4, **gpu), node("b", 4), node("c", 1)], used)
    assert [(r["id"], r["freeVcpus"], r["freeMemoryMiB"], r["runningTasks"]) for r in report] == [
        ("a", 1.0, 6 * 1024, 2), ("b", 0.0, 7 * 1024, 1), ("c", 1.0, 8 * 1024, 0)]  # never below 0
    assert report[0]["gpus"] == {"NVIDIA-GPU": 2} and report[1]["gpus"] == {}
    assert report[0]["vcpus"] == 4 and report[0]["memoryMiB"] == 8 * 1024 and report[0]["state"] == "ready"


def test_starts_under_way_and_live_tasks_count_for_the_next_choice(monkeypatch):
    """Of the ready, active nodes, one that batchemu's live tasks (and the starts under way) leave room on, the
    freest; with room on none, the freest anyway."""
    ctx = SimpleNamespace(lock=threading.Lock(), choosing=threading.Lock(), placing={})
    listed: dict = {}
    monkeypatch.setattr(launch, "newest_tasks", lambda ctx, client, service_ids: listed)

    class Api:
        @staticmethod
        def services(filters=None):
            return []
    client = SimpleNamespace(api=Api())
    nodes = [node("big", 4), node("small", 2), node("down", 64, state="down"), node("drained", 64, availability="drain")]
    two = task(container(2))
    # Three starts under way at once: each choice counts for the next.
    assert [launch.place_task(ctx, client, nodes, two, f"t{i}") for i in range(3)] == ["big", "small", "big"]
    # Room on none (0 vCPUs free on each): the freest anyway, here by memory (big holds two tasks, small one).
    assert launch.place_task(ctx, client, nodes, task(container(1)), "t3") == "small"
    ctx.placing.clear()
    listed["s"] = survey.SwarmTask(service_id="s", labels={}, state="running", node_id="big", container_id="c",
                                   exit_code=None, error="", timestamp="", memory_limited=True, addresses={},
                                   nano_cpus=3 * 10**9, memory_bytes=2**30)
    assert launch.place_task(ctx, client, nodes, two) == "small"               # the live task takes 3 of big's 4
    assert launch.place_task(ctx, client, nodes[2:], task(container(1))) is None  # no ready node: Swarm waits
    assert ctx.placing == {}                                                  # a choice without a task id: not held
