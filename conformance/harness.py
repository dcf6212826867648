"""What the scenarios stand on: the target endpoint, clients whose every response is checked, the
resources a run creates (and removes), and polling of jobs.

Nothing here knows which implementation answers: it speaks only the AWS wire protocol through boto3, and
reads batchemu's count of scheduler passes only where the endpoint offers it (a time window elsewhere).
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conformance.shapes import check_response
from tests import waiting

# The order AWS documents for a job's life (userguide/job_states.html); a job moves back to RUNNABLE
# only when an attempt fails and its retry strategy allows another one.
STATUS_ORDER = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
TERMINAL = {"SUCCEEDED", "FAILED"}
LOG_GROUP = "/aws/batch/job"
POLL_SECONDS = 0.2


def wait_for(describe: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 120) -> Any:
    """Call `describe` until `done` says its answer has settled; fail the test, saying what was seen, after
    `timeout` seconds (times the load factor of tests/waiting.py)."""
    return waiting.wait_for(describe, done, what, timeout, POLL_SECONDS)


def wait_for_passes(target: Target, passes: int = 3, window: float = 3.0) -> None:
    """The observation window before asserting that something did not happen (a held job was not placed):
    `passes` passes of batchemu's scheduler after this call, or `window` seconds on an endpoint that does not
    count its passes (tests/waiting.py's wait_for_passes)."""
    waiting.wait_for_passes(target.scheduler_passes, passes, window=window, interval=POLL_SECONDS)


# Error codes with which an endpoint says "I don't implement this operation".
NOT_BUILT_CODES = {"NotImplemented", "NotImplementedException", "UnknownOperationException",
                   "UnknownOperation", "InvalidAction", "UnsupportedOperation"}


class NotBuilt(pytest.skip.Exception):
    """The endpoint does not implement an operation a scenario needs: reported as 'not built'."""


class ShapeViolation(AssertionError):
    """A response body that botocore's model does not allow."""


@dataclass
class Target:
    """Where the suite points: an emulator's endpoint URL, or real AWS (endpoint_url None)."""

    endpoint_url: str | None
    region: str
    image: str
    aws_queue: str | None
    job_timeout: float
    label: str
    service_role: str | None = None
    network: dict = field(default_factory=dict)

    @property
    def is_aws(self) -> bool:
        return self.endpoint_url is None

    def session(self) -> boto3.session.Session:
        if self.is_aws:
            return boto3.session.Session(region_name=self.region)
        return boto3.session.Session(aws_access_key_id="conformance", aws_secret_access_key="conformance",
                                     region_name=self.region)

    def batchemu_health(self) -> dict:
        """batchemu's GET /_batchemu/health report; {} from an endpoint that has none (real AWS, moto)."""
        if self.is_aws:
            return {}
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/_batchemu/health", timeout=10) as response:
                report = json.loads(response.read())
        except (OSError, ValueError):
            return {}
        return report if isinstance(report, dict) else {}

    def runs_commands(self) -> bool:
        """Whether the endpoint runs a job's container command: every endpoint but batchemu's simulate
        executor, whose jobs exit as their BATCHEMU_SIMULATE_* variables say, running nothing."""
        executor = self.batchemu_health().get("executor")
        return not (isinstance(executor, dict) and executor.get("name") == "simulate")

    def scheduler_passes(self) -> int | None:
        """The passes batchemu's scheduler has completed, as its GET /_batchemu/health counts them; None from
        an endpoint that does not say (real AWS, moto)."""
        report = self.batchemu_health()
        scheduler = report.get("scheduler")
        passes = scheduler.get("passes") if isinstance(scheduler, dict) else None
        return passes if isinstance(passes, int) else None

    def client(self, service: str, recorder: Recorder):
        # Against an emulator a 5xx must surface, not be retried away; real AWS may throttle.
        retries = {"mode": "standard", "max_attempts": 5 if self.is_aws else 1}
        client = self.session().client(service, endpoint_url=self.endpoint_url,
                                       config=Config(retries=retries, connect_timeout=5, read_timeout=30))
        service_id = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parse.{service_id}", recorder.on_response)
        return client


def error_code(status: int, headers: dict, body: bytes) -> str | None:
    """The error code of a rest-json/json error as botocore reads it (header first, then the body)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    code = lowered.get("x-amzn-errortype")
    if not code:
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        code = document.get("__type") or document.get("code") or document.get("Code")
    if not isinstance(code, str):
        return None
    return code.split(":", 1)[0].rsplit("#", 1)[-1]


def is_not_built(status: int, headers: dict, body: bytes) -> bool:
    """Whether a response says the endpoint lacks the operation (501, an unknown-operation error, or a
    404 page that is not an AWS JSON error at all)."""
    if status == 501:
        return True
    if status < 400:
        return False
    code = error_code(status, headers, body)
    return code in NOT_BUILT_CODES or (status in (404, 405) and code is None)


@dataclass
class TestRecord:
    """What one test did on the wire."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    not_built: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)


class Recorder:
    """Sees every response of every client: records it, checks its shape, and turns 'not implemented'
    answers into NotBuilt skips."""

    def __init__(self) -> None:
        self.tests: dict[str, TestRecord] = {}
        self.current = TestRecord()
        self.quiet = False
        self.lenient = False  # record shape violations without failing (compare mode)

    def begin(self, nodeid: str) -> None:
        self.current = self.tests.setdefault(nodeid, TestRecord())

    def on_response(self, operation_model, response_dict, **_: Any) -> None:
        service = operation_model.service_model.service_name
        name = operation_model.name if service == "batch" else f"{service}:{operation_model.name}"
        status = response_dict["status_code"]
        headers = dict(response_dict["headers"])
        body = response_dict["body"] or b""
        self.current.calls.append((name, status))
        if is_not_built(status, headers, body):
            self.current.not_built.add(name)
            if not self.quiet:
                raise NotBuilt(f"not built: {name} (HTTP {status}: {body[:160]!r})")
            return
        problems = check_response(operation_model, status, body)
        if status >= 300 and not error_code(status, headers, body):
            problems.append(f"{name}: HTTP {status} error carries no error code (x-amzn-ErrorType or __type)")
        if problems:
            self.current.violations.extend(problems)
            if not (self.quiet or self.lenient):
                raise ShapeViolation("response does not match botocore's model:\n  " + "\n  ".join(problems))


def client_error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def refused(call: Callable, **kwargs) -> ClientError:
    """The ClientException (HTTP 400) that `call(**kwargs)` answers, for a scenario to read its message."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert client_error_code(caught.value) == "ClientException", caught.value.response
    return caught.value


def arn_pattern(target: Target, resource: str, name: str) -> re.Pattern:
    """An ARN of `resource`/`name` in the target's region, with any partition and a 12-digit account."""
    return re.compile(rf"arn:aws[\w-]*:batch:{re.escape(target.region)}:(\d{{12}}):{resource}/{re.escape(name)}")


class Jobs:
    """Submits jobs, remembers them for clean-up, and polls DescribeJobs recording every status seen."""

    def __init__(self, batch, target: Target) -> None:
        self.batch = batch
        self.target = target
        self.submitted: list[str] = []

    def submit(self, name: str, queue: str, definition: str, **kwargs: Any) -> str:
        job_id = self.batch.submit_job(jobName=name, jobQueue=queue, jobDefinition=definition, **kwargs)["jobId"]
        self.submitted.append(job_id)
        return job_id

    def describe(self, job_ids: Iterable[str]) -> dict[str, dict]:
        ids = list(job_ids)
        found: dict[str, dict] = {}
        for start in range(0, len(ids), 100):
            for job in self.batch.describe_jobs(jobs=ids[start:start + 100])["jobs"]:
                found[job["jobId"]] = job
        return found

    def wait(self, job_ids: list[str], until: Callable[[dict], bool] | None = None,
             timeout: float | None = None,
             observe: Callable[[dict[str, dict]], None] | None = None) -> dict[str, JobRun]:
        """Polls every 0.2 s until `until(job)` holds for every job (default: a terminal status); on a timeout,
        ends the jobs left unfinished and fails naming the statuses each awaited job went through."""
        until = until or (lambda job: job["status"] in TERMINAL)
        runs = {job_id: JobRun(job_id) for job_id in job_ids}

        def poll() -> dict[str, JobRun]:
            found = self.describe(job_ids)
            for job_id, run in runs.items():
                if job_id in found:
                    run.observe(found[job_id])
            if observe:
                observe(found)
            return runs

        def waiting_for() -> dict[str, JobRun]:
            return {job_id: run for job_id, run in runs.items() if run.last is None or not until(run.last)}

        def give_up() -> str:
            stuck = {job_id: run.statuses for job_id, run in waiting_for().items()}
            self._end(job_id for job_id, run in runs.items() if run.last and run.last["status"] not in TERMINAL)
            return f"statuses seen: {stuck}"

        return waiting.wait_for(
            poll, lambda _: not waiting_for(), f"the awaited status of jobs {', '.join(runs)}",
            timeout or self.target.job_timeout, POLL_SECONDS, on_timeout=give_up,
            show=lambda _: str({job_id: run.statuses[-1:] for job_id, run in waiting_for().items()}))

    def wait_one(self, job_id: str, timeout: float | None = None,
                 until: Callable[[dict], bool] | None = None) -> JobRun:
        return self.wait([job_id], until=until, timeout=timeout)[job_id]

    def wait_status(self, job_id: str, status: str, timeout: float | None = None) -> JobRun:
        """Waits until the job is in `status` (failing if it goes past it to a terminal state)."""
        def reached(job: dict) -> bool:
            if job["status"] in TERMINAL and status not in TERMINAL:
                pytest.fail(f"job {job_id} reached {job['status']} ({job.get('statusReason')}) before {status}")
            return job["status"] == status
        return self.wait_one(job_id, timeout=timeout, until=reached)

    def cleanup(self) -> None:
        if self.submitted:
            try:
                self._end(job_id for job_id, job in self.describe(self.submitted).items()
                          if job["status"] not in TERMINAL)
            except (ClientError, pytest.skip.Exception):
                pass

    def _end(self, job_ids: Iterable[str]) -> None:
        """Terminates jobs a failed wait leaves behind, so that they do not hold the capacity later scenarios
        wait for (a node or child id that TerminateJob refuses ends with its job)."""
        for job_id in job_ids:
            try:
                self.batch.terminate_job(jobId=job_id, reason="conformance suite clean-up")
            except ClientError:
                pass


@dataclass
class JobRun:
    """Every status seen for one job, in order, with the document seen at each poll."""

    job_id: str
    statuses: list[str] = field(default_factory=list)
    snapshots: list[dict] = field(default_factory=list)

    def observe(self, job: dict) -> None:
        self.snapshots.append(job)
        if not self.statuses or self.statuses[-1] != job["status"]:
            self.statuses.append(job["status"])

    @property
    def last(self) -> dict | None:
        return self.snapshots[-1] if self.snapshots else None


def assert_status_order(statuses: list[str], retries: bool = False) -> None:
    """Statuses seen never go backwards in STATUS_ORDER (a retry may go back to RUNNABLE), end in one
    terminal status, and never leave it."""
    terminal = [s for s in statuses if s in TERMINAL]
    assert terminal == statuses[-1:], f"terminal status not last, or more than one: {statuses}"
    rank = {s: i for i, s in enumerate(STATUS_ORDER[:5])}
    for before, after in itertools.pairwise(statuses):
        if after in TERMINAL:
            continue
        # A retried attempt goes back to RUNNABLE; a poller may miss that and see STARTING again directly.
        retried = retries and after in ("RUNNABLE", "STARTING") and before in ("RUNNING", "STARTING")
        assert rank[after] > rank[before] or retried, f"{before} -> {after} goes backwards in {statuses}"


class Resources:
    """Creates compute environments, queues, definitions, policies and consumable resources named with
    the run's prefix, and removes them all at the end of the session."""

    def __init__(self, batch, target: Target, prefix: str) -> None:
        self.batch = batch
        self.target = target
        self.prefix = prefix
        self.counter = 0
        self.compute_environments: list[str] = []
        self.job_queues: list[str] = []
        self.job_definitions: list[str] = []
        self.scheduling_policies: list[str] = []
        self.consumable_resources: list[str] = []
        self._aws_compute: dict | None = None

    def name(self, kind: str) -> str:
        self.counter += 1
        return f"{self.prefix}-{kind}-{self.counter}"

    def compute_resources(self, max_vcpus: int) -> dict:
        """A MANAGED EC2 computeResources block: placeholders against an emulator; on AWS, copied from
        the compute environment behind --aws-queue so that the network and roles are real."""
        if not self.target.is_aws:
            return {"type": "EC2", "minvCpus": 0, "maxvCpus": max_vcpus, "desiredvCpus": 0,
                    "instanceTypes": ["optimal"], **self.target.network}
        if self._aws_compute is None:
            queue = self.batch.describe_job_queues(jobQueues=[self.target.aws_queue])["jobQueues"][0]
            ce_arn = min(queue["computeEnvironmentOrder"], key=lambda o: o["order"])["computeEnvironment"]
            ce = self.batch.describe_compute_environments(computeEnvironments=[ce_arn])["computeEnvironments"][0]
            allowed = self.batch.meta.service_model.shape_for("ComputeResource").members
            self._aws_compute = {k: v for k, v in ce["computeResources"].items() if k in allowed}
            self.target.service_role = self.target.service_role or ce.get("serviceRole")
        return {**self._aws_compute, "minvCpus": 0, "desiredvCpus": 0, "maxvCpus": max_vcpus}

    def compute_environment(self, max_vcpus: int = 4, state: str = "ENABLED", wait: bool = True,
                            tags: dict | None = None, name: str | None = None) -> dict:
        name = name or self.name("ce")
        kwargs: dict[str, Any] = {"computeEnvironmentName": name, "type": "MANAGED", "state": state,
                                  "computeResources": self.compute_resources(max_vcpus)}
        if tags:
            kwargs["tags"] = tags
        if self.target.service_role:
            kwargs["serviceRole"] = self.target.service_role
        response = self.batch.create_compute_environment(**kwargs)
        self.compute_environments.append(name)
        if wait:
            self.wait_compute_environment(name)
        return response

    def job_queue(self, compute_environments: list[str], state: str = "ENABLED", priority: int = 1,
                  wait: bool = True, name: str | None = None, **extra: Any) -> dict:
        name = name or self.name("jq")
        order = [{"order": i + 1, "computeEnvironment": ce} for i, ce in enumerate(compute_environments)]
        response = self.batch.create_job_queue(jobQueueName=name, state=state, priority=priority,
                                               computeEnvironmentOrder=order, **extra)
        self.job_queues.append(name)
        if wait:
            self.wait_job_queue(name)
        return response

    def job_definition(self, command: list[str] | None = None, vcpus: int = 1, memory: int = 32,
                       name: str | None = None, container: dict | None = None, **extra: Any) -> dict:
        name = name or self.name("jd")
        properties = {"image": self.target.image, "command": command or ["echo", "hello"],
                      "resourceRequirements": [{"type": "VCPU", "value": str(vcpus)},
                                               {"type": "MEMORY", "value": str(memory)}],
                      **(container or {})}
        response = self.batch.register_job_definition(jobDefinitionName=name, type="container",
                                                      containerProperties=properties, **extra)
        self.job_definitions.append(response["jobDefinitionArn"])
        return response

    def _wait(self, describe: Callable[[], list[dict]], what: str, done: Callable[[list[dict]], bool],
              timeout: float = 120) -> list[dict]:
        return wait_for(describe, done, what, timeout)

    def wait_compute_environment(self, name: str, status: str = "VALID", timeout: float = 120) -> dict:
        found = self._wait(lambda: self.batch.describe_compute_environments(
                               computeEnvironments=[name])["computeEnvironments"],
                           f"compute environment {name}",
                           lambda f: bool(f) and f[0].get("status") not in ("CREATING", "UPDATING"), timeout)
        assert found[0]["status"] == status, f"compute environment {name}: {found[0]}"
        return found[0]

    def wait_job_queue(self, name: str, status: str = "VALID", timeout: float = 120) -> dict:
        found = self._wait(lambda: self.batch.describe_job_queues(jobQueues=[name])["jobQueues"],
                           f"job queue {name}",
                           lambda f: bool(f) and f[0].get("status") not in ("CREATING", "UPDATING"), timeout)
        assert found[0]["status"] == status, f"job queue {name}: {found[0]}"
        return found[0]

    def wait_gone(self, kind: str, name: str, timeout: float = 120) -> None:
        """Waits until a deleted queue or compute environment is absent or DELETED."""
        if kind == "queue":
            describe = lambda: self.batch.describe_job_queues(jobQueues=[name])["jobQueues"]
        else:
            describe = lambda: self.batch.describe_compute_environments(
                computeEnvironments=[name])["computeEnvironments"]
        self._wait(describe, f"{kind} {name} deletion", lambda f: not f or f[0].get("status") == "DELETED",
                   timeout)

    def cleanup(self, budget: float = 60) -> list[str]:
        """Disables and deletes everything this run created, queues before their compute environments,
        within `budget` seconds; returns what could not be removed."""
        deadline = time.monotonic() + budget
        left: list[str] = []

        def attempt(what: str, call: Callable[[float], Any]) -> None:
            try:
                call(max(1.0, deadline - time.monotonic()))
            except (ClientError, pytest.skip.Exception, pytest.fail.Exception) as exc:
                left.append(f"{what}: {str(exc).splitlines()[0][:120]}")

        queues, ces = self.job_queues, self.compute_environments

        def queues_now() -> list[dict]:
            return self.batch.describe_job_queues(jobQueues=queues)["jobQueues"] if queues else []

        def ces_now() -> list[dict]:
            return (self.batch.describe_compute_environments(computeEnvironments=ces)["computeEnvironments"]
                    if ces else [])

        def settled(found: list[dict]) -> bool:
            return all(item.get("status") not in ("CREATING", "UPDATING") for item in found)

        for name in queues:
            attempt(f"disable queue {name}", lambda t, name=name: self.batch.update_job_queue(
                jobQueue=name, state="DISABLED"))
        attempt("queues settling", lambda t: self._wait(queues_now, "queues", settled, t))
        for name in queues:
            attempt(f"delete queue {name}", lambda t, name=name: self.batch.delete_job_queue(jobQueue=name))
        for name in ces:
            attempt(f"disable compute environment {name}", lambda t, name=name: (
                self.batch.update_compute_environment(computeEnvironment=name, state="DISABLED")))
        attempt("queues deletion", lambda t: self._wait(
            queues_now, "queues", lambda found: all(q.get("status") == "DELETED" for q in found), t))
        attempt("compute environments settling", lambda t: self._wait(ces_now, "compute environments", settled, t))
        for name in ces:
            attempt(f"delete compute environment {name}", lambda t, name=name: (
                self.batch.delete_compute_environment(computeEnvironment=name)))
        for arn in self.job_definitions:
            attempt(f"deregister {arn}", lambda t, arn=arn: self.batch.deregister_job_definition(jobDefinition=arn))
        for arn in self.scheduling_policies:
            attempt(f"delete {arn}", lambda t, arn=arn: self.batch.delete_scheduling_policy(arn=arn))
        for name in self.consumable_resources:
            attempt(f"delete consumable resource {name}", lambda t, name=name: self.batch.delete_consumable_resource(
                consumableResource=name))
        return left


def unique_prefix() -> str:
    return f"conf-{uuid.uuid4().hex[:8]}"
