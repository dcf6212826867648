"""Ending and removing: stopping a task's services (a replicated-job cannot be stopped in place), injected
faults, and removing what ended tasks leave (services, task volumes, idle overlay networks).

Stopping a container stops it when its task runs on the manager's node, else removes its service (its exit
code is then unknown: task_progress.stopped_exits reports those)."""

from __future__ import annotations

import logging
import math
import time

import docker
from docker.errors import APIError, DockerException, NotFound

from batchemu.executors import EngineUnavailable, faults
from batchemu.executors.docker.engine import (
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
    explain,
    remove_container_quietly,
    task_of,
)
from batchemu.executors.swarm.kept_results import remove_done
from batchemu.executors.swarm.reachability import local_node, not_managing
from batchemu.executors.swarm.survey import ENDED_STATES, newest_tasks, our_services
from batchemu.executors.swarm.swarm_context import SwarmContext

log = logging.getLogger("batchemu.executors.swarm")


def remove_service_quietly(client: docker.DockerClient, service_id: str) -> None:
    try:
        client.api.remove_service(service_id)
    except NotFound:
        pass
    except (DockerException, *UNREACHABLE) as exc:
        log.warning("could not remove service %s: %s", service_id[:12], exc)


def end_service(ctx: SwarmContext, client: docker.DockerClient, service_id: str, kill: bool, timeout: float) -> bool:
    """Stop (or kill) the service's container when it runs on the manager's node, else remove the
    service. Whether there was a task to end."""
    task = newest_tasks(ctx, client, [service_id]).get(service_id)
    if task is not None and task.state in ENDED_STATES:
        return False
    try:
        spec = client.api.inspect_service(service_id)["Spec"]
    except NotFound:
        return False
    if task is not None and task.node_id == local_node(ctx, client) and task.container_id:
        try:
            if kill:
                client.api.kill(task.container_id)
            else:
                client.api.stop(task.container_id, timeout=max(0, math.ceil(timeout)))
            return True
        except NotFound:
            pass
        except APIError as exc:
            if "is not running" in explain(exc):
                return True
            raise
    labels = spec.get("Labels") or {}
    with ctx.lock:
        ctx.stopped[spec["Name"]] = task_of(labels, service_id)
    ctx.logs.forget(service_id)
    remove_service_quietly(client, service_id)
    return True


def _task_services(ctx: SwarmContext, client: docker.DockerClient, task_id: str) -> list[str]:
    return list(our_services(ctx, client).get(task_id, {}).values())


def stop(ctx: SwarmContext, task_id: str, timeout: float) -> None:
    """Executor.stop: SIGTERM every container of the task, SIGKILL after `timeout`."""
    client = ctx.client()
    try:
        for service_id in _task_services(ctx, client, task_id):
            end_service(ctx, client, service_id, kill=False, timeout=timeout)
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    except APIError as exc:
        if exc.status_code == 503:
            raise not_managing(exc) from exc
        log.warning("could not stop task %s: %s", task_id, explain(exc))


def inject_fault(ctx: SwarmContext, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
    """Executor.inject_fault: kill the task's containers, marked with the fault (or fail the next start)."""
    if fault == faults.PULL_FAILURE:
        ctx.faults.arm_pull_failure(job_id)
        return
    client = ctx.client()
    task_id = task_id or ""
    ctx.faults.mark(task_id, fault)
    try:
        ended = [end_service(ctx, client, sid, kill=True, timeout=0) for sid in _task_services(ctx, client, task_id)]
    except UNREACHABLE as exc:
        ctx.faults.unmark(task_id)
        raise ctx.engine.unreachable(exc) from exc
    if not any(ended):
        ctx.faults.unmark(task_id)
        raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")


def end_later(ctx: SwarmContext, service_id: str) -> None:
    """Stop the service on the removal pool (once, however often asked meanwhile)."""
    with ctx.lock:
        if service_id in ctx.ending:
            return
        ctx.ending.add(service_id)

    def end() -> None:
        try:
            end_service(ctx, ctx.client(), service_id, kill=False, timeout=10.0)
        except (DockerException, *UNREACHABLE) as exc:
            log.warning("could not stop service %s: %s", service_id[:12], exc)
        finally:
            with ctx.lock:
                ctx.ending.discard(service_id)
    try:
        ctx.removals.submit(end)
    except RuntimeError:  # closing
        with ctx.lock:
            ctx.ending.discard(service_id)


def remove_later(ctx: SwarmContext, task_id: str, service_ids: list[str]) -> None:
    """Remove a reported task's services and volumes on the removal pool."""
    with ctx.lock:
        if task_id in ctx.removing:
            return
        ctx.removing.add(task_id)

    def remove() -> None:
        try:
            client = ctx.client()
            for service_id in service_ids:
                ctx.logs.forget(service_id)
                remove_service_quietly(client, service_id)
            remove_task_volumes(client, task_id)
            with ctx.lock:
                ctx.plans.pop(task_id, None)
                ctx.sweep = True
        finally:
            with ctx.lock:
                ctx.removing.discard(task_id)
    try:
        ctx.removals.submit(remove)
    except RuntimeError:  # closing: the next server's pass removes it
        with ctx.lock:
            ctx.removing.discard(task_id)


def remove_task_volumes(client: docker.DockerClient, task_id: str) -> None:
    """The task's shared volumes on the manager's node (a worker's stay until its engine prunes them). The
    swarm leaves the ended containers of a removed service on the node for a while, and a volume they
    mounted cannot go before them: those are removed first (only ended ones; the services are gone)."""
    try:
        volumes = (client.api.volumes(filters={"label": f"{LABEL_TASK}={task_id}"}) or {}).get("Volumes") or []
        if not volumes:
            return  # most tasks: no call more
        for ended in client.api.containers(all=True, filters={"label": f"{LABEL_TASK}={task_id}",
                                                              "status": ["exited", "created", "dead"]}):
            remove_container_quietly(client, ended["Id"])
        for volume in volumes:
            client.api.remove_volume(volume["Name"], force=True)
    except (DockerException, *UNREACHABLE) as exc:
        log.debug("could not remove the volumes of task %s: %s", task_id, exc)


def remove_idle_networks(ctx: SwarmContext, client: docker.DockerClient) -> None:
    """Our overlay networks that no service of ours uses and no start is about to join."""
    try:
        networks = client.api.networks(filters={"label": ctx.engine.label_filters()})
        if not networks:
            ctx.sweep = False
            return
        used = set()
        for service in client.api.services(filters={"label": ctx.engine.label_filters()}):
            used.add((service.get("Spec", {}).get("Labels") or {}).get(LABEL_NETWORK))
        left = False
        for network in networks:
            group = (network.get("Labels") or {}).get(LABEL_NETWORK)
            with ctx.lock:
                if group in used or group in ctx.groups_in_use:
                    continue
            try:
                client.api.remove_network(network["Id"])
            except NotFound:
                pass
            except APIError as exc:  # its last containers are still detaching: the next pass
                left = True
                log.debug("task network %s stays for now: %s", network.get("Name"), explain(exc))
        ctx.sweep = left
    except (DockerException, *UNREACHABLE) as exc:
        log.warning("could not remove idle task networks: %s", exc)


def remove_all(ctx: SwarmContext) -> None:
    """Executor.remove_all: every service, task volume, kept result and network of this server instance."""
    try:
        client = ctx.client()
        services = client.api.services(filters={"label": ctx.engine.label_filters()})
    except (EngineUnavailable, DockerException, *UNREACHABLE) as exc:
        log.warning("could not list services to remove: %s", exc)
        return
    task_ids = set()
    for service in services:
        ctx.logs.forget(service["ID"])
        task_ids.add(task_of(service.get("Spec", {}).get("Labels") or {}, service["ID"]))
        remove_service_quietly(client, service["ID"])
    for task_id in task_ids:
        remove_task_volumes(client, task_id)
    remove_done(ctx, client, None)
    deadline = time.monotonic() + 15
    ctx.sweep = True
    while ctx.sweep and time.monotonic() < deadline:  # tasks detach from their networks a moment later
        remove_idle_networks(ctx, client)
        if ctx.sweep:
            time.sleep(0.2)
