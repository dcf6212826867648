"""RegisterJobDefinition, DescribeJobDefinitions and DeregisterJobDefinition against a real server."""

from __future__ import annotations

from tests.conftest import client_error, make_queue

CONTAINER = {"image": "busybox", "command": ["echo", "hi"],
             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]}
FARGATE = {"image": "busybox", "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
           "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}]}


def register(client, name="jd", **kwargs):
    kwargs.setdefault("type", "container")
    if kwargs["type"] == "container" and not {"containerProperties", "ecsProperties", "eksProperties"} & set(kwargs):
        kwargs["containerProperties"] = CONTAINER
    return client.register_job_definition(jobDefinitionName=name, **kwargs)


def test_register_returns_arn_and_revisions_count_up(batch_client, batchemu_server):
    first = register(batch_client, "counted")
    second = register(batch_client, "counted")
    other = register(batch_client, "other")
    prefix = f"arn:aws:batch:{batchemu_server.config.region}:{batchemu_server.config.account_id}:job-definition/"
    assert (first["jobDefinitionName"], first["revision"], first["jobDefinitionArn"]) == \
        ("counted", 1, prefix + "counted:1")
    assert second["revision"] == 2 and second["jobDefinitionArn"] == prefix + "counted:2"
    assert other["revision"] == 1


def test_revision_numbers_are_never_reused_after_deregistration(batch_client):
    register(batch_client, "reuse")
    batch_client.deregister_job_definition(jobDefinition="reuse:1")
    assert register(batch_client, "reuse")["revision"] == 2


def test_describe_returns_the_full_wire_form(batch_client):
    arn = register(batch_client, "full", parameters={"p": "v"}, retryStrategy={"attempts": 3, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onExitCode": "1*", "action": "EXIT"}]},
        timeout={"attemptDurationSeconds": 60}, tags={"team": "a"}, propagateTags=True, schedulingPriority=5,
        platformCapabilities=["EC2"])["jobDefinitionArn"]
    [jd] = batch_client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    assert jd["jobDefinitionName"] == "full" and jd["jobDefinitionArn"] == arn and jd["revision"] == 1
    assert jd["status"] == "ACTIVE" and jd["type"] == "container"
    assert jd["parameters"] == {"p": "v"}
    assert jd["retryStrategy"]["attempts"] == 3 and len(jd["retryStrategy"]["evaluateOnExit"]) == 2
    assert jd["timeout"] == {"attemptDurationSeconds": 60}
    assert jd["tags"] == {"team": "a"} and jd["propagateTags"] is True
    assert jd["schedulingPriority"] == 5 and jd["platformCapabilities"] == ["EC2"]
    assert jd["containerOrchestrationType"] == "ECS"
    container = jd["containerProperties"]
    assert container["image"] == "busybox" and container["command"] == ["echo", "hi"]
    assert container["resourceRequirements"] == CONTAINER["resourceRequirements"]
    # Lists AWS fills in, which clients index without checking.
    assert container["environment"] == [] and container["volumes"] == [] and container["mountPoints"] == []


def test_legacy_vcpus_and_memory_are_accepted(batch_client):
    arn = register(batch_client, "legacy", containerProperties={"image": "busybox", "vcpus": 2,
                                                                  "memory": 256})["jobDefinitionArn"]
    [jd] = batch_client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    assert (jd["containerProperties"]["vcpus"], jd["containerProperties"]["memory"]) == (2, 256)


def test_describe_by_name_revision_arn_and_jobdefinitionname(batch_client):
    register(batch_client, "ref")
    arn2 = register(batch_client, "ref")["jobDefinitionArn"]
    register(batch_client, "unrelated")
    by_short = batch_client.describe_job_definitions(jobDefinitions=["ref:1"])["jobDefinitions"]
    assert [d["revision"] for d in by_short] == [1]
    by_arn = batch_client.describe_job_definitions(jobDefinitions=[arn2])["jobDefinitions"]
    assert [d["jobDefinitionArn"] for d in by_arn] == [arn2]
    by_name = batch_client.describe_job_definitions(jobDefinitionName="ref")["jobDefinitions"]
    assert [(d["jobDefinitionName"], d["revision"]) for d in by_name] == [("ref", 1), ("ref", 2)]
    # A bare name in the jobDefinitions list names no revision, so it matches nothing.
    assert batch_client.describe_job_definitions(jobDefinitions=["ref"])["jobDefinitions"] == []
    assert batch_client.describe_job_definitions(jobDefinitions=["nope:1"])["jobDefinitions"] == []
    everything = batch_client.describe_job_definitions()["jobDefinitions"]
    assert [d["jobDefinitionName"] for d in everything] == ["ref", "ref", "unrelated"]


def test_deregister_marks_inactive_and_status_filter(batch_client):
    arn1 = register(batch_client, "dereg")["jobDefinitionArn"]
    register(batch_client, "dereg")
    batch_client.deregister_job_definition(jobDefinition=arn1)
    batch_client.deregister_job_definition(jobDefinition="dereg:2")
    docs = batch_client.describe_job_definitions(jobDefinitionName="dereg")["jobDefinitions"]
    assert [d["status"] for d in docs] == ["INACTIVE", "INACTIVE"]
    register(batch_client, "dereg")
    active = batch_client.describe_job_definitions(jobDefinitionName="dereg", status="ACTIVE")["jobDefinitions"]
    assert [d["revision"] for d in active] == [3]
    inactive = batch_client.describe_job_definitions(status="INACTIVE")["jobDefinitions"]
    assert [d["revision"] for d in inactive] == [1, 2]
    # Deregistering again is harmless.
    batch_client.deregister_job_definition(jobDefinition="dereg:1")


def test_deregister_unknown_or_bare_name_is_a_client_exception(batch_client):
    register(batch_client, "known")
    assert "does not exist" in client_error(batch_client.deregister_job_definition, jobDefinition="known:9")
    assert "does not exist" in client_error(
        batch_client.deregister_job_definition,
        jobDefinition="arn:aws:batch:us-east-1:123456789012:job-definition/none:1")
    assert "revision" in client_error(batch_client.deregister_job_definition, jobDefinition="known")


def test_pagination(batch_client):
    for _ in range(5):
        register(batch_client, "paged")
    register(batch_client, "zzz")
    seen, token = [], None
    while True:
        kwargs = {"maxResults": 2, "jobDefinitionName": "paged"}
        if token:
            kwargs["nextToken"] = token
        page = batch_client.describe_job_definitions(**kwargs)
        assert len(page["jobDefinitions"]) <= 2
        seen += [d["revision"] for d in page["jobDefinitions"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [1, 2, 3, 4, 5]
    pages = batch_client.get_paginator("describe_job_definitions").paginate(PaginationConfig={"PageSize": 4})
    names = [d["jobDefinitionName"] for p in pages for d in p["jobDefinitions"]]
    assert names == ["paged"] * 5 + ["zzz"]
    assert "maxResults" in client_error(batch_client.describe_job_definitions, maxResults=101)
    assert "nextToken" in client_error(batch_client.describe_job_definitions, nextToken="garbage")


def test_multinode_definition(batch_client):
    node = {"image": "busybox", "vcpus": 1, "memory": 128}
    arn = register(batch_client, "mnp", type="multinode", nodeProperties={
        "numNodes": 3, "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0", "container": node}, {"targetNodes": "1:", "container": node}],
    })["jobDefinitionArn"]
    [jd] = batch_client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    assert jd["type"] == "multinode" and jd["nodeProperties"]["numNodes"] == 3
    assert "containerProperties" not in jd


MULTINODE_CASES = [
    ({"numNodes": 2, "mainNode": 2, "nodeRangeProperties": [{"targetNodes": "0:1"}]}, "mainNode"),
    ({"numNodes": 3, "mainNode": 0, "nodeRangeProperties": [
        {"targetNodes": "0:1", "container": {"image": "b", "vcpus": 1, "memory": 8}}]}, "node 2 is not covered"),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
        {"targetNodes": "0:5", "container": {"image": "b", "vcpus": 1, "memory": 8}}]}, "outside the range"),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:1"}]}, "exactly one of"),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
        {"targetNodes": "0:1", "container": {"image": "b", "vcpus": 1}}]}, "Memory is not provided"),
]


def test_multinode_validation(batch_client):
    for nodes, fragment in MULTINODE_CASES:
        message = client_error(batch_client.register_job_definition, jobDefinitionName="bad",
                               type="multinode", nodeProperties=nodes)
        assert fragment in message, (nodes, message)


def test_ecs_and_eks_properties(batch_client):
    ecs = {"taskProperties": [{"containers": [{"image": "busybox", "essential": True, "resourceRequirements": [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]}]}]}
    eks = {"podProperties": {"containers": [{"image": "busybox"}]}}
    ecs_arn = register(batch_client, "ecs", ecsProperties=ecs)["jobDefinitionArn"]
    eks_arn = register(batch_client, "eks", eksProperties=eks)["jobDefinitionArn"]
    docs = {d["jobDefinitionName"]: d for d in
            batch_client.describe_job_definitions(jobDefinitions=[ecs_arn, eks_arn])["jobDefinitions"]}
    assert docs["ecs"]["containerOrchestrationType"] == "ECS"
    assert docs["ecs"]["ecsProperties"]["taskProperties"][0]["containers"][0]["image"] == "busybox"
    assert docs["eks"]["containerOrchestrationType"] == "EKS"
    assert docs["eks"]["eksProperties"]["podProperties"]["containers"][0]["image"] == "busybox"
    assert "platformCapabilities" in client_error(register, client=batch_client, name="eks2", eksProperties=eks,
                                                  platformCapabilities=["EC2"])


def test_fargate_definition_gets_aws_defaults(batch_client):
    arn = register(batch_client, "fg", containerProperties=FARGATE,
                   platformCapabilities=["FARGATE"])["jobDefinitionArn"]
    [jd] = batch_client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    assert jd["platformCapabilities"] == ["FARGATE"]
    assert jd["containerProperties"]["networkConfiguration"] == {"assignPublicIp": "DISABLED"}
    assert jd["containerProperties"]["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}


FARGATE_CASES = [
    ({"resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "4096"}]},
     "not a supported combination"),
    ({"resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"},
                               {"type": "GPU", "value": "1"}]}, "GPU"),
    ({"vcpus": 1}, "vcpus is not applicable for Fargate"),
    ({"executionRoleArn": None}, "Execution role is required"),
    ({"privileged": True}, "privileged is not applicable"),
]


def test_fargate_validation(batch_client):
    for change, fragment in FARGATE_CASES:
        container = {k: v for k, v in {**FARGATE, **change}.items() if v is not None}
        message = client_error(register, client=batch_client, name="fgbad", containerProperties=container,
                               platformCapabilities=["FARGATE"])
        assert fragment in message, (change, message)


def test_fargate_rejects_multinode(batch_client):
    nodes = {"numNodes": 1, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0", "container": FARGATE}]}
    assert "Fargate" in client_error(register, client=batch_client, name="x", type="multinode",
                                     nodeProperties=nodes, platformCapabilities=["FARGATE"])


REGISTER_CASES = [
    ({"name": "bad name!"}, "is not supported pattern"),
    ({"name": "x" * 129}, "is not supported pattern"),
    ({"containerProperties": {"vcpus": 1, "memory": 128}}, "image is not provided"),
    ({"containerProperties": {"image": "b", "resourceRequirements": [{"type": "MEMORY", "value": "128"}]}},
     "vCPU is not provided"),
    ({"containerProperties": {"image": "b", "vcpus": 1}}, "Memory is not provided"),
    ({"containerProperties": {"image": "b", "vcpus": 1, "memory": 128, "resourceRequirements": [
        {"type": "VCPU", "value": "1"}]}}, "can't both be specified"),
    ({"containerProperties": {"image": "b", "resourceRequirements": [
        {"type": "VCPU", "value": "one"}, {"type": "MEMORY", "value": "128"}]}}, "not a number"),
    ({"containerProperties": {"image": "b", "vcpus": 1, "memory": 2}}, "at least 4 MiB"),
    ({"containerProperties": {**CONTAINER, "networkConfiguration": {"assignPublicIp": "ENABLED"}}},
     "networkConfiguration not applicable for EC2"),
    ({"containerProperties": CONTAINER, "eksProperties": {"podProperties": {"containers": [{"image": "b"}]}}},
     "Exactly one of"),
    ({"type": "multinode", "containerProperties": CONTAINER}, "nodeProperties must be specified"),
    ({"timeout": {"attemptDurationSeconds": 59}}, "60 seconds"),
    ({"retryStrategy": {"attempts": 11}}, "between 1 and 10"),
    ({"retryStrategy": {"attempts": 0}}, "between 1 and 10"),
    ({"retryStrategy": {"evaluateOnExit": [{"onExitCode": "1", "action": "RETRY"}]}},
     "RetryAttempts must be provided"),
    ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"action": "RETRY"}]}}, "must specify"),
    ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "abc", "action": "RETRY"}]}},
     "Invalid onExitCode"),
    ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "RETRY"}] * 6}},
     "at most 5"),
    ({"schedulingPriority": 10000}, "schedulingPriority"),
    ({"platformCapabilities": ["GPU"]}, "platformCapabilities"),
    ({"tags": {"aws:owner": "x"}}, "reserved"),
    ({"consumableResourceProperties": {"consumableResourceList": [
        {"consumableResource": "missing", "quantity": 1}]}}, "does not exist"),
]


def test_register_validation(batch_client):
    for kwargs, fragment in REGISTER_CASES:
        kwargs = dict(kwargs)
        name = kwargs.pop("name", "bad")
        message = client_error(register, client=batch_client, name=name, **kwargs)
        assert fragment in message, (kwargs, message)
    # Nothing was registered, and no revision number was used up.
    assert batch_client.describe_job_definitions()["jobDefinitions"] == []
    assert register(batch_client, "bad")["revision"] == 1


def test_protocol_level_validation_is_a_client_exception(batch_client):
    message = client_error(batch_client.register_job_definition, jobDefinitionName="x", type="wrong")
    assert "type" in message


def test_consumable_resource_properties_are_stored(batch_client):
    batch_client.create_consumable_resource(consumableResourceName="licences", totalQuantity=3)
    props = {"consumableResourceList": [{"consumableResource": "licences", "quantity": 1}]}
    arn = register(batch_client, "uses", consumableResourceProperties=props)["jobDefinitionArn"]
    [jd] = batch_client.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    assert jd["consumableResourceProperties"] == props


def test_resolve_job_definition(batchemu_server, batch_client):
    from batchemu.service.job_definitions import resolve_job_definition
    register(batch_client, "res")
    arn2 = register(batch_client, "res")["jobDefinitionArn"]
    register(batch_client, "res")
    batch_client.deregister_job_definition(jobDefinition="res:3")
    ctx = batchemu_server.ctx
    with ctx.store.transaction() as tx:
        assert resolve_job_definition(tx, ctx, "res")["revision"] == 2
        assert resolve_job_definition(tx, ctx, "res:1")["revision"] == 1
        assert resolve_job_definition(tx, ctx, arn2)["revision"] == 2
        assert resolve_job_definition(tx, ctx, arn2.rsplit(":", 1)[0])["revision"] == 2
        assert resolve_job_definition(tx, ctx, "res:3")["status"] == "INACTIVE"
        assert resolve_job_definition(tx, ctx, "res:9") is None
        assert resolve_job_definition(tx, ctx, "nothing") is None
        assert resolve_job_definition(tx, ctx, "arn:aws:batch:eu-west-1:1:job-queue/x") is None


def _task(*containers):
    resources = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]
    return {"taskProperties": [{"containers": [{"image": "busybox", "resourceRequirements": resources, **c}
                                               for c in containers]}]}


RESERVED = [{"name": "AWS_BATCH_MINE", "value": "x"}]

# (keyword arguments of RegisterJobDefinition, fragment of the refusal): every place a definition sets variables.
RESERVED_CASES = [
    ({"containerProperties": {**CONTAINER, "environment": RESERVED}}, "containerProperties.environment[1]"),
    ({"ecsProperties": _task({"name": "a"}, {"name": "b", "environment": RESERVED})},
     "ecsProperties.taskProperties[0].containers[1].environment[1]"),
    ({"eksProperties": {"podProperties": {"containers": [{"image": "busybox", "env": RESERVED}]}}},
     "eksProperties.podProperties.containers[0].env[1]"),
    ({"eksProperties": {"podProperties": {"containers": [{"image": "busybox"}],
                                          "initContainers": [{"name": "init", "image": "busybox", "env": RESERVED}]}}},
     "eksProperties.podProperties.initContainers[0].env[1]"),
    ({"type": "multinode", "nodeProperties": {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
        {"targetNodes": "0:1", "container": {**CONTAINER, "environment": RESERVED}}]}},
     "containerProperties.environment[1]"),
]


def test_aws_batch_prefix_is_refused_in_every_definition(batch_client):
    for kwargs, where in RESERVED_CASES:
        message = client_error(register, client=batch_client, name="reserved", **kwargs)
        assert where in message and "AWS_BATCH_MINE" in message and "reserved" in message, (kwargs, message)
    # The prefix is what is reserved, not any name that contains it.
    register(batch_client, "allowed", containerProperties={**CONTAINER, "environment": [
        {"name": "MY_AWS_BATCH_QUEUE", "value": "q"}]})


def test_aws_batch_prefix_is_refused_in_container_overrides(batch_client):
    queue = make_queue(batch_client)["name"]
    register(batch_client, "plain")
    message = client_error(batch_client.submit_job, jobName="j", jobQueue=queue, jobDefinition="plain",
                           containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "forged"}]})
    assert "containerOverrides.environment[1]" in message and "reserved" in message


TASK_CASES = [
    (_task(*[{"name": f"c{i}"} for i in range(11)]), "at most 10 containers"),
    (_task({"name": "a"}, {"name": "b", "dependsOn": [{"containerName": "nope", "condition": "START"}]}),
     "depends on container nope"),
    (_task({"name": "a"}, {"name": "b", "dependsOn": [{"containerName": "a", "condition": "COMPLETE"}]}),
     "COMPLETE condition can't be set on an essential container: a"),
    (_task({"name": "a"}, {"name": "b", "dependsOn": [{"containerName": "a", "condition": "LATER"}]}),
     "condition LATER is not valid"),
]


def test_ecs_task_rules(batch_client):
    for ecs, fragment in TASK_CASES:
        message = client_error(register, client=batch_client, name="task", ecsProperties=ecs)
        assert fragment in message, (ecs, message)
    # SUCCESS on a non-essential container is what sidecar set-ups use.
    register(batch_client, "task", ecsProperties=_task(
        {"name": "setup", "essential": False},
        {"name": "main", "dependsOn": [{"containerName": "setup", "condition": "SUCCESS"}]}))


def test_eks_container_names_are_unique(batch_client):
    pod = {"containers": [{"name": "main", "image": "busybox"}], "initContainers": [{"name": "main", "image": "busybox"}]}
    assert "unique name" in client_error(register, client=batch_client, name="pod", eksProperties={"podProperties": pod})
