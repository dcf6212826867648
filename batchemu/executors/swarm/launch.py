"""Starting a task: its overlay network, the node it runs on, a service for each container that may start now,
and a wait until each runs. A task Swarm's constraint enforcer rejected before it ran is made again (requeue).

A task of several containers, and every task that names a shared network, joins an attachable overlay network
(labelled; the task's own carries its plan, so a restarted server can start the containers left to start).
The containers of one task are placed on the node of its first one, as ECS places a task on one instance."""

from __future__ import annotations

import json
import logging
import time

import docker
from docker.errors import APIError
from docker.types import ServiceMode

from batchemu.executors import LABEL_MANAGED, Outcome, StartedTask, StartFailure, TaskSpec, faults, tasks
from batchemu.executors.docker.engine import (
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
    attempt_key,
    explain,
    network_name,
    task_name,
)
from batchemu.executors.swarm.cleanup import remove_service_quietly
from batchemu.executors.swarm.node_choice import NodeUse, choose_node, needs_of, tally, weighs_use
from batchemu.executors.swarm.reachability import not_managing
from batchemu.executors.swarm.service_specs import LABEL_PLAN, PlannedService, service_of
from batchemu.executors.swarm.survey import (
    ENDED_STATES,
    UNASSIGNED_STATES,
    SwarmTask,
    bumped,
    newest_tasks,
    node_states,
    start_failure,
)
from batchemu.executors.swarm.swarm_context import SwarmContext

log = logging.getLogger("batchemu.executors.swarm")

START_WAIT_SECONDS = 120.0     # longest start() waits for an assigned task to run (its node may pull)
PENDING_WAIT_SECONDS = 2.0     # a task still unassigned after this waits for capacity after start() returns


def start(ctx: SwarmContext, task: TaskSpec) -> StartedTask:
    """Executor.start on the swarm."""
    client = ctx.client()
    if ctx.faults.take_pull_failure(task.job_id):
        raise StartFailure(Outcome.PULL_FAILED, faults.pull_failure_detail(task.containers[0].image))
    task_id = task_name(task.job_id, task.attempt)
    group = task.network or (task_id if len(task.containers) > 1 else None)
    with ctx.lock:
        ctx.starting.add(task_id)
        if group:
            ctx.groups_in_use[group] = ctx.groups_in_use.get(group, 0) + 1
    try:
        return _start(ctx, client, task, task_id, group)
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    except APIError as exc:
        raise not_managing(exc) from exc
    finally:
        with ctx.lock:
            ctx.starting.discard(task_id)
            ctx.placing.pop(task_id, None)
            if group:
                ctx.groups_in_use[group] -= 1
                if not ctx.groups_in_use[group]:
                    del ctx.groups_in_use[group]
            ctx.sweep = True


def _start(ctx: SwarmContext, client: docker.DockerClient, task: TaskSpec, task_id: str,
           group: str | None) -> StartedTask:
    nodes = client.api.nodes()
    network = network_name(group) if group else (ctx.config.network or "host")
    own = ctx.engine.own_labels()
    plan = [service_of(ctx.config, own, client, task, task_id, c, nodes, network, group) for c in task.containers]
    if group:
        _ensure_network(ctx, client, group, task_id, plan if group == task_id else None)
    with ctx.lock:
        ctx.plans[task_id] = plan
    by_name = {s.container: s for s in plan}
    first_node = place_task(ctx, client, nodes, task, task_id)
    started: list[str] = []
    try:
        for name in tasks.step([s.view(tasks.PENDING) for s in plan]).start:
            service_id = create(ctx, client, by_name[name], first_node)
            started.append(service_id)
            service_id, swarm_task = _await_start(ctx, client, service_id, by_name[name].container,
                                                  hold_pending=task.network is not None)
            started[-1] = service_id
            if swarm_task is not None and swarm_task.node_id:
                first_node = first_node or swarm_task.node_id
    except StartFailure:
        for service_id in started:
            ctx.logs.forget(service_id)
            remove_service_quietly(client, service_id)
        with ctx.lock:
            ctx.plans.pop(task_id, None)
        raise
    address = None
    if group:
        head = _find_service(client, plan[0].name)
        if head is not None:
            address = _address(ctx, client, head, network)
    with ctx.lock:  # live from now on: a swarm lost before any look at its tasks still ends it
        ctx.known.setdefault((task.job_id, task.attempt), (task_id, first_node or ""))
    log.debug("started task %s of job %s attempt %d", task_id, task.job_id, task.attempt)
    return StartedTask(task_id=task_id, address=address)


def node_use(ctx: SwarmContext, client: docker.DockerClient) -> dict[str, NodeUse]:
    """What the live tasks of batchemu's services, and the starts under way, take of each node."""
    services = client.api.services(filters={"label": [f"{LABEL_MANAGED}=1"]})
    with ctx.lock:  # tasks being started: counted from what they were given, listed or not yet
        placing = dict(ctx.placing)
    live = []
    for task in newest_tasks(ctx, client, [service["ID"] for service in services]).values():
        key = attempt_key(task.labels)
        if task.node_id and task.state not in ENDED_STATES and (key is None or task_name(*key) not in placing):
            live.append((task.node_id, task.nano_cpus, task.memory_bytes))
    return tally([*placing.values(), *live])


def place_task(ctx: SwarmContext, client: docker.DockerClient, nodes: list[dict], task: TaskSpec,
               task_id: str | None = None) -> str | None:
    """node_choice.choose_node for the task, asking the swarm what its nodes hold only when the choice weighs
    it. Starts run side by side: one choice at a time, each counted (`placing`) until its start() returns."""
    needs = needs_of(task)
    if not weighs_use(nodes, needs):
        return choose_node(nodes, needs, {})
    with ctx.choosing:
        chosen = choose_node(nodes, needs, node_use(ctx, client))
        if task_id is not None and chosen is not None:
            with ctx.lock:
                ctx.placing[task_id] = (chosen, needs.nano_cpus, needs.memory_bytes)
    return chosen


def _ensure_network(ctx: SwarmContext, client: docker.DockerClient, group: str, task_id: str,
                    plan: list[PlannedService] | None) -> str:
    """The group's attachable overlay network, made if absent; a task's own network carries its plan, so
    a restarted server can start the containers that had not started yet."""
    name = network_name(group)
    if not client.api.networks(names=[name]):
        labels = {**ctx.engine.own_labels(), LABEL_NETWORK: group}
        if plan is not None:
            labels[LABEL_TASK] = task_id
            labels[LABEL_PLAN] = json.dumps([[s.name, s.container, s.labels, s.template] for s in plan])
        try:
            client.api.create_network(name, driver="overlay", attachable=True, check_duplicate=True,
                                      labels=labels)
        except APIError as exc:
            if exc.status_code == 503:
                raise
            if exc.status_code != 409:  # made meanwhile by another node of the job
                raise StartFailure(Outcome.CREATE_FAILED, f"Error response from daemon: {explain(exc)}") from exc
    return name


def create(ctx: SwarmContext, client: docker.DockerClient, service: PlannedService, node: str | None) -> str:
    """The service's id, made now (or made already for this attempt); StartFailure if the engine refuses."""
    template = json.loads(json.dumps(service.template))
    if node:  # the containers of one task share a node, as on one ECS instance
        template.setdefault("Placement", {}).setdefault("Constraints", []).append(f"node.id=={node}")
    try:
        created = client.api.create_service(template, name=service.name, labels=service.labels,
                                            mode=ServiceMode("replicated-job", replicas=1))
        service_id = created["ID"]
    except APIError as exc:
        if exc.status_code == 503:
            raise
        if exc.status_code != 409:
            raise StartFailure(Outcome.CREATE_FAILED, f"Error response from daemon: {explain(exc)}",
                               service.container) from exc
        # The service exists already (a start that timed out, a restart): carry on with it.
        existing = client.api.inspect_service(service.name)
        if attempt_key(existing.get("Spec", {}).get("Labels") or {}) != attempt_key(service.labels):
            raise StartFailure(Outcome.CREATE_FAILED, f"Error response from daemon: {explain(exc)}",
                               service.container) from exc
        service_id = existing["ID"]
    ctx.logs.track(service_id, service.labels)
    return service_id


def _await_start(ctx: SwarmContext, client: docker.DockerClient, service_id: str, name: str, *,
                 hold_pending: bool = False) -> tuple[str, SwarmTask | None]:
    """(service id, swarm task) once the task runs or ends; one that never got a container is a start
    failure. A task no node has room for yet is left pending: it starts when capacity frees up. With
    `hold_pending` (a task on a shared network: a multi-node job's node, whose address the other nodes are
    given) it is waited for until it runs, as a service made again gets a new address."""
    began = time.monotonic()
    task = None
    while not ctx.stopping.is_set():
        task = newest_tasks(ctx, client, [service_id]).get(service_id)
        elapsed = time.monotonic() - began
        if task is not None:
            if bumped(task) and node_states(client).get(task.node_id) == "ready":
                service_id, task = requeue(ctx, client, service_id), None
            elif task.state in ENDED_STATES:
                failure = start_failure(task)
                if failure:
                    raise StartFailure(*failure, name)
                return service_id, task
            elif task.state == "running":
                return service_id, task
            elif task.state in UNASSIGNED_STATES and elapsed >= PENDING_WAIT_SECONDS and not hold_pending:
                log.info("service %s waits for a swarm node with room", service_id[:12])
                return service_id, task
        if elapsed >= START_WAIT_SECONDS:
            return service_id, task
        time.sleep(0.1)
    return service_id, task


def requeue(ctx: SwarmContext, client: docker.DockerClient, service_id: str) -> str:
    """A task Swarm's constraint enforcer rejected ("assigned node no longer meets constraints") before a
    container of it started never ran: its service is made again."""
    attrs = client.api.inspect_service(service_id)
    spec = attrs["Spec"]
    ctx.logs.forget(service_id)
    remove_service_quietly(client, service_id)
    log.info("service %s was rejected for room it has: made again", spec["Name"])
    created = client.api.create_service(spec["TaskTemplate"], name=spec["Name"], labels=spec.get("Labels"),
                                        mode=ServiceMode("replicated-job", replicas=1))
    ctx.logs.track(created["ID"], spec.get("Labels") or {})
    return created["ID"]


def _find_service(client: docker.DockerClient, name: str) -> str | None:
    found = [s["ID"] for s in client.api.services(filters={"name": name}) if s["Spec"].get("Name") == name]
    return found[0] if found else None


def _address(ctx: SwarmContext, client: docker.DockerClient, service_id: str, network: str) -> str | None:
    """The service's task address on the network (allocated before the task is placed)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ctx.stopping.is_set():
        task = newest_tasks(ctx, client, [service_id]).get(service_id)
        if task is not None and task.addresses.get(network):
            return task.addresses[network]
        time.sleep(0.1)
    return None
