"""Metaflow's `@batch` + `@parallel` submission path against batchemu, in Metaflow's own interpreter.

`make clients` installs Metaflow into .clients/metaflow, a virtual environment of its own
($BATCHEMU_METAFLOW_PYTHON names another interpreter). A full Metaflow run needs Python in the job's image
and an S3 datastore; instead tests/metaflow_driver.py drives the code such a run uses to submit and follow
the job (metaflow.plugins.aws.batch.batch_client: a multinode definition, nodeOverrides per node range,
then the parent and its `<id>#<i>` nodes polled as Batch.wait does). The endpoint reaches Metaflow's boto3
through AWS_ENDPOINT_URL_BATCH. The tests are skipped with the reason when that interpreter is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE, describe, make_queue, needs_docker
from tests.test_jobs import log_lines

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "metaflow_driver.py"
METAFLOW_PYTHON = os.environ.get("BATCHEMU_METAFLOW_PYTHON") or str(ROOT / ".clients" / "metaflow" / "bin" / "python")
DRIVER_TIMEOUT = 120  # the driver gives up on its own after this; the test waits a little longer

pytestmark = pytest.mark.skipif(not os.access(METAFLOW_PYTHON, os.X_OK),
                                reason=f"needs Metaflow in {METAFLOW_PYTHON} (make clients) or "
                                "$BATCHEMU_METAFLOW_PYTHON")

# Every node says who it is; the main node waits until each other node has reached it at its address, so
# that every node runs before the main node's exit ends the job.
REPORT = ('echo "node=$AWS_BATCH_JOB_NODE_INDEX of=$AWS_BATCH_JOB_NUM_NODES '
          'main=${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-none} task=control-1 [multinode-args]"')
MEET = ('if [ "$AWS_BATCH_JOB_NODE_INDEX" = 0 ]; then '
        'i=1; while [ $i -lt $AWS_BATCH_JOB_NUM_NODES ]; do echo hi | nc -l -p 7000 >/dev/null; i=$((i+1)); done; '
        'else until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000 >/dev/null 2>&1; do sleep 0.2; done; fi')


@pytest.fixture(scope="module")
def metaflow_python() -> str:
    found = subprocess.run([METAFLOW_PYTHON, "-c", "import metaflow.plugins.aws.batch.batch_client"],
                           capture_output=True, text=True, timeout=120, check=False)
    if found.returncode != 0:
        pytest.skip(f"{METAFLOW_PYTHON} cannot import Metaflow's Batch client: {found.stderr.strip()[-500:]}")
    return METAFLOW_PYTHON


@pytest.fixture
def metaflow(metaflow_python, batchemu_server, tmp_path):
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METAFLOW"))}
    env = {**inherited, "AWS_ENDPOINT_URL_BATCH": batchemu_server.url, "AWS_ACCESS_KEY_ID": "metaflow",
           "AWS_SECRET_ACCESS_KEY": "metaflow", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true", "METAFLOW_HOME": str(tmp_path),
           "BATCHEMU_METAFLOW_TIMEOUT": str(DRIVER_TIMEOUT)}

    def run(**request) -> dict:
        """Submit and follow one job through Metaflow's Batch client: the driver's result line."""
        done = subprocess.run([metaflow_python, str(DRIVER)], input=json.dumps(request) + "\n",
                              capture_output=True, text=True, env=env, timeout=DRIVER_TIMEOUT + 60, check=False)
        lines = done.stdout.strip().splitlines()
        assert done.returncode == 0 and lines, f"driver exit {done.returncode}: {done.stdout}\n{done.stderr[-5000:]}"
        return json.loads(lines[-1])
    return run


@needs_docker
def test_parallel_step_runs_every_node_with_its_own_override(metaflow, batch_client, logs_client):
    queue = make_queue(batch_client, max_vcpus=4)
    result = metaflow(queue=queue["name"], image=TEST_IMAGE, num_parallel=3, script=f"{REPORT}; {MEET}")
    job_id = result["id"]
    assert (result["status"], result["is_successful"], result["is_crashed"], result["status_code"]) == (
        "SUCCEEDED", True, False, 0), result
    assert result["node_statuses"] == ["SUCCEEDED"] * 3
    parent = describe(batch_client, job_id)
    assert parent["nodeProperties"]["numNodes"] == 3
    assert [r["targetNodes"] for r in parent["nodeProperties"]["nodeRangeProperties"]] == ["0:0", "1:2"]
    nodes = [describe(batch_client, f"{job_id}#{i}") for i in range(3)]
    address = nodes[0]["container"]["networkInterfaces"][0]["privateIpv4Address"]
    assert [log_lines(logs_client, node) for node in nodes] == [
        ["node=0 of=3 main=none task=control-1 --split-index 0"],
        [f"node=1 of=3 main={address} task=1-node-1 --split-index 1"],
        [f"node=2 of=3 main={address} task=1-node-2 --split-index 2"]]


@needs_docker
def test_failed_main_node_is_what_metaflow_reports(metaflow, batch_client):
    queue = make_queue(batch_client, max_vcpus=4)
    # The main node fails at once, maybe before the other nodes start: they must be found all the same
    # (Metaflow polls each one until DescribeJobs returns it).
    script = '[ "$AWS_BATCH_JOB_NODE_INDEX" = 0 ] && exit 7; sleep 60 # [multinode-args]'
    result = metaflow(queue=queue["name"], image=TEST_IMAGE, num_parallel=3, script=script)
    assert (result["status"], result["is_successful"], result["is_crashed"]) == ("FAILED", False, True), result
    assert (result["status_code"], result["reason"]) == (7, "Essential container in task exited")
    assert result["node_statuses"] == ["FAILED"] * 3
    assert [describe(batch_client, f"{result['id']}#{i}")["statusReason"] for i in (1, 2)] == [
        "Main node exited"] * 2
