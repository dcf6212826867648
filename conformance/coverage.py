"""The `covers` marker and the run report it feeds (`--coverage-json`).

    @pytest.mark.covers("CreateComputeEnvironment", "DescribeComputeEnvironments", group="resources")

names the Batch operations (botocore's names) a test exercises and the behaviour group it belongs to.
The report records, per test, its outcome, what it covers, every operation it called with the HTTP
status, the operations the endpoint did not implement, and any response-shape violations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
import pytest

GROUPS = {
    "resources": "compute environments, job queues, job definitions, scheduling policies and consumable "
                 "resources: create, describe, update, delete",
    "arns": "ARNs name the partition, region and account",
    "revisions": "job definition revisions and deregistration",
    "delete-rules": "what must be disabled or disassociated before a delete",
    "pagination": "maxResults/nextToken paging loses and repeats nothing",
    "tags": "tags on create, TagResource, UntagResource, ListTagsForResource",
    "job-states": "job states in order, terminal states, exit codes and reasons",
    "job-inputs": "command overrides, parameters and Ref:: substitution, environment overrides",
    "job-environment": "the AWS_BATCH_* environment seen inside the container",
    "retries-dependencies": "retry strategies and job dependencies",
    "capacity": "maxvCpus limits concurrency; DISABLED queues and compute environments",
    "cancel-terminate": "CancelJob and TerminateJob in each state",
    "listing": "ListJobs statuses, filters and paging",
    "logs": "CloudWatch Logs of a job's log stream",
    "errors": "malformed requests answer 400 ClientException with a JSON body, never 500",
    "arrays": "array jobs: children `<parent>:<index>`, parent statuses and statusSummary, the index inside, "
              "ListJobs(arrayJobId), a failed child fails the parent, cancel/terminate reach the children",
    "multinode": "multi-node parallel jobs: node children `<job>#<index>`, the main node's address in the "
                 "others, the main node decides, nodeOverrides, ListJobs(multiNodeJobId), refusals",
    "typed-dependencies": "SEQUENTIAL and N_TO_N dependencies, a dependency on an array waits for every "
                          "child, a failed dependency fails the dependent, at most 20 dependencies",
    "fair-share": "shareIdentifier on fair-share queues only; dispatch order by share and priority; "
                  "the SHARE_IDENTIFIER filter",
    "consumable-resources": "consumable resources gate jobs; REPLENISHABLE quantities come back, "
                            "NON_REPLENISHABLE ones are used up",
    "scaling": "desiredvCpus follows demand; lowering it by hand is refused",
    "service-environments": "service environments, SAGEMAKER_TRAINING job queues and quota shares: create, "
                            "describe, update, delete; container jobs refused on such queues",
    "service-jobs": "SageMaker training jobs through a SAGEMAKER_TRAINING queue: status path to SUCCEEDED or "
                    "FAILED, the training contract (train argument, hyperparameters, model), logs, listing, "
                    "priority updates, termination, capacity in instances",
    "request-rules": "what SubmitJob accepts and refuses: empty tags, lower-case evaluateOnExit actions, "
                     "timeouts under 60 s, array sizes",
}

BATCH_OPERATIONS = list(botocore.session.get_session().get_service_model("batch").operation_names)


def covered(item: pytest.Item) -> tuple[list[str], list[str]]:
    """The operations and groups an item's `covers` markers name."""
    operations: list[str] = []
    groups: list[str] = []
    for mark in item.iter_markers("covers"):
        operations += [op for op in mark.args if op not in operations]
        group = mark.kwargs.get("group")
        if group and group not in groups:
            groups.append(group)
    return operations, groups


def check_markers(items: list[pytest.Item]) -> None:
    """Fails collection on a marker naming an operation botocore doesn't know or an undeclared group."""
    problems = []
    for item in items:
        operations, groups = covered(item)
        problems += [f"{item.nodeid}: unknown operation {op!r}" for op in operations if op not in BATCH_OPERATIONS]
        problems += [f"{item.nodeid}: unknown group {g!r} (declare it in GROUPS)" for g in groups if g not in GROUPS]
    if problems:
        raise pytest.UsageError("bad covers markers:\n" + "\n".join(problems))


@dataclass
class Outcome:
    nodeid: str
    operations: list[str]
    groups: list[str]
    outcome: str = "passed"
    reason: str = ""
    phases: dict[str, str] = field(default_factory=dict)


class CoverageReport:
    """Collects each test's outcome; `write` dumps them with the recorder's wire log as JSON."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}

    def add_item(self, item: pytest.Item) -> None:
        operations, groups = covered(item)
        self.outcomes[item.nodeid] = Outcome(item.nodeid, operations, groups)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.add_report(report)

    def add_report(self, report: pytest.TestReport) -> None:
        outcome = self.outcomes.get(report.nodeid)
        if outcome is None:
            return
        outcome.phases[report.when] = report.outcome
        if report.outcome == "failed":
            outcome.outcome = "failed"
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
            outcome.reason = outcome.reason or (crash or report.longreprtext.strip() or "failed")[:300]
        elif report.outcome == "skipped" and outcome.outcome != "failed":
            outcome.outcome = "skipped"
            if isinstance(report.longrepr, tuple):
                outcome.reason = str(report.longrepr[2]).removeprefix("Skipped: ")

    def write(self, path: str, target: dict, recorder) -> None:
        tests = []
        for nodeid, outcome in self.outcomes.items():
            if not outcome.phases:
                continue  # deselected or never run
            record = recorder.tests.get(nodeid) if recorder else None
            called: dict[str, list[int]] = {}
            for name, status in (record.calls if record else []):
                called.setdefault(name, []).append(status)
            tests.append({"nodeid": nodeid, "operations": outcome.operations, "groups": outcome.groups,
                          "outcome": outcome.outcome, "reason": outcome.reason, "called": called,
                          "not_built": sorted(record.not_built) if record else [],
                          "violations": record.violations if record else []})
        report = {"format": "batch-conformance/1", "target": target, "operations": BATCH_OPERATIONS,
                  "groups": GROUPS, "tests": tests}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1))
