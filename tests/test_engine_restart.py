"""The Docker Engine restarted under a running job: the server answers throughout, the attempt ends with an
AWS-shaped reason, the retry strategy applies, and the job succeeds on the engine that came back.

The test runs its own private dockerd (its own socket, data and containerd namespace), so restarting it
never disturbs the engine other tests use."""

from __future__ import annotations

import json
import os
import re
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

from tests.conftest import TEST_IMAGE, make_queue, needs_docker, register, unique
from tests.waiting import wait_for, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dockerd"),
                                reason="a private Docker Engine needs root and dockerd")


def containerd_namespace(root: str) -> str:
    """A containerd namespace named after the engine's root. containerd takes only letters and digits
    joined by single '.', '_' or '-' (^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$), and mkdtemp's random part
    may begin or end with '_' or hold '__' (about 1 root in 18): named after such a root as it was, the
    engine answered ping and loaded the image, then refused every container start ("Error response from
    daemon: namespace validation: identifier "be-engine-_3jxtz8ma" must match
    ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument"), the job's "Task failed to start"."""
    return re.sub(r"[^A-Za-z0-9]+", "-", os.path.basename(root)).strip("-")


class PrivateEngine:
    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="be-engine-", dir="/tmp")
        self.socket = f"unix://{self.root}/docker.sock"
        self.namespace = containerd_namespace(self.root)
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
             "--ip-masq=false", "--shutdown-timeout", "1", "--containerd-namespace", self.namespace,
             "--containerd-plugins-namespace", self.namespace + "-p"],
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

    def log_tail(self) -> str:
        with open(f"{self.root}/dockerd.log", errors="replace") as log:
            return f"dockerd: {log.read()[-1500:]}"

    def remove(self) -> None:
        self.stop()
        # exec/netns/default is the mount that keeps the engine's network namespace; exec itself is no mount.
        for mounted in ("data", "exec/netns/default", "exec"):
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


@pytest.mark.parametrize("root", ["/tmp/be-engine-_3jxtz8ma", "/tmp/be-engine-n9r2fj_",
                                  "/tmp/be-engine-ab__cd.e", "/tmp/be-engine-k9kz27lj"])
def test_containerd_namespace_is_valid(root):
    valid = re.compile(r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$")  # containerd's identifiers.Validate
    assert valid.match(containerd_namespace(root)) and valid.match(containerd_namespace(root) + "-p")
    assert containerd_namespace("/tmp/be-engine-k9kz27lj") == "be-engine-k9kz27lj"


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
        job = wait_for(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0],
                       lambda job: job["status"] in ("RUNNING", "FAILED") or job.get("attempts"),
                       f"job {job_id} RUNNING", 30, on_timeout=engine.log_tail)
        if job["status"] != "RUNNING":  # the engine refused it: say why in its own words
            # A job back to RUNNABLE for its retry keeps the reason on its attempt only.
            reason = job.get("container", {}).get("reason") or (
                (job.get("attempts") or [{}])[-1].get("container", {}).get("reason"))
            pytest.fail(f"job {job['status']} ({job.get('statusReason')}: {reason}); {engine.log_tail()}")
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
