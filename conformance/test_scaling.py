"""Managed scaling as users see it (API_ComputeResource.html, error-desired-vcpus-update.html): Batch moves
desiredvCpus between minvCpus and maxvCpus by demand, and refuses to lower it by hand."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conformance.harness import TERMINAL, client_error_code

covers = pytest.mark.covers

# userguide/error-desired-vcpus-update.html
NO_MANUAL_SCALE_DOWN = ("Manually scaling down compute environment is not supported. Disconnecting job queues "
                        "from compute environment will cause it to scale-down to minvCpus.")


def desired_vcpus(batch, name: str) -> int:
    found = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    return found["computeResources"]["desiredvCpus"]


def refused_scale_down(batch, name: str, desired: int) -> None:
    with pytest.raises(ClientError) as caught:
        batch.update_compute_environment(computeEnvironment=name, computeResources={"desiredvCpus": desired})
    assert client_error_code(caught.value) == "ClientException"
    assert NO_MANUAL_SCALE_DOWN in caught.value.response["Error"]["Message"]


@covers("CreateComputeEnvironment", "SubmitJob", "DescribeComputeEnvironments", "UpdateComputeEnvironment",
        group="scaling")
def test_desired_vcpus_rises_with_demand_and_cannot_be_lowered_by_hand(batch, resources, jobdef, jobs, prefix):
    ce = resources.compute_environment(max_vcpus=4)["computeEnvironmentName"]
    queue = resources.job_queue([ce])["jobQueueName"]
    assert desired_vcpus(batch, ce) == 0  # minvCpus 0 and nothing to run
    definition = jobdef(command=["sleep", "3"], vcpus=1)
    ids = [jobs.submit(f"{prefix}-scale-{i}", queue, definition["jobDefinitionArn"]) for i in range(2)]
    desired_seen = []

    def scaled_out(found: dict) -> None:
        desired_seen.append(desired_vcpus(batch, ce))

    # Wait until the two 1-vCPU jobs have raised desiredvCpus to 2 or more, or both have ended.
    jobs.wait(ids, until=lambda job: job["status"] in TERMINAL or (bool(desired_seen) and desired_seen[-1] >= 2),
              observe=scaled_out)
    assert max(desired_seen) >= 2, f"desiredvCpus seen while 2 jobs of 1 vCPU ran: {desired_seen}"
    refused_scale_down(batch, ce, 1)
    runs = jobs.wait(ids)
    assert [runs[j].last["status"] for j in ids] == ["SUCCEEDED"] * 2


@covers("CreateComputeEnvironment", "UpdateComputeEnvironment", "DescribeComputeEnvironments", group="scaling")
def test_desired_vcpus_may_be_raised_within_bounds_but_not_lowered(batch, resources):
    ce = resources.compute_environment(max_vcpus=4)["computeEnvironmentName"]
    batch.update_compute_environment(computeEnvironment=ce, computeResources={"desiredvCpus": 2})
    resources.wait_compute_environment(ce)
    assert desired_vcpus(batch, ce) >= 2
    with pytest.raises(ClientError) as caught:
        batch.update_compute_environment(computeEnvironment=ce, computeResources={"desiredvCpus": 5})
    assert client_error_code(caught.value) == "ClientException"  # above maxvCpus
    refused_scale_down(batch, ce, 1)
    assert desired_vcpus(batch, ce) >= 2
