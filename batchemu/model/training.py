"""The SageMaker training container contract on the local engine: a service job's CreateTrainingJob payload
becomes one container per host (algo-1 ... algo-<InstanceCount>) started with `train`, whose /opt/ml
folders live on the host.

    /opt/ml/input/config/   hyperparameters.json (values as strings), resourceconfig.json, inputdataconfig.json
                            (the host's own: <training root>/jobs/<jobId>/attempt-<n>/<host>/input/config)
    /opt/ml/input/data/<c>/ each File-mode channel, read-only, from a local folder
    /opt/ml/model/          <output>/<TrainingJobName>/output/model/ on the host (SageMaker would tar it to S3),
                            shared by all hosts
    /opt/ml/output/         the host's own folder (<...>/attempt-<n>/<host>/output); a `failure` file there
                            becomes the job's statusReason
    /opt/ml/output/data/    <output>/<TrainingJobName>/output/data/

A channel's `file://` URI names a host folder; an `s3://` URI is read in the folder that the server's S3 map
(`--s3-map`) gives its longest matching prefix, else under `<training root>/s3/<bucket>/<key>`; the
S3OutputPath is resolved the same way (no S3OutputPath: `<training root>/models`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from batchemu.config import Config
from batchemu.errors import ClientException
from batchemu.executors import DEFAULT_CONTAINER, ContainerSpec, TaskSpec

PAYLOAD_MAX = 10 * 1024  # bytes of serviceRequestPayload (AWS Batch service limits)
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ROOT = "/opt/ml"
HOST_PREFIX = "algo-"  # hosts are algo-1 ... algo-<InstanceCount>
FAILURE_MAX = 1024
TRAINING_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
INPUT_MODES = ("File", "FastFile")  # FastFile reads like File here: the folder is mounted either way


class TrainingError(Exception):
    """A payload SageMaker would take at submit but not run; str() is the attempt's statusReason."""


def parse_payload(text: str) -> dict:
    """The CreateTrainingJob request of a SubmitServiceJob; Batch reads it (its InstanceCount is the capacity
    the job takes), so text that is not a JSON object is refused at submit."""
    if len(text.encode()) > PAYLOAD_MAX:
        raise ClientException(f"serviceRequestPayload must be at most {PAYLOAD_MAX} bytes, got {len(text.encode())}")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise ClientException(f"serviceRequestPayload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ClientException("serviceRequestPayload must be a JSON object: a SageMaker CreateTrainingJob request")
    return payload


def _null(path: str) -> str:
    return (f"ValidationException: 1 validation error detected: Value null at '{path}' failed to satisfy "
            "constraint: Member must not be null")


def validation_error(payload: dict) -> str | None:
    """SageMaker's CreateTrainingJob refusal of the payload, in its words, or None when it would run."""
    name = payload.get("TrainingJobName")
    if name is None:
        return _null("trainingJobName")
    if not isinstance(name, str) or not TRAINING_JOB_NAME.fullmatch(name):
        return (f"ValidationException: 1 validation error detected: Value '{name}' at 'trainingJobName' failed "
                "to satisfy constraint: Member must satisfy regular expression pattern: "
                "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
    algorithm = payload.get("AlgorithmSpecification")
    if not isinstance(algorithm, dict) or not algorithm.get("TrainingImage"):
        return _null("algorithmSpecification.trainingImage")
    resources = payload.get("ResourceConfig")
    if not isinstance(resources, dict):
        return _null("resourceConfig")
    if not isinstance(resources.get("InstanceCount"), int) or resources["InstanceCount"] < 1:
        return ("ValidationException: 1 validation error detected: Value at 'resourceConfig.instanceCount' failed "
                "to satisfy constraint: Member must have value greater than or equal to 1")
    if not resources.get("InstanceType"):
        return _null("resourceConfig.instanceType")
    if not isinstance(payload.get("StoppingCondition"), dict):
        return _null("stoppingCondition")
    if not isinstance(payload.get("HyperParameters", {}), dict):
        return "ValidationException: HyperParameters must be a map of strings"
    return None


def instances(payload: dict) -> tuple[int, str]:
    """(InstanceCount, InstanceType) the job asks for: the capacity it holds while scheduled or running."""
    resources = payload.get("ResourceConfig")
    if not isinstance(resources, dict):
        resources = {}
    count = resources.get("InstanceCount")
    return (count if isinstance(count, int) and count >= 1 else 1), str(resources.get("InstanceType") or "")


def training_job_arn(config: Config, name: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:training-job/{name.lower()}"


def max_runtime_ms(payload: dict) -> int | None:
    condition = payload.get("StoppingCondition")
    seconds = condition.get("MaxRuntimeInSeconds") if isinstance(condition, dict) else None
    return int(seconds * 1000) if isinstance(seconds, (int, float)) and seconds > 0 else None


def local_path(uri: str, config: Config) -> Path:
    """The host path of a `file://` or `s3://` URI (see the module docstring); TrainingError otherwise."""
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if uri.startswith("s3://"):
        def under(prefix: str) -> bool:
            return uri == prefix.rstrip("/") or uri.startswith(prefix.rstrip("/") + "/")
        prefixes = sorted(filter(under, config.s3_map), key=len, reverse=True)
        if prefixes:
            return Path(config.s3_map[prefixes[0]]) / uri[len(prefixes[0].rstrip("/")):].lstrip("/")
        return Path(config.training_root) / "s3" / uri[len("s3://"):]
    raise TrainingError(f"ClientError: {uri} is neither an s3:// nor a file:// URI")


def attempt_dir(config: Config, job_id: str, attempt: int) -> Path:
    return Path(config.training_root) / "jobs" / job_id / f"attempt-{attempt}"


def output_dir(config: Config, payload: dict) -> Path:
    """<output>/<TrainingJobName>/output: where the model and output data of the job land on the host."""
    uri = (payload.get("OutputDataConfig") or {}).get("S3OutputPath")
    base = local_path(uri, config) if uri else Path(config.training_root) / "models"
    return base / payload["TrainingJobName"] / "output"


def _string(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _channels(payload: dict, config: Config) -> tuple[dict, list[tuple[Path, str]]]:
    """inputdataconfig.json and (host path, container path) of each channel."""
    default_mode = (payload.get("AlgorithmSpecification") or {}).get("TrainingInputMode") or "File"
    described, mounts = {}, []
    for channel in payload.get("InputDataConfig") or []:
        name = channel.get("ChannelName", "")
        mode = channel.get("InputMode") or default_mode
        if mode not in INPUT_MODES:
            raise TrainingError(f"ClientError: channel {name}: input mode {mode} is not supported locally, use File")
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        if not source.get("S3Uri"):
            raise TrainingError(f"ClientError: channel {name} needs DataSource.S3DataSource.S3Uri (an s3:// or "
                                "file:// URI); other data sources are not supported locally")
        path = local_path(source["S3Uri"], config)
        if not path.exists():
            raise TrainingError(f"ClientError: Data download failed: channel {name}: {source['S3Uri']} is the "
                                f"local path {path}, which does not exist")
        target = f"{ROOT}/input/data/{name}"
        mounts.append((path, f"{target}/{path.name}" if path.is_file() else target))
        described[name] = {"TrainingInputMode": mode,
                           "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                           "RecordWrapperType": channel.get("RecordWrapperType", "None"),
                           **({"ContentType": channel["ContentType"]} if channel.get("ContentType") else {})}
    return described, mounts


def hosts(payload: dict) -> list[str]:
    """algo-1 ... algo-N: one host per instance of the payload's ResourceConfig.InstanceCount."""
    return [f"{HOST_PREFIX}{n}" for n in range(1, instances(payload)[0] + 1)]


def log_stream(name: str, host: str, epoch_seconds: int) -> str:
    return f"{name}/{host}-{epoch_seconds}"


def host_dir(config: Config, job_id: str, attempt: int, host: str) -> Path:
    """A host's own /opt/ml/input/config and /opt/ml/output."""
    return attempt_dir(config, job_id, attempt) / host


def task_spec(job: dict, payload: dict, attempt: int, config: Config, log_streams: list[str]) -> TaskSpec:
    """The task of one attempt: a container per host, after writing each host's /opt/ml/input/config files;
    TrainingError when a channel or the output cannot be mapped to local folders. `log_streams`: one per host.

    Several hosts share a task network of the attempt's own, on which each reaches the others by its host
    name. Every host reads the same channels and writes to the same model and output data folders (SageMaker
    aggregates what all hosts write there); each has its own config and failure file. A host's success
    leaves the others running; its failure stops them."""
    name = payload["TrainingJobName"]
    instance_type = instances(payload)[1]
    names = hosts(payload)
    channels, data = _channels(payload, config)
    out = output_dir(config, payload)
    for folder in (out / "model", out / "data"):
        folder.mkdir(parents=True, exist_ok=True)
    shared = [*((path, target, True) for path, target in data), (out / "data", f"{ROOT}/output/data", False),
              (out / "model", f"{ROOT}/model", False)]
    algorithm = payload["AlgorithmSpecification"]
    environment = {str(k): _string(v) for k, v in (payload.get("Environment") or {}).items()}
    environment.update({
        "TRAINING_JOB_NAME": name, "TRAINING_JOB_ARN": training_job_arn(config, name),
        "AWS_REGION": config.region, "AWS_DEFAULT_REGION": config.region,
    })
    environment.setdefault("AWS_ACCESS_KEY_ID", "batchemu")
    environment.setdefault("AWS_SECRET_ACCESS_KEY", "batchemu")
    volumes: dict[tuple[Path, str, bool], str] = {}   # (host path, container path, read-only) -> volume name
    containers = []
    for host, stream in zip(names, log_streams, strict=True):
        here = host_dir(config, job["jobId"], attempt, host)
        for folder in (here / "input" / "config", here / "output"):
            folder.mkdir(parents=True, exist_ok=True)
        (here / "output" / "failure").unlink(missing_ok=True)
        files = {
            "hyperparameters.json": {k: _string(v) for k, v in (payload.get("HyperParameters") or {}).items()},
            "resourceconfig.json": {"current_host": host, "current_instance_type": instance_type, "hosts": names,
                                    "current_group_name": "homogeneousCluster",
                                    "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                                         "instance_type": instance_type, "hosts": names}],
                                    "network_interface_name": "eth0"},
            "inputdataconfig.json": channels,
        }
        for file_name, content in files.items():
            (here / "input" / "config" / file_name).write_text(json.dumps(content))
        mounts = [(here / "input" / "config", f"{ROOT}/input/config", True), *shared[:len(data)],
                  (here / "output", f"{ROOT}/output", False), *shared[len(data):]]
        points = [{"sourceVolume": volumes.setdefault(mount, f"ml{len(volumes)}"), "containerPath": mount[1],
                   "readOnly": mount[2]} for mount in mounts]
        many = len(names) > 1
        containers.append(ContainerSpec(
            image=algorithm["TrainingImage"], command=list(algorithm.get("ContainerArguments") or ["train"]),
            environment=dict(environment), vcpus=0.0, memory_mib=None, log_group=LOG_GROUP, log_stream=stream,
            mount_points=points, name=host if many else DEFAULT_CONTAINER, hostname=host if many else None,
            essential=not many, ends_task_on_failure=many))
    return TaskSpec(
        job_id=job["jobId"], attempt=attempt, containers=containers,
        volumes=[{"name": volume, "host": {"sourcePath": os.fspath(path)}} for (path, _, _), volume in volumes.items()],
        network=f"{job['jobId']}-{attempt}" if len(names) > 1 else None,
        labels={"batchemu.service-job": "1", "batchemu.job-name": job["jobName"]},
    )


def failure_reason(config: Config, job_id: str, attempt: int, payload: dict) -> str | None:
    """The text a host of the attempt left in its /opt/ml/output/failure (the first host's that did)."""
    for host in hosts(payload):
        try:
            text = (host_dir(config, job_id, attempt, host) / "output" / "failure").read_text(errors="replace").strip()
        except OSError:
            continue
        if text:
            return text[:FAILURE_MAX]
    return None
