"""The documented rules of job definitions that show in what comes back (DescribeJobDefinitions, DescribeJobs, what
a job runs) and in DescribeJobDefinitions' and DeregisterJobDefinition's forms. The refusals are in
tests/test_documented_jobdefs.py; this module uses its fixtures (a server of its own) and request builders."""

from __future__ import annotations

import inspect

import pytest

from batchemu.errors import ClientException
from batchemu.executors.docker.arguments import _device
from batchemu.model import node_ranges, task_definitions
from batchemu.model.containers import linux_parameters
from tests import test_documented_jobdefs as refusals
from tests.conftest import unique
from tests.test_documented_jobdefs import (
    FARGATE_DEFINITION,
    _resources,
    container,
    ecs,
    nodes,
    pod,
    refusal,
    register,
    task_container,
)

# The refusals module's server, client and queues, made once more for this module.
server, client, queues = refusals.server, refusals.client, refusals.queues

rule = pytest.mark.rule

# -- what comes back ------------------------------------------------------------------------------------

def _described(client, arn: str) -> dict:
    [definition] = client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    return definition


def _job(client, job_id: str) -> dict:
    [job] = client.describe_jobs(jobs=[job_id])["jobs"]
    return job


@rule("RegisterJobDefinition.containerOrchestrationType.present")
def test_container_orchestration_type_is_ecs_by_default_and_eks_for_pods(client):
    assert _described(client, register(client)["jobDefinitionArn"])["containerOrchestrationType"] == "ECS"
    eks = register(client, eksProperties=pod())["jobDefinitionArn"]
    assert _described(client, eks)["containerOrchestrationType"] == "EKS"


@rule("NetworkConfiguration.assignPublicIp.default")
def test_fargate_definition_gets_public_ip_disabled_and_latest_platform(client):
    described = _described(client, register(client, **FARGATE_DEFINITION)["jobDefinitionArn"])
    assert described["containerProperties"]["networkConfiguration"] == {"assignPublicIp": "DISABLED"}
    assert described["containerProperties"]["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}


@rule("ContainerOverrides.resourceRequirements.replace", "ContainerOverrides.legacy_resources.requirements_win")
def test_overrides_replace_requirements_by_type_and_legacy_overrides_do_not(client, queues):
    arn = register(client)["jobDefinitionArn"]
    replaced = client.submit_job(jobName=unique("j"), jobQueue=queues["EC2"], jobDefinition=arn,
                                 containerOverrides=_resources(MEMORY="256"))["jobId"]
    requirements = {r["type"]: r["value"] for r in _job(client, replaced)["container"]["resourceRequirements"]}
    assert requirements == {"VCPU": "1", "MEMORY": "256"}
    legacy = client.submit_job(jobName=unique("j"), jobQueue=queues["EC2"], jobDefinition=arn,
                               containerOverrides={"vcpus": 2, "memory": 512})["jobId"]
    requirements = {r["type"]: r["value"] for r in _job(client, legacy)["container"]["resourceRequirements"]}
    assert requirements == {"VCPU": "1", "MEMORY": "128"}


@rule("LinuxParameters.swappiness.needs_maxSwap")
def test_swappiness_is_ignored_without_max_swap():
    assert linux_parameters({"linuxParameters": {"swappiness": 10}}) == {}
    assert linux_parameters({"linuxParameters": {"swappiness": 10, "maxSwap": 0}}) == {"swappiness": 10, "maxSwap": 0}


@rule("Device.defaults")
def test_a_device_defaults_to_its_host_path_with_read_write_and_mknod():
    assert _device({"hostPath": "/dev/fuse"}) == "/dev/fuse:/dev/fuse:rwm"
    assert _device({"hostPath": "/dev/fuse", "containerPath": "/dev/f", "permissions": ["READ"]}) == \
        "/dev/fuse:/dev/f:r"


@rule("TaskContainerProperties.stopTimeout.default")
def test_stop_timeout_is_stored_but_containers_are_stopped_after_10_seconds(client):
    from batchemu.executors.docker import DockerExecutor
    arn = register(client, ecsProperties=ecs(task_container(stopTimeout=90)))["jobDefinitionArn"]
    assert _described(client, arn)["ecsProperties"]["taskProperties"][0]["containers"][0]["stopTimeout"] == 90
    assert inspect.signature(DockerExecutor.stop).parameters["timeout"].default == 10.0


@rule("NodeRangeProperty.targetNodes.nesting")
def test_an_inner_node_range_overrides_the_outer_one():
    properties = nodes({"targetNodes": "0:10", "container": {"image": "outer"}},
                       {"targetNodes": "4:5", "container": {"image": "inner"}}, num_nodes=11)
    assert [node_ranges.range_of(properties, i)["container"]["image"] for i in (3, 4, 5, 6)] == \
        ["outer", "inner", "inner", "outer"]


@rule("EksContainerOverride.name.matches", "EksContainerVolumeMount.name.matches", "EksMetadata.namespace.rules",
      "EksContainerResourceRequirements.memory.rules", "EksContainerResourceRequirements.cpu.rules",
      "EksContainerResourceRequirements.gpu.rules", "EksMetadata.labels.keys")
def test_eks_overrides_are_held_to_the_definitions_rules():
    properties = pod({"name": "main", "image": "busybox", "resources": {"limits": {"memory": "64Mi", "cpu": "1"}}},
                     volumes=[{"name": "scratch", "emptyDir": {}}])

    def resolve(override: dict) -> dict:
        return task_definitions.resolve_eks(properties, {"podProperties": override}, {})

    with pytest.raises(ClientException, match="container other is not a container of the job definition"):
        resolve({"containers": [{"name": "other", "image": "x"}]})
    with pytest.raises(ClientException, match="namespace 'kube-system' is not valid"):
        resolve({"metadata": {"namespace": "kube-system"}})
    with pytest.raises(ClientException, match="memory in limits must equal memory in requests"):
        resolve({"containers": [{"name": "main", "resources": {"limits": {"memory": "64Mi"},
                                                               "requests": {"memory": "32Mi"}}}]})
    with pytest.raises(ClientException, match="positive multiple of 0.25"):
        resolve({"containers": [{"name": "main", "resources": {"requests": {"cpu": "0.1"}}}]})
    with pytest.raises(ClientException, match="must be a whole number"):
        resolve({"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "0.5"}}}]})
    bad_mount = pod({"name": "main", "image": "busybox", "volumeMounts": [{"name": "gone", "mountPath": "/g"}]})
    with pytest.raises(ClientException, match="volume gone is not a volume of the pod"):
        task_definitions.resolve_eks(bad_mount, None, {})
    resolved = resolve({"metadata": {"namespace": "batch-jobs", "labels": {"app.kubernetes.io/part-of": "x"}}})
    assert resolved["podProperties"]["metadata"] == {"namespace": "batch-jobs",
                                                     "labels": {"app.kubernetes.io/part-of": "x"}}


@rule("EFSVolumeConfiguration.mounted", "Secret.valueFrom.injected", "RepositoryCredentials.credentialsParameter.used")
def test_efs_volumes_secrets_and_repository_credentials_are_registered_and_described_as_given(client):
    efs = {"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryption": "ENABLED"}}
    secrets = [{"name": "TOKEN", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:token"}]
    credentials = {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry"}
    arn = register(client, containerProperties=container(
        volumes=[efs], mountPoints=[{"sourceVolume": "shared", "containerPath": "/shared"}], secrets=secrets,
        repositoryCredentials=credentials))["jobDefinitionArn"]
    described = _described(client, arn)["containerProperties"]
    assert described["volumes"] == [efs] and described["secrets"] == secrets
    assert described["repositoryCredentials"] == credentials


# -- DescribeJobDefinitions and DeregisterJobDefinition --------------------------------------------------

@rule("DescribeJobDefinitions.jobDefinitions.forms", "DescribeJobDefinitions.jobDefinitions.alone",
      "DescribeJobDefinitions.status.filter", "DescribeJobDefinitions.jobDefinitionName.filter")
def test_describe_job_definitions_filters(client):
    name = unique("forms")
    first, second = register(client, name=name), register(client, name=name)
    client.deregister_job_definition(jobDefinition=first["jobDefinitionArn"])
    by_list = client.describe_job_definitions(jobDefinitions=[f"{name}:1", second["jobDefinitionArn"], name])
    assert sorted(d["revision"] for d in by_list["jobDefinitions"]) == [1, 2]  # the bare name matches nothing
    active = client.describe_job_definitions(jobDefinitions=[f"{name}:1", f"{name}:2"], status="ACTIVE",
                                             jobDefinitionName="ignored")
    assert [d["revision"] for d in active["jobDefinitions"]] == [2]
    by_name = client.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    assert sorted((d["revision"], d["status"]) for d in by_name) == [(1, "INACTIVE"), (2, "ACTIVE")]
    assert client.describe_job_definitions(jobDefinitionName=name, status="INACTIVE")["jobDefinitions"][0][
        "revision"] == 1
    assert client.describe_job_definitions(jobDefinitionName=name[:-2] + "*")["jobDefinitions"] == []


@rule("DescribeJobDefinitions.jobDefinitions.limit", "DescribeJobDefinitions.maxResults.range")
def test_describe_job_definitions_limits(client):
    assert "at most 100" in refusal(client.describe_job_definitions,
                                    jobDefinitions=[f"x:{i}" for i in range(1, 102)])
    for size in (0, 101):
        assert "between 1 and 100" in refusal(client.describe_job_definitions, maxResults=size)


@rule("DescribeJobDefinitions.maxResults.default")
def test_describe_job_definitions_pages_by_100_by_default(client):
    name = unique("many")
    for _ in range(101):
        register(client, name=name)
    page = client.describe_job_definitions(jobDefinitionName=name)
    assert len(page["jobDefinitions"]) == 100 and page["nextToken"]
    rest = client.describe_job_definitions(jobDefinitionName=name, nextToken=page["nextToken"])
    assert [d["revision"] for d in rest["jobDefinitions"]] == [101] and "nextToken" not in rest


@rule("DeregisterJobDefinition.jobDefinition.forms", "DeregisterJobDefinition.deleted_after_180_days")
def test_deregister_takes_name_revision_or_arn_and_keeps_the_revision_inactive(client):
    name = unique("dereg")
    first, second = register(client, name=name), register(client, name=name)
    assert "A revision is required" in refusal(client.deregister_job_definition, jobDefinition=name)
    client.deregister_job_definition(jobDefinition=f"{name}:1")
    client.deregister_job_definition(jobDefinition=second["jobDefinitionArn"])
    described = client.describe_job_definitions(jobDefinitions=[first["jobDefinitionArn"],
                                                                second["jobDefinitionArn"]])["jobDefinitions"]
    assert sorted(d["status"] for d in described) == ["INACTIVE", "INACTIVE"]
