"""What a swarm node holds, from the node as the manager lists it: its CPUs and memory, its GPUs, and the
room batchemu's live tasks leave on it."""

from __future__ import annotations

GPU_KINDS = ("NVIDIA-GPU", "GPU")


def room(node: dict, used: dict[str, list[int]], cpus: int, memory: int) -> tuple[bool, int, int]:
    """(whether the node's free CPUs and memory hold the task's, free CPUs, free memory)."""
    taken = used.get(node["ID"], [0, 0, 0])
    free_cpus = node_resource(node, "NanoCPUs") - taken[0]
    free_memory = node_resource(node, "MemoryBytes") - taken[1]
    return free_cpus >= cpus and free_memory >= memory, free_cpus, free_memory


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
