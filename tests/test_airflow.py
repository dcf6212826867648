"""Airflow's Amazon provider (BatchOperator, BatchSensor) against batchemu, in Airflow's own interpreter.

`make clients` installs Airflow and apache-airflow-providers-amazon into .clients/airflow, a virtual
environment of its own ($BATCHEMU_AIRFLOW_PYTHON names another interpreter). Each test runs one task's
execute() through tests/airflow_driver.py in that interpreter, with the endpoint given the way Airflow users
give it: an `aws_default` connection (AIRFLOW_CONN_AWS_DEFAULT) whose extra holds `endpoint_url`. No
Airflow metadata database is needed. The tests are skipped with the reason when that interpreter is missing.
"""

from __future__ import annotations

import json
import os
import queue as queues
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import describe, make_queue, needs_docker, register, unique, wait_for_status

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "airflow_driver.py"
AIRFLOW_PYTHON = os.environ.get("BATCHEMU_AIRFLOW_PYTHON") or str(ROOT / ".clients" / "airflow" / "bin" / "python")
TASK_TIMEOUT = 120
# The operator's status polls back off exponentially; 10 retries is far more than a job of seconds needs.
FAST = {"max_retries": 10, "status_retries": 3}

pytestmark = pytest.mark.skipif(not os.access(AIRFLOW_PYTHON, os.X_OK),
                                reason=f"needs Airflow with apache-airflow-providers-amazon in {AIRFLOW_PYTHON} "
                                "(make clients) or $BATCHEMU_AIRFLOW_PYTHON")


@pytest.fixture(scope="module")
def airflow_python() -> str:
    found = subprocess.run([AIRFLOW_PYTHON, "-c", "import airflow.providers.amazon.aws.operators.batch"],
                           capture_output=True, text=True, timeout=120, check=False)
    if found.returncode != 0:
        pytest.skip(f"{AIRFLOW_PYTHON} cannot import the Amazon provider: {found.stderr.strip()[-500:]}")
    return AIRFLOW_PYTHON


class RunningTask:
    """One task in a driver process: its stdout JSON lines arrive on a queue as they are written."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: queues.Queue = queues.Queue()
        self.stderr: list[str] = []
        self.stderr_grew = threading.Condition()
        threading.Thread(target=self._pump, args=(process.stdout, self.lines.put), daemon=True).start()
        self.stderr_reader = threading.Thread(target=self._pump, args=(process.stderr, self._log_line),
                                              daemon=True)
        self.stderr_reader.start()

    def _log_line(self, line: str | None) -> None:
        with self.stderr_grew:
            self.stderr.append(line)
            self.stderr_grew.notify_all()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line)
        sink(None)

    def next(self) -> dict:
        """The next JSON line the task writes; fails the test if none comes in time."""
        try:
            line = self.lines.get(timeout=TASK_TIMEOUT)
        except queues.Empty:
            self.process.kill()
            pytest.fail(f"the Airflow task wrote nothing in {TASK_TIMEOUT} s:\n{self.log[-5000:]}")
        if line is None:
            self.process.wait(timeout=30)
            self.stderr_reader.join(timeout=30)
            pytest.fail(f"the Airflow task ended ({self.process.returncode}) without a result:\n"
                        f"{self.log[-5000:]}")
        return json.loads(line)

    def result(self) -> dict:
        """The task's final line (skipping sensor pokes), once its process has ended."""
        while "ok" not in (record := self.next()):
            pass
        assert self.process.wait(timeout=30) == 0, self.log[-5000:]
        self.stderr_reader.join(timeout=30)
        return record

    @property
    def log(self) -> str:
        return "".join(line for line in self.stderr if line)

    def wait_for_log(self, pattern: str) -> re.Match:
        """The first match of `pattern` in the task's log, waiting for the line that brings it."""
        with self.stderr_grew:
            found = self.stderr_grew.wait_for(
                lambda: re.search(pattern, self.log, re.MULTILINE) or (self.stderr and self.stderr[-1] is None),
                timeout=TASK_TIMEOUT)
        if not isinstance(found, re.Match):
            written = []
            if self.stderr and self.stderr[-1] is None:  # the task ended: its result line says why
                while (line := self.lines.get(timeout=30)) is not None:
                    written.append(line.strip())
            pytest.fail(f"no {pattern!r} in the task's log; it wrote {written}:\n{self.log[-5000:]}")
        return found


class Airflow:
    """Starts Airflow tasks against one batchemu server, with a throw-away AIRFLOW_HOME."""

    def __init__(self, python: str, endpoint: str, home: Path) -> None:
        self.python = python
        connection = {"conn_type": "aws", "login": "airflow", "password": "airflow",
                      "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))}
        self.env = {**inherited, "AIRFLOW_HOME": str(home), "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
        self.started: list[subprocess.Popen] = []

    def start(self, task: str, **kwargs) -> RunningTask:
        process = subprocess.Popen([self.python, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=self.env)
        self.started.append(process)
        process.stdin.write(json.dumps({"task": task, "kwargs": kwargs}) + "\n")
        process.stdin.close()
        return RunningTask(process)

    def run(self, task: str, **kwargs) -> tuple[dict, str]:
        """Run a task to its end: (its result line, its log)."""
        running = self.start(task, **kwargs)
        return running.result(), running.log

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def airflow(airflow_python, batchemu_server, tmp_path) -> Iterator[Airflow]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    runner = Airflow(airflow_python, batchemu_server.url, home)
    try:
        yield runner
    finally:
        runner.close()


# The operator's CloudWatch fetcher logs "[<event time>] <message>"; Airflow may add " [logger] loc=..." after it.
FORWARDED = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] %s(?= \[|$)"


def forwarded(log: str, message: str) -> list[str]:
    """The lines of the task log where the operator's CloudWatch fetcher forwarded `message`."""
    return re.findall(FORWARDED % re.escape(message), log, re.MULTILINE)


@needs_docker
def test_batch_operator_without_tags_runs_the_job_and_forwards_its_log(airflow, batch_client, queue, tmp_path):
    # The job prints a line, then runs until the test has seen that line forwarded, then prints another: the
    # fetcher's next GetLogEvents calls resume from its token while the job runs.
    signal = tmp_path / "signal"
    signal.mkdir()
    script = ('echo "one $AWS_BATCH_JOB_ID"; while [ ! -e /signal/go ]; do sleep 0.1; done; '
              'echo "two $AWS_BATCH_JOB_ID"')
    definition = register(batch_client, ["sh", "-c", script], containerProperties={
        "volumes": [{"name": "signal", "host": {"sourcePath": str(signal)}}],
        "mountPoints": [{"sourceVolume": "signal", "containerPath": "/signal"}]})
    # No tags: the operator sends "tags": {} on SubmitJob, which AWS accepts.
    task = airflow.start("BatchOperator", job_name=unique("af"), job_queue=queue["name"],
                         job_definition=definition["jobDefinitionName"], awslogs_enabled=True,
                         awslogs_fetch_interval=0.5, **FAST)
    job_id = task.wait_for_log(FORWARDED % r"one (\S+)").group(1)
    assert describe(batch_client, job_id)["status"] == "RUNNING"
    (signal / "go").touch()
    result, log = task.result(), task.log
    assert result["ok"], f"{result}\n{log[-5000:]}"
    assert result["value"] == job_id
    job = describe(batch_client, job_id)
    assert (job["status"], job["container"]["exitCode"]) == ("SUCCEEDED", 0)
    # Each line reached the task log through the operator's CloudWatch Logs fetcher, and only once.
    assert len(forwarded(log, f"one {job_id}")) == 1, log[-5000:]
    assert len(forwarded(log, f"two {job_id}")) == 1, log[-5000:]
    # The console links the task records name this job, its queue, definition and log stream.
    assert result["xcom"]["batch_job_details"]["job_id"] == job_id
    assert result["xcom"]["batch_job_queue"]["job_queue_arn"] == queue["arn"]
    assert result["xcom"]["batch_job_definition"]["job_definition_arn"] == definition["jobDefinitionArn"]
    assert result["xcom"]["cloudwatch_events"]["awslogs_stream_name"] == job["container"]["logStreamName"]


@needs_docker
def test_batch_operator_fails_the_task_naming_the_failed_job(airflow, batch_client, queue):
    definition = register(batch_client, ["sh", "-c", "echo giving up; exit 3"])
    result, log = airflow.run("BatchOperator", job_name=unique("af"), job_queue=queue["name"],
                              job_definition=definition["jobDefinitionName"], tags={"team": "airflow"},
                              awslogs_enabled=True, awslogs_fetch_interval=0.5, **FAST)
    assert not result["ok"], log[-5000:]
    job_id = result["xcom"]["batch_job_details"]["job_id"]
    assert result["error"]["type"] == "AirflowException"
    assert result["error"]["message"].startswith(f"AWS Batch job ({job_id}) failed:"), result["error"]
    assert "Essential container in task exited" in result["error"]["message"]
    job = describe(batch_client, job_id)
    assert (job["status"], job["container"]["exitCode"]) == ("FAILED", 3)
    assert job["statusReason"] == "Essential container in task exited"
    assert job["tags"] == {"team": "airflow"}
    assert len(forwarded(log, "giving up")) == 1, log[-5000:]


@needs_docker
@pytest.mark.parametrize("command, status", [("echo done", "SUCCEEDED"), ("exit 4", "FAILED")])
def test_batch_sensor_waits_for_the_job_and_fails_with_it(airflow, batch_client, command, status):
    # A disabled compute environment holds the job in RUNNABLE until the sensor has seen it unfinished.
    held = make_queue(batch_client, ce_state="DISABLED")
    definition = register(batch_client, ["sh", "-c", command])
    job_id = batch_client.submit_job(jobName=unique("af"), jobQueue=held["name"],
                                     jobDefinition=definition["jobDefinitionArn"])["jobId"]
    wait_for_status(batch_client, job_id, ("RUNNABLE",))
    sensor = airflow.start("BatchSensor", job_id=job_id, poke_interval=0.2, timeout=TASK_TIMEOUT)
    assert sensor.next() == {"poke": False}
    batch_client.update_compute_environment(computeEnvironment=held["ce"], state="ENABLED")
    result = sensor.result()
    assert describe(batch_client, job_id)["status"] == status
    if status == "SUCCEEDED":
        assert result["ok"] and result["value"] is None, f"{result}\n{sensor.log[-5000:]}"
    else:
        assert not result["ok"], sensor.log[-5000:]
        assert result["error"] == {"type": "AirflowException",
                                   "message": "Batch sensor failed. AWS Batch job status: FAILED"}


@needs_docker
def test_batch_operator_array_job_succeeds_when_its_children_do(airflow, batch_client, logs_client, queue):
    definition = register(batch_client, ["sh", "-c", 'echo "child $AWS_BATCH_JOB_ARRAY_INDEX"'])
    # awslogs_enabled: the operator reads the parent's `container` block for a log stream, so it must exist.
    result, log = airflow.run("BatchOperator", job_name=unique("af"), job_queue=queue["name"],
                              job_definition=definition["jobDefinitionName"], array_properties={"size": 3},
                              tags={"team": "airflow"}, awslogs_enabled=True, awslogs_fetch_interval=0.5, **FAST)
    assert result["ok"], f"{result}\n{log[-5000:]}"
    parent_id = result["value"]
    parent = describe(batch_client, parent_id)
    assert parent["status"] == "SUCCEEDED"
    assert parent["arrayProperties"]["size"] == 3
    summary = parent["arrayProperties"]["statusSummary"]
    assert {status: count for status, count in summary.items() if count} == {"SUCCEEDED": 3}, summary
    children = batch_client.describe_jobs(jobs=[f"{parent_id}:{index}" for index in range(3)])["jobs"]
    assert sorted(child["jobId"] for child in children) == [f"{parent_id}:{index}" for index in range(3)]
    for child in children:
        index = child["arrayProperties"]["index"]
        assert child["jobId"] == f"{parent_id}:{index}"
        assert (child["status"], child["container"]["exitCode"]) == ("SUCCEEDED", 0)
        events = logs_client.get_log_events(logGroupName="/aws/batch/job",
                                            logStreamName=child["container"]["logStreamName"])["events"]
        assert [event["message"] for event in events] == [f"child {index}"]
