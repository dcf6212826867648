"""Soak: 10,000 short jobs through one server on maxvCpus 4, watching what a long run could leak.

Every SAMPLE_SECONDS the bench reads the server's VmRSS and open file descriptors from /proc, counts the
server's containers (by its instance label) and the engine's networks, times DescribeJobs of one job and
counts the finished jobs. Once every job has ended, throughput early and late comes from the jobs' own
stoppedAt times: a scheduler pass whose cost grows with the finished jobs would slow the last 10%.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from collections import Counter
from pathlib import Path

import docker

from batchemu.executors import LABEL_INSTANCE
from bench.client import batch_client, create_queue, percentile, register_definition
from bench.report import Measurement, Report
from bench.servers import Batchemu, rss_bytes

MAX_VCPUS = 4
ARRAYS = 9                 # arrays of a tenth of the jobs each; the last tenth are plain jobs
SAMPLE_SECONDS = 5.0
RUN_TIMEOUT = 4 * 3600.0
DRAIN_SECONDS = 30.0       # after the last job ends: time for its container to be removed
RSS_GROWTH = 1.25          # RSS at the end over RSS at 10% done
RSS_SLACK = 4 * 2**20      # ... or at most this many bytes more, for a small server
RATE_TARGET = ">= 0.8"     # throughput of the last 10% over that of the first 10%
DONE = ("SUCCEEDED", "FAILED")


def instance_label(server: Batchemu) -> str:
    """The label batchemu puts on its containers: derived from the state path (batchemu/http/server.py)."""
    state = os.path.abspath(f"{server._state_dir}/state.sqlite3")
    return hashlib.sha1(state.encode()).hexdigest()[:16]


def open_files(pid: int) -> Counter:
    """The process's open file descriptors by kind (socket, pipe, anon_inode, file)."""
    kinds: Counter = Counter()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed between listing and reading
        kinds[target.split(":", 1)[0] if target.split(":", 1)[0] in ("socket", "pipe", "anon_inode") else "file"] += 1
    return kinds


class Progress:
    """Finished jobs: children of the arrays through their parents' statusSummary, plain jobs 100 at a time."""

    def __init__(self, batch, parents: list[str], plain: list[str]) -> None:
        self.batch, self.parents, self.plain = batch, parents, plain

    def count(self) -> tuple[int, int]:
        """(ended, failed) jobs, array parents not counted."""
        ended = failed = 0
        for job in self.batch.describe_jobs(jobs=self.parents)["jobs"]:
            summary = job["arrayProperties"].get("statusSummary", {})
            ended += summary.get("SUCCEEDED", 0) + summary.get("FAILED", 0)
            failed += summary.get("FAILED", 0)
        for first in range(0, len(self.plain), 100):
            for job in self.batch.describe_jobs(jobs=self.plain[first:first + 100])["jobs"]:
                ended += job["status"] in DONE
                failed += job["status"] == "FAILED"
        return ended, failed

    def stopped_at(self) -> list[int]:
        """Every job's stoppedAt (epoch ms), sorted: children through ListJobs(arrayJobId), plain jobs through
        DescribeJobs."""
        times = []
        for parent in self.parents:
            for status in DONE:
                for page in self.batch.get_paginator("list_jobs").paginate(
                        arrayJobId=parent, jobStatus=status, PaginationConfig={"PageSize": 100}):
                    times += [job["stoppedAt"] for job in page["jobSummaryList"]]
        for first in range(0, len(self.plain), 100):
            times += [job["stoppedAt"] for job in self.batch.describe_jobs(jobs=self.plain[first:first + 100])["jobs"]]
        return sorted(times)


def sample(server: Batchemu, engine: docker.DockerClient, label: str, batch, probe: str, progress: Progress,
           began: float) -> dict:
    # The engine's low-level list: the models' list inspects each container, which races with removal.
    t0 = time.perf_counter()
    batch.describe_jobs(jobs=[probe])
    describe_ms = (time.perf_counter() - t0) * 1000
    ended, failed = progress.count()
    return {"t": round(time.perf_counter() - began, 1), "ended": ended, "failed": failed,
            "rss": rss_bytes(server.pid), "fds": dict(open_files(server.pid)),
            "containers": len(engine.api.containers(all=True, quiet=True, filters={"label": f"{LABEL_INSTANCE}={label}"})),
            "networks": len(engine.api.networks()), "describe_ms": round(describe_ms, 2),
            "load": round(os.getloadavg()[0], 2)}


def rate(stops: list[int], first: int, last: int) -> float:
    """Jobs/s between the first-th and last-th stop (inclusive indexes): (last - first) intervals."""
    return (last - first) / max((stops[last] - stops[first]) / 1000, 1e-3)


def run(report: Report, quick: bool) -> None:
    total = 1_000 if quick else 10_000
    array_size = total // 10
    plain_count = total - ARRAYS * array_size
    engine = docker.from_env()
    with Batchemu() as server:
        label = instance_label(server)
        batch = batch_client(server.url)
        queue = create_queue(batch, "soak", max_vcpus=MAX_VCPUS)
        definition = register_definition(batch, "soak", ["true"])
        # Warm-up: one job run to the end, so the server's Docker connections exist before the baseline.
        probe = batch.submit_job(jobName="probe", jobQueue=queue, jobDefinition=definition)["jobId"]
        while batch.describe_jobs(jobs=[probe])["jobs"][0]["status"] not in DONE:
            time.sleep(0.1)
        time.sleep(2.0)  # its container removed
        start_fds = open_files(server.pid)
        start_networks = [n["Name"] for n in engine.api.networks()]
        began = time.perf_counter()
        parents, plain = [], []
        for i in range(ARRAYS):
            parents.append(batch.submit_job(jobName=f"soak-{i}", jobQueue=queue, jobDefinition=definition,
                                            arrayProperties={"size": array_size})["jobId"])
            # Plain jobs between the arrays, so both kinds run early and late.
            share = plain_count // ARRAYS + (1 if i < plain_count % ARRAYS else 0)
            plain += [batch.submit_job(jobName=f"soak-plain-{i}", jobQueue=queue, jobDefinition=definition)["jobId"]
                      for _ in range(share)]
        submitted_in = time.perf_counter() - began
        progress = Progress(batch, parents, plain)
        samples = []
        while True:
            samples.append(sample(server, engine, label, batch, probe, progress, began))
            if len(samples) % 12 == 1:
                print(f"soak: {_line(samples[-1])}", flush=True)
            if samples[-1]["ended"] >= total:
                break
            if time.perf_counter() - began > RUN_TIMEOUT:
                raise RuntimeError(f"{samples[-1]['ended']} of {total} jobs ended after {RUN_TIMEOUT}s")
            time.sleep(SAMPLE_SECONDS)
        ran_in = time.perf_counter() - began
        deadline = time.perf_counter() + DRAIN_SECONDS
        while time.perf_counter() < deadline:
            samples.append(sample(server, engine, label, batch, probe, progress, began))
            if samples[-1]["containers"] == 0:
                break
            time.sleep(1.0)
        time.sleep(2.0)  # a few idle passes
        end = sample(server, engine, label, batch, probe, progress, began)
        samples.append(end)
        end_fds = open_files(server.pid)
        end_networks = [n["Name"] for n in engine.api.networks()]
        stops = progress.stopped_at()
    if len(stops) != total:
        raise RuntimeError(f"{len(stops)} stoppedAt times for {total} jobs")
    tenth = total // 10
    at_tenth = next(s for s in samples if s["ended"] >= tenth)
    rss_limit = max(at_tenth["rss"] * RSS_GROWTH, at_tenth["rss"] + RSS_SLACK)
    peak = max(samples, key=lambda s: s["rss"])
    summary = (f"{len(samples)} samples every {SAMPLE_SECONDS:.0f} s over {ran_in:.0f} s "
               f"(submitted in {submitted_in:.1f} s), load average {min(s['load'] for s in samples):.1f}-"
               f"{max(s['load'] for s in samples):.1f}")
    report.add(Measurement("soak.jobs_failed", end["failed"], "jobs", "<= 0",
                           note=f"{total:,} jobs of `true` ({ARRAYS} arrays of {array_size:,} + {plain_count:,} plain), "
                                f"maxvCpus {MAX_VCPUS}; {summary}",
                           detail={"samples": samples}))
    report.add(Measurement("soak.rss_growth", end["rss"] / 2**20, "MiB", f"<= {rss_limit / 2**20:.1f}",
                           note=f"VmRSS at the end vs {at_tenth['rss'] / 2**20:.1f} MiB at {tenth:,} jobs ended "
                                f"(t={at_tenth['t']:.0f} s); limit max(+{(RSS_GROWTH - 1) * 100:.0f}%, "
                                f"+{RSS_SLACK / 2**20:.0f} MiB); peak {peak['rss'] / 2**20:.1f} MiB at "
                                f"t={peak['t']:.0f} s"))
    # Each of the HTTP server's worker threads opens its SQLite reader connection when it first serves a
    # read, so the count grows during the first seconds of load (past 10% of a --quick run): the reference
    # is the sample at half.
    fd_counts = [sum(s["fds"].values()) for s in samples]
    # SQLite's page caches (32 MiB for the writer, 1 MiB for each reader thread) fill as the file grows and
    # then stay: a leak would keep growing through the second half as well.
    half = next(s for s in samples if s["ended"] >= total // 2)
    report.add(Measurement("soak.rss_growth.second_half", (end["rss"] - half["rss"]) / 2**20 / (total - half["ended"])
                           * 1000, "MiB per 1,000 jobs",
                           note=f"VmRSS {half['rss'] / 2**20:.1f} MiB at {half['ended']:,} jobs ended (t={half['t']:.0f}"
                                f" s) -> {end['rss'] / 2**20:.1f} MiB at the end; first half "
                                f"{(half['rss'] - samples[0]['rss']) / 2**20 / max(half['ended'] - samples[0]['ended'], 1) * 1000:.1f}"
                                f" MiB per 1,000 jobs"))
    report.add(Measurement("soak.open_files_delta", sum(end_fds.values()) - sum(half["fds"].values()), "fds",
                           "<= 0",
                           note=f"server fds at the end {dict(end_fds)} vs at {half['ended']:,} jobs ended {half['fds']}; "
                                f"after the warm-up job {dict(start_fds)}; samples {min(fd_counts)}-{max(fd_counts)}"))
    new_networks = sorted(set(end_networks) - set(start_networks))
    report.add(Measurement("soak.networks_delta", len(end_networks) - len(start_networks), "networks", "<= 0",
                           note=f"Docker networks {len(start_networks)} -> {len(end_networks)} (the engine is shared: "
                                f"new ones {new_networks or 'none'})"))
    report.add(Measurement("soak.containers_left", end["containers"], "containers", "<= 0",
                           note=f"containers labelled {LABEL_INSTANCE}={label}, {DRAIN_SECONDS:.0f} s at most after "
                                f"the last job ended; at most {max(s['containers'] for s in samples)} at once"))
    early, late = rate(stops, 0, tenth - 1), rate(stops, total - tenth, total - 1)
    report.add(Measurement("soak.throughput_last_vs_first_10pct", late, "jobs/s", RATE_TARGET, early, late / early,
                           note=f"from the jobs' stoppedAt: first {tenth:,} ended at {early:.2f} jobs/s, last "
                                f"{tenth:,} at {late:.2f} jobs/s; overall {(total - 1) / ((stops[-1] - stops[0]) / 1000):.2f}"
                                f" jobs/s"))
    quarter = max(1, len(samples) // 10)
    first_ms = [s["describe_ms"] for s in samples[:quarter]]
    last_ms = [s["describe_ms"] for s in samples[-quarter:]]
    report.add(Measurement("soak.DescribeJobs_1.median_last_10pct_samples", statistics.median(last_ms), "ms",
                           floor=statistics.median(first_ms),
                           ratio=statistics.median(last_ms) / statistics.median(first_ms),
                           note=f"DescribeJobs of one job per sample (boto3), first vs last tenth of the samples; "
                                f"p99 over all {percentile([s['describe_ms'] for s in samples], 0.99):.1f} ms"))
    print("soak samples (t s, ended, RSS MiB, fds, containers, networks, DescribeJobs ms, load):", flush=True)
    step = max(1, len(samples) // 20)
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"  {_line(s)}", flush=True)


def _line(s: dict) -> str:
    return (f"{s['t']:7.0f} {s['ended']:6d} {s['rss'] / 2**20:7.1f} {sum(s['fds'].values()):4d} {s['containers']:3d} "
            f"{s['networks']:3d} {s['describe_ms']:7.1f} {s['load']:5.1f}")
