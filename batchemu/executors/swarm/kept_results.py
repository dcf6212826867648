"""Results of containers that ended while their task went on, kept in the swarm as config objects: their
services are removed at once (Swarm's enforcer counts a completed job task's reservation for ever), and a
restarted server must neither start such a container again nor lose its result."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import asdict

import docker
from docker.errors import APIError

from batchemu.executors import ContainerResult, Outcome, tasks
from batchemu.executors.docker.engine import LABEL_TASK, explain
from batchemu.executors.swarm.service_specs import PlannedService
from batchemu.executors.swarm.swarm_context import SwarmContext

log = logging.getLogger("batchemu.executors.swarm")

LABEL_DONE = "batchemu.done"   # on a swarm config: the result of a container that ended while its task went on


def save_done(ctx: SwarmContext, client: docker.DockerClient, task_id: str, service: PlannedService,
              result: ContainerResult) -> None:
    """Keep the result in the swarm (a config object) before the service goes: a restarted server must not
    start that container again."""
    data = json.dumps({**asdict(result), "outcome": result.outcome.name}).encode()
    name = "batchemu-done-" + hashlib.sha256(service.name.encode()).hexdigest()[:32]
    try:
        client.api.create_config(name, data, labels={**ctx.engine.own_labels(), LABEL_TASK: task_id,
                                                     LABEL_DONE: service.container})
    except APIError as exc:
        if exc.status_code != 409:  # 409: kept already by an earlier pass
            log.warning("could not keep the result of %s: %s", service.name, explain(exc))


def load_done(ctx: SwarmContext, client: docker.DockerClient, task_id: str, plan: list[PlannedService]) -> None:
    """Once per task and server: the results kept by save_done (a server that ran before this one)."""
    with ctx.lock:
        if task_id in ctx.done_loaded or len(plan) < 2:
            return
    by_name = {s.container: s for s in plan}
    found = {}
    for config in _done_configs(ctx, client, task_id):
        labels = config.get("Spec", {}).get("Labels") or {}
        service = by_name.get(labels.get(LABEL_DONE, ""))
        try:
            raw = json.loads(base64.b64decode(config["Spec"].get("Data") or b""))
            result = ContainerResult(**{**raw, "outcome": Outcome[raw["outcome"]]})
        except (ValueError, KeyError, TypeError):
            continue
        if service is not None:
            found[service.container] = (result, service.view(tasks.EXITED, result.exit_code))
    with ctx.lock:
        ctx.done_loaded.add(task_id)
        if found:
            ctx.done.setdefault(task_id, {}).update(found)


def _done_configs(ctx: SwarmContext, client: docker.DockerClient, task_id: str | None) -> list[dict]:
    wanted = ctx.engine.label_filters(LABEL_DONE)
    if task_id is not None:
        wanted.append(f"{LABEL_TASK}={task_id}")
    try:
        return client.api.configs(filters={"label": wanted})
    except APIError as exc:
        log.warning("could not list kept results: %s", explain(exc))
        return []


def remove_done(ctx: SwarmContext, client: docker.DockerClient, task_id: str | None) -> None:
    """Remove the kept results of the task (of every task of ours: None)."""
    for config in _done_configs(ctx, client, task_id):
        try:
            client.api.remove_config(config["ID"])
        except APIError:
            pass
    with ctx.lock:
        if task_id is None:
            ctx.done_loaded.clear()
        else:
            ctx.done_loaded.discard(task_id)
