"""What a job runs: a definition's containerProperties with SubmitJob's overrides applied, and AWS's rules for what
a container asks for (resourceRequirements, the legacy vcpus and memory)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from batchemu.errors import ClientException

REF = re.compile(r"Ref::([A-Za-z0-9_\-]+)")

DEFAULT_VCPUS = 1.0

# Fargate: the MEMORY values (MiB) each VCPU value allows (API reference, ResourceRequirement).
FARGATE_MEMORY = {
    Decimal("0.25"): {512, 1024, 2048},
    Decimal("0.5"): set(range(1024, 4097, 1024)),
    Decimal(1): set(range(2048, 8193, 1024)),
    Decimal(2): set(range(4096, 16385, 1024)),
    Decimal(4): set(range(8192, 30721, 1024)),
    Decimal(8): set(range(16384, 61441, 4096)),
    Decimal(16): set(range(32768, 122881, 8192)),
    Decimal(32): {61440, 122880, 249856},
}
# AWS Batch sets its own variables under this prefix and refuses it in definitions and overrides (job_env_vars.html).
RESERVED_ENVIRONMENT_PREFIX = "AWS_BATCH"


def substitute_parameters(command: list[str], parameters: dict[str, str]) -> list[str]:
    """Replace `Ref::name` placeholders that name a known parameter; unknown ones stay as written."""
    def one(arg: str) -> str:
        return REF.sub(lambda m: parameters.get(m.group(1), m.group(0)), arg)
    return [one(arg) for arg in command]


def check_environment(environment: list[dict], where: str, field: str = "environment") -> None:
    """A container's variables are set by name: an entry without one (the model allows it) is refused, and so is
    a name under AWS Batch's protected prefix."""
    for index, item in enumerate(environment, 1):
        name = item.get("name")
        if not name:
            raise ClientException(f"{where}.{field}[{index}] has no name: every environment variable "
                                  "needs a name")
        if name.startswith(RESERVED_ENVIRONMENT_PREFIX):
            raise ClientException(f"{where}.{field}[{index}]: environment variable {name} is not allowed: names "
                                  f"starting with {RESERVED_ENVIRONMENT_PREFIX} are reserved for AWS Batch")


def merge_by_key(base: list[dict], overrides: list[dict], key: str) -> list[dict]:
    """`base` with each item of `overrides` replacing the one of the same `key`, or added."""
    merged = {item[key]: item for item in base}
    for item in overrides:
        merged[item[key]] = item
    return list(merged.values())


def check_overrides(overrides: dict, *, fargate: bool) -> None:
    """SubmitJob's containerOverrides by the rules of the definition's members: no empty string in command, the
    resourceRequirements rules of RegisterJobDefinition, and the legacy vcpus and memory (not on Fargate)."""
    if any(arg == "" for arg in overrides.get("command") or []):
        raise ClientException("containerOverrides.command can't contain an empty string")
    check_resource_requirements(overrides.get("resourceRequirements"), fargate=fargate)
    for legacy, minimum in (("vcpus", 1), ("memory", 4)):
        value = overrides.get(legacy)
        if value is None:
            continue
        if fargate:
            raise invalid_definition(f"containerOverrides.{legacy} is not applicable for Fargate. Use "
                                     "resourceRequirements instead.")
        if value < minimum:
            raise invalid_definition(f"containerOverrides.{legacy} must be at least {minimum}.")


def check_fargate_combination(containers: list[dict]) -> None:
    """A Fargate job's VCPU and MEMORY (summed over a task's containers), after SubmitJob's overrides, must be one
    of Fargate's combinations; AWS's words at SubmitJob (seen in Netflix/metaflow#749)."""
    vcpus = sum((_number(v, "VCPU") for c in containers if (v := requirement(c, "VCPU")) is not None), Decimal(0))
    memory = sum((_number(m, "MEMORY") for c in containers if (m := requirement(c, "MEMORY")) is not None),
                 Decimal(0))
    if memory not in FARGATE_MEMORY.get(vcpus, set()):
        raise ClientException(f"Fargate resource requirements ({vcpus:.2f} vCPU, {memory} MiB) not valid.")


def resolve_container(properties: dict, overrides: dict, parameters: dict[str, str], *, fargate: bool = False) -> dict:
    """The ContainerDetail (wire form) a job runs with, before any attempt has started."""
    check_overrides(overrides, fargate=fargate)
    # A shallow copy is enough: below, every change replaces a top-level value and never edits one in place.
    container = dict(properties)
    if overrides.get("command") is not None:
        container["command"] = list(overrides["command"])
    container["command"] = substitute_parameters(container.get("command") or [], parameters)
    check_environment(overrides.get("environment") or [], "containerOverrides")
    container["environment"] = merge_by_key(container.get("environment") or [],
                                             overrides.get("environment") or [], "name")
    requirements = merge_by_key(container.get("resourceRequirements") or [],
                                 overrides.get("resourceRequirements") or [], "type")
    if requirements:
        container["resourceRequirements"] = requirements
    for legacy in ("vcpus", "memory", "instanceType"):
        if overrides.get(legacy) is not None:
            container[legacy] = overrides[legacy]
    # A legacy value overridden by a resourceRequirement of the same kind must not linger.
    kinds = {r["type"] for r in overrides.get("resourceRequirements") or []}
    if "VCPU" in kinds:
        container.pop("vcpus", None)
    if "MEMORY" in kinds:
        container.pop("memory", None)
    if fargate:
        check_fargate_combination([container])
    return container


def linux_parameters(container: dict) -> dict:
    """The linuxParameters a container runs with: swappiness is ignored without maxSwap (LinuxParameters reference)."""
    linux = dict(container.get("linuxParameters") or {})
    if linux.get("maxSwap") is None:
        linux.pop("swappiness", None)
    return linux


def requirement(container: dict, kind: str) -> str | None:
    for item in container.get("resourceRequirements") or []:
        if item.get("type") == kind:
            return item.get("value")
    return None


def vcpus_of(container: dict) -> float:
    """vCPUs a job reserves on its compute environment."""
    value = requirement(container, "VCPU")
    if value is not None:
        try:
            return float(value)
        except ValueError:
            return DEFAULT_VCPUS
    return float(container.get("vcpus") or DEFAULT_VCPUS)


def memory_mib_of(container: dict) -> int | None:
    """The hard memory limit in MiB, when the job names one."""
    value = requirement(container, "MEMORY")
    if value is not None:
        try:
            return int(float(value))
        except ValueError:
            return None
    return container.get("memory")


def gpus_of(container: dict) -> int:
    value = requirement(container, "GPU")
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def invalid_definition(reason: str) -> ClientException:
    """AWS's words for a job definition (or an override of one) it refuses."""
    return ClientException(f"Error executing request, Exception : {reason}")


def _number(value: str, what: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise invalid_definition(f"{what} value {value} is not a number.")
    return number


def requested_resources(container: dict, *, fargate: bool) -> tuple[Decimal | None, int | None]:
    """(vCPUs, memory MiB) a container asks for, through resourceRequirements or the legacy fields."""
    vcpus = memory = None
    seen: set[str] = set()
    for requirement in container.get("resourceRequirements") or []:
        kind, value = requirement["type"], requirement["value"]
        if kind in seen:
            raise invalid_definition(f"Duplicate resource requirement type {kind}.")
        seen.add(kind)
        number = _number(value, kind)
        if kind == "VCPU":
            if number <= 0 or (not fargate and number < 1):
                raise invalid_definition(f"Invalid VCPU value {value}: at least 1 vCPU is required for EC2 resources."
                               if not fargate else f"Invalid VCPU value {value}.")
            vcpus = number
        elif kind == "MEMORY":
            if number != number.to_integral_value() or number < 4:
                raise invalid_definition(f"Invalid MEMORY value {value}: memory must be a whole number of at least 4 MiB.")
            memory = int(number)
        else:
            if fargate:
                raise invalid_definition("GPU resources are not supported for Fargate.")
            if number != number.to_integral_value() or number < 0:
                raise invalid_definition(f"Invalid GPU value {value}: GPU must be a whole number.")
    for legacy, current in (("vcpus", vcpus), ("memory", memory)):
        if container.get(legacy) is None:
            continue
        if fargate:
            raise invalid_definition(f"{legacy} is not applicable for Fargate. Use resourceRequirements instead.")
        if current is not None:
            raise invalid_definition(f"{legacy} and resourceRequirements {legacy.upper().rstrip('S')} can't both be specified.")
    if container.get("vcpus") is not None:
        if container["vcpus"] < 1:
            raise invalid_definition("vcpus must be at least 1.")
        vcpus = Decimal(container["vcpus"])
    if container.get("memory") is not None:
        if container["memory"] < 4:
            raise invalid_definition("memory must be at least 4 MiB.")
        memory = container["memory"]
    return vcpus, memory


def check_resource_requirements(requirements: list[dict] | None, *, fargate: bool) -> None:
    """AWS's rules for the resourceRequirements of one container (an ECS task container, an override)."""
    requested_resources({"resourceRequirements": requirements}, fargate=fargate)
