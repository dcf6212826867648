"""An array job feeding a dependent job, through files in a host folder mounted as a volume.

Three children each write `part-<index>.txt`; a job that depends on the whole array joins them into
`result.txt`. Run it against a running batchemu (`make serve`, and `make docker` for the engine and the
`batchemu-test:latest` image):

    python examples/array_pipeline/run.py --endpoint-url http://127.0.0.1:8000 --folder /tmp/pipeline
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import boto3

IMAGE = "batchemu-test:latest"
TERMINAL = ("SUCCEEDED", "FAILED")


def wait_valid(describe, key: str, name: str) -> None:
    deadline = time.monotonic() + 30
    while describe()[key][0]["status"] != "VALID":
        if time.monotonic() > deadline:
            sys.exit(f"{name} did not become VALID")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_BATCH", "http://127.0.0.1:8000"))
    parser.add_argument("--folder", required=True, help="host folder the jobs read and write (created if absent)")
    parser.add_argument("--children", type=int, default=3)
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.folder)
    os.makedirs(folder, exist_ok=True)
    batch = boto3.client("batch", endpoint_url=args.endpoint_url, region_name="us-east-1",
                         aws_access_key_id="x", aws_secret_access_key="x")
    suffix = uuid.uuid4().hex[:6]
    ce, queue = f"pipeline-ce-{suffix}", f"pipeline-q-{suffix}"
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED", computeResources={
        "type": "EC2", "maxvCpus": 2, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"],
        "instanceRole": "ecsInstanceRole"})
    wait_valid(lambda: batch.describe_compute_environments(computeEnvironments=[ce]), "computeEnvironments", ce)
    batch.create_job_queue(jobQueueName=queue, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    wait_valid(lambda: batch.describe_job_queues(jobQueues=[queue]), "jobQueues", queue)

    def definition(name: str, script: str) -> str:
        return batch.register_job_definition(jobDefinitionName=f"{name}-{suffix}", type="container", containerProperties={
            "image": IMAGE, "command": ["sh", "-c", script],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
            "volumes": [{"name": "work", "host": {"sourcePath": folder}}],
            "mountPoints": [{"sourceVolume": "work", "containerPath": "/data"}]})["jobDefinitionArn"]

    split = batch.submit_job(jobName="split", jobQueue=queue, arrayProperties={"size": args.children},
                             jobDefinition=definition("split", "echo part $AWS_BATCH_JOB_ARRAY_INDEX of "
                                                      "$AWS_BATCH_JOB_ARRAY_SIZE > /data/part-$AWS_BATCH_JOB_ARRAY_INDEX.txt"))
    join = batch.submit_job(jobName="join", jobQueue=queue, dependsOn=[{"jobId": split["jobId"]}],
                            jobDefinition=definition("join", "cat /data/part-*.txt > /data/result.txt"))
    print(f"array {split['jobId']} ({args.children} children) -> join {join['jobId']}")
    deadline = time.monotonic() + 120
    while True:
        jobs = {j["jobId"]: j for j in batch.describe_jobs(jobs=[split["jobId"], join["jobId"]])["jobs"]}
        if jobs[join["jobId"]]["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            sys.exit("the pipeline did not finish within 120 s")
        time.sleep(0.5)
    for job in jobs.values():
        print(f"{job['jobName']}: {job['status']} {job.get('statusReason', '')}".rstrip())
    if jobs[join["jobId"]]["status"] != "SUCCEEDED":
        return 1
    with open(os.path.join(folder, "result.txt")) as result:
        print(result.read(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
