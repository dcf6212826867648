"""The conformance suite's options, fixtures and report hooks.

    pytest conformance --endpoint http://127.0.0.1:8000       # any AWS-Batch-compatible endpoint
    pytest conformance --aws --aws-queue my-queue              # real AWS Batch (costs money)
    pytest conformance ... --coverage-json out/run.json        # record what passed, per operation

Without --endpoint or --aws every scenario is skipped (the shape-walker unit tests still run).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import boto3
import pytest

from conformance.coverage import GROUPS, CoverageReport, check_markers
from conformance.harness import Jobs, Recorder, Resources, Target, unique_prefix

NO_TARGET = ("conformance scenarios need a target: pass --endpoint URL (an AWS-Batch-compatible endpoint "
             "such as batchemu or a moto server) or --aws --aws-queue NAME (real AWS Batch, costs money)")

AWS_WARNING = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  --aws: this run talks to REAL AWS Batch in region {region}, with your default credentials.
!!  It creates compute environments, queues and job definitions named {prefix}-* and deletes them
!!  at the end, and it RUNS JOBS on queue {queue}: instances it starts COST MONEY.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""


NO_COMMANDS = ("batchemu --executor simulate runs no container commands (a job exits as its BATCHEMU_SIMULATE_* "
               "variables say), and this scenario checks what a command did: run it against --executor docker or "
               "swarm")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "AWS Batch conformance suite")
    group.addoption("--endpoint", default=None, help="URL of an AWS-Batch-compatible endpoint (Batch and Logs)")
    group.addoption("--aws", action="store_true", default=False,
                    help="run against real AWS Batch with the default credential chain and region (costs money)")
    group.addoption("--aws-queue", default=None, help="with --aws: an existing job queue for job scenarios")
    group.addoption("--image", default="batchemu-test:latest", help="container image of the job scenarios")
    group.addoption("--training-image", default="batchemu-train:latest",
                    help="SageMaker-style training image of the service-job scenarios (see scripts/training-image)")
    group.addoption("--training-role", default=None,
                    help="RoleArn of the training jobs (needed with --aws, where service-job scenarios cost money)")
    group.addoption("--training-output", default="s3://conformance-training/output",
                    help="S3OutputPath of the training jobs")
    group.addoption("--region", default=None, help="region of the clients (default us-east-1, or AWS's default)")
    group.addoption("--service-role", default=None, help="serviceRole ARN for the compute environments created")
    group.addoption("--instance-role", default="ecsInstanceRole", help="instanceRole of those compute environments")
    group.addoption("--subnet", default="subnet-0conformance", help="subnet of those compute environments")
    group.addoption("--security-group", default="sg-0conformance",
                    help="security group of those compute environments")
    group.addoption("--job-timeout", type=float, default=None,
                    help="seconds a job may take to finish (default 60, or 900 with --aws)")
    group.addoption("--lenient-shapes", action="store_true", default=False,
                    help="record response-shape violations in the report without failing the scenario")
    group.addoption("--coverage-json", default=None, help="write the run's per-operation coverage report here")
    group.addoption("--coverage-label", default=None, help="name of this run's column in the coverage table")


def _target(config: pytest.Config) -> Target | None:
    endpoint = config.getoption("--endpoint")
    aws = config.getoption("--aws")
    if endpoint and aws:
        raise pytest.UsageError("give --endpoint or --aws, not both")
    if not endpoint and not aws:
        return None
    if aws:
        if not config.getoption("--aws-queue"):
            raise pytest.UsageError("--aws needs --aws-queue NAME: an existing job queue whose compute "
                                    "environment's network and roles the suite reuses")
        region = config.getoption("--region") or boto3.session.Session().region_name
        if not region:
            raise pytest.UsageError("--aws: no default region configured; pass --region")
    else:
        region = config.getoption("--region") or "us-east-1"
    timeout = config.getoption("--job-timeout") or (900.0 if aws else 60.0)
    label = config.getoption("--coverage-label") or ("aws" if aws else endpoint)
    return Target(endpoint_url=None if aws else endpoint.rstrip("/"), region=region,
                  image=config.getoption("--image"), aws_queue=config.getoption("--aws-queue"),
                  job_timeout=timeout, label=label, service_role=config.getoption("--service-role"),
                  network={"subnets": [config.getoption("--subnet")],
                           "securityGroupIds": [config.getoption("--security-group")],
                           "instanceRole": config.getoption("--instance-role")})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "covers(*operations, group=NAME): the Batch operations and "
                            f"behaviour group a conformance test exercises; groups: {', '.join(GROUPS)}")
    config.addinivalue_line("markers", "rule(*ids): the documented rules (batchemu/model/documented_rules) a "
                            "scenario shows")
    config.addinivalue_line("markers", "runs_commands: the scenario checks what a job's container command did "
                            "(its exit code, output, environment or time spent running)")
    config._conformance_target = _target(config)
    config._conformance_recorder = Recorder()
    config._conformance_recorder.lenient = config.getoption("--lenient-shapes")
    config._conformance_report = CoverageReport()
    config.pluginmanager.register(config._conformance_report, "conformance-coverage")
    config._conformance_prefix = unique_prefix()
    target = config._conformance_target
    if target is not None and target.is_aws:
        print(AWS_WARNING.format(region=target.region, prefix=config._conformance_prefix,
                                 queue=target.aws_queue), file=sys.stderr, flush=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    target = config._conformance_target
    if target is None:
        return [f"conformance: no target, scenarios skipped ({NO_TARGET})"]
    where = "REAL AWS BATCH (costs money)" if target.is_aws else target.endpoint_url
    return [(f"conformance: {where}, region {target.region}, image {target.image}, "
             f"prefix {config._conformance_prefix}")]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    check_markers(items)
    for item in items:
        config._conformance_report.add_item(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    item.config._conformance_recorder.begin(item.nodeid)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    record = item.config._conformance_recorder.tests.get(item.nodeid)
    # A violation a test caught and swallowed still fails it.
    if (report.when == "call" and report.passed and record is not None and record.violations
            and not item.config.getoption("--lenient-shapes")):
        report.outcome = "failed"
        report.longrepr = "responses did not match botocore's model:\n  " + "\n  ".join(record.violations)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    path = config.getoption("--coverage-json")
    if not path:
        return
    target = config._conformance_target
    described = {"label": target.label if target else "no target",
                 "endpoint": target.endpoint_url if target else None,
                 "aws": bool(target and target.is_aws), "region": target.region if target else None}
    config._conformance_report.write(path, described, config._conformance_recorder)


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    target = pytestconfig._conformance_target
    if target is None:
        pytest.skip(NO_TARGET)
    return target


@pytest.fixture(autouse=True)
def _runs_commands(request: pytest.FixtureRequest) -> None:
    """A scenario about a command's effect cannot hold against an executor that runs no commands."""
    target = request.config._conformance_target
    if target is not None and request.node.get_closest_marker("runs_commands") and not _commands_run(target):
        pytest.skip(NO_COMMANDS)


_COMMANDS_RUN: dict[str, bool] = {}


def _commands_run(target: Target) -> bool:
    if target.label not in _COMMANDS_RUN:
        _COMMANDS_RUN[target.label] = target.runs_commands()
    return _COMMANDS_RUN[target.label]


@pytest.fixture(scope="session")
def recorder(pytestconfig: pytest.Config) -> Recorder:
    return pytestconfig._conformance_recorder


@pytest.fixture(scope="session")
def batch(target: Target, recorder: Recorder):
    """A boto3 Batch client whose every response is checked against botocore's output shape."""
    return target.client("batch", recorder)


@pytest.fixture(scope="session")
def logs(target: Target, recorder: Recorder):
    """A boto3 CloudWatch Logs client on the same endpoint, checked the same way."""
    return target.client("logs", recorder)


@pytest.fixture(scope="session")
def prefix(pytestconfig: pytest.Config) -> str:
    """A prefix unique to this run for every name the suite creates."""
    return pytestconfig._conformance_prefix


@pytest.fixture(scope="session")
def resources(batch, target: Target, prefix: str, recorder: Recorder, jobs: Jobs):
    """Creates resources named with the run's prefix; disables and deletes them all at the end."""
    created = Resources(batch, target, prefix)
    yield created
    recorder.begin("<session clean-up>")
    recorder.quiet = True
    jobs.cleanup()
    left = created.cleanup(budget=600 if target.is_aws else 60)
    if left:
        print("\nconformance clean-up left behind:\n  " + "\n  ".join(left), file=sys.__stderr__)


@pytest.fixture(scope="session")
def jobs(batch, target: Target) -> Jobs:
    """Submits jobs and waits on them (polling DescribeJobs every 0.2 s, recording every status)."""
    return Jobs(batch, target)


@pytest.fixture(scope="session")
def jobdef(resources: Resources):
    """Registers a container job definition (1 vCPU, 32 MiB, the --image image) and returns the response."""
    return resources.job_definition


@dataclass
class Env:
    """A queue and the compute environment behind it."""

    queue: str
    queue_arn: str
    compute_environment: str
    compute_environment_arn: str


@pytest.fixture(scope="session")
def shared_env(batch, target: Target, resources: Resources) -> Env:
    """Where job scenarios run: a small compute environment (4 vCPUs) and its queue, or --aws-queue."""
    if target.is_aws:
        queue = batch.describe_job_queues(jobQueues=[target.aws_queue])["jobQueues"][0]
        ce_arn = min(queue["computeEnvironmentOrder"], key=lambda o: o["order"])["computeEnvironment"]
        return Env(queue["jobQueueName"], queue["jobQueueArn"], ce_arn.rsplit("/", 1)[-1], ce_arn)
    ce = resources.compute_environment(max_vcpus=4)
    queue = resources.job_queue([ce["computeEnvironmentName"]])
    return Env(queue["jobQueueName"], queue["jobQueueArn"], ce["computeEnvironmentName"],
               ce["computeEnvironmentArn"])


@pytest.fixture(scope="session")
def held_env(resources: Resources) -> Env:
    """A queue whose only compute environment is DISABLED: its jobs wait in RUNNABLE and never run
    (Batch doesn't place jobs in a DISABLED compute environment: API_ComputeEnvironmentDetail.html)."""
    ce = resources.compute_environment(max_vcpus=2, state="DISABLED")
    queue = resources.job_queue([ce["computeEnvironmentName"]])
    return Env(queue["jobQueueName"], queue["jobQueueArn"], ce["computeEnvironmentName"],
               ce["computeEnvironmentArn"])
