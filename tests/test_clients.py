"""Other clients than boto3: the AWS CLI, the AWS SDK for JavaScript v3 (a stricter parser) and raw HTTP.

The CLI is looked for in $BATCHEMU_AWS_CLI, /work/cli-venv, .clients/cli (`make clients`) and on PATH; the
JavaScript SDK in $BATCHEMU_JS_CHECK_DIR, /work/js-check and .clients/js. Each test is skipped with the
reason when its client is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE, needs_docker
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
JS_SCRIPT = ROOT / "tests" / "js" / "batch_check.mjs"


def _aws_cli() -> str | None:
    candidates = [os.environ.get("BATCHEMU_AWS_CLI"), str(ROOT / ".clients" / "cli" / "bin" / "aws"),
                  shutil.which("aws")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _js_sdk_dir() -> Path | None:
    candidates = [os.environ.get("BATCHEMU_JS_CHECK_DIR")] if os.environ.get("BATCHEMU_JS_CHECK_DIR") else [
        ROOT / ".clients" / "js"]
    for candidate in map(Path, candidates):
        if (candidate / "node_modules" / "@aws-sdk" / "client-batch").is_dir():
            return candidate
    return None


AWS_CLI = _aws_cli()
JS_DIR = _js_sdk_dir()


@needs_docker
@pytest.mark.skipif(not shutil.which("node"), reason="needs node on PATH")
@pytest.mark.skipif(JS_DIR is None, reason="needs @aws-sdk/client-batch and @aws-sdk/client-cloudwatch-logs in "
                    "$BATCHEMU_JS_CHECK_DIR (default /work/js-check) or .clients/js (make clients)")
def test_aws_sdk_for_javascript_v3_scenario(batchemu_server, tmp_path):
    # ESM resolves packages beside the script: run a copy next to a link to the SDK's node_modules.
    script = tmp_path / JS_SCRIPT.name
    shutil.copy(JS_SCRIPT, script)
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules", target_is_directory=True)
    result = subprocess.run(["node", "--no-warnings", str(script), batchemu_server.url, TEST_IMAGE],
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    assert result.stdout.strip() == "ok"


# Serves CLI invocations over stdin/stdout in the CLI's own interpreter: the same driver `aws` runs, without
# half a second of start-up per command. One JSON line in ({"args", "config"}), one out ({"rc", "out", "err"}).
CLI_SERVER = """
import contextlib, io, json, os, sys
from awscli.clidriver import create_clidriver
for line in sys.stdin:
    request = json.loads(line)
    os.environ["AWS_CONFIG_FILE"] = request["config"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = create_clidriver().main(request["args"])
    sys.__stdout__.write(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}) + "\\n")
    sys.__stdout__.flush()
"""


def _cli_python(aws: str) -> str | None:
    """The Python interpreter of an `aws` script when it can import awscli (pip installs), else None."""
    with open(aws, "rb") as script:
        first = script.readline().decode(errors="replace")
    python = first[2:].strip() if first.startswith("#!") else ""
    if not python or " " in python or not os.access(python, os.X_OK):
        return None
    found = subprocess.run([python, "-c", "import awscli.clidriver"], capture_output=True, timeout=60, check=False)
    return python if found.returncode == 0 else None


class AwsCli:
    """Runs `aws` commands against the server with dummy credentials and no config but `config` if given."""

    def __init__(self, endpoint: str, home: Path) -> None:
        self.endpoint = endpoint
        self.home = home
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": "", "AWS_EC2_METADATA_DISABLED": "true"}
        python = _cli_python(AWS_CLI)
        self.server = python and subprocess.Popen([python, "-c", CLI_SERVER], stdin=subprocess.PIPE,
                                                  stdout=subprocess.PIPE, text=True, env=self.env)
        self.lock = threading.Lock()

    def close(self) -> None:
        if self.server:
            self.server.stdin.close()
            self.server.wait(timeout=30)

    def run(self, *args: str, config: str | None = None) -> tuple[int, str, str]:
        config_file = os.devnull
        if config is not None:
            config_file = str(self.home / "config")
            (self.home / "config").write_text(config)
        argv = ["--endpoint-url", self.endpoint, "--output", "json", *args]
        if not self.server:
            done = subprocess.run([AWS_CLI, *argv], capture_output=True, text=True, timeout=60, check=False,
                                  env={**self.env, "AWS_CONFIG_FILE": config_file})
            return done.returncode, done.stdout, done.stderr
        with self.lock:
            self.server.stdin.write(json.dumps({"args": argv, "config": config_file}) + "\n")
            self.server.stdin.flush()
            reply = json.loads(self.server.stdout.readline())
        return reply["rc"], reply["out"], reply["err"]

    def ok(self, *args: str) -> dict:
        rc, out, err = self.run(*args)
        assert rc == 0, f"aws {' '.join(args)}: {err}"
        return json.loads(out) if out.strip() else {}

    def fails(self, *args: str, config: str | None = None) -> str:
        """The error line of a call that must fail as a service error (exit code 254 or 255)."""
        rc, out, err = self.run(*args, config=config)
        assert rc in (254, 255), f"aws {' '.join(args)}: {rc} {out}"
        return err.strip()

    def until(self, check: Callable[[], object], timeout: float = 30.0) -> object:
        return wait_until(check, timeout, 0.2)


@pytest.fixture
def aws(batchemu_server, tmp_path) -> Iterator[AwsCli]:
    if subprocess.run([AWS_CLI, "--version"], capture_output=True, timeout=60, check=False).returncode != 0:
        pytest.skip(f"{AWS_CLI} --version fails")
    cli = AwsCli(batchemu_server.url, tmp_path)
    try:
        yield cli
    finally:
        cli.close()


def together(*calls: Callable[[], object]) -> list:
    """Run independent CLI calls at once (when each is its own `aws` process, start-up dominates)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


@needs_docker
@pytest.mark.skipif(AWS_CLI is None, reason="needs the AWS CLI: /work/cli-venv/bin/aws, .clients/cli "
                    "(make clients) or aws on PATH")
def test_aws_cli_scenario(aws):
    prefix = "arn:aws:batch:us-east-1:123456789012"
    definition = json.dumps({"image": TEST_IMAGE, "command": ["echo", "hi"], "resourceRequirements": [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]})
    ce, unmanaged, registered, policy, resource = together(
        lambda: aws.ok("batch", "create-compute-environment", "--compute-environment-name", "cli-ce",
                       "--type", "MANAGED", "--tags", "team=cli", "--compute-resources",
                       "type=EC2,maxvCpus=2,minvCpus=0,subnets=subnet-1,securityGroupIds=sg-1,"
                       "instanceRole=ecsInstanceRole,instanceTypes=optimal"),
        lambda: aws.ok("batch", "create-compute-environment", "--compute-environment-name", "cli-um",
                       "--type", "UNMANAGED", "--unmanagedv-cpus", "4"),
        lambda: aws.ok("batch", "register-job-definition", "--job-definition-name", "cli-jd", "--type", "container",
                       "--container-properties", definition),
        lambda: aws.ok("batch", "create-scheduling-policy", "--name", "cli-sp", "--fairshare-policy",
                       '{"shareDecaySeconds": 3600, "shareDistribution": [{"shareIdentifier": "a", '
                       '"weightFactor": 0.5}]}'),
        lambda: aws.ok("batch", "create-consumable-resource", "--consumable-resource-name", "cli-cr",
                       "--total-quantity", "5", "--resource-type", "REPLENISHABLE"))
    assert ce["computeEnvironmentArn"] == f"{prefix}:compute-environment/cli-ce"
    assert unmanaged["computeEnvironmentArn"] == f"{prefix}:compute-environment/cli-um"
    definition_arn = registered["jobDefinitionArn"]
    assert (definition_arn, registered["revision"]) == (f"{prefix}:job-definition/cli-jd:1", 1)
    assert policy["arn"] == f"{prefix}:scheduling-policy/cli-sp"
    assert resource["consumableResourceArn"] == f"{prefix}:consumable-resource/cli-cr"

    described_ce = aws.until(lambda: [c for c in aws.ok("batch", "describe-compute-environments",
                                                        "--compute-environments", "cli-ce")["computeEnvironments"]
                                      if c["status"] == "VALID"])[0]
    assert described_ce["computeResources"]["maxvCpus"] == 2 and described_ce["tags"] == {"team": "cli"}
    queue = aws.ok("batch", "create-job-queue", "--job-queue-name", "cli-q", "--priority", "1",
                   "--compute-environment-order", "order=1,computeEnvironment=cli-ce")
    assert queue["jobQueueArn"] == f"{prefix}:job-queue/cli-q"

    _, _, _, _, described_queue = together(
        lambda: aws.ok("batch", "update-compute-environment", "--compute-environment", "cli-um",
                       "--state", "DISABLED"),
        lambda: aws.ok("batch", "update-scheduling-policy", "--arn", policy["arn"],
                       "--fairshare-policy", "shareDecaySeconds=60"),
        lambda: aws.ok("batch", "update-consumable-resource", "--consumable-resource", "cli-cr",
                       "--operation", "ADD", "--quantity", "2"),
        lambda: aws.ok("batch", "tag-resource", "--resource-arn", definition_arn, "--tags", "a=1,b=2"),
        lambda: aws.until(lambda: [q for q in aws.ok("batch", "describe-job-queues", "--job-queues",
                                                     "cli-q")["jobQueues"] if q["status"] == "VALID"]))
    assert described_queue[0]["computeEnvironmentOrder"] == [{"order": 1, "computeEnvironment": ce[
        "computeEnvironmentArn"]}]
    submitted = aws.ok("batch", "submit-job", "--job-name", "cli-job", "--job-queue", "cli-q",
                       "--job-definition", "cli-jd", "--parameters", "p=1")
    job_id = submitted["jobId"]

    _, um, policies, consumable, definitions = together(
        lambda: aws.ok("batch", "untag-resource", "--resource-arn", definition_arn, "--tag-keys", "a"),
        lambda: aws.ok("batch", "describe-compute-environments", "--compute-environments", "cli-um"),
        lambda: aws.ok("batch", "describe-scheduling-policies", "--arns", policy["arn"]),
        lambda: aws.ok("batch", "describe-consumable-resource", "--consumable-resource", "cli-cr"),
        lambda: aws.ok("batch", "describe-job-definitions", "--job-definition-name", "cli-jd", "--status",
                       "ACTIVE"))
    assert um["computeEnvironments"][0]["state"] == "DISABLED"
    assert policies["schedulingPolicies"][0]["fairsharePolicy"]["shareDecaySeconds"] == 60
    assert (consumable["totalQuantity"], consumable["availableQuantity"]) == (7, 7)
    assert [d["jobDefinitionArn"] for d in definitions["jobDefinitions"]] == [definition_arn]

    job = aws.until(lambda: [j for j in aws.ok("batch", "describe-jobs", "--jobs", job_id)["jobs"]
                             if j["status"] in ("SUCCEEDED", "FAILED")], timeout=60)[0]
    assert (job["status"], job["container"]["exitCode"], job["parameters"]) == ("SUCCEEDED", 0, {"p": "1"})
    assert isinstance(job["createdAt"], int) and job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    stream = job["container"]["logStreamName"]
    tags, listed, by_status, log, _, _ = together(
        lambda: aws.ok("batch", "list-tags-for-resource", "--resource-arn", definition_arn),
        lambda: aws.ok("batch", "list-jobs", "--job-queue", "cli-q", "--filters", "name=JOB_NAME,values=cli-*"),
        lambda: aws.ok("batch", "list-jobs", "--job-queue", "cli-q", "--job-status", "SUCCEEDED"),
        lambda: aws.until(lambda: aws.ok("logs", "get-log-events", "--log-group-name", "/aws/batch/job",
                                         "--log-stream-name", stream, "--start-from-head")["events"], 10),
        lambda: aws.ok("batch", "terminate-job", "--job-id", job_id, "--reason", "late"),
        lambda: aws.ok("batch", "cancel-job", "--job-id", job_id, "--reason", "late"))
    assert tags["tags"] == {"b": "2"}
    assert [(s["jobId"], s["status"]) for s in listed["jobSummaryList"]] == [(job_id, "SUCCEEDED")]
    assert [s["jobId"] for s in by_status["jobSummaryList"]] == [job_id]
    assert [event["message"] for event in log] == ["hi"]
    # Ending a finished job changes nothing.
    assert aws.ok("batch", "describe-jobs", "--jobs", job_id)["jobs"][0]["status"] == "SUCCEEDED"

    loose = "[default]\nparameter_validation = false\n"
    unknown_queue, wrong_type, missing, unknown_job, service_job = together(
        lambda: aws.fails("batch", "submit-job", "--job-name", "x", "--job-queue", "nope", "--job-definition",
                          "cli-jd"),
        lambda: aws.fails("batch", "create-job-queue", "--cli-input-json", json.dumps(
            {"jobQueueName": "q2", "priority": "high", "computeEnvironmentOrder": [
                {"order": 1, "computeEnvironment": "cli-ce"}]}), config=loose),
        lambda: aws.fails("batch", "submit-job", "--cli-input-json",
                          json.dumps({"jobName": "x", "jobQueue": "cli-q"}), config=loose),
        lambda: aws.ok("batch", "describe-jobs", "--jobs", "no-such-job"),
        lambda: aws.fails("batch", "submit-service-job", "--job-name", "x", "--job-queue", "cli-q",
                          "--service-job-type", "SAGEMAKER_TRAINING", "--service-request-payload", "{}"))
    assert unknown_queue.endswith("(ClientException) when calling the SubmitJob operation: "
                                  "jobQueue nope does not exist")
    assert wrong_type.endswith("(ClientException) when calling the CreateJobQueue operation: 1 validation error "
                               "detected: Value 'high' at 'priority' failed to satisfy constraint: "
                               "Member must be an integer")
    assert missing.endswith("Value null at 'jobDefinition' failed to satisfy constraint: Member must not be null")
    assert unknown_job == {"jobs": []}
    assert service_job.endswith("(ClientException) when calling the SubmitServiceJob operation: jobQueue cli-q is "
                                "not a SAGEMAKER_TRAINING job queue: service jobs need one (SubmitJob takes "
                                "container jobs)")

    together(lambda: aws.ok("batch", "deregister-job-definition", "--job-definition", "cli-jd:1"),
             lambda: aws.ok("batch", "delete-scheduling-policy", "--arn", policy["arn"]),
             lambda: aws.ok("batch", "delete-consumable-resource", "--consumable-resource", "cli-cr"),
             lambda: aws.ok("batch", "update-job-queue", "--job-queue", "cli-q", "--state", "DISABLED"))
    aws.ok("batch", "delete-job-queue", "--job-queue", "cli-q")
    gone = together(
        lambda: aws.ok("batch", "describe-job-definitions", "--job-definitions", "cli-jd:1")["jobDefinitions"],
        lambda: aws.ok("batch", "list-scheduling-policies")["schedulingPolicies"],
        lambda: aws.ok("batch", "list-consumable-resources")["consumableResources"],
        lambda: aws.until(lambda: not aws.ok("batch", "describe-job-queues", "--job-queues",
                                             "cli-q")["jobQueues"]))
    assert [d["status"] for d in gone[0]] == ["INACTIVE"]
    assert gone[1] == gone[2] == []


def _post(url: str, body: bytes) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.mark.parametrize("number", [b"1" + b"0" * 400, b"-1" + b"0" * 400])
def test_integer_too_big_for_a_double_is_a_client_error(batchemu_server, number):
    # JSON integers are unbounded; float() of one this size overflows (it used to answer 500).
    body = (b'{"name": "p", "fairsharePolicy": {"shareDistribution": [{"shareIdentifier": "a", '
            b'"weightFactor": %s}]}}' % number)
    status, headers, error = _post(f"{batchemu_server.url}/v1/createschedulingpolicy", body)
    assert (status, headers["x-amzn-ErrorType"], error["__type"]) == (400, "ClientException", "ClientException")
    assert "'fairsharePolicy.shareDistribution.1.weightFactor' failed to satisfy constraint: Member must be a " \
           "number" in error["message"]
