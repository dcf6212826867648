"""What the swarm shows of this server's tasks: our services by task, the newest swarm task of each (read
through what Swarm's constraint enforcer makes of it), the nodes' states, and each task's plan.

Swarm has no event for a task's end: every look lists them. A task placed on a node that is down or gone,
or that Swarm gave up as orphaned, is lost (its attempt ends as a lost host)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

import docker
from docker.errors import APIError, NotFound

from batchemu.executors import Outcome
from batchemu.executors.docker.engine import (
    LABEL_CONTAINER,
    LABEL_INDEX,
    UNREACHABLE,
    attempt_key,
    network_name,
    parse_timestamp_ns,
    task_of,
)
from batchemu.executors.swarm.reachability import local_node, lost_swarm, not_managing
from batchemu.executors.swarm.service_specs import LABEL_PLAN, PlannedService
from batchemu.executors.swarm.swarm_context import SwarmContext

ENDED_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
UNASSIGNED_STATES = frozenset({"new", "pending", "allocated"})
BUMP_SETTLE_SECONDS = 2.0      # a task rejected without a container is made again only after this
PULL_WORDS = ("No such image", "pull", "manifest", "repository")


@dataclass
class SwarmTask:
    """The newest swarm task of one of our services, as listed by the manager."""

    service_id: str
    labels: dict
    state: str
    node_id: str
    container_id: str
    exit_code: int | None
    error: str
    timestamp: str
    memory_limited: bool
    addresses: dict[str, str]   # network name -> IPv4 address
    swarm_id: str = ""
    nano_cpus: int = 0          # its limits: what it takes of its node (see node_choice)
    memory_bytes: int = 0


def swarm_task(service_id: str, task: dict) -> SwarmTask:
    """The manager's listing of one swarm task, as a SwarmTask."""
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    spec = task.get("Spec", {})
    limits = (spec.get("Resources") or {}).get("Limits") or {}
    labels = (spec.get("ContainerSpec") or {}).get("Labels") or {}
    exit_code = container.get("ExitCode") if container.get("ContainerID") else None
    addresses = {}
    for attachment in task.get("NetworksAttachments") or []:
        name = (attachment.get("Network") or {}).get("Spec", {}).get("Name")
        address = next((a.split("/")[0] for a in attachment.get("Addresses") or [] if ":" not in a), None)
        if name and address:
            addresses[name] = address
    return SwarmTask(service_id=service_id, labels=labels, state=status.get("State", ""),
                     node_id=task.get("NodeID") or "", container_id=container.get("ContainerID") or "",
                     exit_code=exit_code, error=status.get("Err") or "", timestamp=status.get("Timestamp") or "",
                     memory_limited=bool(limits.get("MemoryBytes")), addresses=addresses,
                     swarm_id=task.get("ID") or "", nano_cpus=int(limits.get("NanoCPUs") or 0),
                     memory_bytes=int(limits.get("MemoryBytes") or 0))


def enforced(task: SwarmTask) -> bool:
    """Rejected by Swarm's constraint enforcer, which may happen before or after its container started."""
    return task.state == "rejected" and "no longer meets constraints" in task.error


def bumped(task: SwarmTask) -> bool:
    """Rejected by Swarm's constraint enforcer before it ran (see launch.requeue): no container, and none
    appeared for a while (the node's agent may still be creating one it was given just before)."""
    if not enforced(task) or task.container_id:
        return False
    rejected_ns = parse_timestamp_ns(task.timestamp)
    return rejected_ns is None or time.time_ns() - rejected_ns >= BUMP_SETTLE_SECONDS * 1e9


def as_run_locally(client: docker.DockerClient, task: SwarmTask) -> SwarmTask:
    """The enforcer's "rejected" only changes the manager's record: the node's agent runs the container on to
    its end and reports nothing more. On the local engine its container tells the truth: running, or ended
    with its exit code. A rejected task with no container stays as it is (see bumped)."""
    try:
        found = client.api.containers(all=True, filters={"label": f"com.docker.swarm.task.id={task.swarm_id}"})
        state = client.api.inspect_container(found[0]["Id"]).get("State") or {} if found else None
    except (NotFound, APIError):
        return task
    if not found or state is None:
        return task
    if state.get("Running") or state.get("Status") in ("created", "restarting"):
        return replace(task, state="running", container_id=found[0]["Id"], exit_code=None, error="")
    code = int(state.get("ExitCode") or 0)
    return replace(task, state="complete" if code == 0 else "failed", container_id=found[0]["Id"], exit_code=code,
                   error="" if code == 0 else f"task: non-zero exit ({code})", timestamp=state.get("FinishedAt") or "")


def lost(task: SwarmTask, nodes: dict[str, str]) -> bool:
    """The task was placed on a node that is down or has left the swarm (Swarm then rejects it: "assigned
    node no longer meets constraints"), or Swarm gave it up as orphaned. An exit reported before the node
    went away stands."""
    if task.state == "orphaned":
        return True
    if task.state in ("complete", "failed", "shutdown", "remove") or not task.node_id:
        return False
    return nodes.get(task.node_id, "down") in ("down", "disconnected")


def lost_reason(node_id: str) -> str:
    return f"Host EC2 (instance {node_id}) terminated."


def start_failure(task: SwarmTask) -> tuple[Outcome, str] | None:
    """(outcome, engine's words) of a task that ended without ever running a container, else None."""
    if task.state not in ("rejected", "failed"):
        return None
    if task.container_id and not task.error.startswith("starting container failed"):
        return None
    error = task.error or task.state
    outcome = Outcome.PULL_FAILED if any(word in error for word in PULL_WORDS) else Outcome.START_FAILED
    return outcome, f"Error response from daemon: {error}"


def local_container_state(client: docker.DockerClient, task: SwarmTask) -> dict | None:
    if not task.container_id:
        return None
    try:
        return client.api.inspect_container(task.container_id).get("State") or {}
    except (NotFound, APIError):
        return None


def our_services(ctx: SwarmContext, client: docker.DockerClient) -> dict[str, dict[str, str]]:
    """task id -> {service name: service id} of this server's services."""
    out: dict[str, dict[str, str]] = {}
    for service in client.api.services(filters={"label": ctx.engine.label_filters()}):
        labels = service.get("Spec", {}).get("Labels") or {}
        if attempt_key(labels) is not None:
            out.setdefault(task_of(labels, service["ID"]), {})[service["Spec"]["Name"]] = service["ID"]
    return out


def newest_tasks(ctx: SwarmContext, client: docker.DockerClient, service_ids: list[str]) -> dict[str, SwarmTask]:
    """service id -> its newest swarm task, as the enforcer's record is best read (see enforced)."""
    if not service_ids:
        return {}
    wanted = set(service_ids)
    try:
        listed = client.api.tasks(filters={"service": list(wanted)})
    except NotFound:  # one of them was removed meanwhile: the filter refuses names it does not know
        listed = client.api.tasks()
    newest: dict[str, dict] = {}
    for task in listed:
        known = newest.get(task.get("ServiceID"))
        if task.get("ServiceID") in wanted and (known is None or task.get("CreatedAt", "") > known.get("CreatedAt", "")):
            newest[task["ServiceID"]] = task
    found = {service_id: swarm_task(service_id, task) for service_id, task in newest.items()}
    for service_id, task in found.items():
        if enforced(task) and task.node_id == local_node(ctx, client):
            task = found[service_id] = as_run_locally(client, task)
        if enforced(task) and not task.container_id and not bumped(task):
            found[service_id] = replace(task, state="pending")  # its agent may be starting it yet
    return found


def node_states(client: docker.DockerClient) -> dict[str, str]:
    return {node["ID"]: node.get("Status", {}).get("State", "") for node in client.api.nodes()}


def plan_of(ctx: SwarmContext, client: docker.DockerClient, task_id: str,
            services: dict[str, str]) -> list[PlannedService]:
    """The task's services in order: ours from start(), else its network's plan label, else what the
    services' own labels say (a task whose every container was created)."""
    with ctx.lock:
        plan = ctx.plans.get(task_id)
    if plan is not None:
        return plan
    try:
        found = client.api.networks(names=[network_name(task_id)])
        raw = (found[0].get("Labels") or {}).get(LABEL_PLAN) if found else None
    except APIError:
        raw = None
    if raw:
        plan = [PlannedService(*entry) for entry in json.loads(raw)]
    else:
        plan = []
        for service_name, service_id in services.items():
            spec = client.api.inspect_service(service_id)["Spec"]
            labels = spec.get("Labels") or {}
            plan.append(PlannedService(service_name, labels.get(LABEL_CONTAINER) or "default", labels,
                                       spec.get("TaskTemplate") or {}))
        plan.sort(key=lambda s: int(s.labels.get(LABEL_INDEX) or 0))
    with ctx.lock:
        ctx.plans[task_id] = plan
    return plan


def survey(ctx: SwarmContext, client: docker.DockerClient,
           ) -> tuple[dict[str, dict[str, str]], dict[str, SwarmTask], dict[str, str]]:
    """(task id -> services, service id -> newest swarm task, node id -> state); notes live tasks."""
    services = our_services(ctx, client)
    ids = [sid for members in services.values() for sid in members.values()]
    swarm_tasks = newest_tasks(ctx, client, ids)
    nodes = node_states(client) if swarm_tasks else {}
    known = {}
    for task_id, members in services.items():
        live, key, node = False, None, ""
        for service_id in members.values():
            task = swarm_tasks.get(service_id)
            if task is None:  # just created: no swarm task listed yet
                live = True
            elif task.state not in ENDED_STATES and not lost(task, nodes):
                live, key, node = True, attempt_key(task.labels), node or task.node_id
                # The log pump follows live tasks (ended ones ship their last lines once).
                ctx.logs.track(service_id, task.labels)
        if live and key is not None:
            known[key] = (task_id, node)
    # A task leaves `known` once its exit is read (task_progress.advance) or ended as lost, not when it merely
    # looks ended or lost here, nor is it missing while its swarm task is not listed yet (it is known from its
    # start): a swarm that goes away meanwhile would leave it RUNNING for ever.
    with ctx.lock:
        kept = {key: entry for key, entry in ctx.known.items()
                if entry[0] in services and entry[0] not in ctx.reported}
        ctx.known = {**kept, **known}
    return services, swarm_tasks, nodes


def running(ctx: SwarmContext) -> dict[tuple[str, int], str]:
    """Tasks of ours not yet reported. Raises EngineUnavailable rather than answer "none" when the swarm
    cannot be asked, unless it has been unreachable long enough that its attempts are lost."""
    if lost_swarm(ctx):
        return {}
    client = ctx.client()
    try:
        services = client.api.services(filters={"label": ctx.engine.label_filters()})
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    except APIError as exc:
        raise not_managing(exc) from exc
    with ctx.lock:
        reported = set(ctx.reported)
    out = {}
    for service in services:
        labels = service.get("Spec", {}).get("Labels") or {}
        key = attempt_key(labels)
        if key is not None and task_of(labels, service["ID"]) not in reported:
            out[key] = task_of(labels, service["ID"])
    return out
