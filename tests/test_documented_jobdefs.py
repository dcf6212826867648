"""The documented rules of job definitions (batchemu/model/documented_rules/job_definition_rules.py), each shown on
a server: a refusal with its ClientException and words, an acceptance, or the field a rule decides. One server
(simulate executor) with an EC2 and a Fargate queue serves the module; cases are one request each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from batchemu.config import Config
from tests.conftest import make_queue, unique

rule = pytest.mark.rule
ROLE = "arn:aws:iam::123456789012:role/exec"
EC2_RESOURCES = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]
FARGATE_RESOURCES = [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}]


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    from batchemu.http.server import Server
    running = Server(Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate",
                            simulate_seconds=0.2, instance_label=uuid.uuid4().hex)).start()
    try:
        yield running
    finally:
        running.stop(remove_containers=True)


@pytest.fixture(scope="module")
def client(server):
    return boto3.client("batch", endpoint_url=server.url, region_name=server.config.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=BotoConfig(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def queues(client) -> dict[str, str]:
    return {"EC2": make_queue(client)["name"], "FARGATE": make_queue(client, ce_type="FARGATE")["name"]}


def container(**extra) -> dict:
    return {"image": "busybox", "command": ["true"], "resourceRequirements": EC2_RESOURCES, **extra}


def fargate(**extra) -> dict:
    return {"image": "busybox", "executionRoleArn": ROLE, "resourceRequirements": FARGATE_RESOURCES, **extra}


def ecs(*containers: dict, **task) -> dict:
    return {"taskProperties": [{"containers": list(containers), **task}]}


def task_container(name: str = "main", **extra) -> dict:
    return {"name": name, "image": "busybox", "resourceRequirements": EC2_RESOURCES, **extra}


def pod(*containers: dict, **properties) -> dict:
    return {"podProperties": {"containers": list(containers) or [{"image": "busybox"}], **properties}}


def nodes(*ranges: dict, num_nodes: int = 2, main_node: int = 0) -> dict:
    return {"numNodes": num_nodes, "mainNode": main_node, "nodeRangeProperties": list(ranges)}


def register(client, **kwargs) -> dict:
    kwargs.setdefault("type", "container")
    if kwargs["type"] == "container" and not {"containerProperties", "ecsProperties", "eksProperties"} & set(kwargs):
        kwargs["containerProperties"] = container()
    return client.register_job_definition(jobDefinitionName=kwargs.pop("name", unique("jd")), **kwargs)


def refusal(call, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["Error"]["Code"] == "ClientException", caught.value.response
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return caught.value.response["Error"]["Message"]


def case(marks, refused: str | None, **request):
    """A RegisterJobDefinition request, the rule it shows and the words of its refusal (None: it is accepted)."""
    return pytest.param(request, refused, marks=marks, id=f"{marks.args[0]}:{refused or 'accepted'}"[:90])


REGISTER_CASES = [
    case(rule("RegisterJobDefinition.jobDefinitionName.pattern"), "is not supported pattern", name="bad.name"),
    case(rule("RegisterJobDefinition.type.container"), "Exactly one of containerProperties", type="container",
         containerProperties=container(), ecsProperties=ecs(task_container())),
    case(rule("RegisterJobDefinition.type.multinode"), "nodeProperties must be specified", type="multinode"),
    case(rule("RegisterJobDefinition.type.multinode_not_fargate"), "multinode type job definitions are not supported on "
         "Fargate", type="multinode", platformCapabilities=["FARGATE"],
         nodeProperties=nodes({"targetNodes": "0:1", "container": container()})),
    case(rule("JobDefinition.properties.only_one"), "nodeProperties can't be specified for container type",
         containerProperties=container(), nodeProperties=nodes({"targetNodes": "0:1", "container": container()})),
    case(rule("JobDefinition.properties.only_one"), "can't be specified for multinode", type="multinode",
         containerProperties=container(), nodeProperties=nodes({"targetNodes": "0:1", "container": container()})),
    case(rule("RegisterJobDefinition.schedulingPriority.range"), "between 0 and 9999", schedulingPriority=10000),
    case(rule("RegisterJobDefinition.schedulingPriority.range"), "between 0 and 9999", schedulingPriority=-1),
    case(rule("RegisterJobDefinition.schedulingPriority.range"), None, schedulingPriority=9999),
    case(rule("RegisterJobDefinition.platformCapabilities.not_eks"), "platformCapabilities can't be specified for EKS",
         eksProperties=pod(), platformCapabilities=["EC2"]),
    case(rule("RegisterJobDefinition.platformCapabilities.managed_instances"), "must use ecsProperties",
         containerProperties=container(), platformCapabilities=["MANAGED_INSTANCES"]),
    case(rule("ContainerProperties.image.required"), "Container image is not provided.",
         containerProperties={"resourceRequirements": EC2_RESOURCES}),
    case(rule("ContainerProperties.image.pattern"), "is not valid: up to 255 letters",
         containerProperties=container(image="busybox latest")),
    case(rule("ContainerProperties.image.pattern"), "is not valid: up to 255 letters",
         ecsProperties=ecs(task_container(image="a" * 256))),
    case(rule("ContainerProperties.image.pattern"), None, containerProperties=container(
        image="public.ecr.aws/docker/library/busybox@sha256:" + "0" * 64)),
    case(rule("ResourceRequirement.VCPU.required"), "vCPU is not provided.",
         containerProperties={"image": "busybox", "resourceRequirements": [{"type": "MEMORY", "value": "128"}]}),
    case(rule("ResourceRequirement.VCPU.required"), "vCPU is not provided.", type="multinode",
         nodeProperties=nodes({"targetNodes": "0:1", "container": {"image": "busybox", "memory": 128}})),
    case(rule("ResourceRequirement.MEMORY.required"), "Memory is not provided.",
         containerProperties={"image": "busybox", "resourceRequirements": [{"type": "VCPU", "value": "1"}]}),
    case(rule("ResourceRequirement.MEMORY.minimum"), "at least 4 MiB",
         containerProperties=container(resourceRequirements=[{"type": "VCPU", "value": "1"},
                                                             {"type": "MEMORY", "value": "3"}])),
    case(rule("ResourceRequirement.VCPU.ec2_minimum"), "at least 1 vCPU is required for EC2",
         containerProperties=container(resourceRequirements=[{"type": "VCPU", "value": "0.5"},
                                                             {"type": "MEMORY", "value": "128"}])),
    case(rule("ResourceRequirement.GPU.whole"), "GPU must be a whole number",
         containerProperties=container(resourceRequirements=[*EC2_RESOURCES, {"type": "GPU", "value": "1.5"}])),
    case(rule("ResourceRequirement.GPU.not_fargate"), "GPU resources are not supported for Fargate",
         platformCapabilities=["FARGATE"],
         containerProperties=fargate(resourceRequirements=[*FARGATE_RESOURCES, {"type": "GPU", "value": "1"}])),
    case(rule("ResourceRequirement.fargate_combinations"), "is not a supported combination", platformCapabilities=["FARGATE"],
         containerProperties=fargate(resourceRequirements=[{"type": "VCPU", "value": "0.25"},
                                                           {"type": "MEMORY", "value": "4096"}])),
    case(rule("ResourceRequirement.fargate_combinations"), "is not a supported combination", platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=[{"type": "VCPU", "value": "0.25"},
                                                                {"type": "MEMORY", "value": "4096"}]),
                           executionRoleArn=ROLE)),
    case(rule("ResourceRequirement.fargate_combinations"), None, platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container("a", resourceRequirements=FARGATE_RESOURCES),
                           task_container("b", resourceRequirements=FARGATE_RESOURCES), executionRoleArn=ROLE)),
    case(rule("ContainerProperties.legacy_resources.not_fargate"), "vcpus is not applicable for Fargate",
         platformCapabilities=["FARGATE"], containerProperties={"image": "busybox", "executionRoleArn": ROLE,
                                                                "vcpus": 1, "memory": 512}),
    case(rule("ContainerProperties.memory.minimum"), "memory must be at least 4 MiB",
         containerProperties={"image": "busybox", "vcpus": 1, "memory": 3}),
    case(rule("ContainerProperties.memory.minimum"), "vcpus must be at least 1",
         containerProperties={"image": "busybox", "vcpus": 0, "memory": 64}),
    case(rule("ContainerProperties.environment.reserved_prefix"), "reserved for AWS Batch",
         containerProperties=container(environment=[{"name": "AWS_BATCH_X", "value": "1"}])),
    case(rule("ContainerProperties.environment.reserved_prefix"), "reserved for AWS Batch",
         eksProperties=pod({"image": "busybox", "env": [{"name": "AWS_BATCH_X", "value": "1"}]})),
    case(rule("ContainerProperties.executionRoleArn.fargate"), "Execution role is required for Fargate.",
         platformCapabilities=["FARGATE"], containerProperties=fargate(executionRoleArn="")),
    case(rule("ContainerProperties.executionRoleArn.fargate"), "Execution role is required for Fargate.",
         platformCapabilities=["FARGATE"], ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES))),
    case(rule("ContainerProperties.privileged.not_fargate"), "privileged is not applicable for Fargate",
         platformCapabilities=["FARGATE"], containerProperties=fargate(privileged=True)),
    case(rule("ContainerProperties.privileged.not_fargate"), "privileged is not applicable for Fargate",
         platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES, privileged=True),
                           executionRoleArn=ROLE)),
    case(rule("ContainerProperties.privileged.not_fargate"), None, platformCapabilities=["FARGATE"],
         containerProperties=fargate(privileged=False)),
    case(rule("ContainerProperties.ulimits.not_fargate"), "ulimits is not applicable for Fargate",
         platformCapabilities=["FARGATE"],
         containerProperties=fargate(ulimits=[{"name": "nofile", "softLimit": 1, "hardLimit": 2}])),
    case(rule("ContainerProperties.instanceType.single_node"), "instanceType is not applicable for Fargate",
         platformCapabilities=["FARGATE"], containerProperties=fargate(instanceType="m5.large")),
    case(rule("ContainerProperties.instanceType.single_node"), None, containerProperties=container(instanceType="m5.large")),
    case(rule("ContainerProperties.networkConfiguration.fargate_only"), "networkConfiguration not applicable for EC2",
         containerProperties=container(networkConfiguration={"assignPublicIp": "ENABLED"})),
    case(rule("ContainerProperties.networkConfiguration.fargate_only"), "fargatePlatformConfiguration not applicable",
         containerProperties=container(fargatePlatformConfiguration={"platformVersion": "LATEST"})),
    case(rule("LogConfiguration.logDriver.fargate"), "logDriver fluentd is not supported for Fargate",
         platformCapabilities=["FARGATE"], containerProperties=fargate(logConfiguration={"logDriver": "fluentd"})),
    case(rule("LogConfiguration.logDriver.fargate"), None, platformCapabilities=["FARGATE"],
         containerProperties=fargate(logConfiguration={"logDriver": "awsfirelens"})),
    case(rule("LogConfiguration.logDriver.fargate"), None, platformCapabilities=["FARGATE"],
         containerProperties=fargate(logConfiguration={"logDriver": "splunk"})),
    case(rule("LinuxParameters.not_fargate"), "linuxParameters.tmpfs is not applicable for Fargate",
         platformCapabilities=["FARGATE"],
         containerProperties=fargate(linuxParameters={"tmpfs": [{"containerPath": "/t", "size": 8}]})),
    case(rule("LinuxParameters.not_fargate"), "linuxParameters.sharedMemorySize is not applicable for Fargate",
         platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES,
                                          linuxParameters={"sharedMemorySize": 64}), executionRoleArn=ROLE)),
    case(rule("LinuxParameters.maxSwap.minimum"), "accepted values are 0 or any positive integer",
         containerProperties=container(linuxParameters={"maxSwap": -1})),
    case(rule("LinuxParameters.maxSwap.minimum"), None, containerProperties=container(linuxParameters={"maxSwap": 0})),
    case(rule("LinuxParameters.swappiness.range"), "whole numbers between 0 and 100",
         containerProperties=container(linuxParameters={"maxSwap": 10, "swappiness": 101})),
    case(rule("LinuxParameters.swappiness.range"), "whole numbers between 0 and 100",
         ecsProperties=ecs(task_container(linuxParameters={"maxSwap": 10, "swappiness": -1}))),
    case(rule("LinuxParameters.swappiness.range"), None,
         containerProperties=container(linuxParameters={"maxSwap": 10, "swappiness": 100})),
    case(rule("Tmpfs.containerPath.absolute"), "must be an absolute path",
         containerProperties=container(linuxParameters={"tmpfs": [{"containerPath": "scratch", "size": 8}]})),
    case(rule("Tmpfs.mountOptions.values"), "is not a valid tmpfs mount option",
         containerProperties=container(linuxParameters={"tmpfs": [{"containerPath": "/t", "size": 8,
                                                                   "mountOptions": ["turbo"]}]})),
    case(rule("Tmpfs.mountOptions.values"), None,
         containerProperties=container(linuxParameters={"tmpfs": [{"containerPath": "/t", "size": 8,
                                                                   "mountOptions": ["rw", "noexec", "mode=1777"]}]})),
    case(rule("Ulimit.name.values"), "ulimits name files is not valid",
         containerProperties=container(ulimits=[{"name": "files", "softLimit": 1, "hardLimit": 2}])),
    case(rule("Volume.name.pattern"), "is not valid: up to 255 letters",
         containerProperties=container(volumes=[{"name": "my volume"}])),
    case(rule("MountPoint.sourceVolume.names_a_volume"), "sourceVolume data is not a volume of the job definition",
         containerProperties=container(mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}])),
    case(rule("MountPoint.sourceVolume.names_a_volume"), "sourceVolume data is not a volume of the job definition",
         ecsProperties=ecs(task_container(mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}]))),
    case(rule("MountPoint.sourceVolume.names_a_volume"), None,
         containerProperties=container(volumes=[{"name": "data"}],
                                       mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}])),
    case(rule("Volume.host.not_fargate"), "host is not applicable for Fargate", platformCapabilities=["FARGATE"],
         containerProperties=fargate(volumes=[{"name": "a", "host": {"sourcePath": "/tmp"}}])),
    case(rule("EFSVolumeConfiguration.transitEncryption.iam"), "transit encryption must be enabled",
         containerProperties=container(jobRoleArn=ROLE, volumes=[{"name": "a", "efsVolumeConfiguration": {
             "fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}])),
    case(rule("EFSVolumeConfiguration.transitEncryption.iam"), "requires a jobRoleArn",
         containerProperties=container(volumes=[{"name": "a", "efsVolumeConfiguration": {
             "fileSystemId": "fs-1", "transitEncryption": "ENABLED", "authorizationConfig": {"iam": "ENABLED"}}}])),
    case(rule("EFSAuthorizationConfig.accessPointId.rules"), "rootDirectory must be omitted or set to /",
         containerProperties=container(volumes=[{"name": "a", "efsVolumeConfiguration": {
             "fileSystemId": "fs-1", "rootDirectory": "/x", "transitEncryption": "ENABLED",
             "authorizationConfig": {"accessPointId": "fsap-1"}}}])),
    case(rule("EFSAuthorizationConfig.accessPointId.rules"), "transit encryption must be enabled",
         containerProperties=container(volumes=[{"name": "a", "efsVolumeConfiguration": {
             "fileSystemId": "fs-1", "authorizationConfig": {"accessPointId": "fsap-1"}}}])),
    case(rule("EFSAuthorizationConfig.accessPointId.rules"), None,
         containerProperties=container(volumes=[{"name": "a", "efsVolumeConfiguration": {
             "fileSystemId": "fs-1", "rootDirectory": "/", "transitEncryption": "ENABLED",
             "authorizationConfig": {"accessPointId": "fsap-1"}}}])),
    case(rule("EFSVolumeConfiguration.transitEncryptionPort.range"), "between 0 and 65535",
         containerProperties=container(volumes=[{"name": "a", "efsVolumeConfiguration": {
             "fileSystemId": "fs-1", "transitEncryptionPort": 65536}}])),
    case(rule("EphemeralStorage.sizeInGiB.range"), "between 21 and 200", platformCapabilities=["FARGATE"],
         containerProperties=fargate(ephemeralStorage={"sizeInGiB": 20})),
    case(rule("EphemeralStorage.sizeInGiB.range"), "between 21 and 200", platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES), executionRoleArn=ROLE,
                           ephemeralStorage={"sizeInGiB": 201})),
    case(rule("EphemeralStorage.sizeInGiB.range"), None, platformCapabilities=["FARGATE"],
         containerProperties=fargate(ephemeralStorage={"sizeInGiB": 200})),
    case(rule("RuntimePlatform.values"), "operatingSystemFamily BEOS is not valid", platformCapabilities=["FARGATE"],
         containerProperties=fargate(runtimePlatform={"operatingSystemFamily": "BEOS"})),
    case(rule("RuntimePlatform.values"), "cpuArchitecture RISCV is not valid", platformCapabilities=["FARGATE"],
         containerProperties=fargate(runtimePlatform={"cpuArchitecture": "RISCV"})),
    case(rule("RuntimePlatform.windows"), "must be X86_64 for Windows", platformCapabilities=["FARGATE"],
         containerProperties=fargate(runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2019_CORE",
                                                      "cpuArchitecture": "ARM64"})),
    case(rule("RuntimePlatform.windows"), "user can't be set for Windows containers", platformCapabilities=["FARGATE"],
         containerProperties=fargate(user="app", runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2022_FULL"})),
    case(rule("RuntimePlatform.windows"), None, platformCapabilities=["FARGATE"],
         containerProperties=fargate(runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"})),
    case(rule("EcsProperties.taskProperties.one"), "exactly one taskProperties entry",
         ecsProperties={"taskProperties": [{"containers": [task_container()]}, {"containers": [task_container()]}]}),
    case(rule("EcsTaskProperties.containers.limit"), "at most 10 containers",
         ecsProperties=ecs(*[task_container(f"c{i}") for i in range(11)])),
    case(rule("TaskContainerProperties.essential.one"), "At least one container must be essential",
         ecsProperties=ecs(task_container(essential=False))),
    case(rule("TaskContainerDependency.condition.not_essential"), "can't be set on an essential container",
         ecsProperties=ecs(task_container("a"), task_container("b", dependsOn=[{"containerName": "a",
                                                                                 "condition": "SUCCESS"}]))),
    case(rule("TaskContainerProperties.name.unique"), "must have a unique name",
         ecsProperties=ecs(task_container("a"), task_container("a"))),
    case(rule("TaskContainerProperties.timeouts.range"), "startTimeout must be at least 2 seconds",
         ecsProperties=ecs(task_container(startTimeout=1))),
    case(rule("TaskContainerProperties.timeouts.range"), "stopTimeout can be at most 120 seconds on Fargate",
         platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES, stopTimeout=121),
                           executionRoleArn=ROLE)),
    case(rule("TaskContainerProperties.timeouts.range"), None, ecsProperties=ecs(task_container(stopTimeout=600))),
    case(rule("TaskContainerProperties.essential.default"), None, ecsProperties=ecs(task_container("a"),
                                                                                task_container("b", essential=False))),
    case(rule("EcsTaskProperties.platformVersion.fargate_only"), "platformVersion not applicable for EC2",
         ecsProperties=ecs(task_container(), platformVersion="LATEST")),
    case(rule("EcsTaskProperties.platformVersion.fargate_only"), None, platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES), executionRoleArn=ROLE,
                           platformVersion="1.4.0")),
    case(rule("EcsTaskProperties.ipcMode.values"), "ipcMode shared is not valid",
         ecsProperties=ecs(task_container(), ipcMode="shared")),
    case(rule("EcsTaskProperties.ipcMode.values"), "ipcMode is not applicable for Fargate", platformCapabilities=["FARGATE"],
         ecsProperties=ecs(task_container(resourceRequirements=FARGATE_RESOURCES), executionRoleArn=ROLE,
                           ipcMode="task")),
    case(rule("EcsTaskProperties.ipcMode.values"), "pidMode none is not valid",
         ecsProperties=ecs(task_container(), pidMode="none")),
    case(rule("EcsTaskProperties.networkConfiguration.fargate_only"), "networkConfiguration not applicable for EC2",
         ecsProperties=ecs(task_container(), networkConfiguration={"assignPublicIp": "ENABLED"})),
    case(rule("EcsTaskProperties.networkMode.managed_instances"), "networkMode not applicable for EC2",
         ecsProperties=ecs(task_container(), networkMode="host")),
    case(rule("EcsTaskProperties.networkMode.managed_instances"), None, platformCapabilities=["MANAGED_INSTANCES"],
         ecsProperties=ecs(task_container(), networkMode="host")),
    case(rule("EksPodProperties.containers.limit"), "at most 10 containers",
         eksProperties=pod(*[{"name": f"c{i}", "image": "busybox"} for i in range(11)])),
    case(rule("EksContainer.name.unique"), "unique name",
         eksProperties=pod({"image": "busybox"}, {"name": "Default", "image": "busybox"})),
    case(rule("EksContainerResourceRequirements.memory.rules"), "memory in limits must equal memory in requests",
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"memory": "64Mi"},
                                                              "requests": {"memory": "32Mi"}}})),
    case(rule("EksContainerResourceRequirements.memory.rules"), "less than 4Mi",
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"memory": "3Mi"}}})),
    case(rule("EksContainerResourceRequirements.cpu.rules"), "must be a positive multiple of 0.25",
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"cpu": "0.3"}}})),
    case(rule("EksContainerResourceRequirements.cpu.rules"), "cpu in limits must be at least cpu in requests",
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}})),
    case(rule("EksContainerResourceRequirements.gpu.rules"), "must be a whole number",
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "1.5"}}})),
    case(rule("EksContainerResourceRequirements.gpu.rules"), "nvidia.com/gpu in limits must equal",
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "2"},
                                                              "requests": {"nvidia.com/gpu": "1"}}})),
    case(rule("EksContainerResourceRequirements.memory.mi_suffix"), None,
         eksProperties=pod({"image": "busybox", "resources": {"limits": {"memory": "1Gi", "cpu": "0.5"}}})),
    case(rule("EksContainerVolumeMount.name.matches"), "volume scratch is not a volume of the pod",
         eksProperties=pod({"image": "busybox", "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]})),
    case(rule("EksPodProperties.dnsPolicy.values"), "dnsPolicy None is not valid", eksProperties=pod(dnsPolicy="None")),
    case(rule("EksContainer.imagePullPolicy.values"), "imagePullPolicy Sometimes is not valid",
         eksProperties=pod({"image": "busybox", "imagePullPolicy": "Sometimes"})),
    case(rule("EksVolume.name.dns_subdomain"), "must be a DNS subdomain name",
         eksProperties=pod(volumes=[{"name": "Scratch_Space", "emptyDir": {}}])),
    case(rule("EksEmptyDir.medium.values"), "emptyDir medium 'Disk' is not valid",
         eksProperties=pod(volumes=[{"name": "scratch", "emptyDir": {"medium": "Disk"}}])),
    case(rule("EksEmptyDir.medium.values"), None,
         eksProperties=pod(volumes=[{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}])),
    case(rule("ImagePullSecret.name.pattern"), "imagePullSecrets name 'My_Secret' is not valid",
         eksProperties=pod(imagePullSecrets=[{"name": "My_Secret"}])),
    case(rule("EksMetadata.namespace.rules"), "namespace 'default' is not valid",
         eksProperties=pod(metadata={"namespace": "default"})),
    case(rule("EksMetadata.namespace.rules"), "namespace 'kube-jobs' is not valid",
         eksProperties=pod(metadata={"namespace": "kube-jobs"})),
    case(rule("EksMetadata.namespace.rules"), None, eksProperties=pod(metadata={"namespace": "batch-jobs"})),
    case(rule("EksMetadata.labels.keys"), None,
         eksProperties=pod(metadata={"labels": {"app.kubernetes.io/name": "x", "team": "a"}})),
    case(rule("EksContainerSecurityContext.ids.range"), "runAsUser must be between 0 and 2147483647",
         eksProperties=pod({"image": "busybox", "securityContext": {"runAsUser": -1}})),
    case(rule("EksSeccompProfile.localhostProfile.when_localhost"), "localhostProfile must be specified",
         eksProperties=pod({"image": "busybox", "securityContext": {"seccompProfile": {"type": "Localhost"}}})),
    case(rule("EksSeccompProfile.localhostProfile.when_localhost"), "can only be set when type is Localhost",
         eksProperties=pod({"image": "busybox", "securityContext": {"seccompProfile": {
             "type": "RuntimeDefault", "localhostProfile": "p.json"}}})),
    case(rule("NodeProperties.mainNode.less_than_numNodes"), "mainNode must be less than numNodes", type="multinode",
         nodeProperties=nodes({"targetNodes": "0:1", "container": container()}, main_node=2)),
    case(rule("NodeProperties.not_eks"), "can't be specified for Amazon EKS", type="multinode",
         nodeProperties=nodes({"targetNodes": "0:1", "eksProperties": pod()})),
    case(rule("NodeRangeProperty.targetNodes.cover_all"), "node 1 is not covered", type="multinode",
         nodeProperties=nodes({"targetNodes": "0:0", "container": container()})),
    case(rule("NodeRangeProperty.targetNodes.open_forms"), None, type="multinode",
         nodeProperties=nodes({"targetNodes": ":0", "container": container()},
                              {"targetNodes": "1:", "container": container()}, num_nodes=3)),
    case(rule("NodeRangeProperty.instanceTypes.one"), "is limited to one element", type="multinode",
         nodeProperties=nodes({"targetNodes": "0:1", "instanceTypes": ["m5.large", "m5.xlarge"],
                               "container": container()})),
    case(rule("ContainerProperties.instanceType.same_for_nodes"), "must use the same instance type", type="multinode",
         nodeProperties=nodes({"targetNodes": "0:0", "container": container(instanceType="m5.large")},
                              {"targetNodes": "1:1", "container": container(instanceType="m5.xlarge")})),
]


@pytest.mark.parametrize(("request_", "refused"), REGISTER_CASES)
def test_register_job_definition_rule(client, request_, refused):
    if refused is None:
        assert register(client, **request_)["revision"] >= 1
    else:
        assert refused in refusal(register, client=client, **request_)


def submit_case(marks, refused: str | None, definition: dict, queue: str = "EC2", **request):
    """A SubmitJob request on a definition registered as `definition`, the rule it shows and its refusal's words
    (None: accepted)."""
    return pytest.param(definition, queue, request, refused, marks=marks,
                        id=f"{marks.args[0]}:{refused or 'accepted'}"[:90])


FARGATE_DEFINITION = {"platformCapabilities": ["FARGATE"], "containerProperties": fargate()}
ECS_DEFINITION = {"ecsProperties": ecs(task_container("main"))}


def _resources(**kinds: str) -> dict:
    return {"resourceRequirements": [{"type": kind, "value": value} for kind, value in kinds.items()]}


SUBMIT_CASES = [
    submit_case(rule("RegisterJobDefinition.platformCapabilities.default"), "can not run Jobs with capability EC2", {},
                queue="FARGATE"),
    submit_case(rule("ResourceRequirement.MEMORY.minimum"), "at least 4 MiB", {}, containerOverrides=_resources(MEMORY="2")),
    submit_case(rule("ResourceRequirement.VCPU.ec2_minimum"), "at least 1 vCPU is required for EC2", {},
                containerOverrides=_resources(VCPU="0.5")),
    submit_case(rule("ResourceRequirement.VCPU.ec2_minimum"), "at least 1 vCPU", ECS_DEFINITION,
                ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "main", **_resources(VCPU="0")}]}]}),
    submit_case(rule("ResourceRequirement.MEMORY.minimum"), "at least 4 MiB",
                {"type": "multinode", "nodeProperties": nodes({"targetNodes": "0:1", "container": container()})},
                nodeOverrides={"nodePropertyOverrides": [{"targetNodes": "0:1",
                                                          "containerOverrides": _resources(MEMORY="2")}]}),
    submit_case(rule("ResourceRequirement.GPU.whole"), "GPU must be a whole number", {},
                containerOverrides=_resources(GPU="0.5")),
    submit_case(rule("ResourceRequirement.GPU.not_fargate"), "GPU resources are not supported for Fargate",
                FARGATE_DEFINITION, queue="FARGATE", containerOverrides=_resources(GPU="1")),
    submit_case(rule("ResourceRequirement.fargate_combinations"), "Fargate resource requirements (1.00 vCPU, 4000 MiB) "
                "not valid.", FARGATE_DEFINITION, queue="FARGATE", containerOverrides=_resources(VCPU="1", MEMORY="4000")),
    submit_case(rule("ResourceRequirement.fargate_combinations"), "Fargate resource requirements (0.25 vCPU, 4096 MiB)",
                FARGATE_DEFINITION, queue="FARGATE", containerOverrides=_resources(MEMORY="4096")),
    submit_case(rule("ResourceRequirement.fargate_combinations"), None, FARGATE_DEFINITION, queue="FARGATE",
                containerOverrides=_resources(VCPU="1", MEMORY="8192")),
    submit_case(rule("ContainerProperties.legacy_resources.not_fargate"), "containerOverrides.vcpus is not applicable for "
                "Fargate", FARGATE_DEFINITION, queue="FARGATE", containerOverrides={"vcpus": 1}),
    submit_case(rule("ContainerProperties.memory.minimum"), "containerOverrides.memory must be at least 4", {},
                containerOverrides={"memory": 3}),
    submit_case(rule("ContainerProperties.memory.minimum"), "containerOverrides.vcpus must be at least 1", {},
                containerOverrides={"vcpus": 0}),
    submit_case(rule("ContainerOverrides.command.empty_string"), "command can't contain an empty string", {},
                containerOverrides={"command": ["echo", ""]}),
    submit_case(rule("ContainerOverrides.command.empty_string"), "command can't contain an empty string", ECS_DEFINITION,
                ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "main", "command": [""]}]}]}),
    submit_case(rule("ContainerProperties.environment.reserved_prefix"), "reserved for AWS Batch", {},
                containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]}),
    submit_case(rule("ContainerProperties.instanceType.single_node"), None, {},
                containerOverrides={"instanceType": "m5.large"}),
    submit_case(rule("EcsProperties.taskProperties.one"), "can contain at most one entry", ECS_DEFINITION,
                ecsPropertiesOverride={"taskProperties": [{"containers": []}, {"containers": []}]}),
    submit_case(rule("TaskContainerProperties.name.unique"), "container sidecar is not a container of the job definition",
                ECS_DEFINITION,
                ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "sidecar", "command": ["x"]}]}]}),
    submit_case(rule("NodeOverrides.numNodes.conditions"), "can only be overridden when a node range of the job definition "
                "is open-ended", {"type": "multinode", "nodeProperties": nodes({"targetNodes": "0:1",
                                                                                 "container": container()})},
                nodeOverrides={"numNodes": 3}),
    submit_case(rule("NodeOverrides.numNodes.conditions"), "must be more than the lower bound",
                {"type": "multinode", "nodeProperties": nodes({"targetNodes": "0:0", "container": container()},
                                                              {"targetNodes": "1:", "container": container()})},
                nodeOverrides={"numNodes": 1}),
    submit_case(rule("NodeOverrides.numNodes.conditions"), "must be more than the mainNode",
                {"type": "multinode", "nodeProperties": nodes({"targetNodes": "0:", "container": container()},
                                                              main_node=1)},
                nodeOverrides={"numNodes": 1}),
]


@pytest.mark.parametrize(("definition", "queue", "request_", "refused"), SUBMIT_CASES)
def test_submit_job_rule(client, queues, definition, queue, request_, refused):
    arn = register(client, **definition)["jobDefinitionArn"]
    submit = dict(jobName=unique("job"), jobQueue=queues[queue], jobDefinition=arn, **request_)
    if refused is None:
        assert client.submit_job(**submit)["jobId"]
    else:
        assert refused in refusal(client.submit_job, **submit)


@pytest.mark.parametrize(("properties", "refused"), [
    (container(ulimits=[{"name": "nofile", "softLimit": 10, "hardLimit": 2}]), "softLimit can't be more than hardLimit"),
    (container(linuxParameters={"sharedMemorySize": 0}), "sharedMemorySize must be a positive number of MiB"),
    (container(linuxParameters={"tmpfs": [{"containerPath": "/t", "size": 0}]}), "size must be a positive number"),
    (container(volumes=[{"name": "a"}, {"name": "a"}]), "volumes name a is used more than once"),
])
def test_what_docker_would_refuse_at_run_time_is_refused_at_register(client, properties, refused):
    """Not sentences of the reference: values the engine refuses when the container is made, refused earlier."""
    assert refused in refusal(register, client=client, containerProperties=properties)
