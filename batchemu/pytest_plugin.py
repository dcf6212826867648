"""pytest fixtures for projects that test code driving AWS Batch: installed through the pytest11 entry point.

    def test_my_pipeline(batch_client):
        batch_client.create_compute_environment(...)

`batchemu_server` is a fresh emulator on a free loopback port with throw-away state; `batch_client` and
`logs_client` are boto3 clients pointed at it. Every container the server started is removed at teardown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from batchemu.config import Config


def _client(service: str, server) -> object:
    import boto3
    from botocore.config import Config as BotoConfig
    return boto3.client(service, endpoint_url=server.url, region_name=server.config.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=BotoConfig(retries={"max_attempts": 1}))


@pytest.fixture
def batchemu_config() -> Config:
    """Override to change the settings of `batchemu_server` (e.g. state_dwell, or executor="simulate" to run
    jobs without Docker)."""
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5)


@pytest.fixture
def batchemu_server(batchemu_config: Config) -> Iterator[object]:
    """A running batchemu (`.url`, `.config`, `.store`) on a free loopback port, stopped afterwards."""
    from batchemu.http.server import Server
    batchemu_config.instance_label = batchemu_config.instance_label or uuid.uuid4().hex
    server = Server(batchemu_config).start()
    try:
        yield server
    finally:
        server.stop(remove_containers=True)


@pytest.fixture
def batchemu_endpoint(batchemu_server) -> str:
    """The endpoint URL of `batchemu_server`, for `endpoint_url=` or AWS_ENDPOINT_URL_BATCH."""
    return batchemu_server.url


@pytest.fixture
def batch_client(batchemu_server):
    """A boto3 `batch` client talking to `batchemu_server`."""
    return _client("batch", batchemu_server)


@pytest.fixture
def logs_client(batchemu_server):
    """A boto3 `logs` client talking to `batchemu_server` (job output of its containers)."""
    return _client("logs", batchemu_server)
