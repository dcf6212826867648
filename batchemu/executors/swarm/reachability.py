"""Whether the swarm answers, and what follows when it does not: after LOST_SWARM_SECONDS every attempt the
executor knew of ends as a lost host (task_progress.lost_attempts); a 503 from a manager that left its swarm
is EngineUnavailable."""

from __future__ import annotations

import os
import time

import docker
from docker.errors import APIError, DockerException

from batchemu.executors import EngineUnavailable
from batchemu.executors.docker.engine import UNREACHABLE, explain
from batchemu.executors.swarm.swarm_context import SwarmContext

# Seconds the swarm may be unreachable before the attempts on it end as lost hosts.
LOST_SWARM_SECONDS = float(os.environ.get("BATCHEMU_SWARM_LOST_SECONDS", "60"))


def status(ctx: SwarmContext) -> tuple[bool, str]:
    """(reachable, detail) of the swarm whose manager the client points at."""
    try:
        client = ctx.client()
        info = client.info()
    except EngineUnavailable as exc:
        return _swarm_down(ctx, str(exc))
    except UNREACHABLE as exc:
        return _swarm_down(ctx, str(ctx.engine.unreachable(exc)))
    except DockerException as exc:
        return _swarm_down(ctx, f"Docker Engine error: {exc}")
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        return _swarm_down(ctx, f"the Docker Engine at {client.api.base_url} is not a swarm manager "
                                f"(swarm state {swarm.get('LocalNodeState') or 'inactive'}; "
                                "run `docker swarm init` or point DOCKER_HOST at a manager)")
    ctx.unreachable_since = None
    ctx.local_node = swarm.get("NodeID") or ""
    return True, (f"Docker Swarm of {swarm.get('Nodes')} node(s), {swarm.get('Managers')} manager(s), "
                  f"manager engine {info.get('ServerVersion')} (API {client.api.api_version})")


def _swarm_down(ctx: SwarmContext, detail: str) -> tuple[bool, str]:
    if ctx.unreachable_since is None:
        ctx.unreachable_since = time.monotonic()
    if lost_swarm(ctx) and ctx.known:
        # Reachable enough for the scheduler to collect the lost attempts' exits (collect_exits ends them).
        return True, f"{detail}; ending {len(ctx.known)} attempt(s) as lost hosts"
    return False, detail


def lost_swarm(ctx: SwarmContext) -> bool:
    """Whether the swarm has been unreachable for LOST_SWARM_SECONDS."""
    since = ctx.unreachable_since
    return since is not None and time.monotonic() - since >= LOST_SWARM_SECONDS


def local_node(ctx: SwarmContext, client: docker.DockerClient) -> str:
    """The node id of the manager the client talks to (whose containers we can inspect and stop)."""
    if not ctx.local_node:
        ctx.local_node = (client.info().get("Swarm") or {}).get("NodeID") or ""
    return ctx.local_node


def not_managing(exc: APIError) -> Exception:
    """A 503 means the engine answers but its swarm does not (it left, lost quorum or is shutting down)."""
    if exc.status_code == 503:
        return EngineUnavailable(f"the swarm does not answer: {explain(exc)}")
    return exc
