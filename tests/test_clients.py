"""Other clients than boto3: the AWS CLI and the AWS SDK for JavaScript v3 (a stricter parser).

`make clients` installs both under .clients/ (make test does it when npm is there); each test is skipped
with the reason when its client is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_IMAGE, needs_docker

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = Path(os.environ.get("BATCHEMU_JS_CHECK_DIR", ROOT / ".clients" / "js"))
AWS_CLI = os.environ.get("BATCHEMU_AWS_CLI") or (
    str(ROOT / ".clients" / "cli" / "bin" / "aws") if (ROOT / ".clients" / "cli" / "bin" / "aws").exists()
    else shutil.which("aws"))


@needs_docker
@pytest.mark.skipif(not (JS_DIR / "node_modules" / "@aws-sdk" / "client-batch").exists() or not shutil.which("node"),
                    reason=f"needs node and @aws-sdk/client-batch in {JS_DIR} (make clients)")
def test_aws_sdk_for_javascript_v3_scenario(batchemu_server):
    script = JS_DIR / "batch_check.mjs"
    shutil.copy(ROOT / "tests" / "js" / "batch_check.mjs", script)  # ESM resolves packages beside the script
    result = subprocess.run(["node", str(script), batchemu_server.url, TEST_IMAGE], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.skipif(not AWS_CLI, reason="needs the AWS CLI (make clients, or aws on PATH)")
def test_aws_cli_resource_round_trip_and_errors(batchemu_server):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}

    def aws(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([AWS_CLI, "--endpoint-url", batchemu_server.url, "--output", "json", *args],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    created = aws("batch", "create-compute-environment", "--compute-environment-name", "cli-ce",
                  "--type", "UNMANAGED", "--unmanagedv-cpus", "4", "--tags", "team=cli")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["computeEnvironmentArn"]
    assert arn == "arn:aws:batch:us-east-1:123456789012:compute-environment/cli-ce"
    described = json.loads(aws("batch", "describe-compute-environments", "--compute-environments", "cli-ce").stdout)
    assert described["computeEnvironments"][0]["unmanagedvCpus"] == 4
    tags = json.loads(aws("batch", "list-tags-for-resource", "--resource-arn", arn).stdout)
    assert tags["tags"] == {"team": "cli"}
    assert aws("batch", "untag-resource", "--resource-arn", arn, "--tag-keys", "team").returncode == 0
    assert json.loads(aws("batch", "list-tags-for-resource", "--resource-arn", arn).stdout)["tags"] == {}
    registered = json.loads(aws("batch", "register-job-definition", "--job-definition-name", "cli-jd",
                                "--type", "container", "--container-properties",
                                json.dumps({"image": TEST_IMAGE, "command": ["true"], "resourceRequirements": [
                                    {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]})).stdout)
    assert registered["revision"] == 1
    failed = aws("batch", "submit-job", "--job-name", "x", "--job-queue", "nope", "--job-definition", "cli-jd")
    assert failed.returncode != 0
    assert "(ClientException)" in failed.stderr and "nope" in failed.stderr
