"""Image names: ECR URIs run their local twin `NAME:TAG` when present, --image-map names the local image
outright, anything else is pulled as given; a failed pull fails the task as AWS reports it."""

from __future__ import annotations

import uuid

import pytest

from batchemu.config import Config
from batchemu.executors.images import candidates, ecr_local_name
from tests.conftest import TEST_IMAGE, needs_docker, register, unique, wait_for_status
from tests.test_jobs import log_lines

PRIVATE = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_ecr_uris_name_their_local_twin():
    assert ecr_local_name(f"{PRIVATE}/team/app:v1") == "team/app:v1"
    assert ecr_local_name(f"{PRIVATE}/app") == "app:latest"
    assert ecr_local_name(f"{PRIVATE}/app@sha256:{'a' * 64}") == f"app@sha256:{'a' * 64}"
    assert ecr_local_name("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:2") == "app:2"
    assert ecr_local_name("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app:2") == "app:2"
    assert ecr_local_name("public.ecr.aws/my-alias/tools/app:3") == "tools/app:3"
    assert ecr_local_name("public.ecr.aws/my-alias/app") == "app:latest"
    for other in ("busybox", "docker.io/library/busybox:1", "localhost:5000/app:1", "12345.dkr.ecr.x.amazonaws.com/a",
                  "public.ecr.aws/app"):
        assert ecr_local_name(other) is None, other


def test_candidates_put_the_map_first_then_the_ecr_twin():
    image_map = {"registry.example.com/tool:2": "tool:dev"}
    assert candidates("registry.example.com/tool:2", image_map) == ["tool:dev"]
    assert candidates("registry.example.com/tool:3", image_map) == ["registry.example.com/tool:3"]
    assert candidates(f"{PRIVATE}/app:v1", image_map) == ["app:v1", f"{PRIVATE}/app:v1"]
    assert candidates(f"{PRIVATE}/app:v1", {f"{PRIVATE}/app:v1": "other:1"}) == ["other:1"]


@pytest.fixture
def local_twin():
    """The test image tagged under a made-up repository name, removed afterwards."""
    import docker
    client = docker.from_env()
    name = f"batchemu-ecr-{uuid.uuid4().hex[:8]}/app"
    image = client.images.get(TEST_IMAGE)
    image.tag(name, "v1")
    image.tag(name, "latest")
    try:
        yield name
    finally:
        for tag in ("v1", "latest"):
            client.images.remove(f"{name}:{tag}", noprune=True)


@needs_docker
def test_ecr_uris_run_the_local_image(batch_client, logs_client, queue, local_twin):
    for image in (f"{PRIVATE}/{local_twin}:v1", f"{PRIVATE}/{local_twin}", f"public.ecr.aws/some-alias/{local_twin}:v1"):
        definition = register(batch_client, ["echo", "ran"], image=image)
        job = wait_for_status(batch_client, batch_client.submit_job(
            jobName=unique("ecr"), jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"])["jobId"])
        assert job["status"] == "SUCCEEDED", (image, job.get("statusReason"), job["container"].get("reason"))
        assert job["container"]["image"] == image  # the job still names its ECR image
        assert log_lines(logs_client, job) == ["ran"]


@needs_docker
def test_an_ecr_image_missing_locally_fails_to_pull_as_on_aws(batch_client, queue):
    definition = register(batch_client, ["true"], image=f"{PRIVATE}/batchemu-no-such-image:1")
    job = wait_for_status(batch_client, batch_client.submit_job(
        jobName=unique("ecr"), jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"])["jobId"])
    assert (job["status"], job["statusReason"]) == ("FAILED", "Task failed to start")
    assert job["container"]["reason"].startswith("CannotPullContainerError: ")


@needs_docker
@pytest.mark.parametrize("batchemu_config", [Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5,
                                                    image_map={"registry.example.com/team/tool:2": TEST_IMAGE})])
def test_image_map_names_the_local_image(batch_client, queue, batchemu_config):
    definition = register(batch_client, ["true"], image="registry.example.com/team/tool:2")
    job = wait_for_status(batch_client, batch_client.submit_job(
        jobName=unique("mapped"), jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"])["jobId"])
    assert job["status"] == "SUCCEEDED", job["container"].get("reason")
