"""Capacity: 50 one-second jobs on 4 vCPUs, beside 4 threads running the same containers straight on Docker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import docker

from bench.client import IMAGE, batch_client, create_queue, register_definition
from bench.report import Measurement, Report, ratio
from bench.servers import Batchemu

MAX_VCPUS = 4
POLL_SECONDS = 0.05
TIMEOUT = 600.0


def docker_floor(engine: docker.DockerClient, count: int) -> float:
    def one(_: int) -> None:
        container = engine.containers.run(IMAGE, ["sleep", "1"], detach=True)
        container.wait()
        container.remove()

    started = time.perf_counter()
    with ThreadPoolExecutor(MAX_VCPUS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def most_at_once(jobs: list[dict]) -> int:
    """The most jobs whose [startedAt, stoppedAt) intervals overlap (a stop at t frees room for a start at t)."""
    events = sorted([(j["startedAt"], 1) for j in jobs] + [(j["stoppedAt"], -1) for j in jobs])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def batchemu_run(url: str, count: int) -> tuple[float, list[dict]]:
    batch = batch_client(url)
    queue = create_queue(batch, "capacity", max_vcpus=MAX_VCPUS)
    definition = register_definition(batch, "capacity", ["sleep", "1"])
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: batch.submit_job(jobName=f"capacity-{i}", jobQueue=queue,
                                                       jobDefinition=definition)["jobId"], range(count)))
    while True:
        jobs = [job for chunk in range(0, count, 100)
                for job in batch.describe_jobs(jobs=ids[chunk:chunk + 100])["jobs"]]
        if all(job["status"] in ("SUCCEEDED", "FAILED") for job in jobs):
            makespan = time.perf_counter() - started
            break
        if time.perf_counter() - started > TIMEOUT:
            raise RuntimeError(f"capacity jobs not done after {TIMEOUT}s")
        time.sleep(POLL_SECONDS)
    failed = [job["jobId"] for job in jobs if job["status"] == "FAILED"]
    if failed:
        raise RuntimeError(f"{len(failed)} capacity jobs FAILED, e.g. {jobs[0].get('statusReason')}")
    return makespan, jobs


def run(report: Report, quick: bool) -> None:
    count = 20 if quick else 50
    engine = docker.from_env()
    floor = docker_floor(engine, count)
    with Batchemu() as server:
        makespan, jobs = batchemu_run(server.url, count)
    peak = most_at_once(jobs)
    report.add(Measurement("capacity.most_running_at_once", peak, "jobs", f"<= {MAX_VCPUS}",
                           note=f"from startedAt/stoppedAt of {count} jobs of 1 vCPU on maxvCpus {MAX_VCPUS}"))
    report.add(Measurement("capacity.makespan", makespan, "s", "<= 1.10", floor, ratio(makespan, floor),
                           f"{count} x sleep 1, first submit -> last SUCCEEDED seen",
                           {"jobs": count, "ideal_seconds": count / MAX_VCPUS}))
