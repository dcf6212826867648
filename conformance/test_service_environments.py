"""Service environments, SAGEMAKER_TRAINING job queues and quota shares (SageMaker Training through Batch).

The resource scenarios create service environments, queues, scheduling policies and quota shares named
with the run's prefix and remove them at the end of the module (nothing here runs a training job, so it
costs nothing on AWS). The service-job calls are read-only or name things that do not exist: each must
answer as the model says (a result, or a 400 ClientException), never a server error; an endpoint that has
not built one is reported as "not built" by the harness.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from conformance.harness import arn_pattern, client_error_code, wait_for

covers = pytest.mark.covers

MISSING = "conformance-no-such-thing"
LIMITS = [{"maxCapacity": 2, "capacityUnit": "NUM_INSTANCES"}]
SHARE_LIMITS = [{"maxCapacity": 2, "capacityUnit": "ml.m5.large"}]
TRANSIENT = ("CREATING", "UPDATING", "DELETING")

CALLS = [
    ("ListServiceJobs", "list_service_jobs", {"jobQueue": MISSING}),
    ("DescribeServiceJob", "describe_service_job", {"jobId": MISSING}),
    ("TerminateServiceJob", "terminate_service_job", {"jobId": MISSING, "reason": "conformance"}),
    ("UpdateServiceJob", "update_service_job", {"jobId": MISSING, "schedulingPriority": 1}),
    ("SubmitServiceJob", "submit_service_job", {"jobName": "conformance", "jobQueue": MISSING,
                                                "serviceJobType": "SAGEMAKER_TRAINING",
                                                "serviceRequestPayload": "{}"}),
    ("TerminateServiceJobs", "terminate_service_jobs", {"jobs": [MISSING], "reason": "conformance"}),
]


@pytest.mark.parametrize("operation, method, arguments",
                         [pytest.param(*call, marks=covers(call[0], group="resources"), id=call[0]) for call in CALLS])
def test_service_job_operations_answer_as_modelled(batch, operation, method, arguments):
    model = batch.meta.service_model.operation_model(operation)
    missing = set(model.input_shape.required_members) - set(arguments) if model.input_shape else set()
    if missing:
        pytest.skip(f"the model now requires {sorted(missing)} for {operation}")
    try:
        getattr(batch, method)(**arguments)
    except ClientError as error:
        assert client_error_code(error) == "ClientException", error.response
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400



class ServiceResources:
    """Creates service environments, SAGEMAKER_TRAINING queues, quota-share policies and quota shares,
    and removes them in dependency order."""

    def __init__(self, batch, prefix: str) -> None:
        self.batch, self.prefix, self.counter = batch, prefix, 0
        self.environments: list[str] = []
        self.queues: list[str] = []
        self.policies: list[str] = []
        self.shares: list[str] = []

    def name(self, kind: str) -> str:
        self.counter += 1
        return f"{self.prefix}-{kind}-{self.counter}"

    def describe_environment(self, ref: str) -> dict | None:
        found = self.batch.describe_service_environments(serviceEnvironments=[ref])["serviceEnvironments"]
        return found[0] if found else None

    def wait_environment(self, ref: str) -> dict | None:
        """The environment once it is neither CREATING, UPDATING nor DELETING (None once it is gone)."""
        return wait_for(lambda: self.describe_environment(ref), lambda d: d is None or d["status"] not in TRANSIENT,
                     f"service environment {ref}")

    def environment(self, wait: bool = True, **extra) -> dict:
        name = self.name("se")
        created = self.batch.create_service_environment(serviceEnvironmentName=name,
                                                        serviceEnvironmentType="SAGEMAKER_TRAINING",
                                                        capacityLimits=extra.pop("capacityLimits", LIMITS), **extra)
        self.environments.append(name)
        if wait:
            assert (self.wait_environment(name) or {}).get("status") == "VALID"
        return created

    def queue(self, environment_arn: str, quota_managed: bool = False) -> dict:
        name = self.name("sjq")
        extra = {}
        if quota_managed:
            policy = self.batch.create_scheduling_policy(
                name=self.name("qsp"), quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"})
            self.policies.append(policy["arn"])
            extra["schedulingPolicyArn"] = policy["arn"]
        created = self.batch.create_job_queue(
            jobQueueName=name, priority=1, jobQueueType="SAGEMAKER_TRAINING",
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": environment_arn}], **extra)
        self.queues.append(name)
        wait_for(lambda: self.batch.describe_job_queues(jobQueues=[name])["jobQueues"],
              lambda f: f and f[0]["status"] not in TRANSIENT, f"job queue {name}")
        return created

    def share(self, queue: str, **extra) -> dict:
        arguments = {"quotaShareName": self.name("qs"), "jobQueue": queue, "capacityLimits": SHARE_LIMITS,
                     "resourceSharingConfiguration": {"strategy": "RESERVE"},
                     "preemptionConfiguration": {"inSharePreemption": "DISABLED"}, **extra}
        created = self.batch.create_quota_share(**arguments)
        self.shares.append(created["quotaShareArn"])
        return created

    def wait_share(self, arn: str) -> dict:
        return wait_for(lambda: self.batch.describe_quota_share(quotaShareArn=arn),
                     lambda d: d["status"] not in TRANSIENT, f"quota share {arn}")

    def cleanup(self) -> None:
        def quietly(call: Callable[[], object]) -> None:
            try:
                call()
            except ClientError:
                pass

        for arn in self.shares:
            quietly(lambda arn=arn: self.batch.update_quota_share(quotaShareArn=arn, state="DISABLED"))
        for arn in self.shares:
            quietly(lambda arn=arn: (self.wait_share(arn), self.batch.delete_quota_share(quotaShareArn=arn)))
        for name in self.queues:
            quietly(lambda name=name: self.batch.update_job_queue(jobQueue=name, state="DISABLED"))
        for name in self.queues:
            quietly(lambda name=name: (wait_for(lambda: self.batch.describe_job_queues(jobQueues=[name])["jobQueues"],
                                             lambda f: not f or f[0]["status"] not in TRANSIENT, name),
                                       self.batch.delete_job_queue(jobQueue=name)))
        for name in self.queues:
            quietly(lambda name=name: wait_for(lambda: self.batch.describe_job_queues(jobQueues=[name])["jobQueues"],
                                            lambda f: not f or f[0]["status"] == "DELETED", name))
        for name in self.environments:
            quietly(lambda name=name: self.batch.update_service_environment(serviceEnvironment=name,
                                                                            state="DISABLED"))
        for name in self.environments:
            quietly(lambda name=name: (self.wait_environment(name),
                                       self.batch.delete_service_environment(serviceEnvironment=name)))
        for arn in self.policies:
            quietly(lambda arn=arn: self.batch.delete_scheduling_policy(arn=arn))


@pytest.fixture(scope="module")
def service(batch, target, prefix):
    created = ServiceResources(batch, prefix)
    yield created
    created.cleanup()


@covers("CreateServiceEnvironment", "DescribeServiceEnvironments", group="service-environments")
@covers(group="arns")
def test_service_environment_create_and_describe(batch, target, service):
    created = service.environment(wait=False, tags={"conformance": "yes"})
    name = created["serviceEnvironmentName"]
    assert arn_pattern(target, "service-environment", name).fullmatch(created["serviceEnvironmentArn"])
    detail = service.wait_environment(name)
    assert (detail["serviceEnvironmentArn"], detail["serviceEnvironmentType"], detail["state"], detail["status"],
            detail["capacityLimits"], detail["tags"]) == (created["serviceEnvironmentArn"], "SAGEMAKER_TRAINING",
                                                          "ENABLED", "VALID", LIMITS, {"conformance": "yes"})
    by_arn = service.describe_environment(created["serviceEnvironmentArn"])
    assert by_arn["serviceEnvironmentName"] == name
    assert batch.describe_service_environments(serviceEnvironments=[MISSING])["serviceEnvironments"] == []


@covers("CreateServiceEnvironment", group="service-environments")
@covers(group="errors")
def test_service_environment_refusals(batch, service):
    name = service.environment(wait=False)["serviceEnvironmentName"]
    for arguments in ({"serviceEnvironmentName": name}, {"serviceEnvironmentName": "not a valid name"}):
        with pytest.raises(ClientError) as caught:
            batch.create_service_environment(serviceEnvironmentType="SAGEMAKER_TRAINING", capacityLimits=LIMITS,
                                             **arguments)
        assert client_error_code(caught.value) == "ClientException"


@covers("UpdateServiceEnvironment", "DescribeServiceEnvironments", group="service-environments")
def test_service_environment_update(batch, service):
    name = service.environment()["serviceEnvironmentName"]
    limits = [{"maxCapacity": 3, "capacityUnit": "NUM_INSTANCES"}]
    updated = batch.update_service_environment(serviceEnvironment=name, state="DISABLED", capacityLimits=limits)
    assert updated["serviceEnvironmentName"] == name
    detail = service.wait_environment(name)
    assert (detail["state"], detail["status"], detail["capacityLimits"]) == ("DISABLED", "VALID", limits)


@covers("DeleteServiceEnvironment", "UpdateServiceEnvironment", "UpdateJobQueue", group="delete-rules")
def test_service_environment_delete_rules(batch, service):
    created = service.environment()
    name, arn = created["serviceEnvironmentName"], created["serviceEnvironmentArn"]
    with pytest.raises(ClientError) as enabled:
        batch.delete_service_environment(serviceEnvironment=name)
    assert client_error_code(enabled.value) == "ClientException"
    queue = service.queue(arn)["jobQueueName"]
    batch.update_service_environment(serviceEnvironment=name, state="DISABLED")
    service.wait_environment(name)
    with pytest.raises(ClientError) as in_use:
        batch.delete_service_environment(serviceEnvironment=name)
    assert client_error_code(in_use.value) == "ClientException"
    batch.update_job_queue(jobQueue=queue, state="DISABLED")
    wait_for(lambda: batch.describe_job_queues(jobQueues=[queue])["jobQueues"],
          lambda f: f[0]["status"] not in TRANSIENT, queue)
    batch.delete_job_queue(jobQueue=queue)
    wait_for(lambda: batch.describe_job_queues(jobQueues=[queue])["jobQueues"],
          lambda f: not f or f[0]["status"] == "DELETED", queue)
    batch.delete_service_environment(serviceEnvironment=name)
    wait_for(lambda: service.describe_environment(name), lambda d: d is None or d["status"] == "DELETED",
          f"service environment {name} deletion")


@covers("DescribeServiceEnvironments", group="pagination")
def test_service_environment_paging(batch, service):
    names = [service.environment(wait=False)["serviceEnvironmentName"] for _ in range(3)]
    seen, token = [], None
    while True:
        page = batch.describe_service_environments(maxResults=1, **({"nextToken": token} if token else {}))
        assert len(page["serviceEnvironments"]) <= 1
        seen += [env["serviceEnvironmentName"] for env in page["serviceEnvironments"]]
        token = page.get("nextToken")
        if not token:
            break
    assert [name for name in seen if name in names] == names


@covers("TagResource", "UntagResource", "ListTagsForResource", group="tags")
def test_service_environment_tags(batch, service):
    arn = service.environment(wait=False, tags={"a": "1"})["serviceEnvironmentArn"]
    batch.tag_resource(resourceArn=arn, tags={"b": "2"})
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "1", "b": "2"}
    batch.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}


@covers("CreateJobQueue", "DescribeJobQueues", group="service-environments")
def test_sagemaker_training_job_queue(batch, service, resources):
    environment = service.environment()["serviceEnvironmentArn"]
    name = service.queue(environment)["jobQueueName"]
    detail = batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]
    assert detail["jobQueueType"] == "SAGEMAKER_TRAINING"
    assert detail["serviceEnvironmentOrder"] == [{"order": 1, "serviceEnvironment": environment}]
    assert detail.get("computeEnvironmentOrder", []) == []
    ce = resources.compute_environment(wait=False)["computeEnvironmentArn"]
    with pytest.raises(ClientError) as both:
        batch.create_job_queue(jobQueueName=f"{name}-both", priority=1,
                               serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": environment}],
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    assert client_error_code(both.value) == "ClientException"


@covers("SubmitJob", group="service-environments")
def test_container_job_refused_on_sagemaker_training_queue(batch, service, jobdef):
    queue = service.queue(service.environment()["serviceEnvironmentArn"])["jobQueueName"]
    with pytest.raises(ClientError) as caught:
        batch.submit_job(jobName="conformance", jobQueue=queue, jobDefinition=jobdef()["jobDefinitionArn"])
    assert client_error_code(caught.value) == "ClientException"


@covers("CreateQuotaShare", "DescribeQuotaShare", "ListQuotaShares", group="service-environments")
def test_quota_share_create_describe_list(batch, service):
    queue = service.queue(service.environment()["serviceEnvironmentArn"], quota_managed=True)
    created = service.share(queue["jobQueueName"], resourceSharingConfiguration={"strategy": "LEND_AND_BORROW"})
    detail = service.wait_share(created["quotaShareArn"])
    assert (detail["quotaShareName"], detail["jobQueueArn"], detail["capacityLimits"], detail["state"],
            detail["status"]) == (created["quotaShareName"], queue["jobQueueArn"], SHARE_LIMITS, "ENABLED", "VALID")
    assert detail["resourceSharingConfiguration"] == {"strategy": "LEND_AND_BORROW", "borrowLimit": -1}
    listed = batch.list_quota_shares(jobQueue=queue["jobQueueName"])["quotaShares"]
    assert [share["quotaShareArn"] for share in listed] == [created["quotaShareArn"]]


@covers("CreateQuotaShare", group="service-environments")
@covers(group="errors")
def test_quota_share_refusals(batch, service):
    queue = service.queue(service.environment()["serviceEnvironmentArn"], quota_managed=True)["jobQueueName"]
    plain = service.queue(service.environment()["serviceEnvironmentArn"])["jobQueueName"]
    for queue_name, sharing in ((MISSING, {"strategy": "RESERVE"}), (plain, {"strategy": "RESERVE"}),
                                (queue, {"strategy": "RESERVE", "borrowLimit": 10})):
        with pytest.raises(ClientError) as caught:
            batch.create_quota_share(quotaShareName="conformance", jobQueue=queue_name, capacityLimits=SHARE_LIMITS,
                                     resourceSharingConfiguration=sharing,
                                     preemptionConfiguration={"inSharePreemption": "DISABLED"})
        assert client_error_code(caught.value) == "ClientException"


@covers("UpdateQuotaShare", "DeleteQuotaShare", "DescribeQuotaShare", group="delete-rules")
def test_quota_share_update_and_delete_rules(batch, service):
    queue = service.queue(service.environment()["serviceEnvironmentArn"], quota_managed=True)["jobQueueName"]
    arn = service.share(queue)["quotaShareArn"]
    service.wait_share(arn)
    with pytest.raises(ClientError) as enabled:
        batch.delete_quota_share(quotaShareArn=arn)
    assert client_error_code(enabled.value) == "ClientException"
    batch.update_quota_share(quotaShareArn=arn, state="DISABLED",
                             preemptionConfiguration={"inSharePreemption": "ENABLED"})
    detail = service.wait_share(arn)
    assert (detail["state"], detail["preemptionConfiguration"]) == ("DISABLED", {"inSharePreemption": "ENABLED"})
    batch.delete_quota_share(quotaShareArn=arn)
    wait_for(lambda: batch.list_quota_shares(jobQueue=queue)["quotaShares"],
          lambda shares: all(s["quotaShareArn"] != arn for s in shares), f"quota share {arn} deletion")
