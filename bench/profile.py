"""`python -m bench.profile [DescribeJobs|ListJobs|SubmitJob] [--calls N]`: where one API request's time goes.

Builds a server in-process (:memory: state), stores 100 RUNNABLE jobs on a DISABLED compute environment, and runs the recorded request through the WSGI app under cProfile, leaving out the
HTTP server (the api benchmark measures that part too).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from werkzeug.test import Client

from batchemu.config import Config
from batchemu.http.server import Server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("operation", choices=("DescribeJobs", "ListJobs", "SubmitJob"))
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    server = Server(Config(port=0, state=":memory:"), with_scheduler=True)
    server.start()
    from bench.client import Recorder, batch_client, create_queue, register_definition
    batch = batch_client(server.url)
    recorder = Recorder(batch)
    queue = create_queue(batch, "profile", ce_state="DISABLED", managed=False)
    definition = register_definition(batch, "profile", ["true"])
    ids = [batch.submit_job(jobName="p", jobQueue=queue, jobDefinition=definition)["jobId"] for _ in range(100)]
    while {job["status"] for job in batch.describe_jobs(jobs=ids)["jobs"]} != {"RUNNABLE"}:
        time.sleep(0.05)
    batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE", maxResults=100)
    request = recorder.requests[args.operation]
    client = Client(server.app)

    def call() -> None:
        response = client.open(request.path, method=request.method, data=request.body, headers=request.headers)
        assert response.status_code == 200, response.data

    for _ in range(20):
        call()
    began = time.process_time()
    for _ in range(args.calls):
        call()
    print(f"{args.operation}: {(time.process_time() - began) / args.calls * 1000:.2f} ms CPU per call "
          "without profiling")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.calls):
        call()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
    server.stop()


if __name__ == "__main__":
    main()
