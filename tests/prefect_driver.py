"""Runs one Prefect flow that submits an AWS Batch job with prefect-aws and waits for it, for tests/test_prefect.py.

Not a test module: `.clients/prefect/bin/python tests/prefect_driver.py` reads JSON requests on stdin, one a
line until its end,

    {"queue": ..., "definition": ..., "name": ..., "max_attempts": N, "client_endpoint_url": ...}

and for each runs a flow as prefect-aws's documentation writes one: `batch_submit` submits the job, then
`client_waiter` waits on it with a custom waiter model (botocore has no Batch waiters), whose acceptors are
DescribeJobs' `jobs[].status`: SUCCEEDED is success, FAILED a terminal failure. Both tasks build their
client from `AwsCredentials.get_boto3_session()`, which ignores `AwsClientParameters.endpoint_url` (given
as `client_endpoint_url`, as a user would try first): the endpoint comes from AWS_ENDPOINT_URL_BATCH. The flow runs on Prefect's ephemeral API (PREFECT_API_URL
unset, PREFECT_HOME a throw-away folder), started once for every request: it takes a while to start. For
each request it writes {"submitted": job id} once the job is submitted, then {"state": the flow run's state
type, "job_id", "message": the state's message}, each a JSON line.
"""

from __future__ import annotations

import json
import sys

from prefect import flow
from prefect_aws import AwsClientParameters, AwsCredentials
from prefect_aws.batch import batch_submit
from prefect_aws.client_waiter import client_waiter


def job_complete(max_attempts: int) -> dict:
    """A botocore waiter model (version 2) for a Batch job: done when SUCCEEDED, failed when FAILED."""
    return {"version": 2, "waiters": {"JobComplete": {
        "delay": 1, "operation": "DescribeJobs", "maxAttempts": max_attempts,
        "acceptors": [
            {"argument": "jobs[].status", "expected": "SUCCEEDED", "matcher": "pathAll", "state": "success"},
            {"argument": "jobs[].status", "expected": "FAILED", "matcher": "pathAny", "state": "failure"}]}}}


@flow(name="batch-job")
def batch_job(queue: str, definition: str, name: str, max_attempts: int, client_endpoint_url: str) -> str:
    credentials = AwsCredentials(aws_access_key_id="prefect", aws_secret_access_key="prefect",
                                 region_name="us-east-1",
                                 aws_client_parameters=AwsClientParameters(endpoint_url=client_endpoint_url))
    job_id = batch_submit(name, queue, definition, credentials, parameters={"greeting": "hello"})
    print(json.dumps({"submitted": job_id}), flush=True)
    client_waiter("batch", "JobComplete", credentials, waiter_definition=job_complete(max_attempts),
                  jobs=[job_id])
    return job_id


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        state = batch_job(request["queue"], request["definition"], request["name"], request["max_attempts"],
                          request["client_endpoint_url"], return_state=True)
        job_id = state.result(raise_on_failure=False) if state.is_completed() else None
        print(json.dumps({"state": state.type.value, "job_id": job_id, "message": state.message}), flush=True)


if __name__ == "__main__":
    main()
