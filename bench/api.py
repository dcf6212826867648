"""API throughput: 4 client threads replaying one operation for a fixed time, on batchemu and on moto.

Nothing runs: the queue's compute environment is DISABLED. The figure that compares servers is requests per
server CPU-second (from /proc/<pid>/stat), because both servers and the client share the machine's cores.
"""

from __future__ import annotations

import threading
import time

from bench.client import (
    Connection,
    Recorder,
    batch_client,
    create_queue,
    create_service_role,
    percentile,
    register_definition,
)
from bench.report import Measurement, Report
from bench.servers import Batchemu, Moto, ServerProcess, cpu_seconds

THREADS = 4
JOBS = 100
# Latency targets in seconds: SubmitJob and a ListJobs page 20 ms, DescribeJobs of 100 ids 50 ms.
P99_TARGETS = {"SubmitJob": 0.020, "ListJobs": 0.020, "DescribeJobs": 0.050}
# Requests per server CPU-second, as a multiple of moto's. SubmitJob's was 5 while a hand-written HTTP reader
# answered plain requests; HTTP parsing is the well-kept server's now, and its cost is given up knowingly.
MOTO_RATIO_TARGETS = {"SubmitJob": 3, "ListJobs": 5, "DescribeJobs": 5}
OPERATIONS = ("DescribeJobs", "ListJobs", "SubmitJob")


def prepare(server: ServerProcess) -> tuple[dict, str]:
    """A queue on a DISABLED CE with JOBS jobs; the recorded request of each operation, and the job status."""
    batch = batch_client(server.url)
    recorder = Recorder(batch)
    if isinstance(server, Moto):
        create_service_role(server.url)
    # UNMANAGED, because moto checks a MANAGED one's subnets, security groups and instance role.
    queue = create_queue(batch, "api", ce_state="DISABLED", managed=False)
    definition = register_definition(batch, "api", ["true"])
    ids = [batch.submit_job(jobName="api", jobQueue=queue, jobDefinition=definition)["jobId"]
           for _ in range(JOBS)]
    # batchemu moves the jobs on to RUNNABLE; moto's no-Docker mode finishes them at once (SUCCEEDED).
    deadline = time.monotonic() + 30
    while True:
        statuses = {job["status"] for job in batch.describe_jobs(jobs=ids)["jobs"]}
        if len(statuses) == 1 and statuses & {"RUNNABLE", "SUCCEEDED"} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    status = statuses.pop()
    listed = batch.list_jobs(jobQueue=queue, jobStatus=status, maxResults=JOBS)["jobSummaryList"]
    if len(listed) != JOBS:
        raise RuntimeError(f"{server.name}: ListJobs {status} gave {len(listed)} jobs, not {JOBS}")
    return recorder.requests, status


def phase(server: ServerProcess, request, seconds: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    errors = [0] * THREADS
    start = threading.Barrier(THREADS + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        connection = Connection(server.url)
        connection.send(request)  # connect before the clock starts
        start.wait()
        mine = latencies[index]
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            status, _ = connection.send(request)
            mine.append(time.perf_counter() - began)
            if status != 200:
                errors[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    server_cpu, client_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
    every = [x for mine in latencies for x in mine]
    return {"requests": len(every), "errors": sum(errors), "seconds": elapsed, "rps": len(every) / elapsed,
            "p50": percentile(every, 0.5), "p99": percentile(every, 0.99), "server_cpu": server_cpu,
            "client_cpu": client_cpu, "per_server_cpu_second": len(every) / server_cpu if server_cpu else None}


def measure(server: ServerProcess, seconds: float) -> tuple[dict, str]:
    recorded, status = prepare(server)
    results = {}
    for operation in OPERATIONS:
        results[operation] = phase(server, recorded[operation], seconds)
        if results[operation]["errors"]:
            raise RuntimeError(f"{server.name} {operation}: {results[operation]['errors']} non-200 answers")
    return results, status


def run(report: Report, quick: bool, moto_venv) -> None:
    seconds = 3.0 if quick else 10.0
    with Batchemu() as server:
        ours, our_status = measure(server, seconds)
    theirs, their_status = {}, None
    if moto_venv is not None:
        with Moto(moto_venv) as server:
            theirs, their_status = measure(server, seconds)
        report.note(f"api: ListJobs lists the 100 {our_status} jobs on batchemu and the 100 {their_status} "
                    "jobs on moto (its no-Docker mode finishes a job at submit)")
    for operation in OPERATIONS:
        mine, other = ours[operation], theirs.get(operation)
        name = f"api.{operation}" + (".100_ids" if operation == "DescribeJobs" else "")
        detail = {"batchemu": mine, **({"moto": other} if other else {})}
        reference = other["per_server_cpu_second"] if other else None
        value = mine["per_server_cpu_second"]
        report.add(Measurement(f"{name}.requests_per_server_cpu_s", value, "req/cpu-s",
                               f">= {MOTO_RATIO_TARGETS[operation]}" if reference else None, reference,
                               value / reference if reference else None,
                               "reference = moto" if reference else "moto not run", detail))
        report.add(Measurement(f"{name}.requests_per_s", mine["rps"], "req/s", None,
                               other["rps"] if other else None,
                               mine["rps"] / other["rps"] if other else None,
                               f"{THREADS} threads, {seconds:.0f} s; client CPU {mine['client_cpu']:.1f} s"))
        report.add(Measurement(f"{name}.p50", mine["p50"] * 1000, "ms", None,
                               other["p50"] * 1000 if other else None))
        report.add(Measurement(f"{name}.p99", mine["p99"] * 1000, "ms", f"<= {P99_TARGETS[operation] * 1000:g}",
                               other["p99"] * 1000 if other else None))
