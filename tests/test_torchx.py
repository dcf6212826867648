"""torchx's AWS Batch scheduler (`aws_batch`) against batchemu, through the `torchx` command line as a user runs it.

`make clients` installs torchx into .clients/torchx, a virtual environment of its own ($BATCHEMU_TORCHX
names another `torchx` executable); torch is not needed. torchx submits every app as a multi-node job (one
node per replica, a definition registered per run, the app handle `aws_batch://torchx/<queue>:<name>`) and
finds it again by ListJobs with a JOB_NAME filter; `log` reads each node's `<id>#<n>` attempts and its
stream in `/aws/batch/job`. The endpoint reaches torchx's boto3 through AWS_ENDPOINT_URL (Batch and
CloudWatch Logs alike); `--workspace ""` keeps torchx from building and pushing an image. The tests are
skipped with the reason when that executable is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE, describe, make_queue, needs_docker, wait_for_status

ROOT = Path(__file__).resolve().parent.parent
TORCHX = os.environ.get("BATCHEMU_TORCHX") or str(ROOT / ".clients" / "torchx" / "bin" / "torchx")
COMMAND_TIMEOUT = 120

pytestmark = pytest.mark.skipif(not os.access(TORCHX, os.X_OK),
                                reason=f"needs torchx in {TORCHX} (make clients) or $BATCHEMU_TORCHX")

# Each node says who it is; the main node waits until the other node has reached it at its address, so that
# both run before the main node's exit ends the job (AWS stops the nodes still running then).
MEET = ('echo "node=$AWS_BATCH_JOB_NODE_INDEX of=$AWS_BATCH_JOB_NUM_NODES role=$TORCHX_ROLE_NAME"; '
        'if [ "$AWS_BATCH_JOB_NODE_INDEX" = 0 ]; then echo hi | nc -l -p 7000 >/dev/null; '
        'else until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 >/dev/null 2>&1; do sleep 0.2; done; fi')


class Torchx:
    """Runs `torchx` commands against one batchemu server, in a throw-away working directory."""

    def __init__(self, endpoint: str, cwd: Path) -> None:
        self.cwd = cwd
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TORCHX"))}
        self.env = {**inherited, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "torchx",
                    "AWS_SECRET_ACCESS_KEY": "torchx", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                    "AWS_EC2_METADATA_DISABLED": "true"}

    def __call__(self, *args: str) -> str:
        """`torchx ARGS`' standard output; fails the test with its output when it exits non-zero."""
        done = subprocess.run([TORCHX, *args], capture_output=True, text=True, env=self.env, cwd=self.cwd,
                              timeout=COMMAND_TIMEOUT, check=False)
        assert done.returncode == 0, f"torchx {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n" \
                                     f"{done.stderr[-5000:]}"
        return done.stdout

    def run(self, queue: str, *component: str) -> str:
        """`torchx run` of a component on the aws_batch scheduler: the app handle it prints."""
        out = self("run", "--scheduler", "aws_batch", "--scheduler_args", f"queue={queue}", "--workspace", "",
                   *component)
        handles = re.findall(rf"^aws_batch://torchx/{re.escape(queue)}:\S+$", out, re.MULTILINE)
        assert len(handles) == 1, out
        return handles[0]


def job_of(batch_client, queue: str, handle: str) -> dict:
    """The Batch job behind a torchx app handle, found as torchx finds it (ListJobs with a JOB_NAME filter)."""
    name = handle.rsplit(":", 1)[1]
    summaries = batch_client.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    assert len(summaries["jobSummaryList"]) == 1, summaries
    return describe(batch_client, summaries["jobSummaryList"][0]["jobId"])


def state_of(status_output: str) -> str:
    found = re.search(r"^\s*State: (\w+)$", status_output, re.MULTILINE)
    assert found, status_output
    return found.group(1)


@pytest.fixture(scope="module")
def torchx_ready() -> None:
    found = subprocess.run([TORCHX, "runopts", "aws_batch"], capture_output=True, text=True, timeout=120,
                           check=False)
    if found.returncode != 0:
        pytest.skip(f"{TORCHX} cannot load its aws_batch scheduler: {found.stderr.strip()[-500:]}")


@pytest.fixture
def torchx(torchx_ready, batchemu_server, tmp_path) -> Torchx:
    return Torchx(batchemu_server.url, tmp_path)


@needs_docker
def test_two_node_app_runs_and_status_describe_log_list_show_it(torchx, batch_client):
    queue = make_queue(batch_client, max_vcpus=4)["name"]
    handle = torchx.run(queue, "utils.sh", "--image", TEST_IMAGE, "--num_replicas", "2", "--",
                        "sh", "-c", MEET)
    job = job_of(batch_client, queue, handle)
    assert (job["nodeProperties"]["numNodes"], job["tags"]["torchx.pytorch.org/app-name"]) == (2, "sh")
    assert wait_for_status(batch_client, job["jobId"], ("SUCCEEDED",))["status"] == "SUCCEEDED"
    assert state_of(torchx("status", handle)) == "SUCCEEDED"
    description = torchx("describe", handle)
    assert "'num_replicas': 2" in description and f"'image': '{TEST_IMAGE}'" in description, description
    # Each replica's log, read from its node's stream: `sh/<replica> <line>`.
    assert sorted(torchx("log", handle).splitlines()) == ["sh/0 node=0 of=2 role=sh", "sh/1 node=1 of=2 role=sh"]
    assert torchx("log", f"{handle}/sh/1").splitlines() == ["sh/1 node=1 of=2 role=sh"]
    listed = torchx("list", "-s", "aws_batch")
    assert re.search(rf"^{re.escape(handle)}\s+SUCCEEDED$", listed, re.MULTILINE), listed


@needs_docker
def test_failing_app_is_failed_with_its_exit_code_and_log(torchx, batch_client):
    queue = make_queue(batch_client, max_vcpus=4)["name"]
    handle = torchx.run(queue, "utils.sh", "--image", TEST_IMAGE, "--", "sh", "-c", "echo giving up; exit 3")
    job_id = job_of(batch_client, queue, handle)["jobId"]
    job = wait_for_status(batch_client, job_id, ("FAILED",))
    assert (job["statusReason"], job["attempts"][-1]["container"]["exitCode"]) == (
        "Essential container in task exited", 3)
    assert state_of(torchx("status", handle)) == "FAILED"
    assert torchx("log", handle).splitlines() == ["sh/0 giving up"]


@needs_docker
def test_cancel_terminates_the_running_app_with_torchx_reason(torchx, batch_client):
    queue = make_queue(batch_client, max_vcpus=4)["name"]
    handle = torchx.run(queue, "utils.sh", "--image", TEST_IMAGE, "--num_replicas", "2", "--", "sleep", "600")
    job_id = job_of(batch_client, queue, handle)["jobId"]
    wait_for_status(batch_client, job_id, ("RUNNING",))
    assert state_of(torchx("status", handle)) == "RUNNING"
    torchx("cancel", handle)
    job = wait_for_status(batch_client, job_id, ("FAILED",))
    assert job["statusReason"] == "killed via torchx CLI"
    assert state_of(torchx("status", handle)) == "FAILED"
    assert [describe(batch_client, f"{job_id}#{node}")["status"] for node in (0, 1)] == ["FAILED"] * 2
