"""A server killed with SIGKILL while an array and its dependents are in flight, then restarted on the same
state file: every job ends in the right state with its real exit code, each attempt counted once, and no
container of the server is left behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import boto3
import docker

from batchemu.executors import LABEL_INSTANCE
from tests.conftest import TEST_IMAGE, make_queue, needs_docker, register, unique, wait_until

NODE = {"image": TEST_IMAGE, "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}


def serve(state: str, *flags: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", state, *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert "listening on" in line, line
    return process, line.split("listening on ", 1)[1].split()[0]


def client(url: str):
    return boto3.client("batch", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


@needs_docker
def test_sigkill_mid_array_then_restart_finishes_every_job(tmp_path):
    state = str(tmp_path / "state.sqlite3")
    process, url = serve(state)
    try:
        batch = client(url)
        queue = make_queue(batch, max_vcpus=2)
        # Odd children fail; each runs long enough to be on a host when the server dies.
        definition = register(batch, ["sh", "-c", "sleep 2; exit $((AWS_BATCH_JOB_ARRAY_INDEX % 2))"])
        parent = batch.submit_job(jobName=unique("crash"), jobQueue=queue["name"], arrayProperties={"size": 4},
                                  jobDefinition=definition["jobDefinitionArn"])["jobId"]
        after = batch.submit_job(jobName=unique("after"), jobQueue=queue["name"], dependsOn=[{"jobId": parent}],
                                 jobDefinition=register(batch, ["true"])["jobDefinitionArn"])["jobId"]
        wait_until(lambda: batch.describe_jobs(jobs=[parent])["jobs"][0]["arrayProperties"]["statusSummary"][
            "RUNNING"] == 2, 30)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    process, url = serve(state)
    try:
        batch = client(url)
        wait_until(lambda: batch.describe_jobs(jobs=[after])["jobs"][0]["status"] == "FAILED", 60)
        job = batch.describe_jobs(jobs=[parent])["jobs"][0]
        assert job["status"] == "FAILED" and job["statusReason"] == "Array Child Job failed"
        children = batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(4)])["jobs"]
        assert [c["status"] for c in children] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "FAILED"]
        assert [c["container"]["exitCode"] for c in children] == [0, 1, 0, 1]
        assert all(len(c["attempts"]) == 1 for c in children)
        dependent = batch.describe_jobs(jobs=[after])["jobs"][0]
        assert dependent["statusReason"] == f"Dependent Job failed: {parent} FAILED"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    engine = docker.from_env()
    label = hashlib.sha1(os.path.abspath(state).encode()).hexdigest()[:16]
    wait_until(lambda: not engine.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={label}"}), 15)


@needs_docker
def test_sigkill_with_jobs_in_every_state_and_exits_during_the_downtime(tmp_path):
    state = str(tmp_path / "state.sqlite3")
    label = hashlib.sha1(os.path.abspath(state).encode()).hexdigest()[:16]
    engine = docker.from_env()
    process, url = serve(state, "--state-dwell", "0.4")
    try:
        batch = client(url)
        queue = make_queue(batch, max_vcpus=2)
        codes = [3, 0, 5, 0, 0, 7]
        ids = [batch.submit_job(jobName=unique("k"), jobQueue=queue["name"], jobDefinition=register(
            batch, ["sh", "-c", f"sleep 1; exit {code}"])["jobDefinitionArn"])["jobId"] for code in codes]

        def spread() -> set | None:
            statuses = {j["status"] for j in batch.describe_jobs(jobs=ids)["jobs"]}
            return statuses if "RUNNING" in statuses and statuses & {"SUBMITTED", "PENDING", "RUNNABLE"} else None
        assert "RUNNING" in wait_until(spread, 30)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    # The containers the dead server started run on and exit while it is down.
    wait_until(lambda: all(c.status == "exited" for c in engine.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={label}"})), 30)
    process, url = serve(state, "--state-dwell", "0.4")
    try:
        batch = client(url)
        wait_until(lambda: all(j["status"] in ("SUCCEEDED", "FAILED")
                               for j in batch.describe_jobs(jobs=ids)["jobs"]), 90)
        jobs = batch.describe_jobs(jobs=ids)["jobs"]
        assert [j["container"]["exitCode"] for j in jobs] == codes
        assert [j["status"] for j in jobs] == ["SUCCEEDED" if code == 0 else "FAILED" for code in codes]
        assert all(len(j["attempts"]) == 1 for j in jobs)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    wait_until(lambda: not engine.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={label}"}), 15)


@contextlib.contextmanager
def running_server(state: str, *, killed: bool) -> Iterator:
    """A batch client of a server on `state`, SIGKILLed (killed) or stopped with SIGTERM afterwards."""
    process, url = serve(state)
    try:
        yield client(url)
    finally:
        if killed:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        else:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@needs_docker
def test_sigkill_mid_multi_node_job_then_restart_ends_it_and_leaves_nothing(tmp_path):
    state = str(tmp_path / "state.sqlite3")
    label = hashlib.sha1(os.path.abspath(state).encode()).hexdigest()[:16]
    engine = docker.from_env()
    with running_server(state, killed=True) as batch:
        queue = make_queue(batch, max_vcpus=2)
        ranges = [{"targetNodes": "0", "container": {**NODE, "command": ["sh", "-c", "sleep 4; exit 0"]}},
                  {"targetNodes": "1", "container": {**NODE, "command": ["sleep", "120"]}}]
        definition = batch.register_job_definition(jobDefinitionName=unique("mnp"), type="multinode",
                                                   nodeProperties={"numNodes": 2, "mainNode": 0,
                                                                   "nodeRangeProperties": ranges})
        job_id = batch.submit_job(jobName=unique("mnp"), jobQueue=queue["name"],
                                  jobDefinition=definition["jobDefinitionArn"])["jobId"]
        wait_until(lambda: [j["status"] for j in batch.describe_jobs(jobs=[f"{job_id}#0", f"{job_id}#1"])[
            "jobs"]] == ["RUNNING", "RUNNING"], 60)
        assert engine.networks.list(filters={"label": f"{LABEL_INSTANCE}={label}"})
    with running_server(state, killed=False) as batch:
        wait_until(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("SUCCEEDED", "FAILED"), 90)
        parent, main, other = batch.describe_jobs(jobs=[job_id, f"{job_id}#0", f"{job_id}#1"])["jobs"]
        assert (parent["status"], main["status"], main["container"]["exitCode"]) == ("SUCCEEDED", "SUCCEEDED", 0)
        assert (other["status"], other["statusReason"]) == ("FAILED", "Main node exited")
        assert [len(j["attempts"]) for j in (parent, main, other)] == [1, 1, 1]
    wait_until(lambda: not engine.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={label}"}), 15)
    wait_until(lambda: not engine.networks.list(filters={"label": f"{LABEL_INSTANCE}={label}"}), 15)
