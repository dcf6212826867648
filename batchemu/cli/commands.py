"""`batchemu jobs|describe|logs|submit`: commands for people, boto3 clients of a running batchemu server."""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from batchemu.model import states

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
DEFAULT_LOG_GROUP = "/aws/batch/job"
STATUSES = tuple(states.TRANSITIONS)  # all seven, in the order a job walks them
POLL_SECONDS = 0.25  # a local server answers DescribeJobs in a few milliseconds
REASON_WIDTH = 48


class UsageError(Exception):
    """Input the command cannot act on: exit status 2."""


class CommandFailed(Exception):
    """The server understood and the answer is no (an unknown job): exit status 1."""


class Remote:
    """boto3 clients of one server, each made when first used (a client costs about 0.2 s to build)."""

    def __init__(self, endpoint: str, make_client: Callable[[str], Any]) -> None:
        self.endpoint, self._make_client = endpoint, make_client

    @functools.cached_property
    def batch(self) -> Any:
        return self._make_client("batch")

    @functools.cached_property
    def logs(self) -> Any:
        return self._make_client("logs")


def endpoint_url(args: argparse.Namespace) -> str:
    """--endpoint-url, else AWS_ENDPOINT_URL_BATCH, else the address `batchemu serve` binds by default."""
    return args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_BATCH") or DEFAULT_ENDPOINT


def connect(args: argparse.Namespace) -> Remote:
    """boto3 `batch` and `logs` clients of the server; a local server takes any credentials."""
    import boto3
    from botocore.config import Config as BotoConfig

    endpoint = endpoint_url(args)
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"endpoint {endpoint!r} is not an http:// or https:// URL")
    env = os.environ
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1"
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        credentials = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                       "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                       "aws_session_token": env.get("AWS_SESSION_TOKEN")}
    else:
        credentials = {"aws_access_key_id": "batchemu", "aws_secret_access_key": "batchemu"}
    # One attempt: an unreachable server is reported at once instead of after retries with back-off.
    config = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    session = boto3.session.Session()
    return Remote(endpoint, lambda service: session.client(service, endpoint_url=endpoint, region_name=region,
                                                           config=config, **credentials))


def guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Runs a command, turning every expected failure into one line on stderr and an exit status."""
    def fail(message: str, status: int) -> int:
        print(f"batchemu: {' '.join(message.split())}", file=sys.stderr)
        return status

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ParamValidationError
        from botocore.exceptions import ConnectionError as EndpointUnreachable
        try:
            return command(args)
        except UsageError as exc:
            return fail(str(exc), 2)
        except CommandFailed as exc:
            return fail(str(exc), 1)
        except (EndpointUnreachable, HTTPClientError):
            return fail(f"cannot reach batchemu at {endpoint_url(args)}: is `batchemu serve` running?", 2)
        except ClientError as exc:
            return fail(exc.response.get("Error", {}).get("Message") or str(exc), 1)
        except ParamValidationError as exc:
            return fail(str(exc), 2)
        except BotoCoreError as exc:
            return fail(str(exc), 2)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader went away (`batchemu jobs | head`): stop quietly, also at interpreter exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    return run


# -- shared pieces ------------------------------------------------------------------------------------------

def local_time(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def shorten(text: str | None, width: int = REASON_WIDTH) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def describe_job(batch: Any, job_id: str) -> dict:
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    if not jobs:
        raise CommandFailed(f"no job with id {job_id}")
    return jobs[0]


def outcome(job: dict) -> str:
    """`FAILED: Essential container in task exited (exit code 3)`: a status with what explains it."""
    text = job["status"]
    if job.get("statusReason"):
        text += f": {job['statusReason']}"
    exit_code = (job.get("container") or {}).get("exitCode")
    if job["status"] in states.FINISHED and exit_code is not None:
        text += f" (exit code {exit_code})"
    return text


def progress(job: dict) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {job['jobName']} {job['jobId']}: {outcome(job)}", file=sys.stderr, flush=True)


def wait_until_finished(batch: Any, job_id: str) -> dict:
    """Polls the job until SUCCEEDED or FAILED, one progress line on stderr per status it is seen in."""
    last_status = None
    while True:
        job = describe_job(batch, job_id)
        if job["status"] != last_status:
            progress(job)
            last_status = job["status"]
        if job["status"] in states.FINISHED:
            return job
        time.sleep(POLL_SECONDS)


def exit_status(job: dict) -> int:
    return 0 if job["status"] == states.SUCCEEDED else 1


# -- batchemu jobs ------------------------------------------------------------------------------------------

def job_queue_names(batch: Any) -> list[str]:
    return [queue["jobQueueName"] for page in batch.get_paginator("describe_job_queues").paginate()
            for queue in page["jobQueues"]]


def render_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *rows])


def jobs_command(args: argparse.Namespace) -> int:
    remote = connect(args)
    queues = [args.queue] if args.queue else job_queue_names(remote.batch)
    statuses = [args.status] if args.status else STATUSES
    found: dict[str, tuple[str, dict]] = {}
    paginator = remote.batch.get_paginator("list_jobs")
    for queue in queues:
        for status in statuses:
            for page in paginator.paginate(jobQueue=queue, jobStatus=status):
                for summary in page["jobSummaryList"]:
                    # A job that moved on between two calls is listed twice: its later status wins.
                    found[summary["jobId"]] = (queue, summary)
    if not found:
        where = (f" in job queue {args.queue}" if args.queue else "") + (f" with status {args.status}"
                                                                          if args.status else "")
        print(f"no jobs{where}", file=sys.stderr)
        return 0
    listed = sorted(found.values(), key=lambda item: (item[1]["createdAt"], item[1]["jobId"]), reverse=True)
    header = ["NAME", "JOB ID", "STATUS", "CREATED", "STARTED", "STOPPED", "REASON"]
    rows = [[job["jobName"], job["jobId"], job["status"], local_time(job.get("createdAt")),
             local_time(job.get("startedAt")), local_time(job.get("stoppedAt")), shorten(job.get("statusReason"))]
            for _, job in listed]
    if not args.queue:
        header.insert(0, "QUEUE")
        rows = [[queue, *row] for (queue, _), row in zip(listed, rows)]
    print(render_table(header, rows), flush=True)
    return 0


# -- batchemu describe --------------------------------------------------------------------------------------

def describe_command(args: argparse.Namespace) -> int:
    job = describe_job(connect(args).batch, args.job_id)
    print(json.dumps(job, indent=2, default=str), flush=True)
    return 0


# -- batchemu logs ------------------------------------------------------------------------------------------

def log_group(job: dict) -> str:
    """The job's awslogs group (as the server chooses it), else AWS Batch's default group."""
    config = (job.get("container") or {}).get("logConfiguration") or {}
    options = config.get("options") or {} if config.get("logDriver", "awslogs") == "awslogs" else {}
    return options.get("awslogs-group") or DEFAULT_LOG_GROUP


def log_streams(job: dict) -> list[str]:
    """The log streams of the job's attempts, oldest first, then the current attempt's."""
    names = [(attempt.get("container") or {}).get("logStreamName") for attempt in job.get("attempts") or []]
    names.append((job.get("container") or {}).get("logStreamName"))
    return list(dict.fromkeys(name for name in names if name))


class StreamReader:
    """Prints a log stream's events from its head, remembering where it stopped for the next read."""

    def __init__(self, logs: Any, group: str, stream: str) -> None:
        self.logs, self.group, self.stream = logs, group, stream
        self.token: str | None = None

    def read_new(self) -> bool:
        """Prints every event not printed yet; False while the stream does not exist."""
        from botocore.exceptions import ClientError
        while True:
            request = {"logGroupName": self.group, "logStreamName": self.stream, "startFromHead": True}
            if self.token:
                request["nextToken"] = self.token
            try:
                page = self.logs.get_log_events(**request)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return False
                raise
            if page["events"]:
                sys.stdout.write("".join(event["message"] + "\n" for event in page["events"]))
                sys.stdout.flush()
            # At the end of a stream the same token comes back.
            if page["nextForwardToken"] == self.token:
                return True
            self.token = page["nextForwardToken"]


def logs_command(args: argparse.Namespace) -> int:
    remote = connect(args)
    job = describe_job(remote.batch, args.job_id)
    if (job.get("arrayProperties") or {}).get("size"):
        raise CommandFailed(f"job {args.job_id} is an array job: its children {args.job_id}:0, "
                            f"{args.job_id}:1, ... have the output")
    readers: list[StreamReader] = []
    reading = 0  # readers before this one belong to ended attempts and have been read to their end
    has_stream = said_waiting = False
    while True:
        known = {reader.stream for reader in readers}
        readers += [StreamReader(remote.logs, log_group(job), stream) for stream in log_streams(job)
                    if stream not in known]
        # The job was described before these reads, so a finished job's last lines are in them.
        for index in range(reading, len(readers)):
            has_stream = readers[index].read_new() or has_stream
            if index < len(readers) - 1:
                reading = index + 1
        if job["status"] in states.FINISHED or not args.follow:
            if not has_stream:
                print(f"job {args.job_id} is {job['status']} and has no output", file=sys.stderr)
            if not args.follow:
                return 0
            print(f"job {args.job_id} {outcome(job)}", file=sys.stderr)
            return exit_status(job)
        if not has_stream and not said_waiting:
            print(f"job {args.job_id} is {job['status']} and has no log stream yet; waiting", file=sys.stderr,
                  flush=True)
            said_waiting = True
        time.sleep(POLL_SECONDS)
        job = describe_job(remote.batch, args.job_id)


# -- batchemu submit ----------------------------------------------------------------------------------------

def environment_pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def default_job_name(definition: str) -> str:
    """`my-def` from `my-def`, `my-def:3` or a job definition ARN: a valid job name to recognise it by."""
    name = definition.rsplit("/", 1)[-1].split(":", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:128] or "batchemu-cli"


def submit_command(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command and args.command[0] == "--" else args.command
    if command == []:
        raise UsageError("--command needs the command to run after it")
    request: dict = {"jobName": args.name or default_job_name(args.definition), "jobQueue": args.queue,
                     "jobDefinition": args.definition}
    overrides: dict = {}
    if command:
        overrides["command"] = command
    if args.env:
        overrides["environment"] = [{"name": name, "value": value} for name, value in args.env]
    if overrides:
        request["containerOverrides"] = overrides
    if args.array_size is not None:
        request["arrayProperties"] = {"size": args.array_size}
    if args.depends_on:
        request["dependsOn"] = [{"jobId": job_id} for job_id in args.depends_on]
    remote = connect(args)
    job_id = remote.batch.submit_job(**request)["jobId"]
    print(job_id, flush=True)
    if not args.wait:
        return 0
    return exit_status(wait_until_finished(remote.batch, job_id))


# -- registration -------------------------------------------------------------------------------------------

def client_options() -> argparse.ArgumentParser:
    """The options every client command shares (a parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--endpoint-url", metavar="URL",
                         help=f"the batchemu server (default: $AWS_ENDPOINT_URL_BATCH, else {DEFAULT_ENDPOINT})")
    return options


def register(subcommands: argparse._SubParsersAction) -> None:
    """Adds jobs, describe, logs and submit; each sets `run`, which cli.main calls."""
    shared = [client_options()]
    jobs = subcommands.add_parser("jobs", parents=shared, help="list jobs as a table, newest first")
    jobs.add_argument("--queue", help="only this job queue (name or ARN; default: every queue)")
    jobs.add_argument("--status", type=str.upper, choices=STATUSES, metavar="STATUS",
                      help=f"only jobs in this status ({', '.join(STATUSES)}; default: all)")
    jobs.set_defaults(run=guarded(jobs_command))

    describe = subcommands.add_parser("describe", parents=shared, help="print a job (DescribeJobs) as JSON")
    describe.add_argument("job_id", metavar="JOB_ID")
    describe.set_defaults(run=guarded(describe_command))

    logs = subcommands.add_parser("logs", parents=shared, help="print a job's output (CloudWatch Logs)")
    logs.add_argument("job_id", metavar="JOB_ID")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="print new lines until the job ends; exit 0 if it SUCCEEDED, 1 if it FAILED")
    logs.set_defaults(run=guarded(logs_command))

    submit = subcommands.add_parser("submit", parents=shared, help="submit a job (SubmitJob) and print its id")
    submit.add_argument("--queue", required=True, help="job queue (name or ARN)")
    submit.add_argument("--definition", required=True, help="job definition (name, name:revision or ARN)")
    submit.add_argument("--name", help="job name (default: the job definition's name)")
    submit.add_argument("--array-size", type=int, metavar="N", help="submit an array job of N children")
    submit.add_argument("--depends-on", nargs="+", action="extend", metavar="JOB_ID",
                        help="job ids this job waits for")
    submit.add_argument("--env", nargs="+", action="extend", type=environment_pair, metavar="NAME=VALUE",
                        help="environment variables for the container")
    submit.add_argument("--wait", action="store_true",
                        help="show status changes until the job ends; exit 0 if it SUCCEEDED, 1 if it FAILED")
    submit.add_argument("--command", nargs=argparse.REMAINDER,
                        help="the command to run instead of the definition's; takes every argument after it, "
                             "so put it last")
    submit.set_defaults(run=guarded(submit_command))
