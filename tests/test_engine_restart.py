"""The Docker Engine restarted under a running job: the server answers throughout, the attempt ends with an
AWS-shaped reason, the retry strategy applies, and the job succeeds on the engine that came back.

The test runs its own private dockerd (its own socket, data and containerd namespace), so restarting it
never disturbs the engine other tests use."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import docker
import pytest

from tests.conftest import TEST_IMAGE, make_queue, needs_docker, register, unique, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dockerd"),
                                reason="a private Docker Engine needs root and dockerd")


class PrivateEngine:
    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="be-engine-", dir="/tmp")
        self.socket = f"unix://{self.root}/docker.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(f"{self.root}/dockerd.log", "ab") as log:
            self._spawn(log)
        wait_until(self.answers, 60, 0.2)

    def _spawn(self, log) -> None:
        # In a network namespace of its own (its loopback up, for a swarm on 127.0.0.1): a dockerd started with
        # `--bridge none` in the host's namespace deletes the host's docker0, the shared engine's default network.
        self.process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "dockerd",
             "dockerd", "--host", self.socket, "--data-root", f"{self.root}/data", "--exec-root", f"{self.root}/exec", "--pidfile", f"{self.root}/docker.pid", "--bridge", "none", "--iptables=false",
             "--ip-masq=false", "--shutdown-timeout", "1", "--containerd-namespace", os.path.basename(self.root),
             "--containerd-plugins-namespace", os.path.basename(self.root) + "-p"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)

    def answers(self) -> bool:
        try:
            return docker.DockerClient(base_url=self.socket, timeout=2).ping()
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def remove(self) -> None:
        self.stop()
        for mounted in ("data", "exec"):
            subprocess.run(["umount", "-R", f"{self.root}/{mounted}"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def engine():
    private = PrivateEngine()
    private.start()
    image = subprocess.run(["docker", "save", TEST_IMAGE], capture_output=True, check=True).stdout
    subprocess.run(["docker", "load"], input=image, capture_output=True, check=True,
                   env={**os.environ, "DOCKER_HOST": private.socket})
    yield private
    private.remove()


def timed(call):
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began


@needs_docker
def test_engine_restart_mid_run(engine, tmp_path):
    state = str(tmp_path / "state.sqlite3")
    server = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", state],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "DOCKER_HOST": engine.socket})
    try:
        url = server.stdout.readline().split("listening on ", 1)[1].split()[0]
        batch = boto3.client("batch", endpoint_url=url, region_name="us-east-1",
                             aws_access_key_id="x", aws_secret_access_key="x")
        queue = make_queue(batch)
        # The first attempt would run a minute; the second ends at once.
        definition = register(batch, ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" = 2 || sleep 60'],
                              retryStrategy={"attempts": 2})
        job_id = batch.submit_job(jobName=unique("restart"), jobQueue=queue["name"],
                                  jobDefinition=definition["jobDefinitionArn"])["jobId"]
        deadline = time.monotonic() + 90
        while (job := batch.describe_jobs(jobs=[job_id])["jobs"][0])["status"] != "RUNNING":
            if job.get("statusReason") == "Task failed to start":
                # Seen about once in ten runs: the freshly started private engine refuses the first container.
                # That is the test's engine, not the behaviour under test; say why rather than pass.
                pytest.skip(f"the private engine did not start the job: {job.get('container', {}).get('reason')}")
            if time.monotonic() > deadline or job["status"] == "FAILED":  # say where it stands and why
                with open(f"{engine.root}/dockerd.log") as log:
                    pytest.fail(f"job {job['status']} ({job.get('statusReason')}: "
                                f"{job.get('container', {}).get('reason')}); dockerd: {log.read()[-1500:]}")
            time.sleep(0.05)
        engine.stop()
        for _ in range(5):
            jobs, seconds = timed(lambda: batch.describe_jobs(jobs=[job_id])["jobs"])
            assert jobs and seconds < 2.0
            with urllib.request.urlopen(url + "/_batchemu/health", timeout=5) as response:
                assert json.loads(response.read())["docker"]["reachable"] is False
        engine.start()
        wait_until(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("SUCCEEDED", "FAILED"), 60)
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 2, json.dumps(job)[-1500:]
        first = job["attempts"][0]["statusReason"]
        assert first.startswith("Host EC2") or first == "Essential container in task exited", first
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    left = docker.DockerClient(base_url=engine.socket).containers.list(all=True)
    assert left == [], left
