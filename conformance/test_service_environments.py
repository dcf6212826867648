"""Service environments, service jobs and quota shares (SageMaker Training through Batch).

Read-only calls and calls on names that do not exist, so they cost nothing on AWS: each must answer as the
model says (a result, or a 400 ClientException), never a server error. An endpoint that has not built an
operation is reported as "not built" by the harness.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conformance.harness import client_error_code

covers = pytest.mark.covers

MISSING = "conformance-no-such-thing"

CALLS = [
    ("DescribeServiceEnvironments", "describe_service_environments", {}),
    ("ListServiceJobs", "list_service_jobs", {"jobQueue": MISSING}),
    ("DescribeServiceJob", "describe_service_job", {"jobId": MISSING}),
    ("TerminateServiceJob", "terminate_service_job", {"jobId": MISSING, "reason": "conformance"}),
    ("UpdateServiceJob", "update_service_job", {"jobId": MISSING, "schedulingPriority": 1}),
    ("UpdateServiceEnvironment", "update_service_environment", {"serviceEnvironment": MISSING}),
    ("DeleteServiceEnvironment", "delete_service_environment", {"serviceEnvironment": MISSING}),
    ("SubmitServiceJob", "submit_service_job", {"jobName": "conformance", "jobQueue": MISSING,
                                                "serviceJobType": "SAGEMAKER_TRAINING",
                                                "serviceRequestPayload": "{}"}),
    ("ListQuotaShares", "list_quota_shares", {"jobQueue": MISSING}),
    ("DescribeQuotaShare", "describe_quota_share", {"quotaShareArn": MISSING}),
    ("DeleteQuotaShare", "delete_quota_share", {"quotaShareArn": MISSING}),
    ("UpdateQuotaShare", "update_quota_share", {"quotaShareArn": MISSING}),
    ("TerminateServiceJobs", "terminate_service_jobs", {"jobs": [MISSING], "reason": "conformance"}),
    # Creates that AWS refuses (a queue that does not exist, a name with a space), so nothing is made.
    ("CreateQuotaShare", "create_quota_share", {
        "quotaShareName": "conformance", "jobQueue": MISSING,
        "capacityLimits": [{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
        "resourceSharingConfiguration": {"strategy": "RESERVE"},
        "preemptionConfiguration": {"inSharePreemption": "DISABLED"}}),
    ("CreateServiceEnvironment", "create_service_environment", {
        "serviceEnvironmentName": "not a valid name", "serviceEnvironmentType": "SAGEMAKER_TRAINING",
        "capacityLimits": [{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}]}),
]


@pytest.mark.parametrize("operation, method, arguments",
                         [pytest.param(*call, marks=covers(call[0], group="resources"), id=call[0]) for call in CALLS])
def test_service_environment_operations_answer_as_modelled(batch, operation, method, arguments):
    model = batch.meta.service_model.operation_model(operation)
    missing = set(model.input_shape.required_members) - set(arguments) if model.input_shape else set()
    if missing:
        pytest.skip(f"the model now requires {sorted(missing)} for {operation}")
    try:
        getattr(batch, method)(**arguments)
    except ClientError as error:
        assert client_error_code(error) == "ClientException", error.response
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
