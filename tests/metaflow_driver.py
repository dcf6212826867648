"""Submits and follows one multi-node job through Metaflow's AWS Batch client, for tests/test_metaflow.py.

Not a test module: `.clients/metaflow/bin/python tests/metaflow_driver.py` reads one JSON request on stdin,

    {"queue": ..., "image": ..., "num_parallel": N, "script": "...", "memory": MiB}

and builds the job as Metaflow's `Batch.create_job` does for a step with `@batch` and `@parallel`: a
`multinode` job definition with node ranges `0:0` and `1:N-1` (BatchJob.job_def with num_parallel), then
SubmitJob with `nodeOverrides` (BatchJob.execute: in the main node's command `[multinode-args]` becomes
`--split-index 0`, in the others `--split-index $AWS_BATCH_JOB_NODE_INDEX` and the task id `control-1`
becomes `1-node-$AWS_BATCH_JOB_NODE_INDEX`). It follows the job as `Batch.wait` does: the parent until it is
RUNNING or done, with copies of it for the `<id>#<i>` nodes polled meanwhile, then the parent until it is
done. Last it describes every node afresh as a RunningJob of its own, whose update() polls until the node is
found (a node that never appears makes it poll until TIMEOUT). It writes one JSON line: {"id", "status",
"is_successful", "is_crashed", "status_code", "reason", "node_statuses"}, or {"error": ...} and exit status 2
when that is not done in TIMEOUT seconds. The endpoint is given the way boto3 users give it to Metaflow: AWS_ENDPOINT_URL_BATCH.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import time

TIMEOUT = int(os.environ.get("BATCHEMU_METAFLOW_TIMEOUT", "120"))
TASK_ID = "control-1"
POLL = 0.2


def _give_up(signum, frame) -> None:
    print(json.dumps({"error": f"Metaflow was still polling after {TIMEOUT} s"}), flush=True)
    os._exit(2)


def main() -> None:
    request = json.loads(sys.stdin.readline())
    # RunningJob.update() polls DescribeJobs until the job is returned, without end: the alarm ends it.
    signal.signal(signal.SIGALRM, _give_up)
    signal.alarm(TIMEOUT)
    from metaflow.plugins.aws.batch.batch_client import BatchClient, RunningJob

    client = BatchClient()
    num_parallel = request["num_parallel"]
    memory = request.get("memory", 64)
    role = "arn:aws:iam::123456789012:role/metaflow"
    job = (client.job()
           .job_name(request.get("name", "metaflow-parallel"))
           .job_queue(request["queue"])
           .command(["sh", "-c", request["script"]])
           .image(request["image"])
           .iam_role(role)
           .execution_role(None)
           .cpu(1)
           .gpu(0)
           .memory(memory)
           .timeout_in_secs(600)
           .job_def(request["image"], role, request["queue"], None, None, None, None, None, None,
                    memory=memory, host_volumes=None, efs_volumes=None, use_tmpfs=False, tmpfs_tempdir=False,
                    tmpfs_size=None, tmpfs_path=None, num_parallel=num_parallel, ephemeral_storage=None,
                    log_driver=None, log_options=None, privileged=False)
           .task_id(TASK_ID)
           .environment_variable("METAFLOW_RUNTIME_ENVIRONMENT", "aws-batch"))
    running = job.execute()
    # Batch.wait: the nodes are copies of the parent's RunningJob with the id `<id>#<i>`.
    children = []
    for node in range(1, num_parallel):
        child = copy.copy(running)
        child._id = running._id + f"#{node}"
        children.append(child)
    while True:  # Batch.wait's wait_for_launch
        # Polled for the progress line only: a copy shows the parent's description until one of its
        # DescribeJobs calls passes Metaflow's throttle (one call a second, shared by every RunningJob).
        [child.status for child in children]
        if running.is_running or running.is_done or running.is_crashed:
            break
        time.sleep(POLL)
    while running.is_running:  # tail_logs(has_log_updates=lambda: self.job.is_running)
        time.sleep(POLL)
    while not running.is_done:
        time.sleep(POLL)
    nodes = [RunningJob(f"{running.id}#{node}", client._client) for node in range(num_parallel)]
    result = {"id": running.id, "status": running.status, "is_successful": running.is_successful,
              "is_crashed": running.is_crashed, "reason": running.reason, "status_code": running.status_code,
              "node_statuses": [node.status for node in nodes]}
    signal.alarm(0)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
