"""Snakemake 9 with the `aws-basic-batch` executor plugin and S3 storage against batchemu, as a user runs it.

`make clients` installs Snakemake, snakemake-executor-plugin-aws-basic-batch, snakemake-storage-plugin-s3
and moto's server into .clients/snakemake, a virtual environment of its own ($BATCHEMU_SNAKEMAKE names
another `snakemake` executable in a folder that also holds `pip` and `moto_server`). A moto server on a
loopback port, started here, is the S3 of the workflow (`--default-storage-provider s3`). Each rule is one
Batch job on a job definition registered beforehand, as the plugin expects: the image batchemu-snakemake
(scripts/build-snakemake-image.sh: Python, bash, Snakemake and the plugins, built from local files) and
the workflow's folder mounted at its working directory /workflow, since the plugin runs
`python -m snakemake --snakefile Snakefile ...` there without deploying the sources. The jobs run on the
host's network (batchemu's default), so they reach moto at 127.0.0.1; the storage settings reach them as
SNAKEMAKE_STORAGE_S3_* variables the plugin passes. The plugin's boto3 client takes its endpoint from
AWS_ENDPOINT_URL_BATCH. The tests are skipped with the reason when the client or the image is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import describe, make_queue, needs_docker, unique
from tests.test_jobs import log_lines
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = os.environ.get("BATCHEMU_SNAKEMAKE") or str(ROOT / ".clients" / "snakemake" / "bin" / "snakemake")
CLIENT_BIN = Path(SNAKEMAKE).parent
IMAGE = os.environ.get("BATCHEMU_SNAKEMAKE_IMAGE", "batchemu-snakemake:latest")
# What the job image holds: the versions of the client's virtual environment (the Makefile pins them).
IMAGE_PACKAGES = ("snakemake", "snakemake-executor-plugin-aws-basic-batch", "snakemake-storage-plugin-s3")
RUN_TIMEOUT = 300

pytestmark = pytest.mark.skipif(not os.access(SNAKEMAKE, os.X_OK),
                                reason=f"needs Snakemake in {SNAKEMAKE} (make clients) or $BATCHEMU_SNAKEMAKE")

SNAKEFILE = """\
rule all:
    input: "second.txt"

rule first:
    output: "first.txt"
    shell: "echo one > {output}"

rule second:
    input: "first.txt"
    output: "second.txt"
    shell: "cat {input} > {output}; echo two >> {output}"
"""


def installed_versions() -> list[str]:
    """`name==version` of each package the job image needs, as installed beside SNAKEMAKE."""
    frozen = subprocess.run([str(CLIENT_BIN / "pip"), "freeze"], capture_output=True, text=True, timeout=120,
                            check=True).stdout.splitlines()
    pins = {line.split("==")[0].lower(): line for line in frozen if "==" in line}
    missing = [name for name in IMAGE_PACKAGES if name not in pins]
    if missing:
        pytest.skip(f"{CLIENT_BIN} lacks {', '.join(missing)} (make clients)")
    return [pins[name] for name in IMAGE_PACKAGES]


@pytest.fixture(scope="module")
def snakemake_image() -> str:
    """The job image, built from the client's package versions when it is missing or stale."""
    built = subprocess.run(["bash", str(ROOT / "scripts" / "build-snakemake-image.sh"), str(CLIENT_BIN / "pip"),
                            *installed_versions()], capture_output=True, text=True, timeout=900, check=False)
    if built.returncode != 0:
        pytest.skip(f"could not build {IMAGE} (scripts/build-snakemake-image.sh): {built.stderr.strip()[-800:]}")
    return IMAGE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto server on a loopback port: the workflow's S3."""
    server = CLIENT_BIN / "moto_server"
    if not os.access(server, os.X_OK):
        pytest.skip(f"needs moto's server in {server} (make clients)")
    port = free_port()
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    endpoint = f"http://127.0.0.1:{port}"
    s3 = s3_client(endpoint)

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"moto_server ended ({process.returncode}): {process.stderr.read()[-2000:]}")
        try:
            s3.list_buckets()
            return True
        except Exception:  # noqa: BLE001 - not listening yet
            return False
    wait_for(answers, what=f"moto's server answering at {endpoint}", timeout=20, interval=0.2)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="snakemake",
                        aws_secret_access_key="snakemake")


class Workflow:
    """A workflow folder, an S3 bucket, a queue and the job definition the plugin is given, on one server."""

    def __init__(self, image: str, s3_endpoint: str, batchemu_url: str, batch_client, folder: Path) -> None:
        self.s3_endpoint, self.folder = s3_endpoint, folder
        self.s3 = s3_client(s3_endpoint)
        self.bucket = unique("snakemake")
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue = make_queue(batch_client, max_vcpus=4)["name"]
        folder.mkdir()
        self.definition = batch_client.register_job_definition(
            jobDefinitionName=unique("snakemake"), type="container", containerProperties={
                "image": image, "command": ["true"],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "1024"}],
                "volumes": [{"name": "workflow", "host": {"sourcePath": str(folder)}}],
                "mountPoints": [{"sourceVolume": "workflow", "containerPath": "/workflow"}]})["jobDefinitionName"]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNAKEMAKE"))}
        self.env = {**inherited, "AWS_ENDPOINT_URL_BATCH": batchemu_url, "AWS_ACCESS_KEY_ID": "snakemake",
                    "AWS_SECRET_ACCESS_KEY": "snakemake", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                    "AWS_EC2_METADATA_DISABLED": "true"}

    def run(self, snakefile: str) -> tuple[int, str]:
        """Run `snakemake` on this Snakefile in the folder: its exit status and its output."""
        (self.folder / "Snakefile").write_text(snakefile)
        done = subprocess.run(
            [SNAKEMAKE, "--executor", "aws-basic-batch", "--aws-basic-batch-region", "us-east-1",
             "--aws-basic-batch-job-queue", self.queue, "--aws-basic-batch-job-definition", self.definition,
             "--default-storage-provider", "s3", "--default-storage-prefix", f"s3://{self.bucket}/run",
             "--storage-s3-endpoint-url", self.s3_endpoint, "--storage-s3-access-key", "snakemake",
             "--storage-s3-secret-key", "snakemake", "--jobs", "2", "--nocolor"],
            cwd=self.folder, capture_output=True, text=True, env=self.env, timeout=RUN_TIMEOUT, check=False)
        return done.returncode, done.stdout + done.stderr

    def read(self, key: str) -> str:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()


@pytest.fixture
def workflow(snakemake_image, s3_endpoint, batchemu_server, batch_client, tmp_path) -> Workflow:
    if batchemu_server.config.network != "host":
        pytest.skip(f"the jobs reach moto at 127.0.0.1 only on the host's network; BATCHEMU_NETWORK is "
                    f"{batchemu_server.config.network!r}")
    return Workflow(snakemake_image, s3_endpoint, batchemu_server.url, batch_client, tmp_path / "workflow")


@needs_docker
def test_two_rules_run_as_batch_jobs_passing_a_file_through_s3(workflow, batch_client):
    status, output = workflow.run(SNAKEFILE)
    assert status == 0, output[-8000:]
    assert "3 of 3 steps (100%) done" in output, output[-8000:]
    # The second job read the first one's object from S3 and wrote its own.
    assert workflow.read("run/first.txt") == "one\n"
    assert workflow.read("run/second.txt") == "one\ntwo\n"
    summaries = batch_client.list_jobs(jobQueue=workflow.queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    jobs = {summary["jobName"].split("-")[1]: summary for summary in summaries}
    assert sorted(jobs) == ["first", "second"], summaries
    assert all(summary["jobName"].startswith("snakejob-") for summary in summaries), summaries
    assert jobs["first"]["stoppedAt"] <= jobs["second"]["startedAt"]


@needs_docker
def test_a_failing_rule_fails_the_run_naming_the_job_and_its_log_shows_why(workflow, batch_client, logs_client):
    status, output = workflow.run('rule broken:\n    output: "never.txt"\n    shell: "echo trying; exit 3"\n')
    assert status != 0, output[-8000:]
    # Snakemake in the job exits 1 when its rule's command fails; the plugin reports the job's exit code.
    assert "AWS Batch job failed. Code: 1, Msg: Essential container in task exited." in output, output[-8000:]
    (summary,) = batch_client.list_jobs(jobQueue=workflow.queue, jobStatus="FAILED")["jobSummaryList"]
    assert summary["jobName"].startswith("snakejob-broken-"), summary
    assert summary["container"]["exitCode"] == 1, summary
    assert f"external_jobid: {summary['jobId']}" in output, output[-8000:]
    assert "trying" in log_lines(logs_client, describe(batch_client, summary["jobId"]))
