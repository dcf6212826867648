"""A server killed with SIGKILL while an array and its dependents are in flight, then restarted on the same
state file: every job ends in the right state with its real exit code, each attempt counted once, and no
container of the server is left behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import boto3
import docker

from batchemu.executors import LABEL_INSTANCE
from tests.conftest import make_queue, needs_docker, register, unique, wait_until


def serve(state: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", state],
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
