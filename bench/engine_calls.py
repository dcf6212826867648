"""`python -m bench.engine_calls [N]`: the Docker Engine API calls the server makes per container.

Runs an in-process server (Docker executor, a throw-away state file) with a MANAGED compute environment of
maxvCpus 4, runs one plain job of `true` first (connections made), then an N-child array of `true` (40 by
default), and counts every engine request of the server's docker clients by method and path while the array
runs. The arrays benchmark's floor makes 5 per container (create, inspect, start, wait, remove).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import docker.api.client

from batchemu.config import Config
from batchemu.executors.docker import transport
from batchemu.http.server import Server
from bench.client import batch_client, create_queue, register_definition

_VERSION = re.compile(r"/v1\.\d+")
_NAME = re.compile(r"[0-9a-f]{64}|batchemu-[^/]+")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("children", type=int, nargs="?", default=40)
    children = parser.parse_args().children
    counts: Counter = Counter()
    lock = threading.Lock()
    send, lean = docker.api.client.APIClient.send, transport.LeanRequests.__call__

    def count(method: str, path: str) -> None:
        path = _NAME.sub("<id>", _VERSION.sub("", path.split("?")[0]))
        with lock:
            counts[f"{method} {path}"] += 1

    def counted(self, request, **kwargs):  # a client without the lean transport (an engine over TCP)
        if not isinstance(self.request, transport.LeanRequests):
            count(request.method, request.path_url)
        return send(self, request, **kwargs)

    def counted_lean(self, method, url, **kwargs):  # every call of a client on the local socket
        count(method, "/" + url.split("://", 1)[-1].partition("/")[2])
        return lean(self, method, url, **kwargs)

    docker.api.client.APIClient.send = counted
    transport.LeanRequests.__call__ = counted_lean
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Config(port=0, state=str(Path(folder) / "state.db"), instance_label="bench-engine-calls"))
        server.start()
        try:
            batch = batch_client(server.url)
            queue = create_queue(batch, "calls", max_vcpus=4)
            definition = register_definition(batch, "calls", ["true"])
            plain = batch.submit_job(jobName="plain", jobQueue=queue, jobDefinition=definition)["jobId"]
            while batch.describe_jobs(jobs=[plain])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
                time.sleep(0.05)
            with lock:
                counts.clear()
            began = time.perf_counter()
            parent = batch.submit_job(jobName="calls", jobQueue=queue, jobDefinition=definition,
                                      arrayProperties={"size": children})["jobId"]
            while (job := batch.describe_jobs(jobs=[parent])["jobs"][0])["status"] not in ("SUCCEEDED", "FAILED"):
                time.sleep(0.05)
            elapsed = time.perf_counter() - began
            with lock:
                seen = dict(counts)
        finally:
            server.stop(remove_containers=True)
            docker.api.client.APIClient.send = send
            transport.LeanRequests.__call__ = lean
    print(f"{children} children {job['status']} in {elapsed:.1f} s: "
          f"{sum(seen.values()) / children:.1f} engine calls per container")
    for call, count in sorted(seen.items(), key=lambda item: -item[1]):
        print(f"  {count / children:6.2f}  {call}")


if __name__ == "__main__":
    main()
