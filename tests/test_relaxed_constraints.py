"""Constraints of botocore's model that AWS does not enforce (parser.RELAXED), each with the client or document
that depends on it, and the neighbouring constraints that stay enforced."""

from __future__ import annotations

import pytest

from batchemu.errors import ClientException
from batchemu.model.attempts import should_retry
from batchemu.protocol.model import service_model
from batchemu.protocol.parser import RELAXED, validate
from tests.conftest import client_error, describe, register, unique

MODEL = service_model("batch")
TAGGED_CREATES = sorted(key.split(".")[0] for key in RELAXED if key.endswith(".tags"))


def _input(operation: str):
    return MODEL.operation_model(operation).input_shape


def _shapes_in_model() -> dict:
    found: dict = {}
    pending = [MODEL.operation_model(name).input_shape for name in MODEL.operation_names]
    while pending:
        shape = pending.pop()
        if shape is None or shape.name in found:
            continue
        found[shape.name] = shape
        pending.extend(shape.members.values() if shape.type_name == "structure" else
                       [shape.member] if shape.type_name == "list" else
                       [shape.key, shape.value] if shape.type_name == "map" else [])
    return found


def test_every_relaxation_names_a_constraint_the_model_states():
    shapes = _shapes_in_model()
    for key, relaxation in RELAXED.items():
        assert relaxation.reason
        if "." in key:
            operation, member = key.split(".", 1)
            shape = _input(operation).members[member]
        else:
            shape = shapes[key]
        if not relaxation.min_length:
            assert shape.metadata.get("min"), key
        if not relaxation.enum_case:
            assert shape.enum, key


# --- Airflow BatchOperator sends tags={} ---------------------------------------------------------------

def test_every_create_operation_with_tags_is_relaxed_and_tag_resource_is_not():
    creates = sorted(name for name in MODEL.operation_names
                     if (name.startswith(("Create", "Register", "Submit")))
                     and _input(name) is not None and "tags" in _input(name).members)
    assert TAGGED_CREATES == creates


@pytest.mark.parametrize("operation", TAGGED_CREATES)
def test_airflow_batch_operator_empty_tags_pass_validation_on_create_operations(operation):
    """Airflow's BatchOperator (and BatchCreateComputeEnvironmentOperator) send `tags or {}`: AWS accepts {}."""
    shape = _input(operation)
    try:
        validate(shape, {"tags": {}}, operation)
    except ClientException as exc:
        assert "'tags'" not in exc.message, exc.message


def test_airflow_batch_operator_submit_job_with_empty_tags_is_accepted(batch_client, queue):
    """Airflow BatchOperator.submit_job: parameters={} and tags={} on every SubmitJob."""
    definition = register(batch_client)
    job = batch_client.submit_job(jobName=unique("airflow"), jobQueue=queue["name"],
                                  jobDefinition=definition["jobDefinitionArn"], parameters={}, tags={})
    assert describe(batch_client, job["jobId"]).get("tags", {}) == {}


def test_airflow_create_compute_environment_operator_with_empty_tags_is_accepted(batch_client):
    """Airflow BatchCreateComputeEnvironmentOperator sends tags={} when none are given."""
    name = unique("ce")
    batch_client.create_compute_environment(computeEnvironmentName=name, type="UNMANAGED", tags={})
    found = batch_client.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
    assert [ce["computeEnvironmentName"] for ce in found] == [name]


def test_tag_resource_still_needs_at_least_one_tag():
    with pytest.raises(ClientException) as caught:
        validate(_input("TagResource"), {"resourceArn": "arn:aws:batch:us-east-1:1:job-queue/q", "tags": {}},
                 "TagResource")
    assert "at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1" \
        in caught.value.message


def test_more_than_50_tags_are_still_refused_on_create():
    with pytest.raises(ClientException) as caught:
        validate(_input("SubmitJob"), {"jobName": "n", "jobQueue": "q", "jobDefinition": "d",
                                       "tags": {f"k{i}": "v" for i in range(51)}}, "SubmitJob")
    assert "Member must have length less than or equal to 50" in caught.value.message


def test_empty_tag_keys_are_still_refused():
    with pytest.raises(ClientException) as caught:
        validate(_input("SubmitJob"), {"jobName": "n", "jobQueue": "q", "jobDefinition": "d", "tags": {"": "v"}},
                 "SubmitJob")
    assert "at 'tags.key'" in caught.value.message


# --- API reference: evaluateOnExit action is case-insensitive ------------------------------------------

@pytest.mark.parametrize("action", ["retry", "Exit", "EXIT", "rEtRy"])
def test_api_reference_evaluate_on_exit_action_is_case_insensitive(action):
    """API reference, EvaluateOnExit.action: "The values aren't case sensitive" (Terraform sends retry/exit)."""
    strategy = {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": action}]}
    for operation, params in (("SubmitJob", {"jobName": "n", "jobQueue": "q", "jobDefinition": "d"}),
                              ("RegisterJobDefinition", {"jobDefinitionName": "d", "type": "container"})):
        cleaned = validate(_input(operation), {**params, "retryStrategy": strategy}, operation)
        assert cleaned["retryStrategy"]["evaluateOnExit"][0]["action"] == action.upper()


def test_evaluate_on_exit_action_outside_the_enum_is_still_refused():
    with pytest.raises(ClientException) as caught:
        validate(_input("SubmitJob"), {"jobName": "n", "jobQueue": "q", "jobDefinition": "d", "retryStrategy": {
            "attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "retry-later"}]}}, "SubmitJob")
    assert "Member must satisfy enum value set: [RETRY, EXIT]" in caught.value.message


def test_other_enums_stay_case_sensitive():
    with pytest.raises(ClientException) as caught:
        validate(_input("CreateComputeEnvironment"), {"computeEnvironmentName": "ce", "type": "managed"},
                 "CreateComputeEnvironment")
    assert "at 'type'" in caught.value.message


def test_terraform_lower_case_actions_are_accepted_and_decide_retries(batch_client):
    """Terraform's aws_batch_job_definition documents evaluate_on_exit action values `retry` and `exit`."""
    strategy = {"attempts": 3, "evaluateOnExit": [{"onExitCode": "3", "action": "exit"},
                                                  {"onExitCode": "*", "action": "retry"}]}
    registered = register(batch_client, retryStrategy=strategy)
    stored = batch_client.describe_job_definitions(jobDefinitions=[registered["jobDefinitionArn"]])
    rules = stored["jobDefinitions"][0]["retryStrategy"]["evaluateOnExit"]
    # Kept as the model spells it: DescribeJobDefinitions answers within botocore's RetryAction values.
    assert [rule["action"] for rule in rules] == ["EXIT", "RETRY"]
    job = {"retryStrategy": strategy, "attempts": [{}]}
    assert should_retry(job, 1, "Essential container in task exited", None)
    assert not should_retry(job, 3, "Essential container in task exited", None)


def test_submit_job_with_lower_case_action_is_accepted(batch_client, queue):
    definition = register(batch_client)
    job = batch_client.submit_job(jobName=unique("j"), jobQueue=queue["name"],
                                  jobDefinition=definition["jobDefinitionArn"],
                                  retryStrategy={"attempts": 2, "evaluateOnExit": [
                                      {"onExitCode": "1", "action": "exit"}]})
    assert describe(batch_client, job["jobId"])["retryStrategy"]["evaluateOnExit"][0]["action"] == "EXIT"


def test_job_name_pattern_is_still_enforced(batch_client, queue):
    """Not relaxed: AWS refuses a jobName outside [A-Za-z0-9_-]{1,128} starting with a letter or digit."""
    definition = register(batch_client)
    message = client_error(batch_client.submit_job, jobName="bad name!", jobQueue=queue["name"],
                           jobDefinition=definition["jobDefinitionArn"])
    assert message
