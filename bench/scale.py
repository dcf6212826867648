"""Scale: many stored jobs (on a DISABLED compute environment): submit rate, page latency and memory per job."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time

from botocore.exceptions import ClientError

from bench.client import Connection, Recorder, batch_client, create_queue, register_definition
from bench.report import Measurement, Report, ratio
from bench.servers import Batchemu, rss_bytes

SMALL = 1_000
THREADS = 4
CALLS = 20
SETTLE_TIMEOUT = 300.0


def submit(url: str, request, count: int) -> tuple[list[str], float]:
    """Replay SubmitJob `count` times from THREADS threads; the new job ids and the seconds it took."""
    ids: list[list[str]] = [[] for _ in range(THREADS)]
    shares = [count // THREADS + (1 if i < count % THREADS else 0) for i in range(THREADS)]

    def client(index: int) -> None:
        connection = Connection(url)
        for _ in range(shares[index]):
            status, body = connection.send(request)
            if status != 200:
                raise RuntimeError(f"SubmitJob answered {status}: {body[:200]!r}")
            ids[index].append(json.loads(body)["jobId"])
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [job_id for mine in ids for job_id in mine]
    if len(every) != count:
        raise RuntimeError(f"submitted {len(every)} of {count} jobs")
    return every, elapsed


def settle(batch, queue: str) -> None:
    """Wait until the scheduler has moved every job on to RUNNABLE."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while any(batch.list_jobs(jobQueue=queue, jobStatus=s, maxResults=1)["jobSummaryList"]
              for s in ("SUBMITTED", "PENDING")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still SUBMITTED or PENDING after {SETTLE_TIMEOUT}s")
        time.sleep(0.2)


def median_call(url: str, request) -> float:
    connection = Connection(url)
    connection.send(request)
    times = []
    for _ in range(CALLS):
        began = time.perf_counter()
        status, body = connection.send(request)
        times.append(time.perf_counter() - began)
        if status != 200:
            raise RuntimeError(f"answered {status}: {body[:200]!r}")
    connection.close()
    return statistics.median(times)


def page_latencies(batch, recorder: Recorder, url: str, queue: str, ids: list[str]) -> dict[str, float]:
    listed = batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE", maxResults=100)["jobSummaryList"]
    if len(listed) != 100:
        raise RuntimeError(f"ListJobs RUNNABLE gave {len(listed)} jobs, not 100")
    sample = random.Random(len(ids)).sample(ids, 100)
    if len(batch.describe_jobs(jobs=sample)["jobs"]) != 100:
        raise RuntimeError("DescribeJobs of 100 stored ids did not return 100 jobs")
    return {"ListJobs": median_call(url, recorder.requests["ListJobs"]),
            "DescribeJobs": median_call(url, recorder.requests["DescribeJobs"])}


def arrays(report: Report, batch, queue: str, definition: str) -> None:
    try:
        batch.submit_job(jobName="array", jobQueue=queue, jobDefinition=definition, arrayProperties={"size": 2})
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NotImplemented":
            report.note("scale: arrays: not built")
            return
        raise
    report.note("scale: arrays: built, not measured by this bench yet")


def run(report: Report, quick: bool) -> None:
    total = 10_000 if quick else 100_000
    with Batchemu() as server:
        batch = batch_client(server.url)
        recorder = Recorder(batch)
        queue = create_queue(batch, "scale", ce_state="DISABLED")
        definition = register_definition(batch, "scale", ["true"])
        first = batch.submit_job(jobName="scale", jobQueue=queue, jobDefinition=definition)["jobId"]
        settle(batch, queue)
        rss_before = rss_bytes(server.pid)
        ids, seconds = submit(server.url, recorder.requests["SubmitJob"], SMALL - 1)
        ids.insert(0, first)
        settle(batch, queue)
        small = page_latencies(batch, recorder, server.url, queue, ids)
        more, more_seconds = submit(server.url, recorder.requests["SubmitJob"], total - SMALL)
        ids += more
        seconds += more_seconds
        settle(batch, queue)
        large = page_latencies(batch, recorder, server.url, queue, ids)
        rss_after = rss_bytes(server.pid)
        arrays(report, batch, queue, definition)
    rate = (total - 1) / seconds
    report.add(Measurement("scale.submit_rate", rate, "jobs/s", note=f"{THREADS} threads, {total:,} jobs"))
    for operation, label in (("ListJobs", "scale.ListJobs_page_100"), ("DescribeJobs", "scale.DescribeJobs_100_ids")):
        report.add(Measurement(f"{label}.at_{total // 1000}k", large[operation] * 1000, "ms", "<= 1.5",
                               small[operation] * 1000, ratio(large[operation], small[operation]),
                               f"median of {CALLS}; floor = the same call at {SMALL:,} jobs"))
    per_job = (rss_after - rss_before) / total
    report.add(Measurement("scale.rss_per_stored_job", per_job, "bytes", "<= 2048",
                           note=f"VmRSS {rss_before / 2**20:.0f} MiB -> {rss_after / 2**20:.0f} MiB",
                           detail={"rss_before": rss_before, "rss_after": rss_after, "jobs": total}))
