"""Clients of the servers under test: boto3 for set-up and polling, raw HTTP replay for throughput.

Throughput runs replay requests that boto3 built once (same path, headers and body) over one keep-alive
connection per thread, so that the client's own CPU stays small beside the server's.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

IMAGE = "batchemu-test:latest"
SERVICE_ROLE = "arn:aws:iam::123456789012:role/AWSBatchServiceRole"


def batch_client(url: str):
    return boto3.client("batch", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench",
                        config=Config(retries={"max_attempts": 0}, max_pool_connections=32))


def _wait_valid(describe, key: str, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = describe()[key]
        if found and found[0].get("status") == "VALID":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become VALID: {found}")
        time.sleep(0.05)


def create_queue(batch, name: str, *, max_vcpus: int = 4, ce_state: str = "ENABLED", managed: bool = True) -> str:
    """A MANAGED EC2 (or an UNMANAGED) compute environment and a queue on it; returns the queue name."""
    if managed:
        batch.create_compute_environment(
            computeEnvironmentName=f"{name}-ce", type="MANAGED", state=ce_state, serviceRole=SERVICE_ROLE,
            computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": max_vcpus, "instanceTypes": ["optimal"],
                              "subnets": ["subnet-bench"], "securityGroupIds": ["sg-bench"],
                              "instanceRole": "ecsInstanceRole"})
    else:
        batch.create_compute_environment(computeEnvironmentName=f"{name}-ce", type="UNMANAGED", state=ce_state,
                                         serviceRole=SERVICE_ROLE)
    _wait_valid(lambda: batch.describe_compute_environments(computeEnvironments=[f"{name}-ce"]),
                "computeEnvironments", f"{name}-ce")
    batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": f"{name}-ce"}])
    _wait_valid(lambda: batch.describe_job_queues(jobQueues=[name]), "jobQueues", name)
    return name


def create_service_role(url: str) -> None:
    """The IAM role every compute environment names (moto checks that it exists; batchemu does not)."""
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                       aws_secret_access_key="bench")
    iam.create_role(RoleName=SERVICE_ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument="{}")


def register_definition(batch, name: str, command: list[str], *, vcpus: int = 1, memory_mib: int = 32) -> str:
    batch.register_job_definition(
        jobDefinitionName=name, type="container",
        containerProperties={"image": IMAGE, "command": command, "resourceRequirements": [
            {"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": str(memory_mib)}]})
    return name


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """Hooks a boto3 client so that each operation's last request is kept for replay."""

    def __init__(self, batch) -> None:
        self.requests: dict[str, RawRequest] = {}
        batch.meta.events.register("before-send.batch.*", self._record)

    def _record(self, request, event_name: str, **_) -> None:
        operation = event_name.rsplit(".", 1)[1]
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        self.requests[operation] = RawRequest(request.method, path, headers, bytes(body))


class Connection:
    """One keep-alive HTTP connection that replays recorded requests."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def send(self, request: RawRequest) -> tuple[int, bytes]:
        for retry in (False, True):
            try:
                self.conn.request(request.method, request.path, body=request.body, headers=request.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if retry:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 is the median of an odd count)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
