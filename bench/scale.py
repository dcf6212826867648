"""Scale: many stored jobs (on a DISABLED compute environment): submit rate, page latency and memory per job;
and the cost of one scheduler pass with none or 100,000 finished jobs stored."""

from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from batchemu.config import Config
from batchemu.http.server import Server
from batchemu.model import attempts, states
from bench.client import Connection, Recorder, batch_client, create_queue, percentile, register_definition
from bench.report import Measurement, Report, ratio
from bench.servers import Batchemu, rss_bytes

SMALL = 1_000
THREADS = 4
CALLS = 20
SETTLE_TIMEOUT = 300.0
FINISHED = 100_000         # SUCCEEDED jobs stored under the scheduler pass
WAITING = 5                # RUNNABLE jobs (and children of one array) the pass looks at
PASSES = 50
# Passes alternate between the two stores, so drift hits both alike: the ratio moved by 1% between runs.
PASS_TARGET = "<= 1.2"


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


def finished_document(job: dict, compute_environment: dict, config: Config, now: int) -> dict:
    """A RUNNABLE job's document taken through one attempt that exited 0, as the scheduler would."""
    attempts.begin_attempt(job, config, compute_environment, now)
    states.transition(job, states.RUNNING, now + 100)
    attempts.finish_attempt(job, now + 400, exit_code=0, reason=None, status_reason="Essential container in task exited")
    return job


def store_finished(server: Server, template: dict, count: int) -> None:
    """`count` SUCCEEDED jobs written straight into the store, 10,000 to a transaction."""
    for first in range(0, count, 10_000):
        with server.store.transaction() as tx:
            for i in range(first, min(count, first + 10_000)):
                template.update(jobId=f"finished-{i:06d}", jobName=f"finished-{i}",
                                jobArn=template["jobArn"].rsplit("/", 1)[0] + f"/finished-{i:06d}")
                tx.jobs.insert(template)


def prepare(state: str) -> dict:
    """WAITING RUNNABLE jobs and an array of WAITING RUNNABLE children on a DISABLED compute environment,
    set up through the API with the scheduler's own thread running; a finished job's document to copy."""
    server = Server(Config(port=0, state=state), with_scheduler=True).start()
    try:
        batch = batch_client(server.url)
        queue = create_queue(batch, "pass", ce_state="DISABLED")
        definition = register_definition(batch, "pass", ["true"])
        ids = [batch.submit_job(jobName="waiting", jobQueue=queue, jobDefinition=definition)["jobId"]
               for _ in range(WAITING)]
        ids.append(batch.submit_job(jobName="waiting-array", jobQueue=queue, jobDefinition=definition,
                                    arrayProperties={"size": WAITING})["jobId"])
        ids += [f"{ids[-1]}:{i}" for i in range(WAITING)]
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while {j["status"] for j in batch.describe_jobs(jobs=ids)["jobs"]} != {"RUNNABLE", "PENDING"}:
            if time.monotonic() > deadline:
                raise RuntimeError("the waiting jobs did not become RUNNABLE")
            time.sleep(0.05)
        ce = batch.describe_compute_environments(computeEnvironments=[f"{queue}-ce"])["computeEnvironments"][0]
        with server.store.read() as tx:
            return finished_document(tx.jobs.get(ids[0]), ce, server.config, server.ctx.clock())
    finally:
        server.stop()


def scheduler_pass(report: Report) -> None:
    """One scheduler pass, run in this process on a file-backed store, over the same RUNNABLE jobs
    (prepare) with no finished jobs stored and with FINISHED of them: two stores, servers restarted on
    them whose schedulers run only when called, passes alternating between the two. Nothing is placed,
    so a pass makes no Docker calls."""
    state_dir = tempfile.mkdtemp(prefix="bench-pass-")
    states_of = {name: str(Path(state_dir) / f"{name}.sqlite3") for name in ("empty", "full")}
    servers: dict[str, Server] = {}
    try:
        template = prepare(states_of["empty"])
        prepare(states_of["full"])
        servers = {name: Server(Config(port=0, state=state), with_scheduler=True)
                   for name, state in states_of.items()}
        began = time.perf_counter()
        store_finished(servers["full"], template, FINISHED)
        stored_in = time.perf_counter() - began
        times: dict[str, list[float]] = {"empty": [], "full": []}
        for i in range(5 + PASSES):  # the first 5 of each warm up
            for name in (("empty", "full") if i % 2 == 0 else ("full", "empty")):
                began = time.perf_counter()
                servers[name].scheduler.reconcile()
                if i >= 5:
                    times[name].append(time.perf_counter() - began)
        with servers["full"].store.read() as tx:
            counts = tx.jobs.count_by_status(list(states.ACTIVE + states.FINISHED))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    if counts.get(states.SUCCEEDED) != FINISHED or counts.get(states.RUNNABLE) != 2 * WAITING:
        raise RuntimeError(f"unexpected jobs under the scheduler pass: {counts}")
    empty, full = times["empty"], times["full"]
    median_empty, median_full = statistics.median(empty), statistics.median(full)
    report.add(Measurement(f"scale.scheduler_pass.at_{FINISHED // 1000}k_finished", median_full * 1000, "ms",
                           PASS_TARGET, median_empty * 1000, ratio(median_full, median_empty),
                           f"median of {PASSES} passes, {2 * WAITING} RUNNABLE jobs on a DISABLED CE; floor = "
                           f"the same with no finished jobs, passes alternating; p90 "
                           f"{percentile(full, 0.9) * 1000:.2f} vs {percentile(empty, 0.9) * 1000:.2f} ms; "
                           f"{FINISHED:,} jobs stored in {stored_in:.1f} s",
                           {"empty_ms": [round(t * 1000, 3) for t in empty],
                            "full_ms": [round(t * 1000, 3) for t in full]}))


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
    scheduler_pass(report)
