"""batchemu.executors.tasks.step: the task ordering rules every executor shares, without an engine."""

from __future__ import annotations

from batchemu.executors import ContainerResult, Outcome, TaskExit
from batchemu.executors.tasks import EXITED, FAILED_TO_START, PENDING, RUNNING, Seen, step


def test_one_container_task_starts_then_is_over_when_it_exits():
    assert step([Seen("default", PENDING)]).start == ["default"]
    running = step([Seen("default", RUNNING)])
    assert (running.start, running.stop, running.over) == ([], False, False)
    ended = step([Seen("default", EXITED, 3)])
    assert ended.over and ended.stop and not ended.start


def test_init_containers_go_one_at_a_time_and_a_failure_ends_the_task():
    containers = [Seen("a", PENDING, init=True, essential=False), Seen("b", PENDING, init=True, essential=False),
                  Seen("main", PENDING)]
    assert step(containers).start == ["a"]
    containers[0] = Seen("a", EXITED, 0, init=True, essential=False)
    assert step(containers).start == ["b"]
    containers[1] = Seen("b", EXITED, 0, init=True, essential=False)
    assert step(containers).start == ["main"]
    failed = step([Seen("a", EXITED, 1, init=True, essential=False), Seen("main", PENDING)])
    assert (failed.start, failed.never, failed.over) == ([], {"main"}, True)


def test_dependency_conditions():
    sidecar, worker = Seen("sidecar", PENDING, essential=False), Seen("work", PENDING, depends_on=[("sidecar", "START")])
    assert step([sidecar, worker]).start == ["sidecar", "work"]  # START holds once its container is started
    waiting = step([Seen("prep", RUNNING, essential=False), Seen("work", PENDING, depends_on=[("prep", "COMPLETE")])])
    assert waiting.start == [] and not waiting.over
    done = step([Seen("prep", EXITED, 2, essential=False), Seen("work", PENDING, depends_on=[("prep", "COMPLETE")])])
    assert done.start == ["work"]
    never = step([Seen("prep", EXITED, 2, essential=False), Seen("work", PENDING, depends_on=[("prep", "SUCCESS")])])
    assert (never.start, never.never, never.over) == ([], {"work"}, True)
    cannot = step([Seen("prep", FAILED_TO_START, essential=False), Seen("work", PENDING, depends_on=[("prep", "START")])])
    assert cannot.never == {"work"} and cannot.over


def test_an_essential_exit_stops_the_others_and_a_sidecar_exit_does_not():
    ending = step([Seen("main", EXITED, 0), Seen("sidecar", RUNNING, essential=False)])
    assert (ending.stop, ending.over) == (True, False)
    assert step([Seen("main", EXITED, 0), Seen("sidecar", EXITED, 143, essential=False)]).over
    carrying_on = step([Seen("main", RUNNING), Seen("sidecar", EXITED, 1, essential=False)])
    assert (carrying_on.stop, carrying_on.over) == (False, False)


def test_the_first_failed_essential_container_decides_the_task():
    results = [ContainerResult("sidecar", Outcome.EXITED, 1, essential=False),
               ContainerResult("a", Outcome.EXITED, 0), ContainerResult("b", Outcome.OOM_KILLED, 137)]
    assert TaskExit("j", 1, "t", results).main.name == "b"
    assert TaskExit("j", 1, "t", results[:2]).main.name == "a"
