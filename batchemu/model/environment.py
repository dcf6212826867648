"""The environment AWS Batch gives every container of a job's attempt (job_env_vars.html), and how it meets
the variables a container sets itself."""

from __future__ import annotations

from batchemu.config import Config
from batchemu.executors import HOST_ALIAS
from batchemu.model import states

# A job that calls AWS needs credentials; AWS gives it a task role, we give it placeholders.
PLACEHOLDER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "batchemu", "AWS_SECRET_ACCESS_KEY": "batchemu"}


def batch_environment(job: dict, config: Config, queue_name: str, extra: dict[str, str] | None = None, *,
                      network: str | None = None) -> dict[str, str]:
    """What AWS Batch sets in every container of the job's current attempt, plus `extra`; `network` is the
    task network the containers join, if any."""
    info = states.internal(job)
    endpoint = config.endpoint_url
    if network and config.host in ("0.0.0.0", "::", ""):
        # On a task network 127.0.0.1 is the container itself; a server on every address is at the host.
        endpoint = f"http://{HOST_ALIAS}:{config.port}"
    environment = {
        "AWS_BATCH_JOB_ID": job["jobId"],
        "AWS_BATCH_JOB_ATTEMPT": str(info["attempt"]),
        "AWS_BATCH_CE_NAME": info.get("computeEnvironmentName", ""),
        "AWS_BATCH_JQ_NAME": queue_name,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_ENDPOINT_URL_BATCH": endpoint,
        "AWS_ENDPOINT_URL_LOGS": endpoint,
    }
    if not job.get("eksProperties"):  # ECS sets it; a Kubernetes pod has no ECS agent
        environment["AWS_EXECUTION_ENV"] = "AWS_ECS_FARGATE" if info.get("platform") == "FARGATE" else "AWS_ECS_EC2"
    index = (job.get("arrayProperties") or {}).get("index")
    if index is not None:
        environment["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        environment["AWS_BATCH_JOB_ARRAY_SIZE"] = str(info.get("arraySize", ""))
    environment.update(extra or {})
    return environment


def container_environment(own: list[dict], batch: dict[str, str]) -> dict[str, str]:
    """A container's variables (wire form, name/value) under AWS Batch's, with placeholder credentials
    unless the container sets its own."""
    environment = {item["name"]: item.get("value", "") for item in own}
    environment.update(batch)
    for name, value in PLACEHOLDER_CREDENTIALS.items():
        environment.setdefault(name, value)
    return environment
