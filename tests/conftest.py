"""Shared fixtures: a ready compute environment + queue, job definitions, and job polling."""

from __future__ import annotations

import itertools
import os
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.waiting import wait_for, wait_for_passes, wait_until  # noqa: F401 - tests import wait_until from here

TEST_IMAGE = "batchemu-test:latest"
TERMINAL = ("SUCCEEDED", "FAILED")
_counter = itertools.count()


def docker_ready() -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True,
                              timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


skip_without_docker = pytest.mark.skipif(not docker_ready(), reason=f"needs a Docker Engine with {TEST_IMAGE} "
                                          "(run `make docker`)")


def needs_docker(test):
    """Marks a test `docker` (deselect with -m "not docker") and skips it when no engine answers."""
    return pytest.mark.docker(skip_without_docker(test))


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def client_error(call, **kwargs) -> str:
    """The message of the 400 ClientException that `call(**kwargs)` must raise."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["Error"]["Code"] == "ClientException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return caught.value.response["Error"]["Message"]


def wait_for_compute_environment(batch_client, ref: str, status: str | None = "VALID",
                                 timeout: float = 10.0) -> dict | None:
    """The compute environment once it has `status` (None: once it is gone)."""
    return _wait_for_resource(lambda: batch_client.describe_compute_environments(
        computeEnvironments=[ref])["computeEnvironments"], f"compute environment {ref}", status, timeout)


def wait_for_job_queue(batch_client, ref: str, status: str | None = "VALID", timeout: float = 10.0) -> dict | None:
    """The job queue once it has `status` (None: once it is gone)."""
    return _wait_for_resource(lambda: batch_client.describe_job_queues(jobQueues=[ref])["jobQueues"],
                              f"job queue {ref}", status, timeout)


def _wait_for_resource(describe_all, what: str, status: str | None, timeout: float) -> dict | None:
    def reached(found: dict | None) -> bool:
        return found is None if status is None else (found or {}).get("status") == status
    return wait_for(lambda: next(iter(describe_all()), None), reached, f"{what} {status or 'gone'}", timeout,
                    show=lambda found: "absent" if found is None else f"{found.get('status')} "
                                                                      f"({found.get('statusReason', '')})")


def make_queue(batch_client, *, max_vcpus: int = 4, priority: int = 1, ce_state: str = "ENABLED",
               queue_state: str = "ENABLED", ce_type: str = "EC2", **queue_extra) -> dict:
    """A MANAGED compute environment and a job queue on it, both VALID."""
    ce_name, queue_name = unique("ce"), unique("jq")
    resources = {"type": ce_type, "maxvCpus": max_vcpus, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}
    if ce_type in ("EC2", "SPOT"):
        resources.update({"minvCpus": 0, "instanceTypes": ["optimal"], "instanceRole": "ecsInstanceRole"})
    ce = batch_client.create_compute_environment(
        computeEnvironmentName=ce_name, type="MANAGED", state=ce_state, computeResources=resources)
    wait_for_compute_environment(batch_client, ce_name)
    queue = batch_client.create_job_queue(
        jobQueueName=queue_name, state=queue_state, priority=priority,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}], **queue_extra)
    wait_for_job_queue(batch_client, queue_name)
    return {"ce": ce_name, "ceArn": ce["computeEnvironmentArn"], "name": queue_name,
            "arn": queue["jobQueueArn"]}


def register(batch_client, command: list[str] | None = None, *, vcpus: str = "1", memory: str = "64",
             image: str = TEST_IMAGE, **extra) -> dict:
    """Register a container job definition running `command` on the local test image."""
    properties = {"image": image, "command": command or ["true"],
                  "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}]}
    properties.update(extra.pop("containerProperties", {}))
    return batch_client.register_job_definition(jobDefinitionName=unique("jd"), type="container",
                                                containerProperties=properties, **extra)


def submit(batch_client, queue: dict, definition: dict, *, prefix: str = "job", **extra) -> str:
    """Submit a job of `definition` to `queue` under a unique name starting with `prefix`; its id."""
    return batch_client.submit_job(jobName=unique(prefix), jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"], **extra)["jobId"]


def describe(batch_client, job_id: str) -> dict:
    jobs = batch_client.describe_jobs(jobs=[job_id])["jobs"]
    assert len(jobs) == 1, jobs
    return jobs[0]


def wait_for_status(batch_client, job_id: str, statuses=TERMINAL, timeout: float = 60.0,
                    seen: list | None = None, describe_with=None, on_timeout=None) -> dict:
    """Poll DescribeJobs (or `describe_with(client, job_id)`) until the job is in one of `statuses`; record
    every status seen in `seen`. A job that ends in another status fails the test at once; a timeout names
    the statuses and reasons seen and, when given, what `on_timeout()` tells (an engine's view)."""
    seen = [] if seen is None else seen

    def observe() -> dict:
        job = (describe_with or describe)(batch_client, job_id)
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        return job

    def done(job: dict) -> bool:
        if job["status"] in TERMINAL and job["status"] not in statuses:
            pytest.fail(f"job {job_id} ended {job['status']} ({job.get('statusReason')}) while awaited in "
                        f"{'/'.join(statuses)}; statuses seen: {seen}" + (f"; {on_timeout()}" if on_timeout else ""))
        return job["status"] in statuses
    return wait_for(observe, done, f"job {job_id} in {'/'.join(statuses)}", timeout, 0.01,
                    on_timeout=on_timeout, show=lambda job: f"{job['status']} ({job.get('statusReason', '')})")


def wait_for_scheduler_passes(server, passes: int = 3) -> None:
    """Let `passes` passes of `server`'s scheduler go by (waiting.wait_for_passes): then what none of them
    did (place a held job, stop a running one) is known not to happen."""
    wait_for_passes(lambda: server.scheduler.passes, passes)


@pytest.fixture(autouse=True)
def _cpus_kept():
    """A test that runs `batchemu serve` in this process (cli.main) pins it to one CPU, as serve does: put the
    test process back on its CPUs, or every later test and the servers and engines it starts share one CPU."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    yield
    if cpus is not None and os.sched_getaffinity(0) != cpus:
        os.sched_setaffinity(0, cpus)


@pytest.fixture
def queue(batch_client) -> dict:
    return make_queue(batch_client)
