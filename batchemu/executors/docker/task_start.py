"""Starting a task: its network and volumes, the local image of each container (pulled if need be), every
container created, and those that may start at once started (batchemu.executors.tasks.step)."""

from __future__ import annotations

import logging
import time

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import _create_container_args
from docker.utils import parse_repository_tag

from batchemu.executors import (
    ContainerSpec,
    Outcome,
    StartedTask,
    StartFailure,
    TaskSpec,
    faults,
    images,
    tasks,
)
from batchemu.executors.docker import arguments as create
from batchemu.executors.docker.docker_context import DockerContext, Removal
from batchemu.executors.docker.engine import (
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
    attempt_key,
    container_name,
    daemon_said,
    network_name,
    task_name,
)
from batchemu.executors.docker.task_removal import remove_idle_networks, remove_task

log = logging.getLogger("batchemu.executors.docker")

IMAGE_TRUSTED_SECONDS = 5.0  # how long an image found locally is run without asking the engine again


def start(ctx: DockerContext, task: TaskSpec) -> StartedTask:
    client = ctx.client()
    if ctx.faults.take_pull_failure(task.job_id):
        raise StartFailure(Outcome.PULL_FAILED, faults.pull_failure_detail(task.containers[0].image))
    task_id = task_name(task.job_id, task.attempt)
    with ctx.lock:
        ctx.starting.add(task_id)
        if task.network:
            ctx.networks_in_use[task.network] = ctx.networks_in_use.get(task.network, 0) + 1
    failed = True
    try:
        started = _start(ctx, client, task, task_id)
        failed = False
        return started
    except UNREACHABLE as exc:
        raise ctx.engine.unreachable(exc) from exc
    finally:
        with ctx.lock:
            ctx.starting.discard(task_id)
            if task.network:
                ctx.networks_in_use[task.network] -= 1
                if not ctx.networks_in_use[task.network]:
                    del ctx.networks_in_use[task.network]
        if failed and task.network:
            remove_idle_networks(ctx, client)  # nothing of a task that did not start stays behind


def _start(ctx: DockerContext, client: docker.DockerClient, task: TaskSpec, task_id: str) -> StartedTask:
    network, gateway = (_ensure_network(ctx, client, task.network) if task.network
                        else (ctx.config.network or "host", None))
    volumes = {name: _ensure_volume(ctx, client, task_id, name) for name in create.shared_volumes(task)}
    created: dict[str, tuple[str, str]] = {}   # name -> (container id, status)
    tracked: list[tuple[str, dict]] = []       # (container id, labels), for the log pump once started
    try:
        for container in task.containers:
            image = _resolve_image(ctx, client, container)
            labels = create.labels_of(task, container, task_id, ctx.engine.own_labels())
            arguments = create.create_arguments(task, container, labels, network=network, gateway=gateway,
                                                host_cpus=_cpu_count(ctx, client), task_volumes=volumes)
            created[container.name] = _create(ctx, client, task, task_id, container, image, arguments)
            tracked.append((created[container.name][0], labels))
        if all(status == "created" for _, status in created.values()):
            seen = [tasks.Seen(c.name, tasks.PENDING, essential=c.essential, init=c.init,
                               depends_on=list(c.depends_on), ends_task_on_failure=c.ends_task_on_failure)
                    for c in task.containers]
            for name in tasks.step(seen).start:
                start_container(client, created[name][0], name)
    except StartFailure:
        remove_task(ctx, client, task_id, [cid for cid, _ in created.values()])
        raise
    for container_id, labels in tracked:  # not before: the pump would read them while they start
        ctx.logs.track(container_id, labels)
    with ctx.lock:
        ctx.started[task_id] = Removal([cid for cid, _ in created.values()], volumes=bool(volumes),
                                       networks=bool(task.network))
        ctx.task_of.update((cid, task_id) for cid, _ in created.values())
    address = None
    if task.network:
        first = created[next((c for c in task.containers if c.essential), task.containers[0]).name][0]
        networks = client.api.inspect_container(first)["NetworkSettings"]["Networks"] or {}
        address = (networks.get(network) or {}).get("IPAddress") or None
    log.debug("started task %s of job %s attempt %d", task_id, task.job_id, task.attempt)
    return StartedTask(task_id=task_id, address=address)


def _ensure_network(ctx: DockerContext, client: docker.DockerClient, group: str) -> tuple[str, str | None]:
    """(name, gateway address on the host) of the group's task network, made if absent."""
    name = network_name(group)
    if not client.api.networks(names=[name]):
        try:
            client.api.create_network(name, driver="bridge", check_duplicate=True,
                                      labels={**ctx.engine.own_labels(), LABEL_NETWORK: group})
        except APIError as exc:
            if exc.status_code != 409:  # made meanwhile by another node of the job
                raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc)) from exc
    try:
        configs = (client.api.inspect_network(name).get("IPAM") or {}).get("Config") or []
    except NotFound as exc:
        raise StartFailure(Outcome.CREATE_FAILED, f"network {name} was removed meanwhile") from exc
    gateway = next((c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"]), None)
    return name, gateway


def _ensure_volume(ctx: DockerContext, client: docker.DockerClient, task_id: str, volume: str) -> str:
    name = container_name(task_id, f"volume-{volume}")
    try:
        client.api.create_volume(name, labels={**ctx.engine.own_labels(), LABEL_TASK: task_id})
    except APIError as exc:
        raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc)) from exc
    return name


def _resolve_image(ctx: DockerContext, client: docker.DockerClient, container: ContainerSpec, *,
                   fresh: bool = False) -> str:
    """The local image to run for the container's `image`; the engine is asked again after
    IMAGE_TRUSTED_SECONDS (or when `fresh`): an image removed meanwhile makes the create fail with "No
    such image", and _create() then resolves it afresh and creates again."""
    known = ctx.images.get(container.image)
    if known is not None and not fresh and time.monotonic() - known[0] < IMAGE_TRUSTED_SECONDS:
        return known[1]
    image = _find_image(ctx, client, container)
    ctx.images[container.image] = (time.monotonic(), image)
    return image


def _find_image(ctx: DockerContext, client: docker.DockerClient, container: ContainerSpec) -> str:
    """The local image to run for the container's `image` (batchemu.executors.images), pulled if need be."""
    *local_only, last = images.candidates(container.image, ctx.config.image_map)
    for candidate in local_only:
        if _present(client, candidate, container.name):
            log.debug("image %s runs as the local %s", container.image, candidate)
            return candidate
    if _present(client, last, container.name):
        return last
    repository, tag = parse_repository_tag(last)
    log.info("pulling image %s", last)
    try:
        for progress in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if isinstance(progress, dict) and progress.get("error"):
                raise StartFailure(Outcome.PULL_FAILED, progress["error"], container.name)
    except APIError as exc:
        raise StartFailure(Outcome.PULL_FAILED, daemon_said(exc), container.name) from exc
    return last


def _present(client: docker.DockerClient, image: str, name: str) -> bool:
    try:
        client.images.get(image)
        return True
    except (ImageNotFound, NotFound):
        return False
    except APIError as exc:
        raise StartFailure(Outcome.PULL_FAILED, daemon_said(exc), name) from exc


def _create(ctx: DockerContext, client: docker.DockerClient, task: TaskSpec, task_id: str,
            container: ContainerSpec, image: str, arguments: dict) -> tuple[str, str]:
    name = container_name(task_id, container.name)
    def create(image: str) -> str:
        # What client.containers.create() sends, without the inspection it makes of the new container.
        return client.api.create_container(**_create_container_args(
            {**arguments, "image": image, "name": name, "version": client.api._version}))["Id"]
    try:
        try:
            return create(image), "created"
        except ImageNotFound:  # removed since it was last looked for
            return create(_resolve_image(ctx, client, container, fresh=True)), "created"
    except APIError as exc:
        if exc.status_code != 409:
            raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc), container.name) from exc
        # The attempt's container exists already (a start that timed out, a restart): carry on with it.
        existing = client.containers.get(name)
        if attempt_key(existing.labels) != (task.job_id, task.attempt):
            raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc), container.name) from exc
        return existing.id, existing.status


def start_container(client: docker.DockerClient, container_id: str, name: str) -> None:
    try:
        client.api.start(container_id)
    except APIError as exc:
        raise StartFailure(Outcome.START_FAILED, daemon_said(exc), name) from exc


def _cpu_count(ctx: DockerContext, client: docker.DockerClient) -> int:
    if ctx.host_cpus is None:
        ctx.host_cpus = int(client.info().get("NCPU") or 1)
    return ctx.host_cpus
