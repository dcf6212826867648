"""Service jobs run for real under the SageMaker training contract on the Docker Engine, with the tiny
training image batchemu-train:latest (scripts/build-training-image.sh, FROM batchemu-test:latest)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from batchemu.config import Config
from tests.conftest import needs_docker, unique, wait_until
from tests.test_service_jobs import describe, service_queue, wait_status

IMAGE = "batchemu-train:latest"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def training_image() -> None:
    """Build the training image when missing or older than scripts/training-image/train (make docker builds
    it too)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build-training-image.sh")], check=True)


@pytest.fixture
def batchemu_config(tmp_path) -> Config:
    (tmp_path / "s3" / "datasets" / "iris").mkdir(parents=True)
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, training_dir=str(tmp_path / "training"),
                  s3_map={"s3://my-bucket/data": str(tmp_path / "s3" / "datasets")})


def training_request(name: str, hyperparameters: dict, channels: dict[str, str] | None = None,
                     max_runtime: int = 300, output: str = "s3://my-bucket/models", instances: int = 1) -> str:
    return json.dumps({
        "TrainingJobName": name, "RoleArn": "arn:aws:iam::123456789012:role/sm",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{"ChannelName": channel, "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated"}}}
            for channel, uri in (channels or {}).items()],
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime}})


def run(client, queue: dict, body: str, timeout: float = 60) -> dict:
    job_id = client.submit_service_job(jobName=unique("train"), jobQueue=queue["name"],
                                       serviceJobType="SAGEMAKER_TRAINING", serviceRequestPayload=body)["jobId"]
    return wait_status(client, job_id, timeout=timeout)


@needs_docker
def test_training_job_reads_config_and_channels_and_leaves_its_model(batch_client, logs_client, batchemu_config,
                                                                     tmp_path):
    data = tmp_path / "local-data"
    data.mkdir()
    (data / "train.csv").write_text("1,2\n3,4\n5,6\n")
    (tmp_path / "s3" / "datasets" / "iris" / "iris.csv").write_text("a\n")
    queue = service_queue(batch_client)
    name = unique("tj")
    detail = run(batch_client, queue, training_request(
        name, {"epochs": 3, "rate": "0.1"}, {"train": f"file://{data}", "validation": "s3://my-bucket/data/iris"}))
    assert detail["status"] == "SUCCEEDED", detail.get("statusReason")
    model = Path(batchemu_config.training_root) / "s3" / "my-bucket" / "models" / name / "output" / "model" / "model.txt"
    assert model.read_text() == f"epochs=3\ntrain_lines=3\njob={name}\n"
    config = Path(batchemu_config.training_root) / "jobs" / detail["jobId"] / "attempt-1" / "algo-1" / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"epochs": "3", "rate": "0.1"}
    resources = json.loads((config / "resourceconfig.json").read_text())
    assert (resources["current_host"], resources["hosts"], resources["current_instance_type"]) == \
        ("algo-1", ["algo-1"], "ml.m5.large")
    channels = json.loads((config / "inputdataconfig.json").read_text())
    assert channels["train"] == {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                                 "RecordWrapperType": "None", "ContentType": "text/csv"}
    assert set(channels) == {"train", "validation"}
    [stream] = logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                logStreamNamePrefix=name)["logStreams"]
    assert re.fullmatch(rf"{name}/algo-1-\d{{10}}", stream["logStreamName"])
    events = logs_client.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamName=stream["logStreamName"])["events"]
    assert "wrote /opt/ml/model/model.txt" in [event["message"] for event in events]
    assert 'hyperparameters: {"epochs": "3", "rate": "0.1"}' in [event["message"] for event in events]


def engine_objects(job_id: str) -> list[str]:
    """Containers and networks of the job left on the engine."""
    containers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=batchemu.job-id={job_id}"],
                                capture_output=True, text=True, check=True).stdout.split()
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"name=batchemu-net-{job_id}"],
                              capture_output=True, text=True, check=True).stdout.split()
    return containers + networks


@needs_docker
def test_two_hosts_reach_each_other_by_name_and_the_first_writes_the_model(batch_client, logs_client,
                                                                             batchemu_config, tmp_path):
    data = tmp_path / "local-data"
    data.mkdir()
    (data / "train.csv").write_text("1\n2\n")
    queue = service_queue(batch_client)
    name = unique("tj")
    detail = run(batch_client, queue, training_request(name, {"epochs": "2"}, {"train": f"file://{data}"},
                                                       instances=2), timeout=90)
    assert detail["status"] == "SUCCEEDED", detail.get("statusReason")
    output = Path(batchemu_config.training_root) / "s3" / "my-bucket" / "models" / name / "output"
    assert (output / "model" / "model.txt").read_text() == f"epochs=2\ntrain_lines=2\njob={name}\n"
    assert sorted(p.name for p in (output / "model").iterdir()) == ["model.txt"]
    seen = {host: (output / "data" / f"{host}.txt").read_text() for host in ("algo-1", "algo-2")}
    assert re.fullmatch(r"algo-1 saw algo-2=\d+\.\d+\.\d+\.\d+\n", seen["algo-1"]), seen
    assert re.fullmatch(r"algo-2 saw algo-1=\d+\.\d+\.\d+\.\d+\n", seen["algo-2"]), seen
    attempt = Path(batchemu_config.training_root) / "jobs" / detail["jobId"] / "attempt-1"
    for host in ("algo-1", "algo-2"):
        resources = json.loads((attempt / host / "input" / "config" / "resourceconfig.json").read_text())
        assert (resources["current_host"], resources["hosts"], resources["instance_groups"][0]["hosts"]) == \
            (host, ["algo-1", "algo-2"], ["algo-1", "algo-2"])
    streams = logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                               logStreamNamePrefix=name)["logStreams"]
    by_host = {re.fullmatch(rf"{name}/(algo-\d)-\d{{10}}", s["logStreamName"]).group(1): s["logStreamName"]
               for s in streams}
    assert sorted(by_host) == ["algo-1", "algo-2"]
    for host, other in (("algo-1", "algo-2"), ("algo-2", "algo-1")):
        messages = [e["message"] for e in logs_client.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=by_host[host])["events"]]
        assert any(m.startswith(f"{host}: {other} is ") for m in messages), messages
    wait_until(lambda: not engine_objects(detail["jobId"]), timeout=30)


@needs_docker
def test_a_failing_host_fails_the_job_and_stops_the_others(batch_client):
    queue = service_queue(batch_client, capacity=3)
    detail = run(batch_client, queue, training_request(
        unique("tj"), {"fail": "RuntimeError: algo-2 lost its shard", "fail_host": "algo-2"}, instances=3),
        timeout=90)
    # The other hosts wait for algo-2's report, which never comes: only the stop ends them in time.
    assert (detail["status"], detail["statusReason"]) == ("FAILED", "RuntimeError: algo-2 lost its shard")
    assert detail["stoppedAt"] - detail["startedAt"] < 40_000
    wait_until(lambda: not engine_objects(detail["jobId"]), timeout=30)


@needs_docker
def test_failure_file_becomes_the_status_reason_and_exit_codes_otherwise(batch_client):
    queue = service_queue(batch_client)
    failed = run(batch_client, queue, training_request(unique("tj"), {"fail": "ValueError: rate must be positive"}))
    assert (failed["status"], failed["statusReason"]) == ("FAILED", "ValueError: rate must be positive")
    assert failed["attempts"][0]["statusReason"] == "ValueError: rate must be positive"
    exited = run(batch_client, queue, training_request(unique("tj"), {"exit": "4"}))
    assert exited["statusReason"] == "AlgorithmError: training container exited with code 4"


@needs_docker
@pytest.mark.parametrize("instances", [1, 2])
def test_max_runtime_ends_the_job(batch_client, instances):
    queue = service_queue(batch_client)
    detail = run(batch_client, queue, training_request(unique("tj"), {"sleep": "120"}, max_runtime=1,
                                                       instances=instances), timeout=40)
    assert (detail["status"], detail["statusReason"]) == \
        ("FAILED", "MaxRuntimeExceeded: Training job runtime exceeded MaxRuntimeInSeconds of 1 seconds")
    assert detail["stoppedAt"] - detail["startedAt"] < 30_000
    wait_until(lambda: not engine_objects(detail["jobId"]), timeout=30)


@needs_docker
def test_a_channel_without_local_data_fails_the_job(batch_client, batchemu_config):
    queue = service_queue(batch_client)
    detail = run(batch_client, queue, training_request(unique("tj"), {}, {"train": "s3://unmapped/nothing"}))
    local = Path(batchemu_config.training_root) / "s3" / "unmapped" / "nothing"
    assert (detail["status"], detail["statusReason"]) == (
        "FAILED", (f"ClientError: Data download failed: channel train: s3://unmapped/nothing is the local path "
                  f"{local}, which does not exist"))
    assert describe(batch_client, detail["jobId"])["attempts"][0]["statusReason"] == detail["statusReason"]


@needs_docker
@pytest.mark.parametrize("instances", [1, 2])
def test_a_restarted_server_carries_a_running_training_job_to_its_end(tmp_path, instances):
    import boto3
    from botocore.config import Config as BotoConfig

    from batchemu.http.server import Server

    def config() -> Config:
        return Config(host="127.0.0.1", port=0, state=str(tmp_path / "state.sqlite3"), tick=0.2,
                      training_dir=str(tmp_path / "training"), instance_label=label)

    def client(server: Server):
        return boto3.client("batch", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="y", config=BotoConfig(retries={"max_attempts": 1}))
    label = unique("restart")
    name = unique("tj")
    first = Server(config()).start()
    try:
        queue = service_queue(client(first))
        job_id = client(first).submit_service_job(
            jobName="survivor", jobQueue=queue["name"], serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=training_request(name, {"sleep": "3", "epochs": "1"}, instances=instances))["jobId"]
        wait_status(client(first), job_id, ("RUNNING",))
    finally:
        first.stop()
    second = Server(config()).start()
    try:
        detail = wait_status(client(second), job_id, timeout=60)
        assert detail["status"] == "SUCCEEDED", detail.get("statusReason")
        assert len(detail["attempts"]) == 1
        model = tmp_path / "training" / "s3" / "my-bucket" / "models" / name / "output" / "model" / "model.txt"
        assert model.read_text().startswith("epochs=1\n")
        wait_until(lambda: not engine_objects(job_id), timeout=30)
    finally:
        second.stop(remove_containers=True)
