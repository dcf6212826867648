"""ecsProperties and eksProperties jobs on a real Docker Engine: essential and non-essential containers,
dependsOn, init containers, Kubernetes command/args, per-container exit codes and log streams, a sidecar
that cannot start, and a server killed mid-task."""

from __future__ import annotations

import hashlib
import os
import signal

import docker
import pytest
from conftest import TEST_IMAGE, describe, make_queue, needs_docker, unique, wait_for_status, wait_until
from test_crash import client, serve
from test_task_jobs import eks_queue, register_ecs, register_eks

from batchemu.executors import LABEL_INSTANCE, LABEL_JOB_ID

ESSENTIAL_EXITED = "Essential container in task exited"


def run(batch_client, queue: str, definition: dict, timeout: float = 60, **extra) -> dict:
    job_id = batch_client.submit_job(jobName=unique("task"), jobQueue=queue,
                                     jobDefinition=definition["jobDefinitionArn"], **extra)["jobId"]
    return wait_for_status(batch_client, job_id, timeout=timeout)


def by_name(job: dict) -> dict[str, dict]:
    return {c["name"]: c for c in job["ecsProperties"]["taskProperties"][0]["containers"]}


def lines(logs_client, stream: str, group: str = "/aws/batch/job") -> list[str]:
    events = logs_client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return [e["message"] for e in events]


def leftovers(engine, job_id: str) -> list[str]:
    """Containers, networks and volumes of the job still on the engine."""
    label = {"label": f"{LABEL_JOB_ID}={job_id}"}
    # The summaries, not containers.list(), which inspects each one: a container removed meanwhile would raise.
    return ([c["Names"][0].lstrip("/") for c in engine.api.containers(all=True, filters=label)]
            + [n.name for n in engine.networks.list(filters=label)]
            + [v.name for v in engine.volumes.list(filters=label)])


@pytest.fixture
def engine():
    return docker.from_env()


@needs_docker
def test_a_failing_sidecar_does_not_fail_the_task_and_each_container_logs_apart(batch_client, logs_client, engine):
    queue = make_queue(batch_client)["name"]
    definition = register_ecs(
        batch_client,
        {"name": "main", "command": ["sh", "-c", "sleep 1; echo main says $AWS_BATCH_JOB_ID"]},
        {"name": "sidecar", "essential": False, "command": ["sh", "-c", "echo sidecar failing; exit 3"]},
        {"name": "idle", "essential": False, "command": ["sleep", "600"]})
    job = run(batch_client, queue, definition)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert job["statusReason"] == ESSENTIAL_EXITED
    assert "container" not in job
    task = job["ecsProperties"]["taskProperties"][0]
    task_id = task["taskArn"].rsplit("/", 1)[1]
    containers = by_name(job)
    assert (containers["main"]["exitCode"], containers["sidecar"]["exitCode"]) == (0, 3)
    # Still running when the essential container exited: stopped with the task.
    assert containers["idle"]["exitCode"] in (137, 143)
    name = definition["jobDefinitionName"]
    assert {n: c["logStreamName"] for n, c in containers.items()} == {
        n: f"{name}/{n}/{task_id}" for n in ("main", "sidecar", "idle")}
    assert lines(logs_client, containers["main"]["logStreamName"]) == [f"main says {job['jobId']}"]
    assert lines(logs_client, containers["sidecar"]["logStreamName"]) == ["sidecar failing"]
    [attempt] = job["attempts"]
    assert attempt["statusReason"] == ESSENTIAL_EXITED
    assert attempt["taskProperties"][0]["taskArn"] == task["taskArn"]
    assert [(c["name"], c["exitCode"], c["logStreamName"]) for c in attempt["taskProperties"][0]["containers"]] == [
        (n, containers[n]["exitCode"], containers[n]["logStreamName"]) for n in ("main", "sidecar", "idle")]
    wait_until(lambda: not leftovers(engine, job["jobId"]), 15)


@needs_docker
def test_an_essential_exit_stops_the_others_and_decides_each_attempt(batch_client):
    queue = make_queue(batch_client)["name"]
    definition = register_ecs(
        batch_client,
        {"name": "main", "command": ["sh", "-c", "exit $((3 + AWS_BATCH_JOB_ATTEMPT))"]},
        {"name": "server", "command": ["sleep", "600"]},
        retryStrategy={"attempts": 2})
    job = run(batch_client, queue, definition)
    assert job["status"] == "FAILED" and job["statusReason"] == ESSENTIAL_EXITED
    assert job["stoppedAt"] - job["startedAt"] < 30_000
    containers = by_name(job)
    assert containers["main"]["exitCode"] == 5 and containers["server"]["exitCode"] in (137, 143)
    first, second = job["attempts"]
    assert [c["exitCode"] for c in first["taskProperties"][0]["containers"]] == [4, containers["server"]["exitCode"]]
    assert first["taskProperties"][0]["taskArn"] != second["taskProperties"][0]["taskArn"]


@needs_docker
def test_depends_on_orders_containers_that_share_a_task_volume(batch_client):
    queue = make_queue(batch_client)["name"]
    mount = [{"sourceVolume": "work", "containerPath": "/work"}]
    definition = register_ecs(
        batch_client,
        {"name": "fetch", "essential": False, "mountPoints": mount,
         "command": ["sh", "-c", "sleep 1; echo data > /work/input"]},
        {"name": "log", "essential": False, "command": ["sleep", "600"]},
        {"name": "main", "mountPoints": mount, "dependsOn": [{"containerName": "fetch", "condition": "SUCCESS"},
                                                             {"containerName": "log", "condition": "START"}],
         "command": ["sh", "-c", "test \"$(cat /work/input)\" = data"]},
        volumes=[{"name": "work"}])
    job = run(batch_client, queue, definition)
    assert job["status"] == "SUCCEEDED", (job.get("statusReason"), by_name(job))
    assert by_name(job)["main"]["exitCode"] == 0

    # SUCCESS on a container that fails can never hold: the essential container never starts.
    never = register_ecs(
        batch_client,
        {"name": "setup", "essential": False, "command": ["sh", "-c", "exit 1"]},
        {"name": "main", "dependsOn": [{"containerName": "setup", "condition": "SUCCESS"}], "command": ["true"]})
    job = run(batch_client, queue, never)
    assert job["status"] == "FAILED"
    containers = by_name(job)
    assert containers["setup"]["exitCode"] == 1
    assert "exitCode" not in containers["main"]
    assert containers["main"]["reason"].startswith("CannotStartContainerError: container main never started")


@needs_docker
def test_init_containers_run_in_order_then_the_pod(batch_client, logs_client):
    queue = eks_queue(batch_client)
    mount = [{"name": "data", "mountPath": "/data"}]
    definition = register_eks(batch_client, {
        "volumes": [{"name": "data", "emptyDir": {}}],
        "initContainers": [
            {"name": "first", "image": TEST_IMAGE, "command": ["sh", "-c", "sleep 1; echo -n 1 >> /data/order"],
             "volumeMounts": mount},
            {"name": "second", "image": TEST_IMAGE, "command": ["sh", "-c", "echo -n 2 >> /data/order"],
             "volumeMounts": mount}],
        "containers": [
            {"name": "main", "image": TEST_IMAGE, "volumeMounts": mount, "command": ["sh", "-c"],
             "args": ["echo order=$(cat /data/order) node=${AWS_BATCH_JOB_KUBERNETES_NODE_UID:+set} $(GREETING) '$$(GREETING)'"],
             "env": [{"name": "GREETING", "value": "hi"}],
             "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}},
            {"name": "helper", "image": TEST_IMAGE, "command": ["echo", "helper", "done"]}]})
    job = run(batch_client, queue, definition)
    pod = job["eksProperties"]["podProperties"]
    assert job["status"] == "SUCCEEDED", (job.get("statusReason"), pod)
    assert "container" not in job and job["attempts"] == []
    assert pod["podName"].startswith("aws-batch.") and pod["nodeName"].endswith(".compute.internal")
    assert [(c["name"], c["exitCode"]) for c in pod["initContainers"] + pod["containers"]] == [
        ("first", 0), ("second", 0), ("main", 0), ("helper", 0)]
    [attempt] = job["eksAttempts"]
    assert attempt["podNamespace"] == "batch" and attempt["eksClusterArn"].endswith(":cluster/c")
    assert all(c["containerID"] for c in attempt["initContainers"] + attempt["containers"])
    streams = {s["logStreamName"] for s in logs_client.describe_log_streams(
        logGroupName="/aws/batch/job", logStreamNamePrefix=f"{definition['jobDefinitionName']}/")["logStreams"]}
    main = next(s for s in streams if s.split("/")[1] == "main")
    # Kubernetes expands $(GREETING) and turns $$ into $; the shell sees the rest.
    assert lines(logs_client, main) == ["order=12 node=set hi $(GREETING)"]
    assert {s.split("/")[1] for s in streams} == {"first", "second", "main", "helper"}


@needs_docker
def test_a_failed_init_container_fails_the_pod_before_its_containers_start(batch_client):
    queue = eks_queue(batch_client)
    definition = register_eks(batch_client, {
        "initContainers": [{"name": "setup", "image": TEST_IMAGE, "command": ["sh", "-c", "exit 2"]}],
        "containers": [{"name": "main", "image": TEST_IMAGE, "command": ["true"]}]})
    job = run(batch_client, queue, definition)
    assert job["status"] == "FAILED"
    pod = job["eksProperties"]["podProperties"]
    assert pod["initContainers"][0]["exitCode"] == 2
    assert "exitCode" not in pod["containers"][0]
    # One failed pod container fails the job, though the others succeed (no container of a pod is essential).
    failing = register_eks(batch_client, {"containers": [
        {"name": "ok", "image": TEST_IMAGE, "command": ["true"]},
        {"name": "bad", "image": TEST_IMAGE, "command": ["sh", "-c", "sleep 1; exit 6"]}]})
    job = run(batch_client, queue, failing)
    assert job["status"] == "FAILED"
    assert [c["exitCode"] for c in job["eksProperties"]["podProperties"]["containers"]] == [0, 6]


@needs_docker
def test_overrides_reach_the_containers(batch_client, logs_client):
    queue = make_queue(batch_client)["name"]
    definition = register_ecs(batch_client, {"name": "main", "command": ["sh", "-c", "echo $WORD Ref::what"],
                                             "environment": [{"name": "WORD", "value": "plain"}]},
                              parameters={"what": "thing"})
    job = run(batch_client, queue, definition, parameters={"what": "other"}, ecsPropertiesOverride={
        "taskProperties": [{"containers": [{"name": "main", "environment": [{"name": "WORD", "value": "fancy"}]}]}]})
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert lines(logs_client, by_name(job)["main"]["logStreamName"]) == ["fancy other"]

    pod_queue = eks_queue(batch_client)
    pod = register_eks(batch_client, {"containers": [{"name": "main", "image": TEST_IMAGE, "command": ["sh", "-c"],
                                                      "args": ["exit 5"]}]})
    job = run(batch_client, pod_queue, pod, eksPropertiesOverride={"podProperties": {"containers": [
        {"name": "main", "args": ["exit $CODE"], "env": [{"name": "CODE", "value": "0"}]}]}})
    assert job["status"] == "SUCCEEDED", job.get("statusReason")


@needs_docker
def test_a_sidecar_that_cannot_start_fails_the_attempt_and_leaves_nothing(batch_client, engine):
    queue = make_queue(batch_client)["name"]
    definition = register_ecs(
        batch_client,
        {"name": "main", "command": ["sleep", "600"]},
        {"name": "sidecar", "essential": False, "image": "batchemu-absent/nothing:1", "command": ["true"]})
    job = run(batch_client, queue, definition)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Task failed to start"
    containers = by_name(job)
    assert containers["sidecar"]["reason"].startswith("CannotPullContainerError")
    assert "exitCode" not in containers["main"]
    [attempt] = job["attempts"]
    assert attempt["statusReason"] == "Task failed to start"
    wait_until(lambda: not leftovers(engine, job["jobId"]), 15)


@needs_docker
def test_a_task_survives_a_server_killed_mid_run(tmp_path, engine):
    state = str(tmp_path / "state.sqlite3")
    process, url = serve(state)
    try:
        batch = client(url)
        queue = make_queue(batch)["name"]
        definition = register_ecs(
            batch,
            {"name": "main", "command": ["sh", "-c", "sleep 3; exit 4"]},
            {"name": "sidecar", "essential": False, "command": ["sleep", "600"]})
        job_id = batch.submit_job(jobName=unique("killed"), jobQueue=queue,
                                  jobDefinition=definition["jobDefinitionArn"])["jobId"]
        wait_until(lambda: describe(batch, job_id)["status"] == "RUNNING", 30)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    process, url = serve(state)
    try:
        batch = client(url)
        job = wait_for_status(batch, job_id, timeout=60)
        assert job["status"] == "FAILED" and job["statusReason"] == ESSENTIAL_EXITED
        containers = by_name(job)
        assert containers["main"]["exitCode"] == 4 and containers["sidecar"]["exitCode"] in (137, 143)
        assert len(job["attempts"]) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    label = hashlib.sha1(os.path.abspath(state).encode()).hexdigest()[:16]
    wait_until(lambda: not engine.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={label}"}), 15)
    assert not leftovers(engine, job_id)


@needs_docker
def test_terminating_a_pod_stops_every_container(batch_client, engine):
    queue = eks_queue(batch_client)
    definition = register_eks(batch_client, {"containers": [
        {"name": "a", "image": TEST_IMAGE, "command": ["sleep", "600"]},
        {"name": "b", "image": TEST_IMAGE, "command": ["sleep", "600"]}]})
    job_id = batch_client.submit_job(jobName=unique("pod"), jobQueue=queue,
                                     jobDefinition=definition["jobDefinitionArn"])["jobId"]
    wait_for_status(batch_client, job_id, statuses=("RUNNING",))
    batch_client.terminate_job(jobId=job_id, reason="enough")
    job = wait_for_status(batch_client, job_id, timeout=30)
    assert job["status"] == "FAILED" and job["statusReason"] == "enough"
    [attempt] = job["eksAttempts"]
    assert attempt["statusReason"] == "enough"
    assert all(c["exitCode"] in (137, 143) for c in attempt["containers"])
    wait_until(lambda: not leftovers(engine, job_id), 15)
