"""Nodes of a multi-node job reach a server that listens on every address, at HOST_ALIAS on their network."""

from __future__ import annotations

import json

import pytest
from conftest import TEST_IMAGE, make_queue, needs_docker, submit, unique, wait_for_status
from test_jobs import log_lines

from batchemu.config import Config

pytestmark = pytest.mark.docker


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="0.0.0.0", port=0, state=":memory:")


@needs_docker
def test_a_node_calls_the_server_through_its_endpoint_variable(batch_client, logs_client):
    queue = make_queue(batch_client, max_vcpus=2)
    command = 'echo "$AWS_ENDPOINT_URL_BATCH"; wget -qO- "$AWS_ENDPOINT_URL_BATCH/_batchemu/health"; echo'
    node = {"image": TEST_IMAGE, "command": ["sh", "-c", command],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
    definition = batch_client.register_job_definition(
        jobDefinitionName=unique("mnp"), type="multinode",
        nodeProperties={"numNodes": 1, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0", "container": node}]})
    job_id = submit(batch_client, queue, definition)
    assert wait_for_status(batch_client, job_id, timeout=60)["status"] == "SUCCEEDED"
    main = wait_for_status(batch_client, f"{job_id}#0", timeout=10)
    endpoint, health = log_lines(logs_client, main)
    assert endpoint.startswith("http://batchemu-host:")
    assert json.loads(health)["executor"]["name"] == "docker"
