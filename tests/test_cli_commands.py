"""`batchemu jobs|describe|logs|submit` run as a user runs them: `python -m batchemu ...` against a live server."""

from __future__ import annotations

import json
import os
import queue as queues
import re
import socket
import subprocess
import sys
import threading

import pytest
from conftest import make_queue, needs_docker, register, unique, wait_for_status

from batchemu.cli.commands import local_time

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def environment(**extra: str) -> dict:
    """The caller's environment without any endpoint or region of its own, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(extra)
    return env


def batchemu(endpoint: str | None, command: str, *args: str, env: dict | None = None,
             timeout: float = 90) -> subprocess.CompletedProcess:
    endpoint_flag = ["--endpoint-url", endpoint] if endpoint else []
    result = subprocess.run([sys.executable, "-m", "batchemu", command, *endpoint_flag, *args],
                            check=False, capture_output=True, text=True, timeout=timeout, env=env or environment())
    assert "Traceback" not in result.stderr, result.stderr
    return result


def rows(table: str) -> list[list[str]]:
    """The table's data lines split into cells (two or more spaces separate columns)."""
    return [re.split(r"\s{2,}", line) for line in table.splitlines()[1:]]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@needs_docker
def test_jobs_lists_every_status_newest_first_and_filters_by_queue_and_status(batchemu_endpoint, batch_client):
    first, second = make_queue(batch_client), make_queue(batch_client)
    definition = register(batch_client)["jobDefinitionArn"]

    def submit(name: str, job_queue: dict, command: list[str], **extra) -> str:
        return batch_client.submit_job(jobName=name, jobQueue=job_queue["name"], jobDefinition=definition,
                                       containerOverrides={"command": command}, **extra)["jobId"]

    ok, bad, other = unique("ok"), unique("bad"), unique("other")
    ids = {ok: submit(ok, first, ["true"]), bad: submit(bad, first, ["sh", "-c", "exit 3"]),
           other: submit(other, second, ["true"])}
    for name, status in ((ok, "SUCCEEDED"), (bad, "FAILED"), (other, "SUCCEEDED")):
        assert wait_for_status(batch_client, ids[name])["status"] == status
    long, waiting = unique("long"), unique("waiting")
    ids[long] = submit(long, first, ["sleep", "60"])
    wait_for_status(batch_client, ids[long], ("RUNNING",))
    ids[waiting] = submit(waiting, first, ["true"], dependsOn=[{"jobId": ids[long]}])
    wait_for_status(batch_client, ids[waiting], ("PENDING",))

    everything = batchemu(batchemu_endpoint, "jobs")
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.split()[:8] == ["QUEUE", "NAME", "JOB", "ID", "STATUS", "CREATED", "STARTED", "STOPPED"]
    listed = rows(everything.stdout)
    assert [(row[0], row[1], row[2], row[3]) for row in listed] == [
        (first["name"], waiting, ids[waiting], "PENDING"), (first["name"], long, ids[long], "RUNNING"),
        (second["name"], other, ids[other], "SUCCEEDED"), (first["name"], bad, ids[bad], "FAILED"),
        (first["name"], ok, ids[ok], "SUCCEEDED")]
    failed = batch_client.describe_jobs(jobs=[ids[bad]])["jobs"][0]
    assert listed[3][4:] == [local_time(failed["createdAt"]), local_time(failed["startedAt"]),
                             local_time(failed["stoppedAt"]), "Essential container in task exited"]
    assert re.fullmatch(TIME, listed[0][4]) and listed[0][5:7] == ["-", "-"]  # not started yet

    in_first = batchemu(batchemu_endpoint, "jobs", "--queue", first["name"])
    assert not in_first.stdout.startswith("QUEUE")  # one queue asked for: no queue column
    assert [row[0] for row in rows(in_first.stdout)] == [waiting, long, bad, ok]
    only_failed = batchemu(batchemu_endpoint, "jobs", "--status", "failed")
    assert [row[1] for row in rows(only_failed.stdout)] == [bad]
    running_in_first = batchemu(batchemu_endpoint, "jobs", "--queue", first["arn"], "--status", "RUNNING")
    assert [row[0] for row in rows(running_in_first.stdout)] == [long]
    none = batchemu(batchemu_endpoint, "jobs", "--queue", second["name"], "--status", "FAILED")
    assert (none.returncode, none.stdout) == (0, "")
    assert f"no jobs in job queue {second['name']} with status FAILED" in none.stderr


def test_describe_prints_the_job_as_json(batchemu_endpoint, batch_client, queue):
    definition = register(batch_client, ["echo", "described"])
    job_id = batch_client.submit_job(jobName="described", jobQueue=queue["name"],
                                     jobDefinition=definition["jobDefinitionArn"])["jobId"]
    result = batchemu(batchemu_endpoint, "describe", job_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{\n  "')  # indented
    job = json.loads(result.stdout)
    assert (job["jobId"], job["jobName"], job["jobQueue"]) == (job_id, "described", queue["arn"])
    assert job["jobDefinition"] == definition["jobDefinitionArn"]
    assert job["container"]["command"] == ["echo", "described"]


@pytest.mark.parametrize("command", ["describe", "logs"])
def test_unknown_job_id_is_one_line_on_stderr_and_exit_status_1(batchemu_endpoint, command):
    result = batchemu(batchemu_endpoint, command, "no-such-job")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "batchemu: no job with id no-such-job\n"


@pytest.mark.parametrize("args", [["jobs"], ["describe", "some-id"], ["logs", "some-id", "--follow"],
                                  ["submit", "--queue", "q", "--definition", "d", "--wait"]])
def test_unreachable_server_is_one_line_and_exit_status_2(args):
    url = closed_port_url()
    result = batchemu(url, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"batchemu: cannot reach batchemu at {url}: is `batchemu serve` running?\n"


def test_endpoint_comes_from_the_environment_and_must_be_a_url(batchemu_endpoint, batch_client, queue):
    job_id = batch_client.submit_job(jobName="from-env", jobQueue=queue["name"],
                                     jobDefinition=register(batch_client)["jobDefinitionArn"])["jobId"]
    result = batchemu(None, "describe", job_id, env=environment(AWS_ENDPOINT_URL_BATCH=batchemu_endpoint))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobName"] == "from-env"
    not_a_url = batchemu("localhost:8000", "jobs")
    assert not_a_url.returncode == 2
    assert not_a_url.stderr == "batchemu: endpoint 'localhost:8000' is not an http:// or https:// URL\n"


def test_a_refused_request_prints_the_servers_message_and_exits_1(batchemu_endpoint, batch_client):
    definition = register(batch_client)["jobDefinitionName"]
    refused = batchemu(batchemu_endpoint, "submit", "--queue", "no-such-queue", "--definition", definition)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == "batchemu: jobQueue no-such-queue does not exist\n"
    listing = batchemu(batchemu_endpoint, "jobs", "--queue", "no-such-queue")
    assert (listing.returncode, listing.stderr) == (1, "batchemu: jobQueue no-such-queue does not exist\n")


def test_bad_flags_are_usage_errors_with_exit_status_2(batchemu_endpoint):
    for args, message in ((["jobs", "--status", "DONE"], "argument --status: invalid choice"),
                          (["submit", "--queue", "q", "--definition", "d", "--env", "NOVALUE"],
                           "expected NAME=VALUE, got 'NOVALUE'"),
                          (["submit", "--queue", "q", "--definition", "d", "--command"],
                           "--command needs the command to run after it")):
        result = batchemu(batchemu_endpoint, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr


def test_submit_passes_name_command_environment_array_and_dependencies(batchemu_endpoint, batch_client, queue):
    definition = register(batch_client)
    first = batchemu(batchemu_endpoint, "submit", "--queue", queue["name"], "--definition",
                     f"{definition['jobDefinitionName']}:{definition['revision']}")
    assert first.returncode == 0, first.stderr
    first_id = first.stdout.strip()
    first_job = batch_client.describe_jobs(jobs=[first_id])["jobs"][0]
    assert first_job["jobName"] == definition["jobDefinitionName"]  # named after the definition
    second = batchemu(batchemu_endpoint, "submit", "--queue", queue["arn"], "--definition",
                      definition["jobDefinitionArn"], "--name", "trial", "--array-size", "2", "--depends-on",
                      first_id, "--env", "A=1", "B=x=y", "--command", "sh", "-c", "echo $A --wait")
    assert second.returncode == 0, second.stderr
    job = batch_client.describe_jobs(jobs=[second.stdout.strip()])["jobs"][0]
    assert job["jobName"] == "trial"
    assert job["arrayProperties"]["size"] == 2
    assert job["dependsOn"] == [{"jobId": first_id}]
    assert job["container"]["command"] == ["sh", "-c", "echo $A --wait"]  # --command takes everything after it
    assert {"name": "A", "value": "1"} in job["container"]["environment"]
    assert {"name": "B", "value": "x=y"} in job["container"]["environment"]


@needs_docker
def test_submit_wait_shows_progress_and_exits_0_on_success_1_on_failure(batchemu_endpoint, batch_client, queue):
    definition = register(batch_client)["jobDefinitionName"]
    succeeded = batchemu(batchemu_endpoint, "submit", "--queue", queue["name"], "--definition", definition,
                         "--wait", "--env", "WANT=yes", "--command", "sh", "-c", 'test "$WANT" = yes')
    assert succeeded.returncode == 0, succeeded.stderr
    job_id = succeeded.stdout.strip()
    assert batch_client.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "SUCCEEDED"
    progress = succeeded.stderr.splitlines()
    assert all(f" {definition} {job_id}: " in line for line in progress), progress
    assert progress[-1].endswith(": SUCCEEDED: Essential container in task exited (exit code 0)")
    assert len(progress) == len({line.split(": ")[1] for line in progress})  # one line per status

    failed = batchemu(batchemu_endpoint, "submit", "--queue", queue["name"], "--definition", definition,
                      "--wait", "--command", "sh", "-c", "exit 3")
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.splitlines()[-1].endswith(": FAILED: Essential container in task exited (exit code 3)")


@needs_docker
def test_logs_prints_the_output_of_a_finished_job(batchemu_endpoint, batch_client, queue):
    group = unique("/custom/group")
    definition = register(batch_client, ["sh", "-c", "echo one; echo two; echo three"], containerProperties={
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": group}}})
    job_id = batch_client.submit_job(jobName="printer", jobQueue=queue["name"],
                                     jobDefinition=definition["jobDefinitionArn"])["jobId"]
    assert wait_for_status(batch_client, job_id)["status"] == "SUCCEEDED"
    printed = batchemu(batchemu_endpoint, "logs", job_id)
    assert (printed.returncode, printed.stdout, printed.stderr) == (0, "one\ntwo\nthree\n", "")
    followed = batchemu(batchemu_endpoint, "logs", job_id, "--follow")  # already ended: print and exit
    assert (followed.returncode, followed.stdout) == (0, "one\ntwo\nthree\n")


@needs_docker
def test_logs_follow_prints_lines_as_they_come_and_exits_when_the_job_ends(batchemu_endpoint, batch_client):
    held = make_queue(batch_client, ce_state="DISABLED")  # its job waits in RUNNABLE until the CE is enabled
    job_id = batch_client.submit_job(
        jobName="talker", jobQueue=held["name"], jobDefinition=register(batch_client)["jobDefinitionArn"],
        containerOverrides={"command": ["sh", "-c", "echo first; sleep 3; echo second; exit 4"]})["jobId"]
    follower = subprocess.Popen([sys.executable, "-m", "batchemu", "logs", "--endpoint-url", batchemu_endpoint,
                                 job_id, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment())
    lines: queues.Queue = queues.Queue()
    messages: queues.Queue = queues.Queue()
    for stream, into in ((follower.stdout, lines), (follower.stderr, messages)):
        threading.Thread(target=lambda stream=stream, into=into: [into.put(line) for line in stream],
                         daemon=True).start()
    try:
        assert messages.get(timeout=60) == f"job {job_id} is RUNNABLE and has no log stream yet; waiting\n"
        batch_client.update_compute_environment(computeEnvironment=held["ce"], state="ENABLED")
        assert lines.get(timeout=60) == "first\n"
        # Printed while the job still runs (it sleeps 3 s before its second line; the server may not have
        # seen the container start yet).
        assert batch_client.describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("STARTING", "RUNNING")
        assert follower.wait(timeout=60) == 1  # the job FAILED
        assert lines.get(timeout=5) == "second\n"
        assert messages.get(timeout=5) == f"job {job_id} FAILED: Essential container in task exited (exit code 4)\n"
        assert lines.empty() and messages.empty()  # said once, nothing more
    finally:
        follower.kill()
        follower.wait()


@needs_docker
def test_logs_prints_every_attempt_of_a_retried_job_oldest_first(batchemu_endpoint, batch_client, queue):
    job_id = batch_client.submit_job(
        jobName="retried", jobQueue=queue["name"], jobDefinition=register(batch_client)["jobDefinitionArn"],
        retryStrategy={"attempts": 2},
        containerOverrides={"command": ["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT; exit 5"]})["jobId"]
    result = batchemu(batchemu_endpoint, "logs", job_id, "--follow")
    assert result.returncode == 1, result.stderr
    assert result.stdout == "attempt 1\nattempt 2\n"
    assert len(batch_client.describe_jobs(jobs=[job_id])["jobs"][0]["attempts"]) == 2
    assert batchemu(batchemu_endpoint, "logs", job_id).stdout == "attempt 1\nattempt 2\n"
