"""Intents are carried out until done, and the API stays up, when the container engine misbehaves.

Faults are injected by wrapping methods of the real DockerExecutor that the test's server runs on: a stop
that raises (engine error), a status that says the engine is unreachable, a start that finds it gone."""

from __future__ import annotations

import threading
import time

import pytest

from batchemu.executors import EngineUnavailable
from batchemu.scheduler import on_host
from tests.conftest import describe, needs_docker, register, unique, wait_for_status, wait_until

RESTOP_MS = 300  # instead of 15 s, so a lost stop is sent again within the test


class Faults:
    """Wraps one method of the server's executor: the first `failures` calls raise `error` (or, with
    `result`, return it without calling the engine); every call is counted."""

    def __init__(self, executor, method: str, *, failures: int = 0, error: Exception | None = None,
                 result=None, delay: float = 0.0) -> None:
        self.real = getattr(executor, method)
        self.failures, self.error, self.result, self.delay = failures, error, result, delay
        self.calls = 0
        self.failed = 0
        self.healthy = threading.Event()
        self._lock = threading.Lock()
        setattr(executor, method, self)

    def heal(self) -> None:
        self.healthy.set()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
            failing = not self.healthy.is_set() and (self.failures < 0 or self.failed < self.failures)
            if failing:
                self.failed += 1
        if failing:
            time.sleep(self.delay)  # an engine that does not answer makes its caller wait
            if self.error is not None:
                raise self.error
            return self.result
        return self.real(*args, **kwargs)


def submit(batch_client, queue: dict, definition: dict) -> str:
    return batch_client.submit_job(jobName=unique("job"), jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"])["jobId"]


@pytest.fixture
def quick_restop(monkeypatch):
    monkeypatch.setattr(on_host, "RESTOP_MS", RESTOP_MS)


@needs_docker
def test_terminate_whose_first_stops_fail_still_ends_the_job(batch_client, batchemu_server, queue, quick_restop):
    stop = Faults(batchemu_server.scheduler.executor, "stop", failures=2,
                  error=RuntimeError("500 Server Error: engine busy (injected)"))
    job_id = submit(batch_client, queue, register(batch_client, ["sleep", "120"]))
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    batch_client.terminate_job(jobId=job_id, reason="stopped by the operator")
    job = wait_for_status(batch_client, job_id, timeout=10)  # well before the default 15 s re-send
    assert (job["status"], job["statusReason"]) == ("FAILED", "stopped by the operator")
    assert job["isTerminated"] is True
    assert stop.failed == 2 and stop.calls >= 3  # the stop was sent again until one took effect
    assert len(job["attempts"]) == 1


@needs_docker
def test_attempt_timeout_whose_first_stop_fails_still_times_out(batch_client, batchemu_server, queue, quick_restop):
    stop = Faults(batchemu_server.scheduler.executor, "stop", failures=1,
                  error=RuntimeError("500 Server Error: engine busy (injected)"))
    definition = register(batch_client, ["sleep", "120"], timeout={"attemptDurationSeconds": 60},
                          retryStrategy={"attempts": 2})
    job_id = submit(batch_client, queue, definition)
    wait_for_status(batch_client, job_id, ("RUNNING",), timeout=30)
    real_clock = batchemu_server.ctx.clock
    batchemu_server.ctx.clock = lambda: real_clock() + 61_000  # the attempt's 60 s are over
    try:
        batchemu_server.scheduler.notify()
        job = wait_for_status(batch_client, job_id, timeout=10)
    finally:
        batchemu_server.ctx.clock = real_clock
    assert (job["status"], job["statusReason"]) == ("FAILED", "Job attempt duration exceeded timeout")
    assert len(job["attempts"]) == 1  # a timeout is not retried
    assert stop.failed == 1 and stop.calls >= 2


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


@needs_docker
def test_api_answers_and_jobs_wait_while_the_engine_is_unreachable(batch_client, batchemu_server, queue):
    executor = batchemu_server.scheduler.executor
    # Every engine call hangs a while before failing, as a daemon that does not answer would.
    status = Faults(executor, "status", failures=-1, result=(False, "Cannot connect to the Docker daemon (injected)"),
                    delay=1.0)
    start = Faults(executor, "start", failures=-1, error=EngineUnavailable("Cannot connect (injected)"), delay=1.0)
    definition = register(batch_client, ["true"])
    job_id, took = timed(submit, batch_client, queue, definition)
    slowest = took
    wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    asked = status.calls
    for _ in range(3):
        for call in (lambda: describe(batch_client, job_id),
                     lambda: batch_client.list_jobs(jobQueue=queue["name"], jobStatus="RUNNABLE"),
                     lambda: submit(batch_client, queue, definition)):
            slowest = max(slowest, timed(call)[1])
    # The scheduler has asked the engine again since (each time in vain) and the job still waits.
    wait_until(lambda: status.calls >= asked + 2, 15)
    assert describe(batch_client, job_id)["status"] == "RUNNABLE"
    assert start.calls == 0  # nothing is started on an engine that does not answer
    assert slowest < 0.75, f"an API call took {slowest:.2f} s while the engine hung"
    status.heal()
    start.heal()
    batchemu_server.scheduler.notify()
    job = wait_for_status(batch_client, job_id, timeout=60)
    assert (job["status"], len(job["attempts"])) == ("SUCCEEDED", 1)


@needs_docker
def test_a_start_that_finds_the_engine_gone_is_tried_again(batch_client, batchemu_server, queue):
    start = Faults(batchemu_server.scheduler.executor, "start", failures=2,
                   error=EngineUnavailable("Cannot connect (injected)"))
    job_id = submit(batch_client, queue, register(batch_client, ["true"]))
    job = wait_for_status(batch_client, job_id, timeout=60)
    assert (job["status"], len(job["attempts"])) == ("SUCCEEDED", 1), job
    assert start.failed == 2 and start.calls == 3
    assert job["attempts"][0]["container"]["exitCode"] == 0
