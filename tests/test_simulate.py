"""`--executor simulate`: every job walks the scheduler's states, capacity, retries, arrays, dependencies,
terminate and timeouts without a Docker Engine; a job's environment chooses its exit code, run time and
container reason. No test here needs Docker."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from batchemu.config import Config
from batchemu.executors.registry import create_executor
from batchemu.model import states
from tests.conftest import describe, make_queue, register, submit, unique, wait_for_status, wait_until
from tests.test_scheduling import max_overlap, wait_with_clock_ahead

OOM = "OutOfMemoryError: Container killed due to memory usage"


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2)


def simulated(batch_client, command=None, *, environment: dict[str, str] | None = None, **extra) -> dict:
    """A job definition on an image that exists nowhere: nothing is pulled or run."""
    properties = extra.pop("containerProperties", {})
    if environment:
        properties["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    return register(batch_client, command or ["true"], image="registry.invalid/nothing:1",
                    containerProperties=properties, **extra)


def env_override(**variables: str) -> dict:
    return {"containerOverrides": {"environment": [{"name": k, "value": v} for k, v in variables.items()]}}


def test_health_names_the_simulate_executor(batchemu_server):
    with urllib.request.urlopen(batchemu_server.url + "/_batchemu/health", timeout=10) as response:
        health = json.loads(response.read())
    assert health["executor"]["name"] == "simulate"
    assert health["executor"]["reachable"] is True
    assert "docker" not in health  # no Docker Engine is asked


def test_a_job_walks_every_state_and_ships_one_log_line(batch_client, logs_client, batchemu_server, queue):
    batchemu_server.config.state_dwell = 0.15  # long enough for the poll below to see every state
    job_id = submit(batch_client, queue, simulated(batch_client, ["echo", "hello world"]))
    seen: list[str] = []
    job = wait_for_status(batch_client, job_id, timeout=20, seen=seen)
    assert seen == ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    assert job["container"]["exitCode"] == 0
    assert job["statusReason"] == "Essential container in task exited"
    assert job["stoppedAt"] >= job["startedAt"]
    events = logs_client.get_log_events(logGroupName="/aws/batch/job", startFromHead=True,
                                        logStreamName=job["container"]["logStreamName"])["events"]
    assert [e["message"] for e in events] == ["simulated run of registry.invalid/nothing:1 echo 'hello world'"]


def test_exit_code_and_run_time_come_from_the_job_environment(batch_client, queue):
    definition = simulated(batch_client, environment={"BATCHEMU_SIMULATE_EXIT_CODE": "3"})
    job = wait_for_status(batch_client, submit(batch_client, queue, definition), timeout=20)
    assert (job["status"], job["container"]["exitCode"]) == ("FAILED", 3)
    assert job["statusReason"] == "Essential container in task exited"
    # Overrides win over the definition, as for any environment variable.
    job_id = submit(batch_client, queue, definition,
                    **env_override(BATCHEMU_SIMULATE_EXIT_CODE="0", BATCHEMU_SIMULATE_SECONDS="1.0"))
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert (job["status"], job["container"]["exitCode"]) == ("SUCCEEDED", 0)
    assert job["stoppedAt"] - job["startedAt"] >= 900


def test_capacity_is_respected(batch_client):
    queue = make_queue(batch_client, max_vcpus=2)
    definition = simulated(batch_client, environment={"BATCHEMU_SIMULATE_SECONDS": "0.4"})
    ids = [submit(batch_client, queue, definition) for _ in range(5)]
    jobs = [wait_for_status(batch_client, i, timeout=30) for i in ids]
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 5
    assert max_overlap(jobs) == 2  # never more than maxvCpus, and the capacity is used


def test_retries_follow_evaluate_on_exit(batch_client, queue):
    definition = simulated(batch_client, environment={"BATCHEMU_SIMULATE_EXIT_CODE": "3"}, retryStrategy={
        "attempts": 3, "evaluateOnExit": [{"onExitCode": "4", "action": "EXIT"}, {"onExitCode": "3", "action": "RETRY"}]})
    job = wait_for_status(batch_client, submit(batch_client, queue, definition), timeout=30)
    assert job["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [3, 3, 3]
    job_id = submit(batch_client, queue, definition, **env_override(BATCHEMU_SIMULATE_EXIT_CODE="4"))
    job = wait_for_status(batch_client, job_id, timeout=30)
    assert (job["status"], len(job["attempts"])) == ("FAILED", 1)  # EXIT: not retried


def test_out_of_memory_reason_is_awss_and_retried_on_reason(batch_client, queue):
    definition = simulated(batch_client, environment={"BATCHEMU_SIMULATE_REASON": OOM}, retryStrategy={
        "attempts": 2, "evaluateOnExit": [{"onReason": "OutOfMemoryError*", "action": "RETRY"},
                                          {"onReason": "*", "action": "EXIT"}]})
    job = wait_for_status(batch_client, submit(batch_client, queue, definition), timeout=30)
    assert job["status"] == "FAILED"
    assert (job["container"]["exitCode"], job["container"]["reason"]) == (137, OOM)
    assert job["statusReason"] == "Essential container in task exited"
    assert [(a["container"]["exitCode"], a["container"]["reason"]) for a in job["attempts"]] == [(137, OOM)] * 2


def test_start_failures_asked_for_or_malformed_fail_the_task(batch_client, queue):
    pull = "CannotPullContainerError: pull access denied for nothing"
    job_id = submit(batch_client, queue, simulated(batch_client), **env_override(BATCHEMU_SIMULATE_REASON=pull))
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert (job["status"], job["statusReason"], job["container"]["reason"]) == ("FAILED", "Task failed to start", pull)
    assert "exitCode" not in job["container"]
    job_id = submit(batch_client, queue, simulated(batch_client), **env_override(BATCHEMU_SIMULATE_SECONDS="soon"))
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert (job["status"], job["statusReason"]) == ("FAILED", "Task failed to start")
    assert job["container"]["reason"].startswith("CannotStartContainerError: BATCHEMU_SIMULATE_SECONDS='soon'")


def test_array_children_and_a_dependent_job(batch_client, queue):
    definition = simulated(batch_client)
    parent = submit(batch_client, queue, definition, arrayProperties={"size": 3})
    after = submit(batch_client, queue, definition, dependsOn=[{"jobId": parent}])
    last = wait_for_status(batch_client, after, timeout=30)
    array = describe(batch_client, parent)
    assert (array["status"], array["arrayProperties"]["statusSummary"]["SUCCEEDED"]) == ("SUCCEEDED", 3)
    children = [describe(batch_client, f"{parent}:{index}") for index in range(3)]
    assert [c["status"] for c in children] == ["SUCCEEDED"] * 3
    assert last["status"] == "SUCCEEDED"
    assert last["startedAt"] >= max(c["stoppedAt"] for c in children)


def test_terminate_stops_a_running_attempt(batch_client, queue):
    job_id = submit(batch_client, queue, simulated(batch_client, environment={"BATCHEMU_SIMULATE_SECONDS": "60"}))
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=20)
    batch_client.terminate_job(jobId=job_id, reason="stopped by the operator")
    job = wait_for_status(batch_client, job_id, timeout=10)
    assert (job["status"], job["statusReason"], job["isTerminated"]) == ("FAILED", "stopped by the operator", True)
    assert len(job["attempts"]) == 1


@pytest.mark.rule("JobTimeout.terminates", "SubmitJob.timeout.not-retried")
def test_attempt_timeout_ends_the_run_and_is_not_retried(batch_client, batchemu_server, queue):
    definition = simulated(batch_client, environment={"BATCHEMU_SIMULATE_SECONDS": "120"},
                           timeout={"attemptDurationSeconds": 60}, retryStrategy={"attempts": 2})
    job_id = submit(batch_client, queue, definition)
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=20)
    job = wait_with_clock_ahead(batch_client, batchemu_server, job_id, 61_000)
    assert (job["status"], job["statusReason"]) == ("FAILED", "Job attempt duration exceeded timeout")
    assert len(job["attempts"]) == 1


def test_unknown_executor_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown executor 'kubernetes'; choose one of docker, simulate"):
        create_executor(Config(state=":memory:", executor="kubernetes"))


def test_simulated_runs_are_reported_once_and_stop_ends_them():
    from batchemu.executors import ContainerSpec, TaskSpec

    def task(attempt: int, environment: dict) -> TaskSpec:
        return TaskSpec(job_id="j", attempt=attempt, containers=[ContainerSpec(
            image="i", command=["true"], environment=environment, vcpus=1, memory_mib=None, log_group="g",
            log_stream="s")])
    executor = create_executor(Config(state=":memory:", executor="simulate", simulate_seconds=30))
    woken = []
    executor.set_listener(lambda: woken.append(1))
    try:
        run_id = executor.start(task(1, {})).task_id
        assert executor.running() == {("j", 1): run_id}
        assert executor.collect_exits() == []
        executor.stop(run_id)
        assert woken and executor.running() == {}
        exits = executor.collect_exits()
        assert [(e.job_id, e.attempt, e.main.exit_code) for e in exits] == [("j", 1, 143)]
        assert executor.collect_exits() == []
        quick = executor.start(task(2, {"BATCHEMU_SIMULATE_SECONDS": "0"})).task_id
        wait_until(lambda: [e.main.exit_code for e in executor.collect_exits() if e.task_id == quick] == [0], 5)
    finally:
        executor.close()


def test_a_multi_node_job_runs_its_nodes_and_its_main_node_decides(batch_client, queue):
    def node(exit_code: str, seconds: str) -> dict:
        return {"image": "registry.invalid/nothing:1", "command": ["true"], "environment": [
                    {"name": "BATCHEMU_SIMULATE_EXIT_CODE", "value": exit_code},
                    {"name": "BATCHEMU_SIMULATE_SECONDS", "value": seconds}],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
    # Node 1 is the main node and outlasts the others; the inner range 2 wins for node 2.
    definition = batch_client.register_job_definition(
        jobDefinitionName=unique("mnp"), type="multinode", nodeProperties={
            "numNodes": 3, "mainNode": 1, "nodeRangeProperties": [
                {"targetNodes": "0:2", "container": node("0", "0")}, {"targetNodes": "1", "container": node("0", "2")},
                {"targetNodes": "2", "container": node("4", "0")}]})
    job_id = submit(batch_client, queue, definition)
    parent = wait_for_status(batch_client, job_id, timeout=30)
    assert parent["status"] == "SUCCEEDED"
    nodes = [describe(batch_client, f"{job_id}#{i}") for i in range(3)]
    assert [n["nodeDetails"]["isMainNode"] for n in nodes] == [False, True, False]
    assert [(n["status"], n["container"]["exitCode"]) for n in nodes] == [
        ("SUCCEEDED", 0), ("SUCCEEDED", 0), ("FAILED", 4)]


def test_a_terminate_that_arrives_while_the_container_starts_is_carried_out_once_it_started(
        batch_client, batchemu_server, queue):
    """The worker that starts a job records it RUNNING itself, with no pass after it, unless a stop was asked
    for meanwhile: the passes during the start leave the job to that worker, so a TerminateJob carried out
    then must still stop the container once it runs. The job ends FAILED with the reason given."""
    executor = batchemu_server.scheduler.executor
    batchemu_server.config.tick = 60  # no pass on the clock: only the one the stop asks for
    entered, release = threading.Event(), threading.Event()
    original = executor.start

    def slow_start(task):
        entered.set()
        assert release.wait(10)
        return original(task)
    executor.start = slow_start
    job_id = submit(batch_client, queue, simulated(batch_client, environment={"BATCHEMU_SIMULATE_SECONDS": "120"}))
    assert entered.wait(20)
    batch_client.terminate_job(jobId=job_id, reason="stop it now")

    def stop_recorded() -> bool:
        with batchemu_server.store.read() as tx:
            return bool(states.internal(tx.jobs.get(job_id)).get("terminateReason"))
    wait_until(stop_recorded)  # by a pass that left the job itself to the start under way
    assert describe(batch_client, job_id)["status"] == "STARTING"
    release.set()
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert (job["status"], job["statusReason"]) == ("FAILED", "stop it now")
    assert job["container"]["exitCode"] == 143  # stopped by SIGTERM, as a simulated run reports it
