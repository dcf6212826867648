"""The documented rules of the job operations (batchemu/model/documented_rules/job_rules.py), each shown through
boto3 on a server with the simulate executor (no Docker): SubmitJob's members, DescribeJobs' "only present when"
fields, ListJobs' filters, cancel and terminate single and bulk, (GetJobQueueSnapshot's are in tests/test_documented_job_snapshots.py)."""

from __future__ import annotations

import pytest

from batchemu.config import Config
from batchemu.executors import Outcome, StartFailure
from batchemu.model.attempts import MAX_CONTAINER_REASON, should_retry, start_error
from tests.conftest import (
    client_error,
    describe,
    make_queue,
    register,
    submit,
    unique,
    wait_for_scheduler_passes,
    wait_for_status,
    wait_until,
)

rule = pytest.mark.rule
RETRY_MESSAGE = "Error executing request, Exception : "
# A simulated job that stays RUNNING until stopped (the simulate executor reads this variable).
LONG_RUN = {"environment": [{"name": "BATCHEMU_SIMULATE_SECONDS", "value": "600"}]}


@pytest.fixture
def batchemu_config(tmp_path) -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2,
                  training_dir=str(tmp_path / "training"))


@pytest.fixture
def held(batch_client) -> dict:
    """A queue whose compute environment is DISABLED: its jobs wait in RUNNABLE."""
    return make_queue(batch_client, ce_state="DISABLED")


def simulated(batch_client, command=None, **extra) -> dict:
    return register(batch_client, command or ["true"], image="registry.invalid/nothing:1", **extra)


def fair_share_queue(batch_client, *, ce_state: str = "ENABLED", max_vcpus: int = 4) -> dict:
    policy = batch_client.create_scheduling_policy(name=unique("sp"), fairsharePolicy={"shareDecaySeconds": 0})
    return make_queue(batch_client, ce_state=ce_state, max_vcpus=max_vcpus,
                      schedulingPolicyArn=policy["arn"])


def names(summaries: list[dict]) -> list[str]:
    return [summary["jobName"] for summary in summaries]


# --- SubmitJob: names, definitions, parameters ----------------------------------------------------------

@rule("SubmitJob.jobName.pattern")
def test_job_name_is_128_letters_numbers_hyphens_underscores_starting_alphanumeric(batch_client, held):
    definition = simulated(batch_client)
    for bad in ("bad name!", "-lead", "_lead", "a" * 129, "a.b"):
        assert "jobName must be 1-128 characters" in client_error(
            batch_client.submit_job, jobName=bad, jobQueue=held["name"], jobDefinition=definition["jobDefinitionArn"])
    for good in ("a" * 128, "9-a_B"):
        batch_client.submit_job(jobName=good, jobQueue=held["name"], jobDefinition=definition["jobDefinitionArn"])


@rule("SubmitJob.jobDefinition.forms")
def test_job_definition_by_name_revision_or_arn_and_latest_active_revision(batch_client, held):
    first = simulated(batch_client)
    name = first["jobDefinitionName"]
    second = batch_client.register_job_definition(jobDefinitionName=name, type="container", containerProperties={
        "image": "registry.invalid/nothing:2", "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                                        {"type": "MEMORY", "value": "64"}]})
    batch_client.deregister_job_definition(jobDefinition=second["jobDefinitionArn"])
    unrevisioned_arn = first["jobDefinitionArn"].rsplit(":", 1)[0]
    for reference, expected in ((name, first), (f"{name}:1", first), (unrevisioned_arn, first),
                                (first["jobDefinitionArn"], first)):
        job_id = batch_client.submit_job(jobName="j", jobQueue=held["name"], jobDefinition=reference)["jobId"]
        assert describe(batch_client, job_id)["jobDefinition"] == expected["jobDefinitionArn"], reference


@rule("SubmitJob.jobQueue.forms")
def test_job_queue_by_name_or_arn(batch_client, held):
    definition = simulated(batch_client)
    for reference in (held["name"], held["arn"]):
        job_id = batch_client.submit_job(jobName="q", jobQueue=reference,
                                         jobDefinition=definition["jobDefinitionArn"])["jobId"]
        assert describe(batch_client, job_id)["jobQueue"] == held["arn"]


@rule("SubmitJob.parameters.override")
def test_submitted_parameters_override_the_definitions_defaults(batch_client, held):
    definition = simulated(batch_client, ["echo", "Ref::a", "Ref::b"], parameters={"a": "1", "b": "2"})
    job = describe(batch_client, submit(batch_client, held, definition, parameters={"b": "3"}))
    assert job["parameters"] == {"a": "1", "b": "3"}
    assert job["container"]["command"] == ["echo", "1", "3"]


# --- SubmitJob: arrays ----------------------------------------------------------------------------------

@rule("SubmitJob.arrayProperties.array-job", "ArrayProperties.parent-child", "JobDetail.createdAt.array-child",
      "ListJobs.array-parent.pending", "JobTimeout.array-children")
def test_an_array_job_its_children_and_their_fields(batch_client, held):
    parent_id = submit(batch_client, held, simulated(batch_client), arrayProperties={"size": 3},
                       timeout={"attemptDurationSeconds": 120})
    wait_for_status(batch_client, f"{parent_id}:2", ("RUNNABLE",), timeout=30)
    parent = wait_for_status(batch_client, parent_id, ("PENDING",), timeout=30)
    assert parent["arrayProperties"]["size"] == 3 and "index" not in parent["arrayProperties"]
    assert sum(parent["arrayProperties"]["statusSummary"].values()) == 3
    children = batch_client.describe_jobs(jobs=[f"{parent_id}:{i}" for i in range(3)])["jobs"]
    assert [child["arrayProperties"] for child in children] == [{"index": i} for i in range(3)]
    assert all(child["createdAt"] >= parent["createdAt"] for child in children)
    assert all(child["timeout"] == {"attemptDurationSeconds": 120} for child in children)
    listed = batch_client.list_jobs(arrayJobId=parent_id, jobStatus="RUNNABLE")["jobSummaryList"]
    assert sorted(summary["arrayProperties"]["index"] for summary in listed) == [0, 1, 2]
    assert all(set(summary["arrayProperties"]) == {"index"} for summary in listed)
    on_queue = batch_client.list_jobs(jobQueue=held["name"], jobStatus="PENDING")["jobSummaryList"]
    assert [(s["jobId"], s["arrayProperties"]["size"]) for s in on_queue] == [(parent_id, 3)]


@rule("CancelJob.array-parent")
def test_cancelling_an_array_parent_cancels_its_children_then_the_parent(batch_client, held):
    parent_id = submit(batch_client, held, simulated(batch_client), arrayProperties={"size": 2})
    batch_client.cancel_job(jobId=parent_id, reason="all of it")
    parent = wait_for_status(batch_client, parent_id, ("FAILED",), timeout=30)
    assert parent["statusReason"] == "all of it"
    children = batch_client.describe_jobs(jobs=[f"{parent_id}:0", f"{parent_id}:1"])["jobs"]
    assert [(c["status"], c["statusReason"], c["isCancelled"]) for c in children] == [("FAILED", "all of it", True)] * 2


# --- RetryStrategy and EvaluateOnExit, on both operations that take them --------------------------------

ATTEMPTS = "Retry attempts should be between 1 and 10."
RETRY_CASES = [
    pytest.param({"attempts": 0}, ATTEMPTS, marks=rule("RetryStrategy.attempts.range"), id="attempts-0"),
    pytest.param({"attempts": 11}, ATTEMPTS, marks=rule("RetryStrategy.attempts.range"), id="attempts-11"),
    pytest.param({"attempts": 2, "evaluateOnExit": [{"onExitCode": str(i), "action": "RETRY"} for i in range(6)]},
                 "evaluateOnExit can contain at most 5 conditions.", marks=rule("RetryStrategy.evaluateOnExit.max"),
                 id="six-conditions"),
    pytest.param({"evaluateOnExit": [{"onExitCode": "1", "action": "RETRY"}]},
                 "RetryAttempts must be provided with retry strategy",
                 marks=rule("RetryStrategy.evaluateOnExit.needs-attempts"), id="no-attempts"),
    pytest.param({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1a", "action": "RETRY"}]},
                 "Invalid onExitCode pattern 1a.", marks=rule("EvaluateOnExit.patterns.form"), id="exit-code"),
    pytest.param({"attempts": 2, "evaluateOnExit": [{"onStatusReason": "a-b", "action": "EXIT"}]},
                 "Invalid onStatusReason pattern a-b.", marks=rule("EvaluateOnExit.patterns.form"), id="hyphen"),
    pytest.param({"attempts": 2, "evaluateOnExit": [{"onReason": "a*b", "action": "EXIT"}]},
                 "Invalid onReason pattern a*b.", marks=rule("EvaluateOnExit.patterns.form"), id="inner-star"),
    pytest.param({"attempts": 2, "evaluateOnExit": [{"onReason": "a" * 513, "action": "EXIT"}]},
                 "Invalid onReason pattern", marks=rule("EvaluateOnExit.patterns.form"), id="513-characters"),
]


@pytest.mark.parametrize("strategy, message", RETRY_CASES)
def test_retry_strategy_rules_hold_on_submit_job_and_register_job_definition(batch_client, held, strategy, message):
    definition = simulated(batch_client)
    on_submit = client_error(batch_client.submit_job, jobName="r", jobQueue=held["name"],
                             jobDefinition=definition["jobDefinitionArn"], retryStrategy=strategy)
    on_register = client_error(batch_client.register_job_definition, jobDefinitionName="r", type="container",
                               containerProperties={"image": "x", "vcpus": 1, "memory": 64}, retryStrategy=strategy)
    assert on_submit.startswith(RETRY_MESSAGE + message) and on_register.startswith(RETRY_MESSAGE + message)


@rule("RetryStrategy.attempts.range", "RetryStrategy.evaluateOnExit.max", "EvaluateOnExit.patterns.form")
def test_the_widest_retry_strategy_is_accepted(batch_client, held):
    strategy = {"attempts": 10, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "CannotPullContainerError: x*", "action": "EXIT"},
        {"onExitCode": "13*", "action": "EXIT"}, {"onReason": "a" * 512, "action": "EXIT"},
        {"onExitCode": "*", "action": "RETRY"}]}
    job_id = submit(batch_client, held, simulated(batch_client), retryStrategy=strategy)
    assert describe(batch_client, job_id)["retryStrategy"] == strategy


@rule("RetryStrategy.evaluateOnExit.none-matching-retries", "EvaluateOnExit.conditions.all", "SubmitJob.timeout.not-retried")
def test_which_attempts_are_retried():
    def job(*conditions: dict) -> dict:
        return {"retryStrategy": {"attempts": 3, "evaluateOnExit": list(conditions)}, "attempts": [{}]}
    reason = "Essential container in task exited"
    assert should_retry(job({"onExitCode": "9", "action": "EXIT"}), 1, reason, None)  # none matches: retried
    both = job({"onExitCode": "1*", "onStatusReason": "Essential*", "action": "EXIT"})
    assert not should_retry(both, 12, reason, None)  # both conditions match: EXIT
    assert should_retry(both, 2, reason, None)  # one does not: no condition matches, retried
    assert not should_retry(job(), 1, reason, None, timed_out=True)


@rule("EvaluateOnExit.patterns.case")
def test_patterns_match_without_regard_to_case():
    job = {"retryStrategy": {"attempts": 3, "evaluateOnExit": [{"onStatusReason": "host ec2*", "action": "EXIT"}]},
           "attempts": [{}]}
    # Not followed: AWS asks for an exact match of the start; batchemu ignores case.
    assert not should_retry(job, None, "Host EC2 (instance i-0) terminated.", None)


@rule("RetryStrategy.attempts.count")
def test_a_failing_job_runs_as_many_times_as_its_attempts(batch_client, queue):
    definition = simulated(batch_client, containerProperties={
        "environment": [{"name": "BATCHEMU_SIMULATE_EXIT_CODE", "value": "1"}]}, retryStrategy={"attempts": 3})
    job = wait_for_status(batch_client, submit(batch_client, queue, definition), ("FAILED",))
    assert [attempt["container"]["exitCode"] for attempt in job["attempts"]] == [1, 1, 1]


@rule("SubmitJob.retryStrategy.overrides", "SubmitJob.timeout.overrides")
def test_submitted_retry_strategy_and_timeout_override_the_definitions(batch_client, held):
    definition = simulated(batch_client, retryStrategy={"attempts": 3}, timeout={"attemptDurationSeconds": 100})
    inherited = describe(batch_client, submit(batch_client, held, definition))
    assert (inherited["retryStrategy"]["attempts"], inherited["timeout"]) == (3, {"attemptDurationSeconds": 100})
    overridden = describe(batch_client, submit(batch_client, held, definition, retryStrategy={"attempts": 2},
                                               timeout={"attemptDurationSeconds": 200}))
    assert (overridden["retryStrategy"]["attempts"], overridden["timeout"]) == (2, {"attemptDurationSeconds": 200})


# --- Tags -----------------------------------------------------------------------------------------------

@rule("SubmitJob.propagateTags.combined-limit", "SubmitJob.propagateTags.default")
def test_over_50_propagated_tags_fail_the_job(batch_client, held):
    definition_tags = {f"d{i}": "v" for i in range(30)}
    propagating = simulated(batch_client, propagateTags=True, tags=definition_tags)
    plain = simulated(batch_client, tags=definition_tags)
    fifty = {**{f"d{i}": "job" for i in range(5)}, **{f"j{i}": "v" for i in range(20)}}  # 5 shared keys: 50
    fifty_one = {f"j{i}": "v" for i in range(21)}
    kept = describe(batch_client, submit(batch_client, held, propagating, tags=fifty))
    assert kept["propagateTags"] is True and kept["status"] != "FAILED"
    failed = describe(batch_client, submit(batch_client, held, propagating, tags=fifty_one))
    assert failed["status"] == "FAILED" and "51 tags" in failed["statusReason"]
    assert failed["tags"] == fifty_one and not failed.get("attempts")
    not_propagated = describe(batch_client, submit(batch_client, held, propagating, tags=fifty_one,
                                                   propagateTags=False))
    assert not_propagated["propagateTags"] is False and not_propagated["status"] != "FAILED"
    default = describe(batch_client, submit(batch_client, held, plain, tags=fifty_one))
    assert default["propagateTags"] is False and default["status"] != "FAILED"
    asked = describe(batch_client, submit(batch_client, held, plain, tags=fifty_one, propagateTags=True))
    assert asked["status"] == "FAILED"


# --- Fair share: shareIdentifier and schedulingPriorityOverride -----------------------------------------

@rule("SubmitJob.shareIdentifier.fair-share", "SubmitJob.shareIdentifier.form",
      "SubmitJob.schedulingPriorityOverride.range", "SubmitJob.schedulingPriorityOverride.overrides",
      "SubmitJob.schedulingPriorityOverride.fair-share-only")
def test_share_identifier_and_priority_override(batch_client, held):
    fair = fair_share_queue(batch_client, ce_state="DISABLED")
    definition = simulated(batch_client, schedulingPriority=5)
    arn = definition["jobDefinitionArn"]

    def refused(queue: dict, **extra) -> str:
        return client_error(batch_client.submit_job, jobName="s", jobQueue=queue["name"], jobDefinition=arn, **extra)
    assert refused(fair) == "shareIdentifier must be specified."
    assert "shareIdentifier can only be specified" in refused(held, shareIdentifier="a")
    assert "schedulingPriorityOverride can only be specified" in refused(held, schedulingPriorityOverride=1)
    for bad in ("a-b", "a" * 256, "a*b"):
        assert refused(fair, shareIdentifier=bad).startswith(f"Invalid shareIdentifier {bad}")
    for bad in (-1, 10_000):
        assert refused(fair, shareIdentifier="a", schedulingPriorityOverride=bad) == \
            "schedulingPriorityOverride must be between 0 and 9999."
    inherited = describe(batch_client, submit(batch_client, fair, definition, shareIdentifier="a" * 255))
    assert (inherited["shareIdentifier"], inherited["schedulingPriority"]) == ("a" * 255, 5)
    for priority in (0, 9999):
        job = describe(batch_client, submit(batch_client, fair, definition, shareIdentifier="team*",
                                            schedulingPriorityOverride=priority))
        assert job["schedulingPriority"] == priority
    shared = batch_client.list_jobs(jobQueue=fair["name"], jobStatus="SUBMITTED",
                                    filters=[{"name": "SHARE_IDENTIFIER", "values": ["team*"]}])["jobSummaryList"]
    assert all(s["shareIdentifier"] == "team*" and s["status"] == "SUBMITTED" for s in shared)


@rule("SubmitJob.shareIdentifier.active-limit")
def test_a_fair_share_queue_takes_500_active_share_identifiers(batch_client):
    fair = fair_share_queue(batch_client, ce_state="DISABLED")
    definition = simulated(batch_client)
    ids = [submit(batch_client, fair, definition, shareIdentifier=f"s{i}") for i in range(500)]
    assert "already has 500 active share identifiers" in client_error(
        batch_client.submit_job, jobName="x", jobQueue=fair["name"], jobDefinition=definition["jobDefinitionArn"],
        shareIdentifier="new")
    submit(batch_client, fair, definition, shareIdentifier="s7")  # an active share takes more jobs
    batch_client.cancel_job(jobId=ids[0], reason="s0 is done")  # s0 has no unfinished job left
    submit(batch_client, fair, definition, shareIdentifier="new")


# --- Overrides by kind of job ----------------------------------------------------------------------------

def register_nodes(batch_client, ranges: list[str], num_nodes: int, main_node: int = 0, **extra) -> dict:
    container = {"image": "registry.invalid/nothing:1", "command": ["true"],
                 "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
    return batch_client.register_job_definition(
        jobDefinitionName=unique("mnp"), type="multinode", nodeProperties={
            "numNodes": num_nodes, "mainNode": main_node,
            "nodeRangeProperties": [{"targetNodes": target, "container": container} for target in ranges]}, **extra)


@rule("SubmitJob.nodeOverrides.multi-node-only", "SubmitJob.nodeOverrides.containerOverrides.exclusive",
      "SubmitJob.propertiesOverride.kind", "NodeOverrides.numNodes.conditions")
def test_which_overrides_go_with_which_job_definition(batch_client, held):
    plain, nodes = simulated(batch_client), register_nodes(batch_client, ["0:"], 2)
    closed = register_nodes(batch_client, ["0:1"], 2)

    def refused(definition: dict, **extra) -> str:
        return client_error(batch_client.submit_job, jobName="o", jobQueue=held["name"],
                            jobDefinition=definition["jobDefinitionArn"], **extra)
    assert refused(plain, nodeOverrides={"numNodes": 2}) == \
        "Node overrides can only be specified for multi-node parallel jobs."
    assert refused(nodes, nodeOverrides={"numNodes": 3}, containerOverrides={"command": ["x"]}) == \
        "Container overrides and node overrides are mutually exclusive, only one can be set."
    assert "ecsPropertiesOverride can't be specified" in refused(plain, ecsPropertiesOverride={"taskProperties": []})
    assert "eksPropertiesOverride can't be specified" in refused(plain, eksPropertiesOverride={"podProperties": {}})
    assert "numNodes can only be overridden" in refused(closed, nodeOverrides={"numNodes": 3})
    assert "mainNode" in client_error(
        batch_client.submit_job, jobName="o", jobQueue=held["name"],
        jobDefinition=register_nodes(batch_client, ["0:"], 3, main_node=2)["jobDefinitionArn"],
        nodeOverrides={"numNodes": 2})
    grown = describe(batch_client, submit(batch_client, held, nodes, nodeOverrides={"numNodes": 3}))
    assert grown["nodeProperties"]["numNodes"] == 3


@rule("JobDetail.nodeProperties.nodeDetails", "JobTimeout.multi-node-whole-job")
def test_a_multi_node_job_has_node_properties_and_its_nodes_node_details(batch_client, held):
    parent_id = submit(batch_client, held, register_nodes(batch_client, ["0:"], 2, main_node=1),
                       timeout={"attemptDurationSeconds": 300})
    parent = describe(batch_client, parent_id)
    assert parent["nodeProperties"]["numNodes"] == 2 and "nodeDetails" not in parent
    assert parent["timeout"] == {"attemptDurationSeconds": 300}
    nodes = batch_client.describe_jobs(jobs=[f"{parent_id}#0", f"{parent_id}#1"])["jobs"]
    assert [node["nodeDetails"] for node in nodes] == [{"nodeIndex": 0, "isMainNode": False},
                                                       {"nodeIndex": 1, "isMainNode": True}]
    assert all("nodeProperties" not in node and "timeout" not in node for node in nodes)


# --- DescribeJobs ---------------------------------------------------------------------------------------

@rule("DescribeJobs.jobs.max")
def test_describe_jobs_takes_up_to_100_ids(batch_client, held):
    job_id = submit(batch_client, held, simulated(batch_client))
    assert len(batch_client.describe_jobs(jobs=[job_id] + [f"missing-{i}" for i in range(99)])["jobs"]) == 1
    assert client_error(batch_client.describe_jobs, jobs=[job_id] * 101) == \
        "Error executing request, Exception : Maximum number of jobs supported is  100 ."


@rule("JobDetail.startedAt.running", "JobDetail.stoppedAt.terminal", "ContainerDetail.taskArn.logStreamName")
def test_times_task_and_log_stream_appear_as_the_job_gets_there(batch_client, held, queue):
    waiting = describe(batch_client, submit(batch_client, held, simulated(batch_client)))
    assert not {"startedAt", "stoppedAt"} & set(waiting)
    assert not {"taskArn", "logStreamName"} & set(waiting["container"])
    batch_client.cancel_job(jobId=waiting["jobId"], reason="never ran")
    cancelled = describe(batch_client, waiting["jobId"])
    # Relaxed: a job that never ran still gets stoppedAt (Metaflow waits for stoppedAt > 0).
    assert "startedAt" not in cancelled and cancelled["stoppedAt"] >= cancelled["createdAt"]
    ran = wait_for_status(batch_client, submit(batch_client, queue, simulated(batch_client)), ("SUCCEEDED",))
    assert ran["startedAt"] <= ran["stoppedAt"]
    assert ran["container"]["taskArn"] and ran["container"]["logStreamName"]
    assert ran["attempts"][0]["container"]["logStreamName"] == ran["container"]["logStreamName"]


@rule("ContainerDetail.logStreamName.group")
def test_a_jobs_log_stream_is_in_the_aws_batch_job_group(batch_client, logs_client, queue):
    job = wait_for_status(batch_client, submit(batch_client, queue, simulated(batch_client, ["echo", "hi"])),
                          ("SUCCEEDED",))
    events = logs_client.get_log_events(logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"])
    assert events["events"], events


@rule("JobDetail.statusReason.blocked")
def test_a_job_too_big_for_every_compute_environment_says_so(batch_client):
    small = make_queue(batch_client, max_vcpus=2)
    job_id = submit(batch_client, small, simulated(batch_client, vcpus="4"))

    def blocked() -> dict | None:
        job = describe(batch_client, job_id)
        return job if job.get("statusReason", "").startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE") \
            else None
    assert wait_until(blocked, 30)["status"] == "RUNNABLE"


@rule("JobDetail.container.multi-container")
def test_a_multi_container_job_has_no_container_block(batch_client, held):
    definition = batch_client.register_job_definition(
        jobDefinitionName=unique("ecs"), type="container", ecsProperties={"taskProperties": [{"containers": [
            {"name": name, "image": "registry.invalid/nothing:1", "command": ["true"],
             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
            for name in ("a", "b")]}]})
    job = describe(batch_client, submit(batch_client, held, definition))
    assert "container" not in job
    assert [c["name"] for c in job["ecsProperties"]["taskProperties"][0]["containers"]] == ["a", "b"]


@rule("ContainerDetail.reason.max")
def test_a_container_reason_is_at_most_255_characters():
    reason = start_error(StartFailure(Outcome.PULL_FAILED, "pull access denied " * 40))
    assert reason.startswith("CannotPullContainerError: pull access denied") and len(reason) == MAX_CONTAINER_REASON


# --- ListJobs -------------------------------------------------------------------------------------------

def listed(batch_client, queue: dict, *filters: tuple[str, str], **extra) -> list[str]:
    found = batch_client.list_jobs(jobQueue=queue["name"], filters=[{"name": name, "values": [value]}
                                                                    for name, value in filters], **extra)
    return names(found["jobSummaryList"])


@rule("ListJobs.scope.one-of", "ListJobs.jobStatus.default", "ListJobs.filters.jobStatus-ignored",
      "ListJobs.filters.one", "ListJobs.filters.newest-first", "ListJobs.filters.not-children",
      "ListJobs.JOB_NAME.forms", "ListJobs.CREATED_AT.forms")
def test_list_jobs_scope_default_status_and_name_and_time_filters(batch_client, held):
    definition = simulated(batch_client)
    created = []
    for name in ("Train-1", "train-2", "eval"):
        job_id = batch_client.submit_job(jobName=name, jobQueue=held["name"],
                                         jobDefinition=definition["jobDefinitionArn"])["jobId"]
        created.append(describe(batch_client, job_id)["createdAt"])
    batch_client.submit_job(jobName="trainer", jobQueue=held["name"], jobDefinition=definition["jobDefinitionArn"],
                            arrayProperties={"size": 2})
    for scopes in ({}, {"jobQueue": held["name"], "arrayJobId": "x"}):
        assert "Exactly one of" in client_error(batch_client.list_jobs, **scopes)
    assert listed(batch_client, held) == []  # only RUNNING jobs without a status
    wait_until(lambda: len(listed(batch_client, held, jobStatus="RUNNABLE")) == 3)
    assert listed(batch_client, held, ("JOB_NAME", "TRAIN*"), jobStatus="SUCCEEDED") == ["trainer", "train-2", "Train-1"]
    assert listed(batch_client, held, ("JOB_NAME", "train-1")) == ["Train-1"]
    every = ["trainer", "eval", "train-2", "Train-1"]
    assert listed(batch_client, held, ("AFTER_CREATED_AT", str(created[0] - 1))) == every
    assert listed(batch_client, held, ("BEFORE_CREATED_AT", str(created[-1] + 60_000))) == every
    assert listed(batch_client, held, ("BEFORE_CREATED_AT", str(created[0]))) == []
    assert "milliseconds" in client_error(batch_client.list_jobs, jobQueue=held["name"], filters=[
        {"name": "AFTER_CREATED_AT", "values": ["yesterday"]}])
    assert "Only one filter" in client_error(batch_client.list_jobs, jobQueue=held["name"], filters=[
        {"name": "JOB_NAME", "values": ["a"]}, {"name": "JOB_DEFINITION", "values": ["b"]}])


@rule("ListJobs.JOB_DEFINITION.forms")
def test_list_jobs_by_job_definition_name_prefix_and_arn(batch_client, held):
    name = unique("Jd")
    common = {"type": "container", "containerProperties": {"image": "registry.invalid/nothing:1", "resourceRequirements": [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}}
    first = batch_client.register_job_definition(jobDefinitionName=name, **common)
    second = batch_client.register_job_definition(jobDefinitionName=name, **common)
    longer = batch_client.register_job_definition(jobDefinitionName=name + "A", **common)
    for job_name, definition in (("one", first), ("two", second), ("longer", longer)):
        batch_client.submit_job(jobName=job_name, jobQueue=held["name"], jobDefinition=definition["jobDefinitionArn"])
    assert listed(batch_client, held, ("JOB_DEFINITION", name)) == ["two", "one"]
    assert listed(batch_client, held, ("JOB_DEFINITION", name + "*")) == ["longer", "two", "one"]
    assert listed(batch_client, held, ("JOB_DEFINITION", name.lower())) == []  # case-sensitive
    assert listed(batch_client, held, ("JOB_DEFINITION", second["jobDefinitionArn"])) == ["two"]
    assert "asterisk" in client_error(batch_client.list_jobs, jobQueue=held["name"], filters=[
        {"name": "JOB_DEFINITION", "values": [first["jobDefinitionArn"] + "*"]}])


@rule("ListJobs.maxResults.filtered", "ListJobs.nextToken.last-page")
def test_a_filtered_page_holds_at_most_100_jobs(batch_client, held):
    definition = simulated(batch_client)
    for _ in range(101):
        batch_client.submit_job(jobName="many", jobQueue=held["name"], jobDefinition=definition["jobDefinitionArn"])
    page = batch_client.list_jobs(jobQueue=held["name"], maxResults=1000,
                                  filters=[{"name": "JOB_NAME", "values": ["many"]}])
    assert len(page["jobSummaryList"]) == 100 and page["nextToken"]
    rest = batch_client.list_jobs(jobQueue=held["name"], nextToken=page["nextToken"],
                                  filters=[{"name": "JOB_NAME", "values": ["many"]}])
    assert len(rest["jobSummaryList"]) == 1 and "nextToken" not in rest
    wait_until(lambda: len(batch_client.list_jobs(jobQueue=held["name"], jobStatus="RUNNABLE")["jobSummaryList"]) == 101)
    assert "between 1 and 1000" in client_error(batch_client.list_jobs, jobQueue=held["name"], maxResults=0)


@rule("JobSummary.isCancelled.only-when-true")
def test_job_summaries_carry_is_cancelled_and_is_terminated_only_when_true(batch_client, held):
    definition = simulated(batch_client)
    ids = [submit(batch_client, held, definition) for _ in range(3)]
    batch_client.cancel_job(jobId=ids[0], reason="c")
    batch_client.terminate_job(jobId=ids[1], reason="t")
    summaries = {s["jobId"]: s for s in batch_client.list_jobs(
        jobQueue=held["name"], filters=[{"name": "JOB_NAME", "values": ["job*"]}])["jobSummaryList"]}
    flags = {job_id: {k: v for k, v in summaries[job_id].items() if k in ("isCancelled", "isTerminated")}
             for job_id in ids}
    assert flags == {ids[0]: {"isCancelled": True}, ids[1]: {"isTerminated": True}, ids[2]: {}}
    details = {j["jobId"]: j for j in batch_client.describe_jobs(jobs=ids)["jobs"]}
    assert (details[ids[2]]["isCancelled"], details[ids[2]]["isTerminated"]) == (False, False)


# --- CancelJob, TerminateJob and their bulk forms --------------------------------------------------------

@rule("CancelJob.queued-only", "TerminateJob.statuses")
def test_cancel_fails_queued_jobs_only_and_terminate_fails_any(batch_client, batchemu_server, held, queue):
    definition = simulated(batch_client, containerProperties=LONG_RUN)
    queued = submit(batch_client, held, definition)
    batch_client.cancel_job(jobId=queued, reason="queued")
    assert describe(batch_client, queued)["status"] == "FAILED"
    running = submit(batch_client, queue, definition)
    wait_for_status(batch_client, running, ("RUNNING",), timeout=30)
    assert batch_client.cancel_job(jobId=running, reason="too late")["ResponseMetadata"]["HTTPStatusCode"] == 200
    wait_for_scheduler_passes(batchemu_server)
    assert describe(batch_client, running)["status"] == "RUNNING"
    batch_client.terminate_job(jobId=running, reason="stop")
    stopped = wait_for_status(batch_client, running, ("FAILED",), timeout=30)
    assert (stopped["statusReason"], stopped["isTerminated"]) == ("stop", True)
    waiting = submit(batch_client, held, definition)
    batch_client.terminate_job(jobId=waiting, reason="never started")
    assert describe(batch_client, waiting)["status"] == "FAILED"


@rule("CancelJob.pending-after-dependencies")
def test_a_pending_job_is_cancelled_at_once(batch_client, held):
    definition = simulated(batch_client)
    first = submit(batch_client, held, definition)
    dependent = submit(batch_client, held, definition, dependsOn=[{"jobId": first}])
    wait_for_status(batch_client, dependent, ("PENDING",), timeout=30)
    batch_client.cancel_job(jobId=dependent, reason="not needed")
    # Not followed: AWS cancels it once its dependencies have completed; batchemu at once.
    assert describe(batch_client, dependent)["status"] == "FAILED"
    assert describe(batch_client, first)["status"] == "RUNNABLE"


@rule("CancelJob.reason")
@pytest.mark.parametrize("operation", ["cancel_job", "terminate_job", "cancel_jobs", "terminate_jobs"])
def test_a_reason_is_at_most_1024_characters(batch_client, held, operation):
    job_id = submit(batch_client, held, simulated(batch_client))
    call = getattr(batch_client, operation)
    target = {"jobs": [job_id]} if operation.endswith("jobs") else {"jobId": job_id}
    assert "at most 1024 characters" in client_error(call, reason="r" * 1025, **target)
    call(reason="r" * 1024, **target)
    assert describe(batch_client, job_id)["statusReason"] == "r" * 1024


@rule("CancelJobs.jobs.max", "CancelJobs.not-found-processed", "CancelJobs.errors")
@pytest.mark.parametrize("operation", ["cancel_jobs", "terminate_jobs"])
def test_bulk_calls_count_unknown_jobs_as_processed(batch_client, held, operation):
    call = getattr(batch_client, operation)
    job_id = submit(batch_client, held, simulated(batch_client))
    assert "between 1 and 50" in client_error(call, jobs=[job_id] * 51, reason="r")
    queue_arn = held["arn"]
    answer = call(jobs=[job_id, "no-such-job", queue_arn], reason="bulk")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["successful"] == [job_id, "no-such-job"]
    assert [(e["job"], e["code"]) for e in answer["errors"]] == [(queue_arn, "ValidationException")]
    assert describe(batch_client, job_id)["statusReason"] == "bulk"
