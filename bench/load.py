"""Load: 16 clients submit 1,000 jobs at once onto a queue that already holds 1,000 RUNNABLE jobs, while
another thread reads; nothing may be lost, and reads (WAL reader connections) should not queue behind the
writer."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time

from bench.arrays import Poller
from bench.client import Connection, Recorder, batch_client, create_queue, percentile, register_definition
from bench.report import Measurement, Report
from bench.scale import settle, submit
from bench.servers import Batchemu, cpu_seconds

STORED = 1_000             # RUNNABLE jobs in the queue before the burst
BURST = 1_000              # SubmitJob requests of the burst
THREADS = 16               # client threads of the burst, one keep-alive connection each
IDLE_SECONDS = 3.0         # the reader alone, before the burst: its reference p99


def burst(url: str, request) -> tuple[list[str], list[float], list[float], list[str], float]:
    """BURST SubmitJob requests from THREADS threads released together; job ids, latencies, the latencies of
    each connection's first request (which opens it), errors, seconds."""
    shares = [BURST // THREADS + (1 if i < BURST % THREADS else 0) for i in range(THREADS)]
    ids: list[list[str]] = [[] for _ in range(THREADS)]
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    firsts: list[float] = []
    errors: list[str] = []
    connections = [Connection(url) for _ in range(THREADS)]
    gate = threading.Barrier(THREADS + 1)

    def client(index: int) -> None:
        gate.wait()
        for _ in range(shares[index]):
            began = time.perf_counter()
            try:
                status, body = connections[index].send(request)
            except OSError as exc:
                errors.append(repr(exc))
                continue
            latencies[index].append(time.perf_counter() - began)
            if len(latencies[index]) == 1:
                firsts.append(latencies[index][0])
            if status == 200:
                ids[index].append(json.loads(body)["jobId"])
            else:
                errors.append(f"{status}: {body[:200]!r}")

    threads = [threading.Thread(target=client, args=(i,), name=f"bench-load-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return [i for mine in ids for i in mine], [t for mine in latencies for t in mine], firsts, errors, elapsed


def queue_ids(batch, queue: str) -> tuple[set[str], dict[str, int]]:
    """Every job id the queue lists, in any status, and the count per status."""
    ids, counts = set(), {}
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        listed = [job["jobId"] for page in batch.get_paginator("list_jobs").paginate(
            jobQueue=queue, jobStatus=status, PaginationConfig={"PageSize": 100}) for job in page["jobSummaryList"]]
        if listed:
            counts[status] = len(listed)
        ids.update(listed)
    return ids, counts


def describable(batch, ids: list[str]) -> set[str]:
    found = set()
    for first in range(0, len(ids), 100):
        found.update(job["jobId"] for job in batch.describe_jobs(jobs=ids[first:first + 100])["jobs"])
    return found


def run(report: Report, quick: bool) -> None:
    with Batchemu() as server:
        batch = batch_client(server.url)
        recorder = Recorder(batch)
        queue = create_queue(batch, "load", ce_state="DISABLED")
        definition = register_definition(batch, "load", ["true"])
        first = batch.submit_job(jobName="load", jobQueue=queue, jobDefinition=definition)["jobId"]
        stored, _ = submit(server.url, recorder.requests["SubmitJob"], STORED - 1)
        stored.insert(0, first)
        settle(batch, queue)
        batch.describe_jobs(jobs=[first])
        describe = recorder.requests["DescribeJobs"]
        with Poller(server.url, describe) as idle:
            time.sleep(IDLE_SECONDS)
        load_before, cpu_before = os.getloadavg()[0], cpu_seconds(server.pid)
        with Poller(server.url, describe) as reader:
            new, latencies, firsts, errors, seconds = burst(server.url, recorder.requests["SubmitJob"])
        load_after, server_cpu = os.getloadavg()[0], cpu_seconds(server.pid) - cpu_before
        settle(batch, queue)
        listed, counts = queue_ids(batch, queue)
        expected = stored + new
        found = describable(batch, expected)
    kept = set(expected) & listed & found
    lost = STORED + BURST - len(kept)
    report.add(Measurement("load.jobs_lost", lost, "jobs", "<= 0",
                           note=f"{BURST:,} SubmitJob from {THREADS} threads at once onto {STORED:,} RUNNABLE jobs "
                                f"(DISABLED CE): {len(new):,} jobIds returned, {len(errors)} errors"
                                f"{' (' + errors[0] + ')' if errors else ''}; queue lists {len(listed):,} jobs "
                                f"{counts}, {len(found):,} of {len(expected):,} ids describable; load average "
                                f"{load_before:.1f} -> {load_after:.1f}",
                           detail={"errors": errors[:20], "counts": counts}))
    report.add(Measurement("load.SubmitJob_p50", percentile(latencies, 0.5) * 1000, "ms",
                           note=f"{len(latencies):,} submits in {seconds:.2f} s ({len(latencies) / seconds:.0f}/s); "
                                f"mean {statistics.mean(latencies) * 1000:.1f} ms; server CPU {server_cpu:.2f} s "
                                f"({server_cpu / BURST * 1000:.2f} ms a submit, scheduler passes included)"))
    # Each thread's connection is opened by its first request, so those include the TCP handshake: 16 at once
    # is more than a short listen backlog holds, and a dropped SYN is retried after a second.
    later = sorted(latencies)
    for first in firsts:
        later.remove(first)
    report.add(Measurement("load.SubmitJob_p99", percentile(latencies, 0.99) * 1000, "ms", "<= 100",
                           note=f"p90 {percentile(latencies, 0.9) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
                                f"the {len(firsts)} first requests (each opens its connection): median "
                                f"{statistics.median(firsts) * 1000:.0f} ms, max {max(firsts) * 1000:.0f} ms; the "
                                f"others: p99 {percentile(later, 0.99) * 1000:.0f} ms",
                           detail={"first_ms": sorted(round(t * 1000, 1) for t in firsts),
                                   "slowest_ms": [round(t * 1000, 1) for t in sorted(latencies)[-20:]]}))
    during, alone = reader.latencies, idle.latencies
    report.add(Measurement("load.DescribeJobs_p99.during_burst", percentile(during, 0.99) * 1000, "ms", "<= 50",
                           floor=percentile(alone, 0.99) * 1000,
                           note=f"DescribeJobs of 1 job every 10 ms from another thread: {len(during)} calls during "
                                f"the burst, median {statistics.median(during) * 1000:.1f} ms, max "
                                f"{max(during) * 1000:.0f} ms; floor/ref = p99 of {len(alone)} calls with no "
                                f"writer ({IDLE_SECONDS:.0f} s before)"))
