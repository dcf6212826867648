"""What a task does next, from what its containers look like now: the contract's ordering rules (init
containers, dependsOn conditions, essential containers) as one pure function every executor can share.

An executor shows `step` each container's state as its engine reports it and carries out the answer:
start these, stop the running ones, or report the task over. Level-triggered: the same states give the
same answer, so a restarted server carries on from whatever the engine shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from batchemu.executors import COMPLETE, START, SUCCESS

PENDING, RUNNING, EXITED, FAILED_TO_START = "PENDING", "RUNNING", "EXITED", "FAILED_TO_START"


@dataclass
class Seen:
    """One container of a task as the engine shows it."""

    name: str
    state: str                      # PENDING (created, never started), RUNNING, EXITED, FAILED_TO_START
    exit_code: int | None = None
    essential: bool = True
    init: bool = False
    depends_on: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Step:
    start: list[str] = field(default_factory=list)   # containers to start now, in order
    stop: bool = False       # stop every running container: the task is ending
    never: set[str] = field(default_factory=set)     # pending containers that will never start
    over: bool = False       # nothing runs and nothing more will start: report the task


def _holds(condition: str, target: Seen | None) -> bool | None:
    """Whether a dependency holds now (True), may hold later (None), or never will (False)."""
    if target is None or target.state == FAILED_TO_START:
        return False
    if condition == START:
        return True if target.state in (RUNNING, EXITED) else None
    if target.state != EXITED:
        return None
    if condition == COMPLETE:
        return True
    if condition == SUCCESS:
        return target.exit_code == 0
    return False


def step(containers: list[Seen]) -> Step:
    by_name = {c.name: c for c in containers}
    out = Step()
    inits = [c for c in containers if c.init]
    ending = any(c.essential and not c.init and c.state in (EXITED, FAILED_TO_START) for c in containers)
    ending |= any(c.state == FAILED_TO_START or (c.state == EXITED and c.exit_code != 0) for c in inits)
    if ending:
        out.stop = True
        out.never = {c.name for c in containers if c.state == PENDING}
    else:
        never = out.never
        for init in inits:  # one at a time, in order
            if init.state == PENDING:
                out.start.append(init.name)
            if init.state != EXITED:
                break
        else:
            changed = True
            while changed:  # a START dependency on a container started in this step holds at once
                changed = False
                for c in containers:
                    if c.init or c.state != PENDING or c.name in out.start or c.name in never:
                        continue
                    verdicts = []
                    for name, condition in c.depends_on:
                        target = by_name.get(name)
                        if target is not None and target.name in out.start:
                            target = Seen(target.name, RUNNING)
                        if target is not None and target.name in never:
                            target = None
                        verdicts.append(_holds(condition, target))
                    if False in verdicts:
                        never.add(c.name)
                        changed = True
                    elif all(verdicts):
                        out.start.append(c.name)
                        changed = True
    running = any(c.state == RUNNING for c in containers)
    waiting = any(c.state == PENDING and c.name not in out.never for c in containers)
    out.over = not running and not waiting
    if not out.over and not running and not out.start and not out.stop:
        # Pending containers wait on each other only: nothing can ever start them.
        out.never = {c.name for c in containers if c.state == PENDING}
        out.over = True
    return out
