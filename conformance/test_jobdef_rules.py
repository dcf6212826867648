"""What RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition and SubmitJob's container
overrides accept and refuse, as the API reference states it in words (ResourceRequirement, NodeProperties,
DescribeJobDefinitions, DeregisterJobDefinition, ContainerOverrides pages)."""

from __future__ import annotations

import pytest

from conformance.harness import refused

covers = pytest.mark.covers
rule = pytest.mark.rule


def _requirements(vcpus: str, memory: str) -> list[dict]:
    return [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}]


# API_ResourceRequirement.html: "You must specify at least 4 MiB of memory for a job"; "For Amazon EC2 resources,
# you must specify at least one vCPU". The same rules hold for SubmitJob's containerOverrides
# (API_ContainerOverrides.html: resourceRequirements "overrides the settings in the job definition").
@covers("RegisterJobDefinition", "SubmitJob", group="request-rules")
@rule("ResourceRequirement.MEMORY.minimum", "ResourceRequirement.VCPU.ec2_minimum")
def test_memory_under_4_mib_and_vcpu_under_1_are_refused_at_register_and_at_submit(batch, held_env, jobdef, prefix):
    for vcpus, memory in (("1", "3"), ("0.5", "64")):
        refused(batch.register_job_definition, jobDefinitionName=f"{prefix}-small-{memory}", type="container",
                containerProperties={"image": "busybox", "resourceRequirements": _requirements(vcpus, memory)})
    definition = jobdef(command=["echo", "x"])
    for vcpus, memory in (("1", "3"), ("0.5", "64")):
        refused(batch.submit_job, jobName=f"{prefix}-small-override", jobQueue=held_env.queue,
                jobDefinition=definition["jobDefinitionArn"],
                containerOverrides={"resourceRequirements": _requirements(vcpus, memory)})


# API_ContainerOverrides.html, command: "This parameter can't contain an empty string."
@covers("SubmitJob", group="request-rules")
@rule("ContainerOverrides.command.empty_string")
def test_an_empty_string_in_an_override_command_is_refused(batch, held_env, jobdef, prefix):
    definition = jobdef(command=["echo", "x"])
    refused(batch.submit_job, jobName=f"{prefix}-empty-arg", jobQueue=held_env.queue,
            jobDefinition=definition["jobDefinitionArn"], containerOverrides={"command": ["echo", ""]})


# API_RegisterJobDefinition.html, schedulingPriority: "The minimum supported value is 0 and the maximum supported
# value is 9999." API_NodeProperties.html, mainNode: "must be fewer than the number of nodes";
# API_NodeRangeProperty.html: "Your accumulative node ranges must account for all nodes (0:n)."
@covers("RegisterJobDefinition", group="request-rules")
@rule("RegisterJobDefinition.schedulingPriority.range", "NodeProperties.mainNode.less_than_numNodes",
      "NodeRangeProperty.targetNodes.cover_all")
def test_out_of_range_priority_main_node_and_uncovered_nodes_are_refused(batch, resources, prefix):
    container = {"image": "busybox", "resourceRequirements": _requirements("1", "32")}
    refused(batch.register_job_definition, jobDefinitionName=f"{prefix}-prio", type="container",
            containerProperties=container, schedulingPriority=10000)
    for main_node, target in ((2, "0:1"), (0, "0:0")):
        refused(batch.register_job_definition, jobDefinitionName=f"{prefix}-mnp", type="multinode",
                nodeProperties={"numNodes": 2, "mainNode": main_node,
                                "nodeRangeProperties": [{"targetNodes": target, "container": container}]})


# API_DescribeJobDefinitions.html: jobDefinitions entries are an ARN or name:revision; status returns the job
# definitions with that status; maxResults "can be between 1 and 100". API_DeregisterJobDefinition.html:
# jobDefinition is "name:revision" or the full ARN.
@covers("RegisterJobDefinition", "DescribeJobDefinitions", "DeregisterJobDefinition", group="request-rules")
@rule("DescribeJobDefinitions.jobDefinitions.forms", "DescribeJobDefinitions.status.filter",
      "DescribeJobDefinitions.maxResults.range", "DeregisterJobDefinition.jobDefinition.forms")
def test_describe_and_deregister_take_name_revision_or_arn(batch, resources, prefix):
    first = resources.job_definition(name=f"{prefix}-forms")
    second = resources.job_definition(name=f"{prefix}-forms")
    batch.deregister_job_definition(jobDefinition=f"{prefix}-forms:{first['revision']}")
    described = batch.describe_job_definitions(
        jobDefinitions=[f"{prefix}-forms:{first['revision']}", second["jobDefinitionArn"]])["jobDefinitions"]
    assert sorted((d["revision"], d["status"]) for d in described) == \
        [(first["revision"], "INACTIVE"), (second["revision"], "ACTIVE")]
    active = batch.describe_job_definitions(jobDefinitionName=f"{prefix}-forms", status="ACTIVE")["jobDefinitions"]
    assert [d["revision"] for d in active] == [second["revision"]]
    refused(batch.describe_job_definitions, maxResults=101)
