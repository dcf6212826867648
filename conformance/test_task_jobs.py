"""Jobs of many containers (multi-container-jobs.html, API_EcsProperties.html, API_EksProperties.html):
an ecsProperties task of essential and non-essential containers with dependsOn and a shared volume, an
eksProperties pod with init containers, their overrides, and how DescribeJobs shows them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conformance.harness import client_error_code
from conformance.test_jobs import log_lines

covers = pytest.mark.covers

ESSENTIAL_EXITED = "Essential container in task exited"
EKS_CONFIGURATION = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/conformance",
                     "kubernetesNamespace": "batch"}


def _resources(vcpus: str = "1", memory: str = "32") -> list[dict]:
    return [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}]


@pytest.fixture(scope="module")
def register(batch, resources):
    """Registers a definition of the given properties (ecsProperties= or eksProperties=), removed at the end."""
    def register(**properties) -> dict:
        response = batch.register_job_definition(jobDefinitionName=resources.name("jd"), type="container",
                                                 **properties)
        resources.job_definitions.append(response["jobDefinitionArn"])
        return response
    return register


def ecs_task(target, *containers: dict, volumes: list[dict] | None = None) -> dict:
    task = {"containers": [{"image": target.image, "resourceRequirements": _resources(), **c} for c in containers]}
    if volumes:
        task["volumes"] = volumes
    return {"taskProperties": [task]}


@pytest.fixture(scope="module")
def eks_env(batch, target, resources):
    """A job queue on an Amazon EKS compute environment (placeholder cluster: emulators only)."""
    if target.is_aws:
        pytest.skip("eksProperties scenarios need an Amazon EKS cluster behind the compute environment")
    name = resources.name("ce-eks")
    # API_ComputeResource: allocationStrategy "is required for Amazon EKS compute environments".
    compute = {**resources.compute_resources(4), "allocationStrategy": "BEST_FIT_PROGRESSIVE"}
    batch.create_compute_environment(computeEnvironmentName=name, type="MANAGED", state="ENABLED",
                                     eksConfiguration=EKS_CONFIGURATION, computeResources=compute)
    resources.compute_environments.append(name)
    resources.wait_compute_environment(name)
    return resources.job_queue([name])["jobQueueName"]


def containers_by_name(job: dict) -> dict[str, dict]:
    [task] = job["ecsProperties"]["taskProperties"]
    return {c["name"]: c for c in task["containers"]}


@pytest.mark.runs_commands
@covers("RegisterJobDefinition", "SubmitJob", "DescribeJobs", group="ecs-tasks")
@covers(group="logs")
def test_a_non_essential_failure_does_not_fail_the_task_and_each_container_logs_apart(
        batch, target, logs, shared_env, register, jobs, prefix):
    definition = register(ecsProperties=ecs_task(
        target,
        {"name": "main", "command": ["sh", "-c", "sleep 2; echo main done"]},
        {"name": "flaky", "essential": False, "command": ["sh", "-c", "echo flaky failing; exit 3"]},
        {"name": "idle", "essential": False, "command": ["sleep", "600"]}))
    job_id = jobs.submit(f"{prefix}-ecs-ok", shared_env.queue, definition["jobDefinitionArn"])
    job = jobs.wait_one(job_id).last
    # multi-container-jobs.html: the job succeeds when its essential containers do; a sidecar still
    # running when the essential container exits is stopped with the task.
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert "container" not in job, "DescribeJobs shows `container` for a multi-container job"
    containers = containers_by_name(job)
    assert containers["main"]["exitCode"] == 0
    assert containers["flaky"]["exitCode"] == 3
    assert containers["idle"].get("exitCode") != 0
    streams = {name: c["logStreamName"] for name, c in containers.items()}
    assert len(set(streams.values())) == 3, streams
    assert log_lines(logs, streams["main"]) == ["main done"]
    assert log_lines(logs, streams["flaky"]) == ["flaky failing"]
    [attempt] = job["attempts"]
    [task] = attempt["taskProperties"]
    assert task["taskArn"] == job["ecsProperties"]["taskProperties"][0]["taskArn"]
    assert {c["name"]: c.get("exitCode") for c in task["containers"]}["flaky"] == 3
    assert {c["name"]: c["logStreamName"] for c in task["containers"]} == streams


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="ecs-tasks")
@covers(group="job-states")
def test_an_essential_failure_stops_the_task_and_fails_the_job(batch, target, shared_env, register, jobs, prefix):
    definition = register(ecsProperties=ecs_task(
        target,
        {"name": "main", "command": ["sh", "-c", "sleep 1; exit 4"]},
        {"name": "server", "command": ["sleep", "600"]}))
    job_id = jobs.submit(f"{prefix}-ecs-fail", shared_env.queue, definition["jobDefinitionArn"])
    job = jobs.wait_one(job_id).last
    assert job["status"] == "FAILED"
    assert job["statusReason"] == ESSENTIAL_EXITED
    containers = containers_by_name(job)
    assert containers["main"]["exitCode"] == 4
    # The other essential container was stopped, well before its 600 s were up.
    assert containers["server"].get("exitCode") != 0
    assert job["stoppedAt"] - job["startedAt"] < 120_000


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="ecs-tasks")
def test_depends_on_orders_the_containers_of_a_task_and_they_share_its_volume(
        batch, target, shared_env, register, jobs, prefix):
    mount = [{"sourceVolume": "work", "containerPath": "/work"}]
    definition = register(ecsProperties=ecs_task(
        target,
        {"name": "fetch", "essential": False, "mountPoints": mount,
         "command": ["sh", "-c", "sleep 1; echo fetched > /work/input"]},
        {"name": "broken", "essential": False, "command": ["sh", "-c", "exit 1"]},
        # COMPLETE holds whatever the exit code; SUCCESS only after exit 0.
        {"name": "main", "mountPoints": mount, "dependsOn": [
            {"containerName": "fetch", "condition": "SUCCESS"}, {"containerName": "broken", "condition": "COMPLETE"}],
         "command": ["sh", "-c", "test \"$(cat /work/input)\" = fetched"]},
        volumes=[{"name": "work"}]))
    job_id = jobs.submit(f"{prefix}-ecs-deps", shared_env.queue, definition["jobDefinitionArn"])
    job = jobs.wait_one(job_id).last
    assert job["status"] == "SUCCEEDED", (job.get("statusReason"), containers_by_name(job))
    containers = containers_by_name(job)
    assert (containers["fetch"]["exitCode"], containers["broken"]["exitCode"], containers["main"]["exitCode"]) == (
        0, 1, 0)


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="ecs-tasks")
@covers(group="job-inputs")
def test_ecs_properties_override_changes_containers_by_name(
        batch, target, logs, shared_env, register, jobs, prefix):
    definition = register(parameters={"word": "default"}, ecsProperties=ecs_task(
        target,
        {"name": "main", "command": ["sh", "-c", "echo $GREETING Ref::word"],
         "environment": [{"name": "GREETING", "value": "hello"}]},
        {"name": "other", "essential": False, "command": ["echo", "other"]}))
    job_id = jobs.submit(f"{prefix}-ecs-override", shared_env.queue, definition["jobDefinitionArn"],
                         parameters={"word": "world"},
                         ecsPropertiesOverride={"taskProperties": [{"containers": [
                             {"name": "main", "environment": [{"name": "GREETING", "value": "bonjour"}]}]}]})
    job = jobs.wait_one(job_id).last
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    containers = containers_by_name(job)
    assert log_lines(logs, containers["main"]["logStreamName"]) == ["bonjour world"]
    assert log_lines(logs, containers["other"]["logStreamName"]) == ["other"]


@covers("SubmitJob", group="ecs-tasks")
@covers(group="request-rules")
def test_ecs_overrides_name_containers_of_the_definition_and_no_aws_batch_variables(
        batch, target, held_env, register, prefix):
    definition = register(ecsProperties=ecs_task(target, {"name": "main", "command": ["true"]}))
    for override in ({"name": "nope", "command": ["true"]},
                     {"name": "main", "environment": [{"name": "AWS_BATCH_JOB_ID", "value": "forged"}]}):
        with pytest.raises(ClientError) as caught:
            batch.submit_job(jobName=f"{prefix}-ecs-bad", jobQueue=held_env.queue,
                             jobDefinition=definition["jobDefinitionArn"],
                             ecsPropertiesOverride={"taskProperties": [{"containers": [override]}]})
        assert client_error_code(caught.value) == "ClientException", override


@covers("RegisterJobDefinition", "SubmitJob", "DescribeJobs", group="eks-pods")
def test_init_containers_run_in_order_before_the_pod_containers(batch, target, eks_env, register, jobs, prefix):
    mount = [{"name": "data", "mountPath": "/data"}]
    definition = register(eksProperties={"podProperties": {
        "volumes": [{"name": "data", "emptyDir": {}}],
        "initContainers": [
            {"name": "first", "image": target.image, "command": ["sh", "-c"], "args": ["sleep 1; echo -n 1 >> /data/order"],
             "volumeMounts": mount},
            {"name": "second", "image": target.image, "command": ["sh", "-c", "echo -n 2 >> /data/order"],
             "volumeMounts": mount}],
        "containers": [
            {"name": "main", "image": target.image, "command": ["sh", "-c"],
             # Kubernetes: `command` replaces the entrypoint, `args` the image's command; $(VAR) expands.
             "args": ["test \"$(cat /data/order)\" = 12 && test \"$(VAR)\" = x && test -n \"$AWS_BATCH_JOB_KUBERNETES_NODE_UID\""],
             "env": [{"name": "VAR", "value": "x"}], "volumeMounts": mount,
             "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]}})
    job_id = jobs.submit(f"{prefix}-eks-init", eks_env, definition["jobDefinitionArn"])
    job = jobs.wait_one(job_id).last
    pod = job["eksProperties"]["podProperties"]
    assert job["status"] == "SUCCEEDED", (job.get("statusReason"), pod)
    assert "container" not in job
    assert pod["podName"] and pod["nodeName"]
    assert [(c["name"], c["exitCode"]) for c in pod["initContainers"]] == [("first", 0), ("second", 0)]
    assert [(c["name"], c["exitCode"]) for c in pod["containers"]] == [("main", 0)]
    [attempt] = job["eksAttempts"]
    assert attempt["podName"] == pod["podName"] and attempt["nodeName"] == pod["nodeName"]
    assert [c["name"] for c in attempt["initContainers"]] == ["first", "second"]
    assert attempt["containers"][0]["exitCode"] == 0


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="eks-pods")
def test_a_failed_init_container_fails_the_pod_before_its_containers_start(
        batch, target, eks_env, register, jobs, prefix):
    definition = register(eksProperties={"podProperties": {
        "initContainers": [{"name": "setup", "image": target.image, "command": ["sh", "-c", "exit 2"]}],
        "containers": [{"name": "main", "image": target.image, "command": ["true"]}]}})
    job_id = jobs.submit(f"{prefix}-eks-init-fail", eks_env, definition["jobDefinitionArn"])
    job = jobs.wait_one(job_id).last
    assert job["status"] == "FAILED"
    pod = job["eksProperties"]["podProperties"]
    assert pod["initContainers"][0]["exitCode"] == 2
    assert "exitCode" not in pod["containers"][0], "a container ran after its init container failed"


@pytest.mark.runs_commands
@covers("SubmitJob", "DescribeJobs", group="eks-pods")
@covers(group="job-inputs")
def test_eks_properties_override_changes_containers_by_name(batch, target, eks_env, register, jobs, prefix):
    definition = register(eksProperties={"podProperties": {"containers": [
        {"name": "main", "image": target.image, "command": ["sh", "-c"], "args": ["exit $CODE"],
         "env": [{"name": "CODE", "value": "5"}]}]}})
    failed = jobs.submit(f"{prefix}-eks-as-is", eks_env, definition["jobDefinitionArn"])
    passed = jobs.submit(f"{prefix}-eks-override", eks_env, definition["jobDefinitionArn"],
                         eksPropertiesOverride={"podProperties": {"containers": [
                             {"name": "main", "env": [{"name": "CODE", "value": "0"}]}]}})
    runs = jobs.wait([failed, passed])
    assert runs[failed].last["status"] == "FAILED"
    assert runs[failed].last["eksProperties"]["podProperties"]["containers"][0]["exitCode"] == 5
    assert runs[passed].last["status"] == "SUCCEEDED", runs[passed].last.get("statusReason")
    with pytest.raises(ClientError) as caught:
        batch.submit_job(jobName=f"{prefix}-eks-bad", jobQueue=eks_env, jobDefinition=definition["jobDefinitionArn"],
                         eksPropertiesOverride={"podProperties": {"containers": [{"name": "ghost"}]}})
    assert client_error_code(caught.value) == "ClientException"
