"""The node a task runs on, as a pure function of the nodes as the manager lists them (engine terms: nano CPUs,
memory bytes, state, availability) and what batchemu's live tasks take of each; and what a node holds, for the
health page. No I/O: launch.place_task gathers the inputs and counts each choice until its start returns.

Swarm is not asked to place by reservations: its constraint enforcer (Docker 20.10) counts the reservations of
every completed job task, for ever (also once its service is removed), and rejects tasks, running ones
included, when they add up past a node's capacity. So batchemu places tasks itself, by their limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batchemu.executors import TaskSpec
from batchemu.executors.docker.arguments import MIN_MEMORY_MIB

GPU_KINDS = ("NVIDIA-GPU", "GPU")


@dataclass(frozen=True)
class Needs:
    """What a task takes of its node: its containers' CPU and memory limits, and whether it asks for GPUs."""

    nano_cpus: int
    memory_bytes: int
    gpus: bool = False


@dataclass
class NodeUse:
    """What batchemu's live tasks (and the starts under way) take of one node."""

    nano_cpus: int = 0
    memory_bytes: int = 0
    tasks: int = 0


def needs_of(task: TaskSpec) -> Needs:
    """The task's needs: the sum of its containers' vCPUs and memory (at least MIN_MEMORY_MIB each, as the
    limits its services get)."""
    return Needs(nano_cpus=sum(int(float(c.vcpus or 0) * 1e9) for c in task.containers),
                 memory_bytes=sum(max(int(c.memory_mib or 0), MIN_MEMORY_MIB) * 2**20 for c in task.containers),
                 gpus=any(c.gpus for c in task.containers))


def ready_nodes(nodes: list[dict]) -> list[dict]:
    """The nodes that are up and take new tasks (state ready, availability active)."""
    return [n for n in nodes if n.get("Status", {}).get("State") == "ready"
            and n.get("Spec", {}).get("Availability") == "active"]


def weighs_use(nodes: list[dict], needs: Needs) -> bool:
    """Whether choose_node weighs what the nodes hold: not for GPUs (Swarm places those) nor with fewer than
    two ready nodes, when the swarm need not be asked what its tasks take."""
    return not needs.gpus and len(ready_nodes(nodes)) >= 2


def choose_node(nodes: list[dict], needs: Needs, used: Mapping[str, NodeUse]) -> str | None:
    """The node a task runs on: of the ready, active nodes, one whose CPUs and memory left free by `used`
    hold the task's, the freest (most CPUs, then memory); with none free enough, the freest anyway, as a
    busy Docker host runs one more container. None (Swarm places the task) for a task that asks for GPUs
    and when no node is ready; the only ready node whatever it holds."""
    if needs.gpus:
        return None
    ready = ready_nodes(nodes)
    if len(ready) < 2:
        return ready[0]["ID"] if ready else None
    return max(ready, key=lambda node: room(node, used, needs))["ID"]


def room(node: dict, used: Mapping[str, NodeUse], needs: Needs) -> tuple[bool, int, int]:
    """(whether the node's free CPUs and memory hold the task's, free CPUs, free memory)."""
    taken = used.get(node["ID"], NodeUse())
    free_cpus = node_resource(node, "NanoCPUs") - taken.nano_cpus
    free_memory = node_resource(node, "MemoryBytes") - taken.memory_bytes
    return free_cpus >= needs.nano_cpus and free_memory >= needs.memory_bytes, free_cpus, free_memory


def tally(loads: Iterable[tuple[str, int, int]]) -> dict[str, NodeUse]:
    """node id -> what the (node id, nano CPUs, memory bytes) of each live task or start add up to."""
    used: dict[str, NodeUse] = {}
    for node_id, cpus, memory in loads:
        taken = used.setdefault(node_id, NodeUse())
        taken.nano_cpus += cpus
        taken.memory_bytes += memory
        taken.tasks += 1
    return used


def node_report(nodes: list[dict], used: Mapping[str, NodeUse]) -> list[dict]:
    """Each node with its capacity and what batchemu's running tasks take of it (the health page's)."""
    report = []
    for node in nodes:
        resources = node.get("Description", {}).get("Resources") or {}
        cpus, memory = int(resources.get("NanoCPUs") or 0), int(resources.get("MemoryBytes") or 0)
        taken = used.get(node["ID"], NodeUse())
        report.append({
            "id": node["ID"], "hostname": node.get("Description", {}).get("Hostname", ""),
            "role": node.get("Spec", {}).get("Role", ""), "state": node.get("Status", {}).get("State", ""),
            "availability": node.get("Spec", {}).get("Availability", ""),
            "address": node.get("Status", {}).get("Addr", ""),
            "vcpus": cpus / 1e9, "memoryMiB": memory // 2**20,
            "freeVcpus": max(cpus - taken.nano_cpus, 0) / 1e9,
            "freeMemoryMiB": max(memory - taken.memory_bytes, 0) // 2**20,
            "runningTasks": taken.tasks, "gpus": gpus(resources)})
    return report


def node_resource(node: dict, name: str) -> int:
    return int((node.get("Description", {}).get("Resources") or {}).get(name) or 0)


def gpus(resources: dict) -> dict[str, int]:
    """GPU generic resources a node advertises (`node-generic-resources` in its daemon.json), by kind."""
    result: dict[str, int] = {}
    for entry in resources.get("GenericResources") or []:
        discrete = entry.get("DiscreteResourceSpec") or {}
        named = entry.get("NamedResourceSpec") or {}
        kind = discrete.get("Kind") or named.get("Kind") or ""
        if any(word in kind.upper() for word in GPU_KINDS):
            result[kind] = result.get(kind, 0) + int(discrete.get("Value") or 1)
    return result
