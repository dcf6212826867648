"""Job definition container options reach the container, and a restarted server finishes running jobs."""

from __future__ import annotations

import boto3

from batchemu.config import Config
from batchemu.http.server import Server
from tests.conftest import make_queue, needs_docker, register, unique, wait_for_status, wait_until


def output(logs_client, job: dict, group: str = "/aws/batch/job") -> list[str]:
    events = logs_client.get_log_events(logGroupName=group, logStreamName=job["container"]["logStreamName"],
                                        startFromHead=True)["events"]
    return [e["message"] for e in events]


@needs_docker
def test_user_volumes_read_only_root_and_log_group(batch_client, logs_client, queue, tmp_path):
    (tmp_path / "input.txt").write_text("from the host\n")
    tmp_path.chmod(0o755)  # readable by the job's unprivileged user
    definition = register(
        batch_client,
        ["sh", "-c", ("id -u; cat /data/input.txt; touch /rootfs-write 2>/dev/null || echo read-only; "
                     "echo out > /scratch/result.txt; ulimit -n")],
        containerProperties={
            "user": "65534",
            "readonlyRootFilesystem": True,
            "volumes": [{"name": "data", "host": {"sourcePath": str(tmp_path)}}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": True}],
            "linuxParameters": {"tmpfs": [{"containerPath": "/scratch", "size": 8}], "initProcessEnabled": True},
            "ulimits": [{"name": "nofile", "softLimit": 321, "hardLimit": 321}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/custom/group"}},
        })
    job = wait_for_status(batch_client, batch_client.submit_job(
        jobName=unique("opts"), jobQueue=queue["name"], jobDefinition=definition["jobDefinitionArn"])["jobId"])
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    lines = wait_until(lambda: output(logs_client, job, "/custom/group") or None, 10)
    assert lines == ["65534", "from the host", "read-only", "321"]


@needs_docker
def test_restarted_server_adopts_running_job_and_finishes_it(tmp_path):
    state = str(tmp_path / "state.sqlite3")
    config = {"host": "127.0.0.1", "port": 0, "state": state, "tick": 0.2}
    first = Server(Config(**config)).start()
    client = boto3.client("batch", endpoint_url=first.url, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y")
    queue = make_queue(client)
    definition = register(client, ["sh", "-c", "echo before; sleep 2; echo after; exit 7"])
    job_id = client.submit_job(jobName="survivor", jobQueue=queue["name"],
                               jobDefinition=definition["jobDefinitionArn"])["jobId"]
    stream = wait_for_status(client, job_id, ("RUNNING",), timeout=30)["container"]["logStreamName"]
    first_logs = boto3.client("logs", endpoint_url=first.url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="y")

    def shipped() -> list:
        try:
            return first_logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
        except first_logs.exceptions.ResourceNotFoundException:  # no line shipped yet
            return []
    wait_until(shipped, 10, what='the first server shipping "before"')
    first.stop()  # the container keeps running without its server
    second = Server(Config(**config)).start()
    try:
        client = boto3.client("batch", endpoint_url=second.url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="y")
        job = wait_for_status(client, job_id, timeout=30)
        assert job["status"] == "FAILED"
        assert job["container"]["exitCode"] == 7
        assert len(job["attempts"]) == 1
        logs = boto3.client("logs", endpoint_url=second.url, region_name="us-east-1",
                            aws_access_key_id="x", aws_secret_access_key="y")
        events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"],
                                     startFromHead=True)["events"]
        assert [e["message"] for e in events] == ["before", "after"]  # nothing shipped twice
    finally:
        second.stop(remove_containers=True)


@needs_docker
def test_container_removed_behind_our_back_fails_the_attempt_with_host_terminated(batch_client, queue):
    import docker

    definition = register(batch_client, ["sleep", "60"])
    job_id = batch_client.submit_job(jobName=unique("lost"), jobQueue=queue["name"],
                                     jobDefinition=definition["jobDefinitionArn"])["jobId"]
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    engine = docker.from_env()
    for container in engine.containers.list(filters={"label": f"batchemu.job-id={job_id}"}):
        container.remove(force=True)
    job = wait_for_status(batch_client, job_id, timeout=30)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Host EC2 (instance i-batchemu) terminated."
    assert "exitCode" not in job["container"]
