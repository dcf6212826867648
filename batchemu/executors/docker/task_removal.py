"""Ending and removing tasks: stops (now, or on the removal pool), a reported task's containers, volumes and
idle task networks removed in the background, injected faults, and remove_all()."""

from __future__ import annotations

import logging
import math

import docker
from docker.errors import APIError, DockerException, NotFound

from batchemu.executors import LABEL_JOB_ID, EngineUnavailable, faults
from batchemu.executors.docker.docker_context import LIVE_STATES, DockerContext, Removal
from batchemu.executors.docker.engine import (
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
    explain,
    remove_container_quietly,
)

log = logging.getLogger("batchemu.executors.docker")


def stop_later(ctx: DockerContext, task_id: str, container_ids: list[str]) -> None:
    with ctx.lock:
        if task_id in ctx.stopping_tasks or not container_ids:
            return
        ctx.stopping_tasks.add(task_id)

    def stop() -> None:
        try:
            for container_id in container_ids:
                stop_container(ctx, container_id, 10.0)
        finally:
            with ctx.lock:
                ctx.stopping_tasks.discard(task_id)
    try:
        ctx.removals.submit(stop)
    except RuntimeError:  # closing
        with ctx.lock:
            ctx.stopping_tasks.discard(task_id)


def remove_later(ctx: DockerContext, task_id: str, removal: Removal) -> None:
    """Remove a reported task on the removal pool, so the scheduler's pass does not wait for it."""
    with ctx.lock:
        if task_id in ctx.removing:
            return
        ctx.removing.add(task_id)

    def remove() -> None:
        try:
            remove_task(ctx, ctx.client(), task_id, removal.container_ids,
                        volumes=removal.volumes, networks=removal.networks)
        finally:
            with ctx.lock:
                ctx.removing.discard(task_id)
    try:
        ctx.removals.submit(remove)
    except RuntimeError:  # closing: the next server's pass removes it
        with ctx.lock:
            ctx.removing.discard(task_id)


def remove_task(ctx: DockerContext, client: docker.DockerClient, task_id: str, container_ids: list[str], *,
                volumes: bool = True, networks: bool = True) -> None:
    """The task's containers, then its volumes, then task networks left without containers (volumes
    and networks looked for only when the task may have some)."""
    for container_id in container_ids:
        ctx.logs.forget(container_id)
        ctx.events.forget(container_id)
        remove_container_quietly(client, container_id)
    if not volumes:
        if networks:
            remove_idle_networks(ctx, client)
        return
    try:
        for volume in (client.api.volumes(filters={"label": f"{LABEL_TASK}={task_id}"}) or {}).get("Volumes") or []:
            client.api.remove_volume(volume["Name"], force=True)
    except (DockerException, *UNREACHABLE) as exc:
        log.warning("could not remove the volumes of task %s: %s", task_id, exc)
    remove_idle_networks(ctx, client)


def remove_idle_networks(ctx: DockerContext, client: docker.DockerClient) -> None:
    """Task networks no container is attached to and no start is about to join."""
    try:
        networks = client.api.networks(filters={"label": ctx.engine.label_filters()})
        for network in networks:
            group = (network.get("Labels") or {}).get(LABEL_NETWORK)
            with ctx.lock:
                if group in ctx.networks_in_use:
                    continue
                if client.api.inspect_network(network["Id"]).get("Containers"):
                    continue
                try:
                    client.api.remove_network(network["Id"])
                except NotFound:
                    pass
                except APIError as exc:  # a container joined meanwhile
                    log.debug("task network %s stays: %s", network.get("Name"), explain(exc))
    except (DockerException, *UNREACHABLE) as exc:
        log.warning("could not remove idle task networks: %s", exc)


def stop(ctx: DockerContext, task_id: str, timeout: float = 10.0) -> None:
    """A task already gone is fine; an engine that refuses is logged (the exit is what counts)."""
    client = ctx.client()
    try:
        members = _members(ctx, client, task_id)
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    for container_id in members:
        stop_container(ctx, container_id, timeout)


def _members(ctx: DockerContext, client: docker.DockerClient, task_id: str) -> list[str]:
    return [m["Id"] for m in ctx.list_tasks(client).get(task_id, [])]


def stop_container(ctx: DockerContext, container_id: str, timeout: float) -> None:
    client = ctx.client()
    try:
        client.api.stop(container_id, timeout=max(0, math.ceil(timeout)))
    except NotFound:
        pass
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    except APIError as exc:
        log.warning("could not stop container %s: %s", container_id[:12], explain(exc))


def inject_fault(ctx: DockerContext, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
    """Kill the task's containers (SIGKILL, as a host that vanishes) and report the fault's outcome."""
    if fault == faults.PULL_FAILURE:
        ctx.faults.arm_pull_failure(job_id)
        return
    client = ctx.client()
    try:
        members = ctx.list_tasks(client, f"{LABEL_JOB_ID}={job_id}", status=list(LIVE_STATES)).get(task_id or "", [])
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    if not members or task_id is None:
        raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")
    ctx.faults.mark(task_id, fault)
    killed = 0
    for member in members:
        try:
            client.api.kill(member["Id"])
            killed += 1
        except (NotFound, APIError):
            continue  # ended meanwhile
    if not killed:
        ctx.faults.unmark(task_id)
        raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")


def remove_all(ctx: DockerContext) -> None:
    try:
        client = ctx.client()
        listed = ctx.list_tasks(client)
    except (EngineUnavailable, DockerException, *UNREACHABLE) as exc:
        log.warning("could not list containers to remove: %s", exc)
        return
    for task_id, members in listed.items():
        remove_task(ctx, client, task_id, [m["Id"] for m in members])
    remove_idle_networks(ctx, client)
