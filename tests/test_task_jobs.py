"""Jobs of ecsProperties and eksProperties definitions at the service layer: SubmitJob with their overrides,
what they reserve, and their DescribeJobs shape (job_task)."""

from __future__ import annotations

import json

import pytest
from conftest import TEST_IMAGE, client_error, describe, make_queue, unique, wait_for_job_queue, wait_until

from batchemu.config import Config
from batchemu.model import eks, task_definitions
from batchemu.model.task_attempts import begin, task_spec
from batchemu.protocol.serializer import projector

EKS_CONFIGURATION = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c", "kubernetesNamespace": "batch"}


def _resources(vcpus: str = "1", memory: str = "64") -> list[dict]:
    return [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}]


def register_ecs(batch_client, *containers: dict, volumes: list[dict] | None = None, **extra) -> dict:
    task = {"containers": [{"image": TEST_IMAGE, "resourceRequirements": _resources(), **c} for c in containers]}
    if volumes:
        task["volumes"] = volumes
    return batch_client.register_job_definition(jobDefinitionName=unique("ecs"), type="container",
                                                ecsProperties={"taskProperties": [task]}, **extra)


def register_eks(batch_client, pod: dict, **extra) -> dict:
    return batch_client.register_job_definition(jobDefinitionName=unique("eks"), type="container",
                                                eksProperties={"podProperties": pod}, **extra)


def eks_queue(batch_client, *, max_vcpus: int = 4, state: str = "ENABLED") -> str:
    ce = batch_client.create_compute_environment(
        computeEnvironmentName=unique("ce-eks"), type="MANAGED", state=state, eksConfiguration=EKS_CONFIGURATION,
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": max_vcpus, "instanceTypes": ["optimal"],
                          "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"], "instanceRole": "role",
                          "allocationStrategy": "BEST_FIT_PROGRESSIVE"})
    name = unique("jq-eks")
    batch_client.create_job_queue(jobQueueName=name, priority=1, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])
    wait_for_job_queue(batch_client, name)
    return name


def submit(batch_client, queue: str, definition: dict, **extra) -> dict:
    job_id = batch_client.submit_job(jobName=unique("job"), jobQueue=queue,
                                     jobDefinition=definition["jobDefinitionArn"], **extra)["jobId"]
    return describe(batch_client, job_id)


def test_ecs_override_changes_containers_by_name(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")["name"]
    definition = register_ecs(
        batch_client,
        {"name": "main", "command": ["echo", "Ref::greeting"], "environment": [
            {"name": "KEEP", "value": "1"}, {"name": "CHANGE", "value": "old"}]},
        {"name": "sidecar", "essential": False, "command": ["sleep", "60"]},
        parameters={"greeting": "hello"})
    job = submit(batch_client, queue, definition, parameters={"greeting": "bonjour"}, ecsPropertiesOverride={
        "taskProperties": [{"containers": [{
            "name": "main", "environment": [{"name": "CHANGE", "value": "new"}, {"name": "ADDED", "value": "2"}],
            "resourceRequirements": [{"type": "MEMORY", "value": "128"}]}]}]})
    assert "container" not in job
    [task] = job["ecsProperties"]["taskProperties"]
    main, sidecar = task["containers"]
    assert main["name"] == "main" and main["command"] == ["echo", "bonjour"]
    assert {e["name"]: e["value"] for e in main["environment"]} == {"KEEP": "1", "CHANGE": "new", "ADDED": "2"}
    assert {r["type"]: r["value"] for r in main["resourceRequirements"]} == {"VCPU": "1", "MEMORY": "128"}
    assert sidecar["command"] == ["sleep", "60"] and sidecar["essential"] is False
    assert job["attempts"] == [] and "eksProperties" not in job

    job = submit(batch_client, queue, definition, ecsPropertiesOverride={"taskProperties": [{"containers": [
        {"name": "sidecar", "command": ["true"]}]}]})
    assert [c["command"] for c in job["ecsProperties"]["taskProperties"][0]["containers"]] == [
        ["echo", "hello"], ["true"]]


ECS_OVERRIDE_CASES = [
    ({"containers": [{"name": "ghost"}]}, "container ghost is not a container of the job definition"),
    ({"containers": [{"name": "main", "environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]}]},
     "ecsPropertiesOverride.taskProperties[0].containers[0].environment[1]: environment variable AWS_BATCH_JOB_ID"),
    ({"containers": [{"name": "main"}, {"name": "main"}]}, "container main is overridden more than once"),
    ({"containers": [{"name": "main", "command": ["echo", ""]}]}, "command can't contain an empty string"),
    ({"containers": [{"name": "main", "resourceRequirements": [{"type": "VCPU", "value": "lots"}]}]},
     "VCPU value lots is not a number"),
]


def test_bad_ecs_overrides_are_refused(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")["name"]
    definition = register_ecs(batch_client, {"name": "main"})
    for override, fragment in ECS_OVERRIDE_CASES:
        message = client_error(submit, batch_client=batch_client, queue=queue, definition=definition,
                               ecsPropertiesOverride={"taskProperties": [override]})
        assert fragment in message, (override, message)
    message = client_error(submit, batch_client=batch_client, queue=queue, definition=definition,
                           ecsPropertiesOverride={"taskProperties": [{}, {}]})
    assert "at most one entry" in message


def test_overrides_must_match_the_kind_of_definition(batch_client):
    queue = make_queue(batch_client, ce_state="DISABLED")["name"]
    ecs = register_ecs(batch_client, {"name": "main"})
    message = client_error(submit, batch_client=batch_client, queue=queue, definition=ecs,
                           containerOverrides={"command": ["true"]})
    assert "containerOverrides can't be specified for a job definition with ecsProperties" in message
    plain = batch_client.register_job_definition(
        jobDefinitionName=unique("plain"), type="container",
        containerProperties={"image": TEST_IMAGE, "resourceRequirements": _resources()})
    message = client_error(submit, batch_client=batch_client, queue=queue, definition=plain,
                           ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "x"}]}]})
    assert "ecsPropertiesOverride can't be specified for a job definition with containerProperties" in message


def test_eks_jobs_go_to_eks_queues_only(batch_client):
    ecs_queue = make_queue(batch_client, ce_state="DISABLED")["name"]
    pod_queue = eks_queue(batch_client, state="DISABLED")
    pod = register_eks(batch_client, {"containers": [{"image": TEST_IMAGE}]})
    task = register_ecs(batch_client, {"name": "main"})
    assert "capability EKS" in client_error(submit, batch_client=batch_client, queue=ecs_queue, definition=pod)
    assert "capability EC2" in client_error(submit, batch_client=batch_client, queue=pod_queue, definition=task)


def test_eks_override_changes_containers_and_metadata(batch_client):
    queue = eks_queue(batch_client, state="DISABLED")
    definition = register_eks(batch_client, {
        "metadata": {"labels": {"team": "a", "tier": "batch"}},
        "initContainers": [{"name": "fetch", "image": TEST_IMAGE, "command": ["sh", "-c"], "args": ["echo Ref::what"]}],
        "containers": [{"image": TEST_IMAGE, "command": ["sleep"], "args": ["1"], "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"cpu": "1", "memory": "256Mi"},
                                      "requests": {"cpu": "500m", "memory": "256Mi"}}}]},
        parameters={"what": "data"})
    job = submit(batch_client, queue, definition, eksPropertiesOverride={"podProperties": {
        "metadata": {"labels": {"team": "b", "run": "7"}},
        "initContainers": [{"name": "fetch", "image": "other:1"}],
        "containers": [{"name": "Default", "args": ["2"], "env": [{"name": "B", "value": "2"}],
                        "resources": {"limits": {"memory": "512Mi"}}}]}})
    assert "container" not in job and job["eksAttempts"] == [] and "ecsProperties" not in job
    pod = job["eksProperties"]["podProperties"]
    assert pod["metadata"]["labels"] == {"team": "b", "tier": "batch", "run": "7"}
    [init] = pod["initContainers"]
    assert init["image"] == "other:1" and init["args"] == ["echo data"]
    [main] = pod["containers"]
    assert main["command"] == ["sleep"] and main["args"] == ["2"]
    assert {e["name"]: e["value"] for e in main["env"]} == {"A": "1", "B": "2"}
    # The overridden memory replaces the definition's in limits and requests alike.
    assert main["resources"] == {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "500m"}}


EKS_OVERRIDE_CASES = [
    ({"containers": [{"name": "ghost"}]}, "container ghost is not a container of the job definition"),
    ({"initContainers": [{"name": "Default"}]}, "container Default is not a container of the job definition"),
    ({"containers": [{"name": "Default", "env": [{"name": "AWS_BATCH_X", "value": "1"}]}]},
     "eksPropertiesOverride.podProperties.containers[0].env[1]: environment variable AWS_BATCH_X"),
    ({"containers": [{"name": "Default", "resources": {"limits": {"cpu": "100m"}}}]},
     "cpu value 100m must be a positive multiple of 0.25"),
    ({"containers": [{"name": "Default", "resources": {"requests": {"memory": "2Mi"}}}]},
     "memory value 2Mi is less than 4Mi"),
]


def test_bad_eks_overrides_are_refused(batch_client):
    queue = eks_queue(batch_client, state="DISABLED")
    definition = register_eks(batch_client, {"containers": [{"image": TEST_IMAGE}]})
    for override, fragment in EKS_OVERRIDE_CASES:
        message = client_error(submit, batch_client=batch_client, queue=queue, definition=definition,
                               eksPropertiesOverride={"podProperties": override})
        assert fragment in message, (override, message)


EKS_RESOURCE_CASES = [
    ({"limits": {"cpu": "lots"}}, "cpu value lots is not a Kubernetes quantity"),
    ({"limits": {"memory": "256Mi"}, "requests": {"memory": "128Mi"}}, "memory in limits must equal memory in requests"),
    ({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}, "cpu in limits must be at least cpu in requests"),
    ({"limits": {"ephemeral-storage": "1Gi"}}, "resource ephemeral-storage is not supported"),
    ({"limits": {"nvidia.com/gpu": "0.5"}}, "nvidia.com/gpu value 0.5 must be a whole number"),
]


def test_eks_resources_are_checked_at_registration(batch_client):
    for resources, fragment in EKS_RESOURCE_CASES:
        message = client_error(register_eks, batch_client=batch_client,
                               pod={"containers": [{"image": TEST_IMAGE, "resources": resources}]})
        assert "eksProperties.podProperties.containers[0].resources" in message and fragment in message, message


def test_kubernetes_quantities():
    assert eks.quantity("500m") == eks.quantity("0.5")
    assert eks.quantity("1Gi") == 2**30 and eks.quantity("1G") == 10**9
    assert eks.quantity("1e3") == 1000 and eks.quantity("Mi") is None
    read = eks.check({"limits": {"memory": "1G", "cpu": "2"}, "requests": {"cpu": "0.25"}}, "c")
    assert (read.cpu, read.cpu_limit, read.memory_mib, read.gpus) == (0.25, 2, 954, 0)


def _ecs_job(*containers: dict) -> dict:
    return {"ecsProperties": {"taskProperties": [{"containers": list(containers)}]}}


def test_reservation_sums_the_containers():
    ecs = _ecs_job({"name": "a", "resourceRequirements": _resources("2", "256")},
                   {"name": "b", "resourceRequirements": [{"type": "VCPU", "value": "0.5"}, {"type": "GPU", "value": "1"}]})
    assert task_definitions.reservation(ecs) == (2.5, 256, 1)
    pod = {"eksProperties": {"podProperties": {
        "initContainers": [{"resources": {"requests": {"cpu": "3", "memory": "64Mi"}}}],
        "containers": [{"resources": {"limits": {"cpu": "1", "memory": "128Mi"}}},
                       {"resources": {"requests": {"cpu": "1500m", "memory": "128Mi"}}}]}}}
    # Kubernetes: the larger of the largest init container and the sum of the others.
    assert task_definitions.reservation(pod) == (3.0, 256, 0)
    assert task_definitions.reservation(_ecs_job({"name": "a"})) == (1.0, None, 0)


def test_a_task_that_can_never_fit_waits_with_aws_reason(batch_client):
    queue = make_queue(batch_client, max_vcpus=3)["name"]
    definition = register_ecs(batch_client, {"name": "a", "resourceRequirements": _resources("2")},
                              {"name": "b", "resourceRequirements": _resources("2")})
    job_id = submit(batch_client, queue, definition)["jobId"]
    job = wait_until(lambda: (j := describe(batch_client, job_id)).get("statusReason") and j)
    assert job["status"] == "RUNNABLE"
    assert job["statusReason"].startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")


def _wire(job: dict) -> dict:
    """The job as DescribeJobs' JobDetail serializes it: a key the model lacks would be dropped."""
    return json.loads(projector("batch", "JobDetail")(job))


def test_ecs_attempts_have_aws_shape():
    job = {"jobName": "j", "jobId": "1", "jobQueue": "q", "status": "RUNNING", "startedAt": 1, "jobDefinition": "d",
           **_ecs_job({"name": "main", "image": "i"}, {"name": "log", "image": "i", "essential": False,
                      "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-stream-prefix": "side"}}})}
    task_arn = "arn:aws:ecs:us-east-1:123456789012:task/c/abc"
    task_definitions.begin_ecs_attempt(job, task_arn, "arn:aws:ecs:us-east-1:123456789012:container-instance/c/x", "def")
    main, log = job["ecsProperties"]["taskProperties"][0]["containers"]
    assert (main["logStreamName"], log["logStreamName"]) == ("def/main/abc", "side/log/abc")
    task_definitions.end_ecs_attempt(job, {"main": (0, None), "log": (137, "stopped")}, 1, 2, "Essential container in task exited")
    wire = _wire(job)
    assert wire == job
    [attempt] = wire["attempts"]
    assert attempt["taskProperties"][0]["taskArn"] == task_arn
    assert attempt["taskProperties"][0]["containers"] == [
        {"name": "main", "exitCode": 0, "logStreamName": "def/main/abc"},
        {"name": "log", "exitCode": 137, "reason": "stopped", "logStreamName": "side/log/abc"}]
    assert (main["exitCode"], log["exitCode"], log["reason"]) == (0, 137, "stopped")
    # The next attempt starts clean.
    task_definitions.begin_ecs_attempt(job, task_arn.replace("abc", "def"), "x", "def")
    assert "exitCode" not in main and main["logStreamName"] == "def/main/def"


def test_eks_attempts_have_aws_shape():
    job = {"jobName": "j", "jobId": "1", "jobQueue": "q", "status": "RUNNING", "startedAt": 1, "jobDefinition": "d",
           "eksAttempts": [], "eksProperties": {"podProperties": {
               "initContainers": [{"name": "init", "image": "i"}], "containers": [{"image": "i"}]}}}
    task_definitions.begin_eks_attempt(job, "aws-batch.abc", "ip-10-0-0-1.ec2.internal")
    task_definitions.end_eks_attempt(job, {"init": (0, None), "Default": (1, None)}, {"Default": "c0ffee"},
                                     EKS_CONFIGURATION["eksClusterArn"], None, 1, 2, "Essential container in task exited")
    wire = _wire(job)
    assert wire == job
    pod = wire["eksProperties"]["podProperties"]
    assert (pod["podName"], pod["nodeName"]) == ("aws-batch.abc", "ip-10-0-0-1.ec2.internal")
    assert pod["containers"][0]["exitCode"] == 1
    [attempt] = wire["eksAttempts"]
    assert attempt["initContainers"] == [{"name": "init", "exitCode": 0}]
    assert attempt["containers"] == [{"name": "Default", "containerID": "c0ffee", "exitCode": 1}]
    assert attempt["podNamespace"] == "default" and attempt["eksClusterArn"] == EKS_CONFIGURATION["eksClusterArn"]


def test_kubernetes_expansion_of_command_and_args():
    env = {"NAME": "world", "EMPTY": ""}
    assert task_definitions.expand_kubernetes(["echo $(NAME)", "$$(NAME)", "$(MISSING)", "$(EMPTY)x", "$(cat f) $$"], env) == [
        "echo world", "$(NAME)", "$(MISSING)", "x", "$(cat f) $"]


def test_pod_volumes_become_task_volumes():
    pod = {"volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "data", "hostPath": {"path": "/srv/data"}}]}
    assert task_definitions.eks_task_volumes(pod) == [{"name": "scratch"}, {"name": "data", "host": {"sourcePath": "/srv/data"}}]
    container = {"volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}
    assert task_definitions.eks_mount_points(container) == [{"sourceVolume": "data", "containerPath": "/data", "readOnly": True}]


def test_pods_batchemu_cannot_run_are_refused_by_name(batch_client):
    queue = eks_queue(batch_client, state="DISABLED")
    secret = register_eks(batch_client, {"volumes": [{"name": "s", "secret": {"secretName": "x"}}],
                                         "containers": [{"image": TEST_IMAGE}]})
    with pytest.raises(batch_client.exceptions.ClientError) as caught:
        submit(batch_client, queue, secret)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "secret or persistentVolumeClaim volumes" in caught.value.response["Error"]["Message"]
    # A mount of a volume the pod lacks is refused when the definition is registered (EksContainerVolumeMount).
    stray = {"containers": [{"image": TEST_IMAGE, "volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}]}
    assert "volume nowhere is not a volume of the pod" in client_error(
        lambda: register_eks(batch_client, stray))


def _begun(job: dict, kind_fields: dict) -> dict:
    """A job of many containers as placement leaves it: attempt 1 on an EKS compute environment."""
    job = {"jobId": "j1", "jobName": "job", "status": "STARTING", "createdAt": 0, **kind_fields,
           "batchemu": {"attempt": 1, "definitionName": "def", "computeEnvironmentName": "ce", **job}}
    begin(job, Config(), {"eksConfiguration": EKS_CONFIGURATION}, "arn:aws:ecs:us-east-1:1:task/c/t1", "arn:i")
    return job


def test_the_task_of_an_ecs_job():
    job = _begun({}, _ecs_job(
        {"name": "main", "image": "img", "command": ["run"], "environment": [{"name": "A", "value": "1"}],
         "resourceRequirements": _resources("2", "128"),
         "dependsOn": [{"containerName": "side", "condition": "START"}], "mountPoints": [
             {"sourceVolume": "v", "containerPath": "/v"}]},
        {"name": "side", "image": "img", "essential": False}))
    job["ecsProperties"]["taskProperties"][0]["volumes"] = [{"name": "v"}]
    spec = task_spec(job, {"AWS_BATCH_JOB_ID": "j1"}, {})
    main, side = spec.containers
    assert (main.name, main.entrypoint, main.command, main.vcpus, main.memory_mib) == ("main", None, ["run"], 2.0, 128)
    assert main.environment["A"] == "1" and main.environment["AWS_BATCH_JOB_ID"] == "j1"
    assert main.depends_on == [("side", "START")] and main.essential and not side.essential
    assert (main.log_group, main.log_stream) == ("/aws/batch/job", "def/main/t1")
    assert side.vcpus == 0 and side.memory_mib is None  # no limit of its own
    assert spec.volumes == [{"name": "v"}] and main.mount_points == [{"sourceVolume": "v", "containerPath": "/v"}]


def test_the_task_of_an_eks_job_follows_kubernetes():
    pod = {"securityContext": {"runAsUser": 1000},
           "volumes": [{"name": "scratch", "emptyDir": {}}],
           "initContainers": [{"name": "init", "image": "img", "args": ["prepare"]}],
           "containers": [{"name": "main", "image": "img", "command": ["sh", "-c"], "args": ["echo $(WHO)"],
                           "env": [{"name": "WHO", "value": "me"}],
                           "securityContext": {"runAsGroup": 10, "readOnlyRootFilesystem": True},
                           "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/s"}],
                           "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}}},
                          {"name": "only-command", "image": "img", "command": ["serve"]}]}
    job = _begun({}, {"eksProperties": {"podProperties": pod}, "eksAttempts": []})
    spec = task_spec(job, {"AWS_BATCH_JOB_ID": "j1"}, {})
    init, main, only = spec.containers
    assert [(c.name, c.init, c.essential) for c in spec.containers] == [
        ("init", True, False), ("main", False, False), ("only-command", False, False)]
    # command -> entrypoint, args -> the image's command; a command alone drops the image's command.
    assert (init.entrypoint, init.command) == (None, ["prepare"])
    assert (main.entrypoint, main.command) == (["sh", "-c"], ["echo me"])
    assert (only.entrypoint, only.command) == (["serve"], [])
    assert (main.vcpus, main.memory_mib, main.user, main.readonly_root_filesystem) == (2.0, 1024, "1000:10", True)
    uid = job["batchemu"]["nodeUid"]
    assert main.environment["AWS_BATCH_JOB_KUBERNETES_NODE_UID"] == uid and main.environment["WHO"] == "me"
    assert spec.volumes == [{"name": "scratch"}]
    assert main.mount_points == [{"sourceVolume": "scratch", "containerPath": "/tmp/s", "readOnly": False}]
    assert main.log_stream == "def/main/t1" and job["eksProperties"]["podProperties"]["podName"].startswith("aws-batch.")
