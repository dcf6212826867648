"""The documented rules of GetJobQueueSnapshot (batchemu/model/documented_rules/job_rules.py), shown through boto3
on a server with the simulate executor (no Docker): the front of a FIFO queue, fair-share utilization, the capacity
unit on EKS, and the quota shares of a quota-managed queue."""

from __future__ import annotations

import pytest

from tests import test_documented_jobs as documented_jobs
from tests import test_service_jobs as service_jobs
from tests.conftest import make_queue, submit, unique, wait_for_status, wait_until
from tests.test_documented_jobs import LONG_RUN, fair_share_queue, simulated

rule = pytest.mark.rule
# The same fixtures as test_documented_jobs: the simulate executor, and a queue whose jobs wait in RUNNABLE
batchemu_config = documented_jobs.batchemu_config
held = documented_jobs.held


# --- GetJobQueueSnapshot -------------------------------------------------------------------------------

@rule("GetJobQueueSnapshot.frontOfQueue", "GetJobQueueSnapshot.fairshareUtilization")
def test_snapshot_front_of_queue_and_fair_share_utilization(batch_client, held):
    definition = simulated(batch_client)
    ids = [submit(batch_client, held, definition) for _ in range(101)]
    wait_until(lambda: len(batch_client.list_jobs(jobQueue=held["name"], jobStatus="RUNNABLE")["jobSummaryList"]) == 101)
    snapshot = batch_client.get_job_queue_snapshot(jobQueue=held["arn"])
    assert [j["jobArn"].rsplit("/", 1)[1] for j in snapshot["frontOfQueue"]["jobs"]] == ids[:100]
    assert "fairshareUtilization" not in snapshot["queueUtilization"]


@rule("GetJobQueueSnapshot.activeShareCount")
def test_shares_with_only_runnable_jobs_use_no_capacity(batch_client):
    fair = fair_share_queue(batch_client, ce_state="DISABLED")
    definition = simulated(batch_client)
    ids = [submit(batch_client, fair, definition, shareIdentifier=share) for share in ("a", "b")]
    for job_id in ids:
        wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=30)
    snapshot = batch_client.get_job_queue_snapshot(jobQueue=fair["name"])
    assert len(snapshot["frontOfQueue"]["jobs"]) == 2
    assert snapshot["queueUtilization"]["fairshareUtilization"] == {"activeShareCount": 0,
                                                                    "topCapacityUtilization": []}


@rule("GetJobQueueSnapshot.fairshareUtilization", "GetJobQueueSnapshot.activeShareCount")
def test_snapshot_of_a_fair_share_queue_lists_the_top_20_shares(batch_client):
    fair = fair_share_queue(batch_client, max_vcpus=64)
    definition = simulated(batch_client, containerProperties=LONG_RUN)
    ids = [submit(batch_client, fair, definition, shareIdentifier=f"s{i}") for i in range(21)]
    for job_id in ids:
        wait_for_status(batch_client, job_id, ("RUNNING",), timeout=60)
    utilization = batch_client.get_job_queue_snapshot(jobQueue=fair["name"])["queueUtilization"]
    shares = utilization["fairshareUtilization"]["topCapacityUtilization"]
    assert len(shares) == 20 and utilization["fairshareUtilization"]["activeShareCount"] == 21
    assert all(share["capacityUsage"] == [{"capacityUnit": "VCPU", "quantity": 1.0}] for share in shares)
    batch_client.terminate_jobs(jobs=ids, reason="done")


@rule("GetJobQueueSnapshot.capacityUnit")
def test_snapshot_counts_cpu_on_eks(batch_client):
    eks = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c", "kubernetesNamespace": "batch"}
    ce = batch_client.create_compute_environment(
        computeEnvironmentName=unique("eks"), type="MANAGED", eksConfiguration=eks, computeResources={
            "type": "EC2", "allocationStrategy": "BEST_FIT_PROGRESSIVE", "maxvCpus": 4, "minvCpus": 0, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"],
            "instanceTypes": ["optimal"], "instanceRole": "ecsInstanceRole"})
    wait_until(lambda: batch_client.describe_compute_environments(computeEnvironments=[ce["computeEnvironmentArn"]])[
        "computeEnvironments"][0]["status"] == "VALID")
    queue = batch_client.create_job_queue(jobQueueName=unique("eksq"), priority=1, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])
    usage = batch_client.get_job_queue_snapshot(jobQueue=queue["jobQueueArn"])["queueUtilization"]
    assert usage["totalCapacityUsage"] == [{"capacityUnit": "cpu", "quantity": 0.0}]
    assert batch_client.get_job_queue_snapshot(jobQueue=make_queue(batch_client)["name"])["queueUtilization"][
        "totalCapacityUsage"][0]["capacityUnit"] == "VCPU"


@rule("GetJobQueueSnapshot.frontOfQuotaShares")
def test_snapshot_of_a_quota_managed_queue_lists_each_shares_first_job_and_its_instances(batch_client):
    queue = service_jobs.quota_queue(batch_client, 1, a={"limit": 1, "strategy": "RESERVE"},
                                     b={"limit": 1, "strategy": "RESERVE"})
    long_run = service_jobs.payload(seconds=600)
    running = service_jobs.submit(batch_client, queue, long_run, quotaShareName="a")
    service_jobs.wait_status(batch_client, running, ("RUNNING",))
    waiting = {name: service_jobs.submit(batch_client, queue, long_run, quotaShareName=name) for name in ("a", "b")}
    for job_id in waiting.values():
        service_jobs.wait_status(batch_client, job_id, ("RUNNABLE",))
    snapshot = batch_client.get_job_queue_snapshot(jobQueue=queue["name"])
    heads = {share: [job["jobArn"].rsplit("/", 1)[1] for job in jobs]
             for share, jobs in snapshot["frontOfQuotaShares"]["quotaShares"].items()}
    assert heads == {"a": [waiting["a"]], "b": [waiting["b"]]}
    assert snapshot["queueUtilization"]["quotaShareUtilization"]["topCapacityUtilization"] == [
        {"quotaShareName": "a", "capacityUsage": [{"capacityUnit": service_jobs.M5, "quantity": 1.0}]}]
    batch_client.terminate_service_jobs(jobs=[running, *waiting.values()], reason="done")
    unmanaged = service_jobs.service_queue(batch_client)
    assert "frontOfQuotaShares" not in batch_client.get_job_queue_snapshot(jobQueue=unmanaged["name"])
