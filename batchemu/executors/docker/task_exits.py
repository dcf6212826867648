"""What the engine shows of this server's tasks, and their exits: running(), collect_exits() (carried on
from die events, or from a list of the containers now and then), each task advanced by
batchemu.executors.tasks.step and reported once it is over, with its containers' results."""

from __future__ import annotations

import json
import logging
import time

import docker
from docker.errors import NotFound

from batchemu.executors import ContainerResult, Outcome, StartFailure, TaskExit, tasks
from batchemu.executors.docker.docker_context import LIVE_STATES, DockerContext, Removal
from batchemu.executors.docker.engine import (
    LABEL_CONTAINER,
    LABEL_DEPENDS_ON,
    LABEL_ENDS_ON_FAILURE,
    LABEL_ESSENTIAL,
    LABEL_INDEX,
    LABEL_INIT,
    UNREACHABLE,
    attempt_key,
    epoch_ms,
)
from batchemu.executors.docker.task_removal import remove_idle_networks, remove_later, stop_later
from batchemu.executors.docker.task_start import start_container

log = logging.getLogger("batchemu.executors.docker")

REMOVING = "removing"     # the engine's status of a container whose removal is under way
EXIT_SCAN_SECONDS = 2.0   # longest time between two lists of this server's containers without a die event


def running(ctx: DockerContext) -> dict[tuple[str, int], str]:
    """Tasks with a container that runs or is still to start. Raises EngineUnavailable rather than
    answer "none" when the engine cannot be asked."""
    client = ctx.client()
    try:
        listed = ctx.list_tasks(client)
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    # The scheduler takes a task missing from this list and from the next collect_exits() for one the
    # engine lost: that call must list the stopped containers, even before the die event of one is handled.
    ctx.events.died.set()
    with ctx.lock:
        reported = set(ctx.reported)
    return {key: task_id for task_id, members in listed.items()
            if task_id not in reported and any(m.get("State") in (*LIVE_STATES, "created") for m in members)
            and (key := attempt_key(members[0]["Labels"])) is not None}


def collect_exits(ctx: DockerContext) -> list[TaskExit]:
    """Tasks reported by an earlier call are removed now (in the background), once the scheduler has
    recorded them; the others are carried on, and reported when over. The engine's container list is
    read only after a running() call, a die event of a container this executor did not start, or
    EXIT_SCAN_SECONDS after it was last read; a task this executor started is carried on from its
    die events: a pass with nothing new on the engine makes no engine call."""
    with ctx.lock:
        due, ctx.due = ctx.due, {}
    if not ctx.config.keep_containers:
        for task_id, removal in due.items():
            remove_later(ctx, task_id, removal)
    dead = ctx.events.take_dead()
    with ctx.lock:
        known = {ctx.task_of.get(container_id) for container_id in dead}
        if None in known:
            ctx.events.died.set()  # adopted after a restart: only the list tells its task
        dying = {task_id: ctx.started[task_id] for task_id in known if task_id in ctx.started}
    try:
        if ctx.events.died.is_set() or time.monotonic() - ctx.last_exit_scan >= EXIT_SCAN_SECONDS:
            ctx.events.died.clear()  # before the list: one that dies during it is looked for next time
            ctx.last_exit_scan = time.monotonic()
            return _scan_exits(ctx)
        return _carry_on(ctx, dying)
    except BaseException:
        ctx.events.died.set()
        raise


def _carry_on(ctx: DockerContext, started: dict[str, Removal]) -> list[TaskExit]:
    """Carry on tasks this executor started, one of whose containers died, without listing."""
    client = ctx.client()
    exits = []
    with ctx.lock:
        busy = ctx.reported | ctx.starting
    try:
        for task_id, removal in started.items():
            if task_id in busy:
                ctx.events.died.set()  # died while being started: looked at by the next list
                continue
            exit = _advance(ctx, client, task_id, [{"Id": cid} for cid in removal.container_ids])
            if exit is not None:
                exits.append(exit)
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    _reported_now(ctx, exits, started)
    return exits


def _reported_now(ctx: DockerContext, exits: list[TaskExit], removals: dict[str, Removal]) -> None:
    with ctx.lock:
        ctx.reported |= {e.task_id for e in exits}
        for e in exits:
            ctx.due[e.task_id] = removals[e.task_id]
            for container_id in (ctx.started.pop(e.task_id, None) or removals[e.task_id]).container_ids:
                ctx.task_of.pop(container_id, None)


def _scan_exits(ctx: DockerContext) -> list[TaskExit]:
    client = ctx.client()
    try:
        listed = ctx.list_tasks(client)
        exits = []
        with ctx.lock:
            reported, starting = set(ctx.reported), set(ctx.starting)
        for task_id, members in listed.items():
            if task_id in reported:
                if not ctx.config.keep_containers:  # a removal that failed, or left by an earlier server
                    remove_later(ctx, task_id, Removal.of(members))
                continue
            # A die event's inspection is newer than the list, which shows a death a moment later.
            states = {_state(ctx, m) for m in members}
            if task_id in starting or states == {"created"} or states <= set(LIVE_STATES):
                # Being started (or left mid-start by a server that died, which the restarted scheduler
                # resumes by name), or running: nothing to do.
                continue
            exit = _advance(ctx, client, task_id, members)
            if exit is not None:
                exits.append(exit)
        if not ctx.swept:
            ctx.swept = True
            remove_idle_networks(ctx, client)
        with ctx.lock:
            # Forget tasks the engine no longer lists (removed), so the sets stay small.
            ctx.reported &= set(listed)
            for task_id in [t for t in ctx.started if t not in listed and t not in ctx.starting]:
                for container_id in ctx.started.pop(task_id).container_ids:
                    ctx.task_of.pop(container_id, None)
        _reported_now(ctx, exits, {e.task_id: Removal.of(listed[e.task_id]) for e in exits})
        return exits
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc


def _state(ctx: DockerContext, summary: dict) -> str | None:
    inspection = ctx.events.inspection(summary["Id"])
    return inspection["State"]["Status"] if inspection is not None else summary.get("State")


def _advance(ctx: DockerContext, client: docker.DockerClient, task_id: str, members: list[dict]) -> TaskExit | None:
    """Start what may start, stop what must stop; the task's exit once it is over."""
    containers, remembered = [], set()
    for member in members:
        inspection = ctx.events.inspection(member["Id"])
        if inspection is not None:  # stopped for good: its die event's inspection holds its end
            containers.append(inspection)
            remembered.add(member["Id"])
            continue
        try:
            containers.append(client.api.inspect_container(member["Id"]))
        except NotFound:
            return None  # removed under us (remove_all): nothing to report
    if any((attrs.get("State") or {}).get("Status") == REMOVING for attrs in containers):
        return None  # being removed behind our back (a forced removal kills it first): as if gone
    containers.sort(key=lambda attrs: int((attrs["Config"]["Labels"] or {}).get(LABEL_INDEX) or 0))
    seen = [_seen(attrs) for attrs in containers]
    step = tasks.step(seen)
    ids = {s.name: attrs["Id"] for s, attrs in zip(seen, containers)}
    for name in step.start:
        try:
            start_container(client, ids[name], name)
        except StartFailure as exc:
            log.info("container %s of task %s did not start: %s", name, task_id, exc)
    if step.stop:
        stop_later(ctx, task_id, [ids[s.name] for s in seen if s.state == tasks.RUNNING])
    if not step.over:
        return None
    key = attempt_key(containers[0]["Config"]["Labels"])
    if key is None:
        return None  # listed by our labels, so never met: a container without an attempt is not ours
    results = []
    for attrs, view in zip(containers, seen):
        results.append(_result(attrs, view, never=view.name in step.never))
        # Read when its die event was handled, as a rule; read now if it was found stopped by a list.
        found = ctx.logs.ship_final_lines(client, attrs["Id"], attrs["Config"]["Labels"] or {})
        if attrs["Id"] in remembered and not found and (found is False or not _exists(client, attrs["Id"])):
            # Removed behind our back (its die event came from the removal's kill): as a container the
            # engine no longer has, it is not reported; the scheduler finds it gone.
            return None
    return ctx.faults.settle(TaskExit(job_id=key[0], attempt=key[1], task_id=task_id, containers=results))


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.api.inspect_container(container_id)
        return True
    except NotFound:
        return False


def _seen(attrs: dict) -> tasks.Seen:
    """A container as batchemu.executors.tasks reads it, from its inspection."""
    labels = attrs.get("Config", {}).get("Labels") or {}
    state = attrs.get("State", {})
    status = state.get("Status")
    started = epoch_ms(state.get("StartedAt")) is not None
    if state.get("Error") and not started:
        phase = tasks.FAILED_TO_START
    elif status == "created":
        phase = tasks.PENDING
    elif status in LIVE_STATES:
        phase = tasks.RUNNING
    else:
        phase = tasks.EXITED
    depends_on = [tuple(d) for d in json.loads(labels.get(LABEL_DEPENDS_ON) or "[]")]
    return tasks.Seen(name=labels.get(LABEL_CONTAINER) or "default", state=phase, exit_code=state.get("ExitCode"),
                      essential=labels.get(LABEL_ESSENTIAL, "1") == "1", init=LABEL_INIT in labels,
                      depends_on=depends_on, ends_task_on_failure=LABEL_ENDS_ON_FAILURE in labels)


def _result(attrs: dict, seen: tasks.Seen, *, never: bool) -> ContainerResult:
    state = attrs.get("State", {})
    result = ContainerResult(name=seen.name, outcome=Outcome.EXITED, essential=seen.essential,
                             container_id=attrs["Id"], started_at=epoch_ms(state.get("StartedAt")),
                             finished_at=epoch_ms(state.get("FinishedAt")))
    if seen.state == tasks.FAILED_TO_START:
        result.outcome, result.detail = Outcome.START_FAILED, f"Error response from daemon: {state['Error']}"
        result.started_at = result.finished_at = None
    elif never or seen.state == tasks.PENDING:
        result.outcome, result.started_at, result.finished_at = Outcome.NOT_STARTED, None, None
    else:
        result.exit_code = state.get("ExitCode")
        if result.started_at is not None and result.finished_at is not None:
            # The engine stamps StartedAt after the process runs: a quick one can "finish" before it started.
            result.finished_at = max(result.finished_at, result.started_at)
        if state.get("OOMKilled"):
            result.outcome = Outcome.OOM_KILLED
    return result
