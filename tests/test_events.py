"""Batch's EventBridge events: their shapes and order (the `batchemu_events` fixture), the Server-Sent Events
stream and its resume, `batchemu events --follow`, delivery to moto's EventBridge (a rule on aws.batch with an
SQS target), and no event lost when the server is killed while delivery is down. All on the simulate
executor: no Docker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

from batchemu.config import Config
from batchemu.context import Context
from batchemu.model import arrays, job_events, states
from batchemu.protocol.serializer import projector
from batchemu.scheduler.event_delivery import EventDelivery
from batchemu.store import Store
from tests.conftest import make_queue, register, submit, unique, wait_for_status
from tests.test_service_jobs import payload, service_queue
from tests.test_service_jobs import submit as submit_service_job
from tests.waiting import wait_for

RETRIED_THEN_FAILED = ["PENDING", "RUNNABLE", "STARTING", "RUNNING",  # first attempt exits 3 ...
                       "RUNNABLE", "STARTING", "RUNNING", "FAILED"]  # ... is retried once, and fails again
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2)


def failing(batch_client) -> dict:
    return register(batch_client, ["false"], image="registry.invalid/nothing:1",
                    containerProperties={"environment": [{"name": "BATCHEMU_SIMULATE_EXIT_CODE", "value": "3"}]})


def test_a_retried_job_sends_every_change_in_awss_shape(batch_client, batchemu_events, queue):
    job_id = submit(batch_client, queue, failing(batch_client), retryStrategy={"attempts": 2})
    last = batchemu_events.wait_for_status(job_id, "FAILED")
    assert batchemu_events.statuses(job_id) == RETRIED_THEN_FAILED  # no event for the first SUBMITTED
    events = batchemu_events.of_job(job_id)
    for event in events:
        assert set(event) == ENVELOPE
        assert (event["version"], event["source"], event["detail-type"]) == ("0", "aws.batch", "Batch Job State Change")
        assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
        assert event["resources"] == [event["detail"]["jobArn"]]
        assert event["time"].endswith("Z") and len(event["time"]) == 20
    assert len({event["id"] for event in events}) == len(events)
    # The detail is the job as DescribeJobs showed it at that moment.
    assert [len(event["detail"].get("attempts", [])) for event in events] == [0, 0, 0, 0, 1, 1, 1, 2]
    assert last["detail"] == wait_for_status(batch_client, job_id)
    assert last["detail"]["container"]["exitCode"] == 3


def test_array_children_and_a_blocked_queue(batch_client, batchemu_events, queue):
    definition = register(batch_client, ["true"], image="registry.invalid/nothing:1")
    parent = batch_client.submit_job(jobName=unique("array"), jobQueue=queue["name"], arrayProperties={"size": 2},
                                      jobDefinition=definition["jobDefinitionArn"])["jobId"]
    batchemu_events.wait_for_status(parent, "SUCCEEDED")
    assert batchemu_events.statuses(parent) == ["PENDING", "SUCCEEDED"]
    for index in range(2):
        child = f"{parent}:{index}"
        assert batchemu_events.statuses(child) == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
        runnable = batchemu_events.of_job(child)[0]["detail"]
        assert (runnable["status"], runnable["arrayProperties"], runnable["attempts"]) == (
            "RUNNABLE", {"index": index}, [])
    # A job no compute environment of the queue can hold blocks it.
    too_big = submit(batch_client, queue, register(batch_client, ["true"], vcpus="64", image="registry.invalid/x:1"))
    batchemu_events.wait_for(lambda events: any(e["detail-type"] == "Batch Job Queue Blocked"
                                                for e in events.of_job(too_big)))
    blocked = next(e for e in batchemu_events.of_job(too_big) if e["detail-type"] == "Batch Job Queue Blocked")
    assert blocked["resources"] == [blocked["detail"]["jobArn"], queue["arn"]]
    assert blocked["detail"]["status"] == "RUNNABLE"
    assert blocked["detail"]["statusReason"].startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")


def test_a_multi_node_job_and_each_of_its_nodes_send_their_changes(batch_client, batchemu_events, queue):
    node = {"image": "registry.invalid/nothing:1", "command": ["true"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
    definition = batch_client.register_job_definition(
        jobDefinitionName=unique("mnp"), type="multinode",
        nodeProperties={"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:1", "container": node}]})
    job_id = submit(batch_client, queue, definition)
    batchemu_events.wait_for_status(job_id, "SUCCEEDED")
    walk = ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    assert batchemu_events.statuses(job_id) == walk
    for index in range(2):
        assert batchemu_events.statuses(f"{job_id}#{index}") == walk
        assert batchemu_events.of_job(f"{job_id}#{index}")[-1]["detail"]["nodeDetails"] == {
            "nodeIndex": index, "isMainNode": index == 0}


def test_service_jobs_send_their_own_detail_type_without_payload_or_tags(batch_client, batchemu_events):
    queue = service_queue(batch_client)
    job_id = submit_service_job(batch_client, queue, payload(seconds=0.2), tags={"team": "ml"})
    batchemu_events.wait_for_status(job_id, "SUCCEEDED")
    events = batchemu_events.of_job(job_id)
    assert {event["detail-type"] for event in events} == {"Batch Service Job State Change"}
    assert batchemu_events.statuses(job_id) == ["PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING",
                                                "SUCCEEDED"]
    assert all("tags" not in e["detail"] and "serviceRequestPayload" not in e["detail"] for e in events)
    assert events[-1]["detail"]["jobArn"] == events[-1]["resources"][0]


def test_a_service_job_too_big_for_its_environment_blocks_its_queue(batch_client, batchemu_events):
    queue = service_queue(batch_client, capacity=1)
    job_id = submit_service_job(batch_client, queue, payload(instances=2))
    batchemu_events.wait_for(lambda events: any(e["detail-type"] == "Batch Service Job Queue Blocked"
                                                for e in events.of_job(job_id)))
    blocked = next(e for e in batchemu_events.of_job(job_id) if e["detail-type"] == "Batch Service Job Queue Blocked")
    assert blocked["resources"] == [blocked["detail"]["jobArn"]]  # the service-job form names the job alone
    assert blocked["detail"]["status"] == "RUNNABLE"
    assert blocked["detail"]["statusReason"].startswith("MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE")
    assert "serviceRequestPayload" not in blocked["detail"]


def read_stream(url: str, headers: dict | None = None) -> list[tuple[int, dict]]:
    """(id, event) of every event a finite stream (follow=false) sends."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = response.read().decode()
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if fields:
            found.append((int(fields["id"]), json.loads(fields["data"])))
    return found


def test_the_stream_resumes_from_last_event_id_and_filters(batch_client, batchemu_server, batchemu_events, queue):
    first = submit(batch_client, queue, register(batch_client, ["true"], image="registry.invalid/x:1"))
    other_queue = make_queue(batch_client)
    second = submit(batch_client, other_queue, register(batch_client, ["true"], image="registry.invalid/x:1"))
    for job_id in (first, second):
        batchemu_events.wait_for_status(job_id, "SUCCEEDED")
    everything = read_stream(f"{batchemu_server.url}/_batchemu/events?follow=false")
    sequences = [seq for seq, _ in everything]
    assert sequences == sorted(sequences) and len(everything) >= 10
    middle = sequences[len(sequences) // 2]
    resumed = read_stream(f"{batchemu_server.url}/_batchemu/events?follow=false", {"Last-Event-ID": str(middle)})
    assert resumed == [item for item in everything if item[0] > middle]
    by_job = read_stream(f"{batchemu_server.url}/_batchemu/events?follow=false&job={first}")
    assert [e["detail"]["status"] for _, e in by_job] == ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    by_queue = read_stream(f"{batchemu_server.url}/_batchemu/events?follow=false&queue={other_queue['name']}")
    assert {e["detail"]["jobId"] for _, e in by_queue} == {second}


def test_cli_events_follow_shows_a_jobs_changes_live(batch_client, batchemu_server, queue):
    batchemu_server.config.state_dwell = 0.3  # the job is still on its way when the command starts
    job_id = submit(batch_client, queue, failing(batch_client))
    follow = subprocess.run([sys.executable, "-m", "batchemu", "events", "--follow", "--job", job_id,
                             "--endpoint-url", batchemu_server.url], capture_output=True, text=True, timeout=90,
                            check=False)
    lines = follow.stdout.splitlines()
    assert follow.returncode == 1, follow.stderr  # the job FAILED
    assert [line.split()[3] for line in lines] == ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "FAILED"]
    assert all(line.split()[1] == job_id for line in lines)
    assert lines[-1].endswith("Essential container in task exited")
    as_json = subprocess.run([sys.executable, "-m", "batchemu", "events", "--json", "--job", job_id,
                              "--endpoint-url", batchemu_server.url], capture_output=True, text=True, timeout=60,
                             check=True)
    assert [json.loads(line)["detail"]["status"] for line in as_json.stdout.splitlines()] == [
        "PENDING", "RUNNABLE", "STARTING", "RUNNING", "FAILED"]


# -- a local EventBridge: moto's server ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    moto = Path(sys.executable).with_name("moto_server")
    if not moto.exists():
        pytest.skip(f"{moto} not found: pip install 'moto[server]' (the test extra has it)")
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(answers, what=f"moto_server on port {port}", timeout=20)
    return process


def aws(service: str, port: int):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def rule_to_sqs(port: int) -> str:
    """A rule on source aws.batch with an SQS target on moto's default bus; the queue's URL."""
    sqs = aws("sqs", port)
    url = sqs.create_queue(QueueName=unique("batch-events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws("events", port)
    events.put_rule(Name="batch-events", EventPattern=json.dumps({"source": ["aws.batch"]}))
    events.put_targets(Rule="batch-events", Targets=[{"Id": "sqs", "Arn": arn}])
    return url


def received(port: int, queue_url: str, count: int) -> list[dict]:
    """The first `count` events on the SQS queue, in the order they arrived."""
    sqs, got = aws("sqs", port), []

    def more() -> int:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", []):
            got.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(got)
    wait_for(more, lambda n: n >= count, what=f"{count} events on SQS", timeout=30, interval=0.2)
    return got


@pytest.fixture
def moto_port():
    port = free_port()
    process = start_moto(port)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_eventbridge_rule_on_aws_batch_delivers_every_event_in_order(moto_port):
    from batchemu.http.server import Server
    queue_url = rule_to_sqs(moto_port)
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate",
                           events_endpoint=f"http://127.0.0.1:{moto_port}")).start()
    try:
        batch = boto3.client("batch", endpoint_url=server.url, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
        job_id = submit(batch, make_queue(batch), failing(batch), retryStrategy={"attempts": 2})
        assert wait_for_status(batch, job_id)["status"] == "FAILED"
        events = [e for e in received(moto_port, queue_url, len(RETRIED_THEN_FAILED))
                  if e["detail"].get("jobId") == job_id]
    finally:
        server.stop()
    assert [e["detail"]["status"] for e in events] == RETRIED_THEN_FAILED
    assert {(e["source"], e["detail-type"]) for e in events} == {("aws.batch", "Batch Job State Change")}
    assert events[-1]["resources"] == [events[-1]["detail"]["jobArn"]]
    assert [len(e["detail"].get("attempts", [])) for e in events] == [0, 0, 0, 0, 1, 1, 1, 2]


def serve(state: str, endpoint: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", state,
                                "--executor", "simulate", "--events-endpoint", endpoint],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert "listening on" in line, line
    return process, line.split("listening on ", 1)[1].split()[0]


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/_batchemu/health", timeout=10) as response:
        return json.loads(response.read())


def test_kill_9_while_eventbridge_is_down_loses_no_event(tmp_path):
    state, port = str(tmp_path / "state.sqlite3"), free_port()
    process, url = serve(state, f"http://127.0.0.1:{port}")  # nothing listens there yet
    try:
        batch = boto3.client("batch", endpoint_url=url, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
        queue = make_queue(batch)
        jobs = [submit(batch, queue, failing(batch), retryStrategy={"attempts": 2}) for _ in range(3)]
        for job_id in jobs:
            assert wait_for_status(batch, job_id)["status"] == "FAILED"
        recorded = read_stream(url + "/_batchemu/events?follow=false")
        assert health(url)["events"]["deliveredThrough"] == 0  # every PutEvents failed so far
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    moto = start_moto(port)
    try:
        queue_url = rule_to_sqs(port)
        process, url = serve(state, f"http://127.0.0.1:{port}")
        try:
            got = received(port, queue_url, len(recorded))
            wait_for(lambda: health(url)["events"]["deliveredThrough"], lambda seq: seq == recorded[-1][0],
                     what="the last event recorded as delivered", timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    assert [(e["detail-type"], e["detail"]["jobId"], e["detail"]["status"]) for e in got] == [
        (e["detail-type"], e["detail"]["jobId"], e["detail"]["status"]) for _, e in recorded]
    for job_id in jobs:
        assert [e["detail"]["status"] for e in got if e["detail"]["jobId"] == job_id] == RETRIED_THEN_FAILED


# -- delivery and pruning, without a server ----------------------------------------------------------------

class RefusingEventBridge:
    """PutEvents that takes the first `accept` entries of each call and refuses the rest."""

    def __init__(self, accept: int) -> None:
        self.accept, self.sent = accept, []

    def put_events(self, Entries):  # boto3's argument name
        self.sent.extend(entry["DetailType"] for entry in Entries[:self.accept])
        return {"FailedEntryCount": max(0, len(Entries) - self.accept),
                "Entries": [{"EventId": f"e{i}"} if i < self.accept else
                            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} for i in range(len(Entries))]}


def outbox_with_jobs(count: int, endpoint: str = "") -> Context:
    """A context over a throw-away store holding `count` jobs moved SUBMITTED -> RUNNABLE (2 events each)."""
    config = Config(state=":memory:", events_endpoint=endpoint, events_kept=3)
    ctx = Context(store=Store(":memory:", job_wire=projector("batch", "JobDetail"),
                              summary_wire=projector("batch", "JobSummary"), child_doc=arrays.child_doc),
                  config=config)
    EventDelivery(ctx)  # begins delivery (when there is an endpoint) before any event
    with ctx.store.transaction() as tx:
        for index in range(count):
            tx.jobs.insert({"jobId": f"job-{index}", "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/job-{index}",
                            "jobName": "n", "jobQueue": "q", "jobDefinition": "d", "status": "SUBMITTED",
                            "createdAt": 1, "batchemu": {"transitions": [["SUBMITTED", 1]]}})
        states.queue_ready_submitted(tx, 2)
    return ctx


def test_a_partly_refused_put_events_records_what_went_and_sends_the_rest_again_in_order():
    ctx = outbox_with_jobs(3, endpoint="http://127.0.0.1:1")
    bridge = RefusingEventBridge(accept=4)
    delivery = EventDelivery(ctx, client=bridge)
    with pytest.raises(RuntimeError, match="PutEvents refused event 5: InternalFailure try again"):
        delivery.deliver_some()
    with ctx.store.read() as tx:
        assert tx.events.delivered() == 4
    bridge.accept = 10
    assert delivery.deliver_some() is True
    assert delivery.deliver_some() is False  # nothing left
    with ctx.store.read() as tx:
        assert tx.events.delivered() == 6
        statuses = [event["detail"]["status"] for _, event in job_events.read(tx, ctx.config, 0)]
    assert statuses == ["PENDING", "RUNNABLE"] * 3
    assert bridge.sent == ["Batch Job State Change"] * 6


def test_pruning_keeps_the_newest_events_and_every_undelivered_one():
    ctx = outbox_with_jobs(4)
    with ctx.store.transaction() as tx:
        assert tx.events.prune(ctx.config.events_kept, keep_undelivered=False, at_most=2) == 2  # the oldest two
        assert tx.events.prune(ctx.config.events_kept, keep_undelivered=False) == 3
        assert [row["seq"] for row in tx.events.after(0)] == [6, 7, 8]
    delivering = outbox_with_jobs(4, endpoint="http://127.0.0.1:1")
    with delivering.store.transaction() as tx:
        assert tx.events.prune(3, keep_undelivered=True) == 0  # none delivered yet
        tx.events.mark_delivered(2)
        assert tx.events.prune(3, keep_undelivered=True) == 2
        assert tx.events.after(0)[0]["seq"] == 3
