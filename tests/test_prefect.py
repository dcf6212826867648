"""Prefect's prefect-aws (`batch_submit` and `client_waiter`) against batchemu, in a flow run by Prefect itself.

`make clients` installs Prefect and prefect-aws into .clients/prefect, a virtual environment of its own
($BATCHEMU_PREFECT_PYTHON names another interpreter). tests/prefect_driver.py runs the flows on Prefect's
ephemeral API (no PREFECT_API_URL; PREFECT_HOME a throw-away folder); that API is slow to start, so one
driver process serves every test of this module. prefect-aws's Batch tasks ignore the `endpoint_url` of
`AwsClientParameters`, so the endpoint reaches them through AWS_ENDPOINT_URL_BATCH; the flows give a closed
port as `endpoint_url`, which shows it is ignored. The tests are skipped with the reason when that
interpreter is missing.
"""

from __future__ import annotations

import json
import os
import queue as queues
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import describe, make_queue, needs_docker, register, unique
from tests.test_jobs import log_lines

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "prefect_driver.py"
PREFECT_PYTHON = os.environ.get("BATCHEMU_PREFECT_PYTHON") or str(ROOT / ".clients" / "prefect" / "bin" / "python")
# The first flow starts Prefect's ephemeral API server: a minute or more on a loaded 2-core machine.
FLOW_TIMEOUT = 300
CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens on it here

pytestmark = pytest.mark.skipif(not os.access(PREFECT_PYTHON, os.X_OK),
                                reason=f"needs Prefect with prefect-aws in {PREFECT_PYTHON} (make clients) or "
                                "$BATCHEMU_PREFECT_PYTHON")


class Flows:
    """One driver process running the flows that tests send it, one JSON line each way."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: queues.Queue = queues.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, args=(process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(process.stderr, self.log.append), daemon=True).start()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line)
        sink(None)

    def run(self, **request) -> tuple[str, dict]:
        """Run one flow to its end: (the id of the job it submitted, its result line)."""
        self.process.stdin.write(json.dumps({"client_endpoint_url": CLOSED_PORT, **request}) + "\n")
        self.process.stdin.flush()
        submitted = self._next()
        assert "submitted" in submitted, submitted
        return submitted["submitted"], self._next()

    def _next(self) -> dict:
        try:
            line = self.lines.get(timeout=FLOW_TIMEOUT)
        except queues.Empty:
            pytest.fail(f"the Prefect flow wrote nothing in {FLOW_TIMEOUT} s:\n{self.text[-5000:]}")
        if line is None:
            pytest.fail(f"the Prefect driver ended ({self.process.wait(timeout=30)}):\n{self.text[-5000:]}")
        return json.loads(line)

    @property
    def text(self) -> str:
        return "".join(line for line in list(self.log) if line)


@pytest.fixture(scope="module")
def prefect_python() -> str:
    found = subprocess.run([PREFECT_PYTHON, "-c", "import prefect_aws.batch, prefect_aws.client_waiter"],
                           capture_output=True, text=True, timeout=120, check=False)
    if found.returncode != 0:
        pytest.skip(f"{PREFECT_PYTHON} cannot import prefect-aws: {found.stderr.strip()[-500:]}")
    return PREFECT_PYTHON


@pytest.fixture(scope="module")
def batchemu_server() -> Iterator[object]:
    """One batchemu for the module (the plugin's is one per test): the one driver process has one endpoint."""
    from batchemu.config import Config
    from batchemu.http.server import Server
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5,
                           instance_label=uuid.uuid4().hex)).start()
    try:
        yield server
    finally:
        server.stop(remove_containers=True)


@pytest.fixture(scope="module")
def flows(prefect_python, batchemu_server, tmp_path_factory) -> Iterator[Flows]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_"))}
    env = {**inherited, "AWS_ENDPOINT_URL_BATCH": batchemu_server.url, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
           "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(FLOW_TIMEOUT),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    process = subprocess.Popen([prefect_python, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield Flows(process)
    finally:
        process.stdin.close()  # the driver stops Prefect's temporary server and ends
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@needs_docker
def test_flow_submits_the_job_and_its_waiter_sees_it_succeed(flows, batch_client, logs_client):
    queue = make_queue(batch_client)
    definition = register(batch_client, ["sh", "-c", "echo Ref::greeting"])
    name = unique("prefect")
    job_id, result = flows.run(queue=queue["name"], definition=definition["jobDefinitionName"], name=name,
                               max_attempts=60)
    assert (result["state"], result["job_id"]) == ("COMPLETED", job_id), f"{result}\n{flows.text[-5000:]}"
    job = describe(batch_client, job_id)
    assert (job["jobName"], job["status"], job["container"]["exitCode"]) == (name, "SUCCEEDED", 0)
    assert job["parameters"] == {"greeting": "hello"}
    assert log_lines(logs_client, job) == ["hello"]


@needs_docker
def test_flow_fails_when_the_waiter_sees_its_job_fail(flows, batch_client):
    queue = make_queue(batch_client)
    definition = register(batch_client, ["sh", "-c", "exit 4"])
    job_id, result = flows.run(queue=queue["name"], definition=definition["jobDefinitionName"],
                               name=unique("prefect"), max_attempts=60)
    assert result["state"] == "FAILED", f"{result}\n{flows.text[-5000:]}"
    assert "Waiter JobComplete failed: Waiter encountered a terminal failure state" in result["message"], result
    job = describe(batch_client, job_id)
    assert (job["status"], job["statusReason"], job["container"]["exitCode"]) == (
        "FAILED", "Essential container in task exited", 4)
