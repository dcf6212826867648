"""What a job may ask of the machine under it. Privileged containers, devices and host-path volumes work by
default, as on AWS's EC2 compute (Snakemake's plugin registers `privileged: true` definitions); a shared
server can refuse them with --deny-privileged and --deny-host-volumes."""

from __future__ import annotations

from collections.abc import Iterator

from batchemu.config import Config
from batchemu.errors import ClientException


def _containers(definition: dict) -> Iterator[dict]:
    """Every container-like part of a job definition (container, ECS task containers, node ranges)."""
    if definition.get("containerProperties"):
        yield definition["containerProperties"]
    for task in (definition.get("ecsProperties") or {}).get("taskProperties") or []:
        yield from task.get("containers") or []
        yield {"volumes": task.get("volumes") or []}
    for node_range in (definition.get("nodeProperties") or {}).get("nodeRangeProperties") or []:
        yield from _containers({"containerProperties": node_range.get("container"),
                                "ecsProperties": node_range.get("ecsProperties")})


def _eks_parts(definition: dict) -> tuple[list[dict], list[dict]]:
    pod = (definition.get("eksProperties") or {}).get("podProperties") or {}
    return (pod.get("containers") or []) + (pod.get("initContainers") or []), pod.get("volumes") or []


def check(definition: dict, config: Config) -> None:
    """Refuse what the server's settings deny, naming the setting."""
    eks_containers, eks_volumes = _eks_parts(definition)
    if config.deny_privileged:
        for container in _containers(definition):
            if container.get("privileged") or (container.get("linuxParameters") or {}).get("devices"):
                raise ClientException("This batchemu server refuses privileged containers and host devices "
                                      "(--deny-privileged)")
        if any((c.get("securityContext") or {}).get("privileged") for c in eks_containers):
            raise ClientException("This batchemu server refuses privileged containers and host devices "
                                  "(--deny-privileged)")
    if config.deny_host_volumes:
        host_paths = [v for c in _containers(definition) for v in c.get("volumes") or []
                      if (v.get("host") or {}).get("sourcePath")]
        if host_paths or any(v.get("hostPath") for v in eks_volumes):
            raise ClientException("This batchemu server refuses host-path volumes (--deny-host-volumes)")
