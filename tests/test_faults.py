"""Fault injection (POST /_batchemu/faults, `batchemu fault`): each fault ends an attempt, or fails the next
start, as AWS reports that event, and retry strategies act on it. Simulated executor unless marked docker."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from batchemu import cli
from batchemu.config import Config
from tests.conftest import describe, make_queue, needs_docker, register, unique, wait_for_status, wait_until

OOM = "OutOfMemoryError: Container killed due to memory usage"
LOST_HOST = re.compile(r"Host EC2 \(instance i-[0-9a-f]{17}\) terminated\.")
HOST_RETRY = {"attempts": 2, "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"},
                                                {"onReason": "*", "action": "EXIT"}]}


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2)


def post_fault(server, body, *, raw: bytes | None = None, method: str = "POST") -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + "/_batchemu/faults", data=data if method == "POST" else None,
                                     method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers["Content-Type"] == "application/json"
        return exc.code, json.loads(exc.read())


def fault(server, job_id: str, name: str) -> dict:
    status, answer = post_fault(server, {"jobId": job_id, "fault": name})
    assert status == 200, answer
    return answer


def long_running(batch_client, image: str = "registry.invalid/nothing:1", **extra) -> dict:
    return register(batch_client, ["sleep", "60"], image=image, containerProperties={
        "environment": [{"name": "BATCHEMU_SIMULATE_SECONDS", "value": "60"}]}, **extra)


def submit(batch_client, queue: dict, definition: dict, **extra) -> str:
    return batch_client.submit_job(jobName=unique("job"), jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"], **extra)["jobId"]


def running_attempt(batch_client, job_id: str, number: int) -> dict:
    """Wait until the job runs its attempt `number` (1-based)."""
    return wait_until(lambda: (job := describe(batch_client, job_id))["status"] == "RUNNING"
                      and len(job.get("attempts", [])) == number - 1 and job, 30)


def test_spot_reclaim_is_retried_on_host_ec2_and_host_failure_ends_the_last_attempt(
        batch_client, batchemu_server, queue):
    job_id = submit(batch_client, queue, long_running(batch_client, retryStrategy=HOST_RETRY))
    running_attempt(batch_client, job_id, 1)
    assert fault(batchemu_server, job_id, "spot-reclaim")["appliesTo"] == "attempt 1"
    running_attempt(batch_client, job_id, 2)  # retried: RUNNABLE, STARTING, RUNNING again
    fault(batchemu_server, job_id, "host-failure")
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert job["status"] == "FAILED"
    assert LOST_HOST.fullmatch(job["statusReason"]), job["statusReason"]
    assert [LOST_HOST.fullmatch(a["statusReason"]) is not None for a in job["attempts"]] == [True, True]
    assert job["attempts"][0]["statusReason"] != job["attempts"][1]["statusReason"]  # another host each time
    assert all("exitCode" not in a["container"] and "reason" not in a["container"] for a in job["attempts"])
    assert "exitCode" not in job["container"]


def test_oom_fault_is_137_with_awss_reason_and_retried_on_reason(batch_client, batchemu_server, queue):
    job_id = submit(batch_client, queue, long_running(batch_client, retryStrategy={
        "attempts": 2, "evaluateOnExit": [{"onReason": "OutOfMemoryError*", "action": "RETRY"},
                                          {"onReason": "*", "action": "EXIT"}]}))
    running_attempt(batch_client, job_id, 1)
    fault(batchemu_server, job_id, "oom")
    running_attempt(batch_client, job_id, 2)
    first = describe(batch_client, job_id)["attempts"][0]
    assert (first["container"]["exitCode"], first["container"]["reason"]) == (137, OOM)
    assert first["statusReason"] == "Essential container in task exited"
    batch_client.terminate_job(jobId=job_id, reason="done")
    assert wait_for_status(batch_client, job_id, timeout=20)["statusReason"] == "done"


def test_pull_failure_fails_only_the_next_start_of_a_queued_job(batch_client, batchemu_server):
    queue = make_queue(batch_client, ce_state="DISABLED")  # the job waits in RUNNABLE
    definition = register(batch_client, ["true"], image="registry.invalid/nothing:1", retryStrategy={
        "attempts": 2, "evaluateOnExit": [{"onReason": "CannotPullContainerError*", "action": "RETRY"}]})
    job_id = submit(batch_client, queue, definition)
    wait_for_status(batch_client, job_id, ("RUNNABLE",), timeout=10)
    assert fault(batchemu_server, job_id, "pull-failure")["appliesTo"] == "next start"
    batch_client.update_compute_environment(computeEnvironment=queue["ce"], state="ENABLED")
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert job["status"] == "SUCCEEDED"  # the retry pulled fine
    first = job["attempts"][0]
    assert first["statusReason"] == "Task failed to start"
    assert first["container"]["reason"].startswith(
        "CannotPullContainerError: Error response from daemon: pull access denied for registry.invalid/nothing")
    assert "exitCode" not in first["container"]


def test_pull_failure_on_a_running_job_fails_its_next_attempt(batch_client, batchemu_server, queue):
    job_id = submit(batch_client, queue, long_running(batch_client, retryStrategy={"attempts": 2}))
    running_attempt(batch_client, job_id, 1)
    fault(batchemu_server, job_id, "pull-failure")
    assert describe(batch_client, job_id)["status"] == "RUNNING"  # the running attempt goes on
    fault(batchemu_server, job_id, "spot-reclaim")
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert [a["statusReason"] for a in job["attempts"]][1:] == ["Task failed to start"]
    assert (job["status"], job["statusReason"]) == ("FAILED", "Task failed to start")
    assert job["container"]["reason"].startswith("CannotPullContainerError: ")


def test_bad_fault_requests_answer_json_client_errors(batch_client, batchemu_server, queue):
    finished = submit(batch_client, queue, register(batch_client, ["true"], image="registry.invalid/nothing:1"))
    wait_for_status(batch_client, finished, timeout=20)
    waiting = submit(batch_client, make_queue(batch_client, ce_state="DISABLED"), register(batch_client))
    wait_for_status(batch_client, waiting, ("RUNNABLE",), timeout=10)
    cases = [
        (None, b"{not json", "Request body is not valid JSON"),
        (None, b"[1]", "Request body must be a JSON object"),
        ({"fault": "oom"}, None, "jobId must be a non-empty string"),
        ({"jobId": ["x"], "fault": "oom"}, None, "jobId must be a non-empty string"),
        ({"jobId": finished, "fault": "meteor"}, None, "fault 'meteor' is none of spot-reclaim, oom, host-failure"),
        ({"jobId": finished, "fault": "oom", "extra": 1}, None, "unknown field(s) extra"),
        ({"jobId": "no-such-job", "fault": "oom"}, None, "Job no-such-job does not exist"),
        ({"jobId": finished, "fault": "pull-failure"}, None, "is SUCCEEDED: it has no attempt left to fault"),
        ({"jobId": waiting, "fault": "spot-reclaim"}, None, "has no running attempt (status RUNNABLE)"),
    ]
    for body, raw, message in cases:
        status, answer = post_fault(batchemu_server, body, raw=raw)
        assert (status, answer["__type"]) == (400, "ClientException"), (body, raw, answer)
        assert message in answer["message"], (body, raw, answer)
    status, answer = post_fault(batchemu_server, None, method="GET")
    assert (status, answer["__type"]) == (405, "MethodNotAllowedException")


def test_fault_command_posts_to_the_endpoint(batch_client, batchemu_server, queue, capsys, monkeypatch):
    job_id = submit(batch_client, queue, long_running(batch_client))
    running_attempt(batch_client, job_id, 1)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BATCH", batchemu_server.url)
    assert cli.main(["fault", job_id, "oom"]) == 0
    assert json.loads(capsys.readouterr().out)["appliesTo"] == "attempt 1"
    job = wait_for_status(batch_client, job_id, timeout=20)
    assert (job["container"]["exitCode"], job["container"]["reason"]) == (137, OOM)
    monkeypatch.delenv("AWS_ENDPOINT_URL_BATCH")
    assert cli.main(["fault", job_id, "oom", "--endpoint-url", batchemu_server.url]) == 1
    assert "400 Job " in capsys.readouterr().err
    assert cli.main(["fault", job_id, "oom", "--endpoint-url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach http://127.0.0.1:9/_batchemu/faults" in capsys.readouterr().err


def test_faults_are_refused_without_a_scheduler():
    from batchemu.http.server import Server
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:"), with_scheduler=False).start()
    try:
        status, answer = post_fault(server, {"jobId": "x", "fault": "oom"})
        assert (status, answer["message"]) == (400, "faults need the scheduler: this server runs with --no-scheduler")
    finally:
        server.stop()


@needs_docker
@pytest.mark.parametrize("batchemu_config", [Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5)])
def test_docker_container_spot_reclaimed_then_oom_killed(batch_client, batchemu_server, queue, batchemu_config):
    assert batchemu_server.config.executor == "docker"
    job_id = submit(batch_client, queue, long_running(batch_client, image="batchemu-test:latest", retryStrategy={
        "attempts": 3, "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"},
                                          {"onReason": "OutOfMemoryError*", "action": "EXIT"}]}))
    running_attempt(batch_client, job_id, 1)
    fault(batchemu_server, job_id, "spot-reclaim")
    running_attempt(batch_client, job_id, 2)
    fault(batchemu_server, job_id, "oom")
    job = wait_for_status(batch_client, job_id, timeout=30)
    first, second = job["attempts"]
    assert LOST_HOST.fullmatch(first["statusReason"]) and "exitCode" not in first["container"]
    assert (second["container"]["exitCode"], second["container"]["reason"]) == (137, OOM)
    assert (job["status"], job["statusReason"]) == ("FAILED", "Essential container in task exited")


def test_fault_endpoint_needs_a_signature_when_auth_is_on_and_the_command_signs(capsys, monkeypatch):
    from batchemu.http.server import Server
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:", executor="simulate",
                           auth={"AKIDFAULT": "fault-secret"})).start()
    try:
        status, answer = post_fault(server, {"jobId": "x", "fault": "oom"})
        assert (status, answer["__type"]) == (403, "MissingAuthenticationTokenException")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAULT")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fault-secret")
        assert cli.main(["fault", "no-such-job", "oom", "--endpoint-url", server.url]) == 1
        assert "400 Job no-such-job does not exist" in capsys.readouterr().err  # signed, so it got that far
    finally:
        server.stop(remove_containers=True)
