"""Kubernetes resources of an eksProperties container: `limits` and `requests` of cpu, memory and
nvidia.com/gpu, written as Kubernetes quantities ("500m", "0.5", "256Mi", "1Gi"), read into numbers and
checked against AWS Batch's rules (EksContainerResourceRequirements)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from batchemu.errors import ClientException

CPU, MEMORY, GPU = "cpu", "memory", "nvidia.com/gpu"
NAMES = (CPU, MEMORY, GPU)
MIN_MEMORY_MIB = 4
CPU_STEP = Decimal("0.25")
QUANTITY = re.compile(r"\+?(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")
BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10**3),
           "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
           "E": Decimal(10**18)}


@dataclass(frozen=True)
class Resources:
    """What one container asks for: cpu cores, memory MiB and GPUs; None where it names none."""

    cpu_request: Decimal | None = None
    cpu_limit: Decimal | None = None
    memory_mib: int | None = None
    gpus: int = 0

    @property
    def cpu(self) -> Decimal | None:
        """The cores the container reserves: its request, else its limit."""
        return self.cpu_request if self.cpu_request is not None else self.cpu_limit


def quantity(value: str) -> Decimal | None:
    """A Kubernetes quantity as a number (bytes for memory, cores for cpu); None if it is not one."""
    match = QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        number = Decimal(match["number"])
    except InvalidOperation:
        return None
    suffix = match["suffix"] or ""
    if suffix in BINARY:
        return number * BINARY[suffix]
    if suffix in DECIMAL:
        return number * DECIMAL[suffix]
    return number * Decimal(10) ** int(suffix[1:])


def _value(name: str, value: str, where: str) -> Decimal:
    number = quantity(value)
    if number is None:
        raise ClientException(f"{where}: {name} value {value} is not a Kubernetes quantity")
    if name == CPU:
        if number <= 0 or number % CPU_STEP:
            raise ClientException(f"{where}: cpu value {value} must be a positive multiple of 0.25")
    elif name == MEMORY:
        if number < MIN_MEMORY_MIB * 2**20:
            raise ClientException(f"{where}: memory value {value} is less than {MIN_MEMORY_MIB}Mi: a job needs at "
                                  f"least {MIN_MEMORY_MIB} MiB of memory")
    elif number != number.to_integral_value() or number < 0:
        raise ClientException(f"{where}: {name} value {value} must be a whole number")
    return number


def check(resources: dict | None, where: str) -> Resources:
    """The container's resources, after AWS's rules: only cpu, memory and nvidia.com/gpu; memory in both
    limits and requests must be equal, a cpu limit at least the cpu request, a GPU limit equal to its request."""
    resources = resources or {}
    read: dict[str, dict[str, Decimal]] = {}
    for part in ("limits", "requests"):
        for name, value in (resources.get(part) or {}).items():
            if name not in NAMES:
                raise ClientException(f"{where}: resource {name} is not supported; supported resources are "
                                      f"{', '.join(NAMES)}")
            read.setdefault(part, {})[name] = _value(name, value, f"{where}.{part}")
    limits, requests = read.get("limits", {}), read.get("requests", {})
    if MEMORY in limits and MEMORY in requests and limits[MEMORY] != requests[MEMORY]:
        raise ClientException(f"{where}: memory in limits must equal memory in requests")
    if CPU in limits and CPU in requests and limits[CPU] < requests[CPU]:
        raise ClientException(f"{where}: cpu in limits must be at least cpu in requests")
    if GPU in limits and GPU in requests and limits[GPU] != requests[GPU]:
        raise ClientException(f"{where}: nvidia.com/gpu in limits must equal nvidia.com/gpu in requests")
    memory = limits.get(MEMORY, requests.get(MEMORY))
    gpus = limits.get(GPU, requests.get(GPU))
    return Resources(cpu_request=requests.get(CPU), cpu_limit=limits.get(CPU),
                     memory_mib=None if memory is None else math.ceil(memory / 2**20),
                     gpus=int(gpus or 0))
