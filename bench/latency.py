"""Latency: submit -> SUCCEEDED of a trivial job, beside `docker run` + wait + remove of the same container."""

from __future__ import annotations

import statistics
import time
from collections import Counter

import docker

from bench.client import IMAGE, batch_client, create_queue, percentile, register_definition
from bench.report import Measurement, Report, ratio
from bench.servers import Batchemu

POLL_SECONDS = 0.01
TIMEOUT = 60.0


def docker_floor(engine: docker.DockerClient, steps: dict[str, list[float]] | None = None) -> float:
    """Seconds of run (create + start) + wait + remove; each step's seconds are added to `steps`."""
    marks = [time.perf_counter()]
    container = engine.containers.run(IMAGE, ["true"], detach=True)
    marks.append(time.perf_counter())
    container.wait()
    marks.append(time.perf_counter())
    container.remove()
    marks.append(time.perf_counter())
    if steps is not None:
        for name, began, ended in zip(("run", "wait", "remove"), marks, marks[1:]):
            steps.setdefault(name, []).append(ended - began)
    return marks[-1] - marks[0]


def batchemu_job(batch, queue: str, definition: str) -> tuple[float, tuple[str, ...]]:
    """Seconds from SubmitJob to the first DescribeJobs that says SUCCEEDED, and the states seen."""
    started = time.perf_counter()
    job_id = batch.submit_job(jobName="latency", jobQueue=queue, jobDefinition=definition)["jobId"]
    seen: list[str] = []
    while True:
        status = batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("SUCCEEDED", "FAILED"):
            elapsed = time.perf_counter() - started
            if status == "FAILED":
                raise RuntimeError(f"latency job {job_id} FAILED: states {seen}")
            return elapsed, tuple(seen)
        if time.perf_counter() - started > TIMEOUT:
            raise RuntimeError(f"latency job {job_id} not done after {TIMEOUT}s: states {seen}")
        time.sleep(POLL_SECONDS)


def run(report: Report, quick: bool) -> None:
    count = 10 if quick else 20
    engine = docker.from_env()
    with Batchemu() as server:
        batch = batch_client(server.url)
        queue = create_queue(batch, "latency", max_vcpus=4)
        definition = register_definition(batch, "latency", ["true"])
        batchemu_job(batch, queue, definition)  # warm-up: first container of the run, imports, caches
        docker_floor(engine)
        ours, floor, paths, steps = [], [], Counter(), {}
        for i in range(count):
            # Alternate which goes first, so drift and noise hit both sides alike.
            pair = [lambda: batchemu_job(batch, queue, definition), lambda: docker_floor(engine, steps)]
            for step in (pair if i % 2 == 0 else pair[::-1]):
                result = step()
                if isinstance(result, tuple):
                    ours.append(result[0])
                    paths[" > ".join(result[1])] += 1
                else:
                    floor.append(result)
    detail = {"jobs": count, "batchemu_seconds": [round(x, 4) for x in ours],
              "floor_seconds": [round(x, 4) for x in floor], "states_seen": dict(paths),
              "floor_step_medians": {name: round(statistics.median(v), 4) for name, v in steps.items()}}
    median, floor_median = statistics.median(ours), statistics.median(floor)
    report.add(Measurement("latency.submit_to_succeeded.median", median, "s", "<= 1.10", floor_median,
                           ratio(median, floor_median), f"{count} jobs, polled every 10 ms", detail))
    p90, floor_p90 = percentile(ours, 0.9), percentile(floor, 0.9)
    report.add(Measurement("latency.submit_to_succeeded.p90", p90, "s", None, floor_p90, ratio(p90, floor_p90)))
    report.note("latency: floor steps (median s): " + ", ".join(
        f"{name} {value:.3f}" for name, value in detail["floor_step_medians"].items()))
    for path, times in paths.most_common():
        report.note(f"latency: states seen by the poller: {path} ({times} of {count} jobs)")
