"""Carrying each task on from what the swarm shows (batchemu.executors.tasks.step: create the services that may
start, stop the ones that must) and reading its exit, in engine terms, once it is over:

    task complete / failed        the container's exit code; OOM from the container when it ran on the
                                  manager's own node, else exit 137 under a memory limit that we did not stop
    task rejected (no container)  a start failure (PULL_FAILED for a missing image)
    node down or gone, orphaned   HOST_LOST, detail `Host EC2 (instance <node id>) terminated.`
    swarm unreachable             after LOST_SWARM_SECONDS every task we knew of ends as a lost host
"""

from __future__ import annotations

import logging
import time

import docker
from docker.errors import APIError

from batchemu.executors import ContainerResult, Outcome, StartFailure, TaskExit, faults, tasks
from batchemu.executors.docker.engine import UNREACHABLE, attempt_key, epoch_ms
from batchemu.executors.swarm import cleanup, reachability
from batchemu.executors.swarm.kept_results import load_done, remove_done, save_done
from batchemu.executors.swarm.launch import create, requeue
from batchemu.executors.swarm.reachability import local_node, lost_swarm, not_managing
from batchemu.executors.swarm.service_specs import PlannedService
from batchemu.executors.swarm.survey import (
    ENDED_STATES,
    SwarmTask,
    bumped,
    local_container_state,
    lost,
    lost_reason,
    plan_of,
    start_failure,
    survey,
)
from batchemu.executors.swarm.swarm_context import SwarmContext

log = logging.getLogger("batchemu.executors.swarm")


def collect_exits(ctx: SwarmContext) -> list[TaskExit]:
    """Executor.collect_exits on the swarm."""
    if lost_swarm(ctx):
        return lost_attempts(ctx)
    client = ctx.client()
    try:
        with ctx.lock:
            reported, starting = set(ctx.reported), set(ctx.starting)
        services, swarm_tasks, nodes = survey(ctx, client)
        exits = []
        for task_id, members in services.items():
            if task_id in reported:
                if not ctx.config.keep_containers:
                    cleanup.remove_later(ctx, task_id, list(members.values()))
                continue
            if task_id in starting:
                continue
            exit = _advance(ctx, client, task_id, members, swarm_tasks, nodes)
            if exit is not None:
                exits.append(exit)
        exits += _stopped_exits(ctx, services)
        if ctx.sweep:
            cleanup.remove_idle_networks(ctx, client)
        with ctx.lock:
            ctx.reported &= set(services)
            ctx.reported |= {e.task_id for e in exits if e.task_id in services}
        return exits
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    except APIError as exc:
        raise not_managing(exc) from exc


def _advance(ctx: SwarmContext, client: docker.DockerClient, task_id: str, members: dict[str, str],
             swarm_tasks: dict[str, SwarmTask], nodes: dict[str, str]) -> TaskExit | None:
    """Create the services that may start, stop the ones that must; the task's exit once it is over."""
    plan = plan_of(ctx, client, task_id, members)
    key = attempt_key(plan[0].labels)
    if key is None:  # not ours to carry on: our_services lists only services that name their attempt
        return None
    load_done(ctx, client, task_id, plan)
    with ctx.lock:
        stopped = {name for name, owner in ctx.stopped.items() if owner == task_id}
        done = dict(ctx.done.get(task_id) or {})
    views, found = [], []
    for service in plan:
        service_id = members.get(service.name)
        task = swarm_tasks.get(service_id) if service_id else None
        if service_id is not None and task is not None and bumped(task) and nodes.get(task.node_id) == "ready":
            service_id, task = requeue(ctx, client, service_id), None
        found.append((service_id, task))
        if service.container in done:
            views.append(done[service.container][1])
        elif service_id is None:
            views.append(service.view(tasks.EXITED if service.name in stopped else tasks.PENDING))
        elif task is not None and lost(task, nodes):
            views.append(service.view(tasks.EXITED))
        elif task is None or task.state not in ENDED_STATES:
            views.append(service.view(tasks.RUNNING if task is not None and task.state == "running"
                                      else tasks.PENDING))
        elif start_failure(task):
            views.append(service.view(tasks.FAILED_TO_START))
        else:
            views.append(service.view(tasks.EXITED, task.exit_code))
    step = tasks.step(views)
    node = next((t.node_id for _, t in found if t is not None and t.node_id), None)
    if not step.over:  # before any start, so that Swarm places the next ones without these
        for service, (service_id, task), view in zip(plan, found, views):
            if view.state == tasks.EXITED and service_id is not None and task is not None \
                    and service.container not in done and not lost(task, nodes):
                # Ended while the task goes on: read and keep its result, and remove its service now.
                result = _result(ctx, client, service, service_id, task, view, nodes, never=False)
                save_done(ctx, client, task_id, service, result)
                with ctx.lock:
                    ctx.done.setdefault(task_id, {})[service.container] = (result, view)
                cleanup.remove_service_quietly(client, service_id)
    by_name = {s.container: s for s in plan}
    for name in step.start:
        index = [s.container for s in plan].index(name)
        if found[index][0] is not None:
            continue  # created already, waiting for a node with room
        try:
            create(ctx, client, by_name[name], node if len(plan) > 1 else None)
        except StartFailure as exc:
            log.info("container %s of task %s did not start: %s", name, task_id, exc)
    if step.stop:
        for (service_id, task), view in zip(found, views):
            if service_id is not None and view.state in (tasks.RUNNING, tasks.PENDING):
                cleanup.end_later(ctx, service_id)
    if not step.over:
        return None
    results = []
    for service, (service_id, task), view in zip(plan, found, views):
        if service.container in done:
            results.append(done[service.container][0])
            continue
        results.append(_result(ctx, client, service, service_id, task, view, nodes,
                               never=view.name in step.never))
    with ctx.lock:
        ctx.known.pop(key, None)
    if not ctx.config.keep_containers:
        # At once, not after the scheduler recorded the exit as under Docker: a service left until then
        # would be listed by every look at the swarm meanwhile.
        for service_id in members.values():
            ctx.logs.forget(service_id)
            cleanup.remove_service_quietly(client, service_id)
        cleanup.remove_task_volumes(client, task_id)
        with ctx.lock:
            ctx.plans.pop(task_id, None)
            ctx.sweep = True
    if len(plan) > 1:
        remove_done(ctx, client, task_id)
    with ctx.lock:  # its stops and ended containers are part of this exit
        ctx.stopped = {name: owner for name, owner in ctx.stopped.items() if owner != task_id}
        ctx.done.pop(task_id, None)
    return ctx.faults.settle(TaskExit(job_id=key[0], attempt=key[1], task_id=task_id, containers=results))


def _result(ctx: SwarmContext, client: docker.DockerClient, service: PlannedService, service_id: str | None,
            task: SwarmTask | None, view: tasks.Seen, nodes: dict[str, str], *, never: bool) -> ContainerResult:
    result = ContainerResult(name=service.container, outcome=Outcome.EXITED, essential=view.essential,
                             container_id=service_id)
    if service_id is None or task is None or never and view.state == tasks.PENDING:
        if view.state == tasks.EXITED:  # its service was removed by a stop: exit code unknown
            result.finished_at = int(time.time() * 1000)
        else:
            result.outcome = Outcome.NOT_STARTED
        return result
    if lost(task, nodes):
        ctx.logs.forget(service_id)  # its node cannot give its logs; lines shipped so far stay
        result.outcome, result.detail = Outcome.HOST_LOST, lost_reason(task.node_id)
        return result
    result.finished_at = epoch_ms(task.timestamp)
    failure = start_failure(task)
    if failure:
        result.outcome, result.detail = failure
        result.finished_at = None
        ctx.logs.forget(service_id)
        return result
    _ship_last_lines(ctx, client, service_id, task.labels)
    result.exit_code = task.exit_code
    state = local_container_state(client, task) if task.node_id == local_node(ctx, client) else None
    if state is not None:
        result.started_at = epoch_ms(state.get("StartedAt"))
        if result.started_at is not None and result.finished_at is not None:
            result.finished_at = max(result.finished_at, result.started_at)
        if state.get("OOMKilled"):
            result.outcome = Outcome.OOM_KILLED
    elif task.exit_code == faults.OOM_EXIT_CODE and task.memory_limited:
        # The container ran on another node: killed by SIGKILL under a memory limit is the kernel's OOM
        # killer (a stop of ours removed the service instead, and a fault marks its own outcome).
        result.outcome = Outcome.OOM_KILLED
    return result


def _ship_last_lines(ctx: SwarmContext, client: docker.DockerClient, service_id: str, labels: dict) -> None:
    try:
        ctx.logs.ship_final_lines(client, service_id, labels)
    except UNREACHABLE as exc:  # a slow node must not hold up the exit
        log.warning("could not read the last output of service %s: %s", service_id[:12], exc)
        ctx.logs.forget(service_id)


def _stopped_exits(ctx: SwarmContext, services: dict[str, dict[str, str]]) -> list[TaskExit]:
    """Tasks whose every service a stop removed (their nodes were not the manager's): ended, exit codes
    unknown."""
    with ctx.lock:
        gone = {owner for owner in ctx.stopped.values() if owner not in services}
        plans = {task_id: ctx.plans.get(task_id) for task_id in gone}
        ctx.stopped = {name: owner for name, owner in ctx.stopped.items() if owner not in gone}
    exits = []
    for task_id, plan in plans.items():
        key = attempt_key(plan[0].labels) if plan else None
        if plan is None or key is None:
            continue
        now = int(time.time() * 1000)
        results = [ContainerResult(name=s.container, outcome=Outcome.EXITED, finished_at=now,
                                   essential=s.view(tasks.EXITED).essential) for s in plan]
        exits.append(ctx.faults.settle(TaskExit(job_id=key[0], attempt=key[1], task_id=task_id,
                                                containers=results)))
        with ctx.lock:
            ctx.plans.pop(task_id, None)
    return exits


def lost_attempts(ctx: SwarmContext) -> list[TaskExit]:
    """Every attempt known to be live, ended as a lost host: the swarm has not answered for long."""
    with ctx.lock:  # removed once the swarm answers again
        known, ctx.known = ctx.known, {}
        ctx.reported |= {task_id for task_id, _ in known.values()}
    log.warning("swarm unreachable for %.0f s: ending %d attempt(s) as lost hosts",
                reachability.LOST_SWARM_SECONDS, len(known))
    return [TaskExit(job_id=key[0], attempt=key[1], task_id=task_id, containers=[
                ContainerResult(name=s.container, outcome=Outcome.HOST_LOST, detail=lost_reason(node_id or "unknown"),
                                essential=s.view(tasks.EXITED).essential)
                for s in (ctx.plans.get(task_id) or [PlannedService("", "default", {}, {})])])
            for key, (task_id, node_id) in known.items()]
