"""Privileged containers, devices and host-path volumes: allowed by default, refusable on a shared server."""

from __future__ import annotations

import boto3
import pytest
from conftest import TEST_IMAGE, client_error, register

from batchemu.config import Config
from batchemu.http.server import Server

PRIVILEGED = {"image": TEST_IMAGE, "command": ["true"], "privileged": True,
              "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
HOST_VOLUME = {"image": TEST_IMAGE, "command": ["true"],
               "volumes": [{"name": "h", "host": {"sourcePath": "/tmp"}}],
               "mountPoints": [{"sourceVolume": "h", "containerPath": "/h"}],
               "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}


@pytest.fixture
def denying_client():
    server = Server(Config(port=0, state=":memory:", deny_privileged=True, deny_host_volumes=True),
                    with_scheduler=False).start()
    yield boto3.client("batch", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")
    server.stop()


def test_privileged_and_host_volumes_work_by_default(batch_client):
    """Snakemake's AWS Batch plugin registers privileged definitions; AWS's EC2 compute runs them."""
    assert register(batch_client, containerProperties=PRIVILEGED)["revision"] == 1
    assert register(batch_client, containerProperties=HOST_VOLUME)["revision"] == 1


def test_a_shared_server_refuses_them_naming_the_setting(denying_client):
    for properties, setting in ((PRIVILEGED, "--deny-privileged"), (HOST_VOLUME, "--deny-host-volumes"),
                                ({**PRIVILEGED, "privileged": False,
                                  "linuxParameters": {"devices": [{"hostPath": "/dev/null"}]}}, "--deny-privileged")):
        message = client_error(denying_client.register_job_definition, jobDefinitionName="d", type="container",
                               containerProperties=properties)
        assert setting in message
    eks = {"podProperties": {"containers": [{"image": TEST_IMAGE, "securityContext": {"privileged": True}}]}}
    assert "--deny-privileged" in client_error(denying_client.register_job_definition, jobDefinitionName="e",
                                               type="container", eksProperties=eks)
    plain = {**PRIVILEGED, "privileged": False}
    assert denying_client.register_job_definition(jobDefinitionName="ok", type="container",
                                                  containerProperties=plain)["revision"] == 1
