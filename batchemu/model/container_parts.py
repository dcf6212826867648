"""AWS's documented rules for the parts of a job definition's container beyond what it asks for: Linux parameters,
ulimits, volumes and their mount points (host, EFS), ephemeral storage, runtime platform, the members of an ECS
task, and the Kubernetes members of an EKS pod. RegisterJobDefinition checks them (batchemu.service.job_definitions);
each refusal is a ClientException in AWS's "Error executing request" form. The sources are the API reference pages
listed in batchemu/model/documented_rules/job_definition_rules.py."""

from __future__ import annotations

import re

from batchemu.errors import ClientException
from batchemu.model.containers import invalid_definition

MAX_SWAPPINESS = 100
EPHEMERAL_GIB = (21, 200)
CONTAINER_TIMEOUT_MIN, FARGATE_CONTAINER_TIMEOUT_MAX = 2, 120
MAX_PORT = 65535
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                "rtprio", "rttime", "sigpending", "stack")
TMPFS_OPTIONS = ("defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async",
                 "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind", "rbind",
                 "unbindable", "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave",
                 "relatime", "norelatime", "strictatime", "nostrictatime", "mode", "uid", "gid", "nr_inodes",
                 "nr_blocks", "mpol")
OS_FAMILIES = ("LINUX", "WINDOWS_SERVER_2019_CORE", "WINDOWS_SERVER_2019_FULL", "WINDOWS_SERVER_2022_CORE",
               "WINDOWS_SERVER_2022_FULL")
CPU_ARCHITECTURES = ("X86_64", "ARM64")
# RuntimePlatform.operatingSystemFamily: what "can't be set for Windows containers".
NOT_ON_WINDOWS = ("linuxParameters", "privileged", "user", "ulimits", "readonlyRootFilesystem")
IPC_MODES, PID_MODES, NETWORK_MODES = ("host", "task", "none"), ("host", "task"), ("host",)
VOLUME_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
# ContainerProperties.image: up to 255 letters, numbers, - _ : . / and #; @ for the digest form the page also names.
IMAGE = re.compile(r"[A-Za-z0-9_:./#@-]{1,255}")

# EKS (EksPodProperties, EksContainer, EksVolume, EksMetadata, EksSeccompProfile, EksContainerSecurityContext).
DNS_POLICIES = ("Default", "ClusterFirst", "ClusterFirstWithHostNet")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
EMPTY_DIR_MEDIA = ("", "Memory")
DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_ID = 2147483647


def check_linux_parameters(linux: dict | None, where: str) -> None:
    """maxSwap is 0 or more, swappiness 0 to 100 (and only with maxSwap), sharedMemorySize and tmpfs sizes
    positive, tmpfs paths absolute with documented mount options."""
    linux = linux or {}
    if linux.get("maxSwap") is not None and linux["maxSwap"] < 0:
        raise invalid_definition(f"{where}.linuxParameters.maxSwap {linux['maxSwap']} is not valid: accepted "
                                 "values are 0 or any positive integer.")
    swappiness = linux.get("swappiness")
    if swappiness is not None and not 0 <= swappiness <= MAX_SWAPPINESS:
        raise invalid_definition(f"{where}.linuxParameters.swappiness {swappiness} is not valid: valid values are "
                                 f"whole numbers between 0 and {MAX_SWAPPINESS}.")
    if linux.get("sharedMemorySize") is not None and linux["sharedMemorySize"] < 1:
        raise invalid_definition(f"{where}.linuxParameters.sharedMemorySize must be a positive number of MiB.")
    for tmpfs in linux.get("tmpfs") or []:
        if not tmpfs["containerPath"].startswith("/"):
            raise invalid_definition(f"{where}.linuxParameters.tmpfs containerPath {tmpfs['containerPath']} must be "
                                     "an absolute path.")
        if tmpfs["size"] < 1:
            raise invalid_definition(f"{where}.linuxParameters.tmpfs size must be a positive number of MiB.")
        for option in tmpfs.get("mountOptions") or []:
            if option.split("=", 1)[0] not in TMPFS_OPTIONS:
                raise invalid_definition(f"{where}.linuxParameters.tmpfs mountOptions {option} is not a valid tmpfs "
                                         "mount option.")


def check_ulimits(ulimits: list[dict] | None, where: str) -> None:
    for ulimit in ulimits or []:
        if ulimit["name"] not in ULIMIT_NAMES:
            raise invalid_definition(f"{where}.ulimits name {ulimit['name']} is not valid; valid names are "
                                     f"{', '.join(ULIMIT_NAMES)}.")
        if ulimit["softLimit"] > ulimit["hardLimit"]:
            raise invalid_definition(f"{where}.ulimits {ulimit['name']}: softLimit can't be more than hardLimit.")


def _check_efs(volume: dict, role: str | None) -> None:
    efs = volume["efsVolumeConfiguration"]
    name = volume["name"]
    transit = efs.get("transitEncryption") == "ENABLED"
    authorization = efs.get("authorizationConfig") or {}
    if authorization.get("iam") == "ENABLED":
        if not transit:
            raise invalid_definition(f"Volume {name}: transit encryption must be enabled when EFS IAM authorization "
                                     "is used.")
        if not role:
            raise invalid_definition(f"Volume {name}: EFS IAM authorization requires a jobRoleArn.")
    if authorization.get("accessPointId"):
        if not transit:
            raise invalid_definition(f"Volume {name}: transit encryption must be enabled when an EFS access point "
                                     "is used.")
        if efs.get("rootDirectory") not in (None, "/"):
            raise invalid_definition(f"Volume {name}: rootDirectory must be omitted or set to / when an EFS access "
                                     "point is used.")
    port = efs.get("transitEncryptionPort")
    if port is not None and not 0 <= port <= MAX_PORT:
        raise invalid_definition(f"Volume {name}: transitEncryptionPort must be between 0 and {MAX_PORT}.")


def check_volumes(volumes: list[dict] | None, mount_points: list[dict], where: str, *, fargate: bool,
                  role: str | None) -> None:
    """Volume names are unique and of AWS's letters; a host volume is not for Fargate; EFS authorization needs
    transit encryption; every mount point's sourceVolume names a volume."""
    names: set[str] = set()
    for volume in volumes or []:
        name = volume.get("name") or ""
        if not VOLUME_NAME.fullmatch(name):
            raise invalid_definition(f"{where}.volumes name {name!r} is not valid: up to 255 letters, numbers, "
                                     "hyphens and underscores.")
        if name in names:
            raise invalid_definition(f"{where}.volumes name {name} is used more than once.")
        names.add(name)
        if fargate and volume.get("host") is not None:
            raise invalid_definition(f"Volume {name}: host is not applicable for Fargate.")
        if volume.get("efsVolumeConfiguration"):
            _check_efs(volume, role)
    for mount in mount_points:
        if mount.get("sourceVolume") not in names:
            raise invalid_definition(f"{where}.mountPoints sourceVolume {mount.get('sourceVolume')} is not a volume "
                                     f"of the job definition.")


def check_ephemeral_storage(storage: dict | None, where: str) -> None:
    low, high = EPHEMERAL_GIB
    if storage is not None and not low <= storage["sizeInGiB"] <= high:
        raise invalid_definition(f"{where}.ephemeralStorage sizeInGiB must be between {low} and {high}.")


def check_runtime_platform(platform: dict | None, containers: list[dict], where: str) -> None:
    """Known OS families and CPU architectures; a Windows container is X86_64 and sets none of NOT_ON_WINDOWS."""
    platform = platform or {}
    family, architecture = platform.get("operatingSystemFamily"), platform.get("cpuArchitecture")
    if family is not None and family not in OS_FAMILIES:
        raise invalid_definition(f"{where}.runtimePlatform operatingSystemFamily {family} is not valid; valid values "
                                 f"are {', '.join(OS_FAMILIES)}.")
    if architecture is not None and architecture not in CPU_ARCHITECTURES:
        raise invalid_definition(f"{where}.runtimePlatform cpuArchitecture {architecture} is not valid; valid values "
                                 f"are {', '.join(CPU_ARCHITECTURES)}.")
    if family is None or family == "LINUX":
        return
    if architecture not in (None, "X86_64"):
        raise invalid_definition(f"{where}.runtimePlatform cpuArchitecture must be X86_64 for Windows containers.")
    for container in containers:
        for field in NOT_ON_WINDOWS:
            if container.get(field) not in (None, False, [], {}):
                raise invalid_definition(f"{field} can't be set for Windows containers.")
        if any(v.get("efsVolumeConfiguration") for v in container.get("volumes") or []):
            raise invalid_definition("efsVolumeConfiguration can't be set for Windows containers.")


def check_image(image: str, where: str) -> None:
    if not IMAGE.fullmatch(image):
        raise invalid_definition(f"{where}.image {image[:300]} is not valid: up to 255 letters, numbers, hyphens, "
                                 "underscores, colons, periods, forward slashes, number signs and @.")


def check_container_timeouts(container: dict, where: str, *, fargate: bool) -> None:
    for field in ("startTimeout", "stopTimeout"):
        seconds = container.get(field)
        if seconds is None:
            continue
        if seconds < CONTAINER_TIMEOUT_MIN:
            raise invalid_definition(f"{where}.{field} must be at least {CONTAINER_TIMEOUT_MIN} seconds.")
        if fargate and seconds > FARGATE_CONTAINER_TIMEOUT_MAX:
            raise invalid_definition(f"{where}.{field} can be at most {FARGATE_CONTAINER_TIMEOUT_MAX} seconds on "
                                     "Fargate.")


def check_task(task: dict, platform: str) -> None:
    """The task-level members of ecsProperties.taskProperties[0] by platform: Fargate needs an execution role and
    takes no ipcMode; networkConfiguration is Fargate's; networkMode is MANAGED_INSTANCES' (host)."""
    fargate = platform == "FARGATE"
    if fargate and not task.get("executionRoleArn"):
        raise invalid_definition("Execution role is required for Fargate.")
    if task.get("ipcMode") is not None:
        if fargate:
            raise invalid_definition("ipcMode is not applicable for Fargate.")
        if task["ipcMode"] not in IPC_MODES:
            raise invalid_definition(f"ipcMode {task['ipcMode']} is not valid; valid values are "
                                     f"{', '.join(IPC_MODES)}.")
    if task.get("pidMode") is not None and task["pidMode"] not in PID_MODES:
        raise invalid_definition(f"pidMode {task['pidMode']} is not valid; valid values are {', '.join(PID_MODES)}.")
    for field in ("networkConfiguration", "platformVersion"):
        if not fargate and task.get(field) is not None:
            raise invalid_definition(f"{field} not applicable for {platform}.")
    if task.get("networkMode") is not None:
        if platform != "MANAGED_INSTANCES":
            raise invalid_definition(f"networkMode not applicable for {platform}.")
        if task["networkMode"] not in NETWORK_MODES:
            raise invalid_definition(f"networkMode {task['networkMode']} is not valid; valid values are host.")
    check_ephemeral_storage(task.get("ephemeralStorage"), "taskProperties")
    containers = task.get("containers") or []
    check_runtime_platform(task.get("runtimePlatform"), containers, "taskProperties")
    mounts = [m for c in containers for m in c.get("mountPoints") or []]
    check_volumes(task.get("volumes"), mounts, "taskProperties", fargate=fargate, role=task.get("taskRoleArn"))
    for index, container in enumerate(containers):
        where = f"taskProperties.containers[{index}]"
        check_image(container["image"], where)
        check_linux_parameters(container.get("linuxParameters"), where)
        check_ulimits(container.get("ulimits"), where)
        check_container_timeouts(container, where, fargate=fargate)


def check_container_parts(container: dict, *, fargate: bool) -> None:
    """The parts of a containerProperties (of a definition or a node range) beyond its image and resources."""
    where = "containerProperties"
    check_image(container["image"], where)
    check_linux_parameters(container.get("linuxParameters"), where)
    check_ulimits(container.get("ulimits"), where)
    check_volumes(container.get("volumes"), container.get("mountPoints") or [], where, fargate=fargate,
                  role=container.get("jobRoleArn"))
    check_ephemeral_storage(container.get("ephemeralStorage"), where)
    check_runtime_platform(container.get("runtimePlatform"), [container], where)


# -- eksProperties ---------------------------------------------------------------------------------------

def _check_eks_security(context: dict | None, where: str) -> None:
    context = context or {}
    for field in ("runAsUser", "runAsGroup"):
        if context.get(field) is not None and not 0 <= context[field] <= MAX_ID:
            raise ClientException(f"{where}.securityContext.{field} must be between 0 and {MAX_ID}")
    _check_seccomp(context.get("seccompProfile"), f"{where}.securityContext")


def _check_seccomp(profile: dict | None, where: str) -> None:
    if profile is None:
        return
    localhost = profile.get("type") == "Localhost"
    if localhost and not profile.get("localhostProfile"):
        raise ClientException(f"{where}.seccompProfile: localhostProfile must be specified when type is Localhost")
    if not localhost and profile.get("localhostProfile"):
        raise ClientException(f"{where}.seccompProfile: localhostProfile can only be set when type is Localhost")


def check_eks_metadata(metadata: dict | None, where: str) -> None:
    """EksMetadata: a namespace of Kubernetes' form, not `default`, not `kube*`."""
    metadata = metadata or {}
    namespace = metadata.get("namespace")
    if namespace is not None and (not NAMESPACE.fullmatch(namespace) or len(namespace) > 63
                                  or namespace == "default" or namespace.startswith("kube")):
        raise ClientException(f"{where}.metadata.namespace {namespace!r} is not valid: 1-63 characters matching "
                              "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, not default and not starting with kube")


def check_eks_pod(pod: dict) -> None:
    """The Kubernetes members of a pod: dnsPolicy, volume names (DNS subdomains), emptyDir medium, image pull
    secrets, each container's imagePullPolicy, security context and volume mounts (naming a volume of the pod)."""
    where = "eksProperties.podProperties"
    if pod.get("dnsPolicy") is not None and pod["dnsPolicy"] not in DNS_POLICIES:
        raise ClientException(f"{where}.dnsPolicy {pod['dnsPolicy']} is not valid; valid values are "
                              f"{', '.join(DNS_POLICIES)}")
    for secret in pod.get("imagePullSecrets") or []:
        if not DNS_SUBDOMAIN.fullmatch(secret["name"]):
            raise ClientException(f"{where}.imagePullSecrets name {secret['name']!r} is not valid: lowercase "
                                  "letters, numbers, periods and hyphens, at most 253 characters")
    volumes = set()
    for volume in pod.get("volumes") or []:
        if not DNS_SUBDOMAIN.fullmatch(volume["name"]):
            raise ClientException(f"{where}.volumes name {volume['name']!r} must be a DNS subdomain name")
        medium = (volume.get("emptyDir") or {}).get("medium")
        if medium is not None and medium not in EMPTY_DIR_MEDIA:
            raise ClientException(f"{where}.volumes {volume['name']}: emptyDir medium {medium!r} is not valid; "
                                  "valid values are \"\" and \"Memory\"")
        volumes.add(volume["name"])
    check_eks_metadata(pod.get("metadata"), where)
    _check_eks_security(pod.get("securityContext"), where)
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(pod.get(kind) or []):
            at = f"{where}.{kind}[{index}]"
            policy = container.get("imagePullPolicy")
            if policy is not None and policy not in PULL_POLICIES:
                raise ClientException(f"{at}.imagePullPolicy {policy} is not valid; valid values are "
                                      f"{', '.join(PULL_POLICIES)}")
            _check_eks_security(container.get("securityContext"), at)
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    raise ClientException(f"{at}.volumeMounts: volume {mount.get('name')} is not a volume of the pod")
