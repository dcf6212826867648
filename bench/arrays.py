"""Arrays: submitting, listing and storing 10,000-child array jobs, and running 200 children on Docker.

A DescribeJobs poller on a connection of its own runs beside the 10,000-child submits (and the scheduler
passes that move the children on) and beside one extra 200-child run, to show that other requests keep answering.
The timed 200-child rounds run without it, like the floor they are compared with.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker

from bench.client import (
    IMAGE,
    Connection,
    Recorder,
    batch_client,
    create_queue,
    percentile,
    register_definition,
)
from bench.report import Measurement, Report, ratio
from bench.servers import Batchemu, cpu_seconds, rss_bytes

SIZE = 10_000
ARRAYS = 3                 # 10,000-child arrays submitted (and listed) per run
RUN_SIZE = 200             # children of `true` run on Docker
MAX_VCPUS = 4
PAGE = 100
POLL_SECONDS = 0.01        # the DescribeJobs poller
SETTLE_TIMEOUT = 300.0
RUN_TIMEOUT = 900.0


class Poller:
    """DescribeJobs of one job, replayed every POLL_SECONDS on its own keep-alive connection; the
    latency of each call, while running."""

    def __init__(self, url: str, request) -> None:
        self.url, self.request = url, request
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-poller", daemon=True)
        self.error: str | None = None

    def _run(self) -> None:
        connection = Connection(self.url)
        while not self._stop.is_set():
            began = time.perf_counter()
            status, body = connection.send(self.request)
            self.latencies.append(time.perf_counter() - began)
            if status != 200:
                self.error = f"DescribeJobs answered {status}: {body[:200]!r}"
                break
            self._stop.wait(POLL_SECONDS)
        connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.error:
            raise RuntimeError(self.error)


def wait_summary(batch, parent: str, status: str, count: int, timeout: float = SETTLE_TIMEOUT) -> dict:
    """Poll the parent until its statusSummary holds `count` children in `status`; the parent."""
    deadline = time.monotonic() + timeout
    while True:
        job = batch.describe_jobs(jobs=[parent])["jobs"][0]
        if job["arrayProperties"].get("statusSummary", {}).get(status) == count:
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"array {parent} not {count} x {status} after {timeout}s: {job['arrayProperties']}")
        time.sleep(0.1)


def list_children(batch, parent: str, status: str) -> tuple[float, int, int]:
    """Seconds to list every child of `parent` in `status`, PAGE at a time; children and pages seen."""
    began = time.perf_counter()
    seen, pages, token = set(), 0, None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = batch.list_jobs(arrayJobId=parent, jobStatus=status, maxResults=PAGE, **kwargs)
        seen.update(job["jobId"] for job in page["jobSummaryList"])
        pages += 1
        token = page.get("nextToken")
        if not token:
            return time.perf_counter() - began, len(seen), pages


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    return ", ".join(f"{v * scale:.{digits}f}" for v in values)


def big_arrays(report: Report, quick: bool) -> None:
    """Submit ARRAYS arrays of SIZE children on a DISABLED compute environment (children stop at RUNNABLE),
    list each one's children, and read the server's RSS before and after."""
    with Batchemu() as server:
        batch = batch_client(server.url)
        recorder = Recorder(batch)
        queue = create_queue(batch, "arrays", ce_state="DISABLED")
        definition = register_definition(batch, "arrays", ["true"])
        plain = batch.submit_job(jobName="plain", jobQueue=queue, jobDefinition=definition)["jobId"]
        warm = batch.submit_job(jobName="warm", jobQueue=queue, jobDefinition=definition,
                                arrayProperties={"size": 2})["jobId"]
        wait_summary(batch, warm, "RUNNABLE", 2)
        batch.describe_jobs(jobs=[plain])
        describe = recorder.requests["DescribeJobs"]
        rss_before = rss_bytes(server.pid)
        submits, settles, parents = [], [], []
        with Poller(server.url, describe) as poller:
            for i in range(ARRAYS):
                began = time.perf_counter()
                parent = batch.submit_job(jobName=f"big-{i}", jobQueue=queue, jobDefinition=definition,
                                          arrayProperties={"size": SIZE})["jobId"]
                submits.append(time.perf_counter() - began)
                wait_summary(batch, parent, "RUNNABLE", SIZE)
                settles.append(time.perf_counter() - began)
                parents.append(parent)
            time.sleep(1.0)  # a few more passes over 30,000 RUNNABLE children that wait for capacity
        rss_after = rss_bytes(server.pid)
        listings, pages = [], 0
        cpu_began, client_began = cpu_seconds(server.pid), time.process_time()
        for parent in parents:
            seconds, children, pages = list_children(batch, parent, "RUNNABLE")
            if children != SIZE:
                raise RuntimeError(f"ListJobs listed {children} of {SIZE} children of {parent}")
            listings.append(seconds)
        # CPU per listing, for a machine busy with other work, where wall time stretches.
        server_cpu = (cpu_seconds(server.pid) - cpu_began) / ARRAYS
        client_cpu = (time.process_time() - client_began) / ARRAYS
    report.add(Measurement("arrays.submit_10k.median", statistics.median(submits), "s", "<= 1",
                           note=f"SubmitJob round trip (boto3) of {ARRAYS} arrays of {SIZE:,}: {spread(submits)} s",
                           detail={"seconds": submits}))
    report.add(Measurement("arrays.list_10k_children.median", statistics.median(listings), "s", "<= 2",
                           note=f"ListJobs(arrayJobId, RUNNABLE, maxResults {PAGE}), {pages} pages following "
                                f"nextToken (boto3), {ARRAYS} arrays: {spread(listings)} s; CPU per listing: "
                                f"server {server_cpu:.2f} s, client {client_cpu:.2f} s",
                           detail={"seconds": listings, "server_cpu": server_cpu, "client_cpu": client_cpu}))
    per_child = (rss_after - rss_before) / (ARRAYS * SIZE)
    report.add(Measurement("arrays.rss_per_child", per_child, "bytes", "<= 2048",
                           note=f"VmRSS {rss_before / 2**20:.0f} MiB -> {rss_after / 2**20:.0f} MiB over "
                                f"{ARRAYS} x {SIZE:,} RUNNABLE children",
                           detail={"rss_before": rss_before, "rss_after": rss_after, "children": ARRAYS * SIZE}))
    latencies = poller.latencies
    report.add(Measurement("arrays.DescribeJobs_p99.during_10k_submits", percentile(latencies, 0.99) * 1000, "ms",
                           "<= 200",
                           note=f"{len(latencies)} calls of DescribeJobs (1 plain job) every {POLL_SECONDS * 1000:.0f}"
                                f" ms from another thread, from the first submit to {ARRAYS} x {SIZE:,} RUNNABLE "
                                f"(in {spread(settles, digits=1)} s each); median "
                                f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms",
                           detail={"settle_seconds": settles}))


def docker_floor(engine: docker.DockerClient, count: int) -> float:
    """`count` containers of `true`, MAX_VCPUS at a time: run + wait + remove in each of MAX_VCPUS threads,
    on the host network as batchemu runs its jobs."""
    def one(_: int) -> None:
        container = engine.containers.run(IMAGE, ["true"], detach=True, network_mode="host")
        container.wait()
        container.remove()

    began = time.perf_counter()
    with ThreadPoolExecutor(MAX_VCPUS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - began


def run_children(count: int, poll: bool = False) -> tuple[float, list[float]]:
    """Seconds from SubmitJob of a `count`-child array of `true` (1 vCPU each, maxvCpus MAX_VCPUS) to the
    poll (every 50 ms) that saw its parent SUCCEEDED; with `poll`, a Poller of DescribeJobs runs beside it and
    its latencies are returned."""
    with Batchemu() as server:
        batch = batch_client(server.url)
        recorder = Recorder(batch)
        queue = create_queue(batch, "run", max_vcpus=MAX_VCPUS)
        definition = register_definition(batch, "run", ["true"])
        # Warm-up, and the plain job the poller describes: the first container of the run.
        plain = batch.submit_job(jobName="plain", jobQueue=queue, jobDefinition=definition)["jobId"]
        while batch.describe_jobs(jobs=[plain])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
            time.sleep(0.05)
        poller = Poller(server.url, recorder.requests["DescribeJobs"]) if poll else contextlib.nullcontext()
        with poller:
            began = time.perf_counter()
            parent = batch.submit_job(jobName="run", jobQueue=queue, jobDefinition=definition,
                                      arrayProperties={"size": count})["jobId"]
            while True:
                job = batch.describe_jobs(jobs=[parent])["jobs"][0]
                if job["status"] in ("SUCCEEDED", "FAILED"):
                    elapsed = time.perf_counter() - began
                    break
                if time.perf_counter() - began > RUN_TIMEOUT:
                    raise RuntimeError(f"array {parent} not done after {RUN_TIMEOUT}s: {job['arrayProperties']}")
                time.sleep(0.05)
        if job["status"] != "SUCCEEDED":
            raise RuntimeError(f"array {parent} {job['status']}: {job.get('statusReason')} "
                               f"{job['arrayProperties'].get('statusSummary')}")
    return elapsed, poller.latencies if poll else []


def small_array_run(report: Report, quick: bool) -> None:
    """The timed rounds are like for like: the floor's threads run alone, and so does batchemu with only the
    client's own 50 ms poll of its parent. A further run, with the Poller's 100 DescribeJobs a second beside
    it, gives the latencies while children run, and its time is shown against the same floor."""
    engine = docker.from_env()
    rounds = 1 if quick else 3
    ours, floors = [], []
    for i in range(rounds):
        # Alternate which goes first, so drift and noise hit both sides alike.
        if i % 2:
            ours.append(run_children(RUN_SIZE)[0])
            floors.append(docker_floor(engine, RUN_SIZE))
        else:
            floors.append(docker_floor(engine, RUN_SIZE))
            ours.append(run_children(RUN_SIZE)[0])
    polled_seconds, latencies = run_children(RUN_SIZE, poll=True)
    median, floor = statistics.median(ours), statistics.median(floors)
    report.add(Measurement("arrays.run_200_children", median, "s", "<= 1.10", floor, ratio(median, floor),
                           f"{RUN_SIZE} x true, maxvCpus {MAX_VCPUS}, submit -> parent SUCCEEDED, {rounds} "
                           f"round(s); batchemu {spread(ours, digits=1)} s, floor (4 threads on Docker) "
                           f"{spread(floors, digits=1)} s",
                           {"batchemu_seconds": ours, "floor_seconds": floors}))
    report.add(Measurement("arrays.run_200_children.with_poller", polled_seconds, "s", None, floor,
                           ratio(polled_seconds, floor),
                           f"the same with {1 / POLL_SECONDS:.0f} DescribeJobs a second beside it "
                           f"(one run), against the same floor"))
    report.add(Measurement("arrays.DescribeJobs_p99.during_200_run", percentile(latencies, 0.99) * 1000, "ms",
                           "<= 200", note=f"{len(latencies)} calls while the {RUN_SIZE} children ran; median "
                                          f"{statistics.median(latencies) * 1000:.1f} ms, "
                                          f"max {max(latencies) * 1000:.0f} ms"))


def run(report: Report, quick: bool) -> None:
    big_arrays(report, quick)
    small_array_run(report, quick)
