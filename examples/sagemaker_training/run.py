"""A SageMaker-style training job run through a batchemu SAGEMAKER_TRAINING job queue.

    python examples/sagemaker_training/run.py --endpoint-url http://127.0.0.1:8000 --folder /tmp/training

Writes a small data set into FOLDER/data, submits a service job whose CreateTrainingJob request reads it as
the `train` channel (a file:// URI) and writes its model under FOLDER/models (a file:// S3OutputPath), waits
for it, and prints where the model landed and what the training program logged. Needs the
batchemu-train:latest image (`make docker`).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

import boto3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:8000")
    parser.add_argument("--folder", type=Path, required=True, help="host folder for the data and the model")
    parser.add_argument("--image", default="batchemu-train:latest")
    args = parser.parse_args()
    clients = {"endpoint_url": args.endpoint_url, "region_name": "us-east-1", "aws_access_key_id": "x",
               "aws_secret_access_key": "x"}
    batch, logs = boto3.client("batch", **clients), boto3.client("logs", **clients)
    suffix = uuid.uuid4().hex[:6]

    data = args.folder.resolve() / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.csv").write_text("".join(f"{i},{i * i}\n" for i in range(10)))

    environment = f"sagemaker-{suffix}"
    batch.create_service_environment(serviceEnvironmentName=environment, serviceEnvironmentType="SAGEMAKER_TRAINING",
                                     capacityLimits=[{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}])
    queue = f"training-{suffix}"
    batch.create_job_queue(jobQueueName=queue, priority=1, jobQueueType="SAGEMAKER_TRAINING",
                           serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": environment}])
    while batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["status"] != "VALID":
        time.sleep(0.2)

    name = f"squares-{suffix}"
    job = batch.submit_service_job(jobName="squares", jobQueue=queue, serviceJobType="SAGEMAKER_TRAINING",
                                   serviceRequestPayload=json.dumps({
                                       "TrainingJobName": name, "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
                                       "AlgorithmSpecification": {"TrainingImage": args.image,
                                                                  "TrainingInputMode": "File"},
                                       "HyperParameters": {"epochs": "5"},
                                       "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                                           "S3Uri": f"file://{data}", "S3DataType": "S3Prefix"}}}],
                                       "OutputDataConfig": {"S3OutputPath": f"file://{args.folder.resolve()}/models"},
                                       "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                          "VolumeSizeInGB": 10},
                                       "StoppingCondition": {"MaxRuntimeInSeconds": 600}}))
    seen = []
    while True:
        detail = batch.describe_service_job(jobId=job["jobId"])
        if not seen or seen[-1] != detail["status"]:
            seen.append(detail["status"])
        if detail["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.2)
    print("statuses:", " -> ".join(seen), detail.get("statusReason", ""))
    model = args.folder.resolve() / "models" / name / "output" / "model" / "model.txt"
    print(f"model: {model}")
    print(model.read_text() if model.exists() else "(no model)")
    stream = f"{name}/"
    for found in logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                           logStreamNamePrefix=stream)["logStreams"]:
        for event in logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                         logStreamName=found["logStreamName"])["events"]:
            print(f"[{found['logStreamName']}] {event['message']}")
    return 0 if detail["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    raise SystemExit(main())
