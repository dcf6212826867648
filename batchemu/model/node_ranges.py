"""Node ranges of a multi-node parallel job: which range describes a node, what SubmitJob's nodeOverrides
make of the definition's ranges, and what the nodes reserve. RegisterJobDefinition and SubmitJob check
them here (ClientException in AWS's words); the scheduler's side of these jobs is batchemu.model.multinode.
"""

from __future__ import annotations

import copy

from batchemu.errors import ClientException
from batchemu.model import task_definitions
from batchemu.model.containers import gpus_of, invalid_definition, memory_mib_of, resolve_container, vcpus_of

# Why eksProperties node ranges are refused: AWS's NodeProperties reference says so, though its
# NodeRangeProperty has an eksProperties member.
EKS_NODES_REFUSED = "Node properties can't be specified for Amazon EKS based job definitions."
MAX_NODES = 1000  # nodes of one multi-node job (multi-node-parallel-jobs.html)


def node_bounds(target: str, num_nodes: int) -> tuple[int, int]:
    """(low, high) of a targetNodes range: `a:b` inclusive, `:b` from 0, `a:` to the last node."""
    start, sep, end = target.partition(":")
    try:
        low = int(start) if start else 0
        high = (int(end) if end else num_nodes - 1) if sep else low
    except ValueError:
        raise invalid_definition(f"Invalid targetNodes {target}.") from None
    if not 0 <= low <= high < num_nodes:
        raise invalid_definition(f"targetNodes {target} is outside the range of nodes 0:{num_nodes - 1}.")
    return low, high


def _open_ended(target: str) -> bool:
    """Whether a targetNodes range runs to the last node (`:` or `n:`)."""
    return target.endswith(":")


def range_of(node_properties: dict, index: int) -> dict:
    """The node range that describes node `index`: the narrowest one that holds it (inner ranges win)."""
    best, best_span = None, None
    for node_range in node_properties["nodeRangeProperties"]:
        low, high = node_bounds(node_range["targetNodes"], node_properties["numNodes"])
        if low <= index <= high and (best_span is None or high - low <= best_span):
            best, best_span = node_range, high - low
    if best is None:
        raise ClientException(f"Node ranges must account for all nodes 0:{node_properties['numNodes'] - 1}; "
                              f"node {index} is not covered.")
    return best


def resolve(definition_nodes: dict, overrides: dict | None, parameters: dict[str, str]) -> dict:
    """The job's nodeProperties: the definition's, with nodeOverrides applied (numNodes on an open-ended
    range; containerOverrides per range) and each range's container resolved. ClientException as AWS."""
    nodes = copy.deepcopy(definition_nodes)
    overrides = overrides or {}
    defined = nodes["numNodes"]
    num_nodes = overrides.get("numNodes")
    if num_nodes is not None:
        open_ranges = [r for r in nodes["nodeRangeProperties"] if _open_ended(r["targetNodes"])]
        if not open_ranges:
            raise ClientException("numNodes can only be overridden when a node range of the job definition "
                                  "is open-ended (such as ':' or 'n:').")
        if not 1 <= num_nodes <= MAX_NODES:
            raise ClientException(f"numNodes must be between 1 and {MAX_NODES}, got {num_nodes}.")
        if any(node_bounds(r["targetNodes"], defined)[0] >= num_nodes
                                for r in open_ranges):
            raise ClientException(f"numNodes {num_nodes} must be more than the lower bound of the open-ended "
                                  "node range of the job definition.")
        if nodes["mainNode"] >= num_nodes:
            raise ClientException(f"numNodes {num_nodes} must be more than the mainNode "
                                  f"{nodes['mainNode']} of the job definition.")
        nodes["numNodes"] = num_nodes
        for node_range in nodes["nodeRangeProperties"]:
            node_bounds(node_range["targetNodes"], num_nodes)  # every range within the nodes
    targets = {r["targetNodes"]: r for r in nodes["nodeRangeProperties"]}
    given: dict[str, dict] = {}
    for override in overrides.get("nodePropertyOverrides") or []:
        node_range = targets.get(override["targetNodes"])
        if node_range is None:
            raise ClientException("NodeOverride targets should match job definition. Non matching targets - "
                                  f"{override['targetNodes']}")
        _check_override_kind(node_range, override)
        given[override["targetNodes"]] = override
    for node_range in nodes["nodeRangeProperties"]:
        override = given.get(node_range["targetNodes"]) or {}
        if node_range.get("ecsProperties"):
            node_range["ecsProperties"] = task_definitions.resolve_ecs(node_range["ecsProperties"],
                                                                       override.get("ecsPropertiesOverride"), parameters,
                                                                       fargate=False)
        elif node_range.get("container") is not None:
            node_range["container"] = resolve_container(node_range["container"],
                                                        override.get("containerOverrides") or {}, parameters)
        else:  # eksProperties: refused at RegisterJobDefinition since; a definition stored before is refused here
            raise ClientException(EKS_NODES_REFUSED)
    for index in range(nodes["numNodes"]):
        range_of(nodes, index)
    return nodes


def _check_override_kind(node_range: dict, override: dict) -> None:
    """An override of a node range must be of the range's kind (containerOverrides for a container range,
    ecsPropertiesOverride for an ecsProperties one)."""
    target = override["targetNodes"]
    if override.get("eksPropertiesOverride"):
        raise ClientException(f"nodePropertyOverrides[{target}]: eksPropertiesOverride can't be specified: "
                              + EKS_NODES_REFUSED)
    if override.get("ecsPropertiesOverride") and not node_range.get("ecsProperties"):
        raise ClientException(f"nodePropertyOverrides[{target}]: ecsPropertiesOverride can only override a node "
                              "range of ecsProperties; this range has container properties (use containerOverrides).")
    if override.get("containerOverrides") and node_range.get("ecsProperties"):
        raise ClientException(f"nodePropertyOverrides[{target}]: containerOverrides can't override a node range of "
                              "ecsProperties; use ecsPropertiesOverride.")


def reservation(node_range: dict) -> tuple[float, int | None, int]:
    """(vCPUs, memory MiB or None, GPUs) one node of a range reserves."""
    if node_range.get("ecsProperties"):
        return task_definitions.reservation({"ecsProperties": node_range["ecsProperties"]})
    container = node_range["container"]
    return vcpus_of(container), memory_mib_of(container), gpus_of(container)


def totals(nodes: dict) -> dict:
    """What the job holds while on a host: the sum over its nodes (capacity is all-or-nothing)."""
    held = [reservation(range_of(nodes, i)) for i in range(nodes["numNodes"])]
    return {"vcpus": sum(v for v, _, _ in held), "gpus": sum(g for _, _, g in held),
            "memoryMib": sum(m for _, m, _ in held if m) or None}
