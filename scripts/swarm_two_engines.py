"""Proof that `--executor swarm` spreads jobs over more than one machine, on one host.

    sudo .venv/bin/python scripts/swarm_two_engines.py [--jobs 6] [--vcpus 1] [--seconds 8] [--no-node-loss]

What it does, and undoes at the end (also on failure or Ctrl-C):
  1. a network namespace `be-node2` joined to the host by a veth pair (10.231.0.1 host side, 10.231.0.2
     inside): the second engine gets its own ports (2377, 7946, 4789) there, so nothing clashes with the
     main engine; no iptables rule of the host is touched and the main dockerd is neither restarted nor
     reconfigured.
  2. makes the main engine a swarm manager advertising 10.231.0.1 (it refuses when the engine is in a swarm
     already: that swarm is not ours to change);
  3. a second dockerd inside the namespace (own data root, socket, exec root, pid file, containerd namespace;
     no bridge, no iptables) that joins the swarm as a worker; the test image is copied into it with
     `docker save | docker -H ... load` (there is no registry);
  4. batchemu serve --executor swarm, a compute environment of maxvCpus 2 x nodes' CPUs, and a job set whose
     vCPUs exceed one node's CPUs; it records which node ran each job from the tasks' node ids;
  5. a multi-node job of two nodes, each as large as a node's CPUs, so one runs on each engine: the worker
     node reaches the main node at its overlay address (AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS);
  6. (after the measurements of 7, but for SubmitJob and listing) unless --no-node-loss: jobs with a retry strategy on `Host EC2*`, then the worker's link is cut
     mid-job; the jobs on it end with `Host EC2 (instance <node id>) terminated.` and are retried on the
     manager;
  7. measures what limits the design: a lone job's submit-to-end time, 30 short jobs' throughput, the
     SubmitJob rate of one client, and the time one scheduler pass spends listing services and tasks as
     their number grows.
Prints a JSON summary (also written to build/swarm-two-engines.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import docker
from docker.types import ContainerSpec, Resources, RestartPolicy, ServiceMode, TaskTemplate

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "batchemu-test:latest"
NETNS, VETH_HOST, VETH_NODE = "be-node2", "be-veth0", "be-veth1"
HOST_IP, NODE_IP = "10.231.0.1", "10.231.0.2"
PROBE_LABEL = "batchemu.swarm-probe"


def say(text: str) -> None:
    print(f"[swarm-two-engines {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(*args: str, env: dict | None = None, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=kwargs.pop("text", True),
                          env={**os.environ, **(env or {})}, **kwargs)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


class Rig:
    """Everything the script sets up, torn down in reverse by close()."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="be-node2-", dir="/tmp"))
        self.socket = f"unix://{self.root}/docker.sock"
        self.undo: list = []
        self.dockerd: subprocess.Popen | None = None
        self.server: subprocess.Popen | None = None

    def close(self) -> None:
        for step in reversed(self.undo):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest
                say(f"clean-up step failed: {exc}")
        (ROOT / "build").mkdir(exist_ok=True)
        for name in ("dockerd.log", "batchemu.log"):  # kept for a look after the run
            if (self.root / name).exists():
                shutil.copy(self.root / name, ROOT / "build" / f"swarm-two-engines-{name}")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- 1. the namespace ---------------------------------------------------------------------------------
    def network(self) -> None:
        if run("ip", "netns", "list", check=False).stdout.split().count(NETNS):
            raise RuntimeError(f"network namespace {NETNS} exists already (a previous run?): ip netns del {NETNS}")
        run("ip", "netns", "add", NETNS)
        self.undo.append(lambda: run("ip", "netns", "del", NETNS, check=False))
        run("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NODE)
        self.undo.append(lambda: run("ip", "link", "del", VETH_HOST, check=False))
        run("ip", "link", "set", VETH_NODE, "netns", NETNS)
        run("ip", "addr", "add", f"{HOST_IP}/24", "dev", VETH_HOST)
        run("ip", "link", "set", VETH_HOST, "up")
        for command in (["ip", "addr", "add", f"{NODE_IP}/24", "dev", VETH_NODE], ["ip", "link", "set", VETH_NODE, "up"],
                        ["ip", "link", "set", "lo", "up"]):
            run("ip", "netns", "exec", NETNS, *command)

    # -- 2. the swarm -------------------------------------------------------------------------------------
    def swarm(self) -> str:
        state = run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
        if state != "inactive":
            raise RuntimeError(f"the main engine is a swarm member already ({state}); this script makes its own "
                               "swarm and leaves other swarms alone")
        had_gwbridge = run("docker", "network", "inspect", "docker_gwbridge", check=False).returncode == 0
        run("docker", "swarm", "init", "--advertise-addr", HOST_IP)

        def leave() -> None:
            run("docker", "swarm", "leave", "--force", check=False)
            if not had_gwbridge:
                run("docker", "network", "rm", "docker_gwbridge", check=False)
        self.undo.append(leave)
        return run("docker", "swarm", "join-token", "-q", "worker").stdout.strip()

    # -- 3. the second engine -----------------------------------------------------------------------------
    def second_engine(self, token: str) -> str:
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - closed by the undo step
        namespace = self.root.name
        self.dockerd = subprocess.Popen(
            # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroups dockerd needs.
            ["nsenter", f"--net=/var/run/netns/{NETNS}", "dockerd", "--host", self.socket, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"), "--bridge", "none",
             "--iptables=false", "--ip-masq=false", "--shutdown-timeout", "2", "--containerd-namespace", namespace,
             "--containerd-plugins-namespace", namespace + "-p"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)

        def stop() -> None:
            if self.dockerd.poll() is None:
                self.dockerd.terminate()
                try:
                    self.dockerd.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.dockerd.kill()
            log.close()
            # Whatever dockerd left mounted under its directories (overlays, the netns bind), deepest first.
            mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
            for mounted in sorted((m for m in mounts if m.startswith(str(self.root) + "/")), reverse=True):
                run("umount", "-l", mounted, check=False)
        self.undo.append(stop)
        client = docker.DockerClient(base_url=self.socket, timeout=30, version="1.41")
        wait_until(lambda: _pings(client), 60, "the second dockerd")
        env = {"DOCKER_HOST": self.socket}
        image = run("docker", "save", IMAGE, text=False).stdout
        subprocess.run(["docker", "load"], input=image, check=True, capture_output=True,
                       env={**os.environ, **env})
        run("docker", "swarm", "join", "--token", token, "--advertise-addr", NODE_IP, f"{HOST_IP}:2377", env=env)
        self.undo.append(lambda: run("docker", "swarm", "leave", "--force", env=env, check=False))
        node = client.info()["Swarm"]["NodeID"]
        manager = docker.from_env()
        wait_until(lambda: any(n["ID"] == node and n["Status"]["State"] == "ready" for n in manager.api.nodes()),
                   60, "the worker to be ready")
        return node

    # -- 4. batchemu ----------------------------------------------------------------------------------------
    def batchemu(self) -> str:
        port = _free_port()
        log = open(self.root / "batchemu.log", "ab")  # noqa: SIM115 - closed by the undo step
        self.server = subprocess.Popen(
            [str(ROOT / ".venv/bin/batchemu"), "serve", "--port", str(port), "--state", str(self.root / "state.sqlite3"),
             "--executor", "swarm"], stdout=log, stderr=log, start_new_session=True)

        def stop() -> None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
            log.close()
            manager = docker.from_env()
            for service in manager.api.services(filters={"label": "batchemu.managed=1"}):
                manager.api.remove_service(service["ID"])
        self.undo.append(stop)
        url = f"http://127.0.0.1:{port}"
        import urllib.request
        wait_until(lambda: _answers(urllib.request, url + "/_batchemu/health"), 30, "batchemu")
        return url


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _answers(request, url: str) -> bool:
    try:
        return request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clients(url: str):
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client("batch", **kwargs), boto3.client("logs", **kwargs)


def _queue(batch, name: str, max_vcpus: int) -> str:
    batch.create_compute_environment(computeEnvironmentName=name, type="MANAGED", computeResources={
        "type": "EC2", "maxvCpus": max_vcpus, "minvCpus": 0, "subnets": ["s"], "securityGroupIds": ["g"],
        "instanceRole": "r", "instanceTypes": ["optimal"]})
    wait_until(lambda: batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
               ["status"] == "VALID", 30, "the compute environment")
    batch.create_job_queue(jobQueueName=name, priority=1, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": name}])
    wait_until(lambda: batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["status"] == "VALID", 30,
               "the job queue")
    return name


def _watch_nodes(manager, job_ids: set[str], seen: dict[str, set[str]]) -> None:
    """Record the node id of every task of our services (job id -> node ids)."""
    services = {s["ID"]: s["Spec"]["Labels"].get("batchemu.job-id")
                for s in manager.api.services(filters={"label": "batchemu.managed=1"})}
    if not services:
        return
    try:
        tasks = manager.api.tasks(filters={"service": list(services)})
    except docker.errors.NotFound:  # one was removed meanwhile
        tasks = manager.api.tasks()
    for task in tasks:
        job_id = services.get(task["ServiceID"])
        if job_id in job_ids and task.get("NodeID"):
            seen.setdefault(job_id, set()).add(task["NodeID"])


def _run_set(batch, manager, queue: str, definition: str, count: int, timeout: float,
             during=None) -> tuple[list[dict], dict[str, set[str]], float]:
    began = time.monotonic()
    ids = [batch.submit_job(jobName=f"spread-{i}", jobQueue=queue, jobDefinition=definition)["jobId"]
           for i in range(count)]
    seen: dict[str, set[str]] = {}
    pending = set(ids)
    deadline = time.monotonic() + timeout
    acted = False
    while pending and time.monotonic() < deadline:
        _watch_nodes(manager, set(ids), seen)
        if during is not None and not acted:
            acted = during(batch, ids, seen)
        for job in batch.describe_jobs(jobs=list(pending))["jobs"]:
            if job["status"] in ("SUCCEEDED", "FAILED"):
                pending.discard(job["jobId"])
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} job(s) did not end within {timeout} s")
    jobs = [job for chunk in range(0, len(ids), 100) for job in batch.describe_jobs(jobs=ids[chunk:chunk + 100])["jobs"]]
    return jobs, seen, time.monotonic() - began


def _max_overlap(jobs: list[dict]) -> int:
    events = sorted([(j["startedAt"], 1) for j in jobs if j.get("startedAt")] +
                    [(j["stoppedAt"], -1) for j in jobs if j.get("startedAt")])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def measure_latency(batch, queue: str, count: int = 5) -> float:
    """Median seconds from SubmitJob to SUCCEEDED of a lone `true` job (one at a time)."""
    definition = batch.register_job_definition(
        jobDefinitionName="lone", type="container", containerProperties={
            "image": IMAGE, "command": ["true"], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]})["jobDefinitionArn"]
    samples = []
    for i in range(count):
        began = time.perf_counter()
        job_id = batch.submit_job(jobName=f"lone-{i}", jobQueue=queue, jobDefinition=definition)["jobId"]
        wait_until(lambda job_id=job_id: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("SUCCEEDED", "FAILED"),
                   60, "a lone job", 0.02)
        samples.append(time.perf_counter() - began)
    return round(sorted(samples)[count // 2], 2)


def measure_throughput(batch, manager, queue: str, count: int = 30) -> dict:
    """`true` jobs of 1 vCPU through the swarm: each is a service created, placed, run, read and removed."""
    definition = batch.register_job_definition(
        jobDefinitionName="quick", type="container", containerProperties={
            "image": IMAGE, "command": ["true"], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}]})["jobDefinitionArn"]
    jobs, seen, elapsed = _run_set(batch, manager, queue, definition, count, 300)
    latencies = sorted((j["stoppedAt"] - j["createdAt"]) / 1000 for j in jobs)
    return {"jobs": count, "succeeded": sum(j["status"] == "SUCCEEDED" for j in jobs),
            "nodesUsed": len({n for nodes in seen.values() for n in nodes}),
            "jobsPerSecond": round(count / elapsed, 2), "medianSubmitToEndSeconds": latencies[len(latencies) // 2]}


def measure_listing(manager, counts=(0, 50, 100, 200)) -> list[dict]:
    """Time of the two calls a scheduler pass makes (services by label, their tasks) with N services present.
    Probe services reserve more CPUs than any node has, so they stay pending and run nothing."""
    results, made = [], []
    try:
        for count in counts:
            while len(made) < count:
                template = TaskTemplate(ContainerSpec(IMAGE, args=["true"]), resources=Resources(cpu_reservation=10**15),
                                        restart_policy=RestartPolicy(condition="none"))
                made.append(manager.api.create_service(template, name=f"batchemu-probe-{len(made)}",
                                                       labels={PROBE_LABEL: "1", "batchemu.managed": "1"},
                                                       mode=ServiceMode("replicated-job", replicas=1))["ID"])
            samples = []
            for _ in range(5):
                began = time.perf_counter()
                services = manager.api.services(filters={"label": "batchemu.managed=1"})
                if services:
                    manager.api.tasks(filters={"service": [s["ID"] for s in services]})
                samples.append(time.perf_counter() - began)
            results.append({"services": count, "listMs": round(sorted(samples)[2] * 1000, 1)})
    finally:
        for service_id in made:
            manager.api.remove_service(service_id)
    return results


def measure_submissions(batch, definition: str, count: int = 200) -> float:
    """SubmitJob calls a second from one client onto a queue whose compute environment is disabled (nothing
    starts: the rate is the API's and the SQLite writer's, not the swarm's)."""
    queue = _queue(batch, "rate", 4)
    batch.update_compute_environment(computeEnvironment=queue, state="DISABLED")
    began = time.perf_counter()
    for i in range(count):
        batch.submit_job(jobName=f"rate-{i}", jobQueue=queue, jobDefinition=definition)
    rate = count / (time.perf_counter() - began)
    return round(rate, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--vcpus", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--no-node-loss", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespace, a second dockerd)", file=sys.stderr)
        return 2
    rig = Rig()
    summary: dict = {}
    try:
        say("network namespace and veth pair")
        rig.network()
        say(f"swarm on the main engine, advertising {HOST_IP}")
        token = rig.swarm()
        say("second dockerd in the namespace; joining it as a worker")
        worker = rig.second_engine(token)
        manager = docker.from_env(timeout=30)
        nodes = {n["ID"]: {"role": n["Spec"]["Role"], "cpus": n["Description"]["Resources"]["NanoCPUs"] / 1e9,
                           "address": n["Status"]["Addr"]} for n in manager.api.nodes()}
        summary["nodes"] = nodes
        url = rig.batchemu()
        batch, logs = _clients(url)
        node_cpus = max(n["cpus"] for n in nodes.values())
        queue = _queue(batch, "spread", int(node_cpus * len(nodes)))
        definition = batch.register_job_definition(
            jobDefinitionName="spread", type="container", containerProperties={
                "image": IMAGE, "command": ["sleep", str(args.seconds)],
                "resourceRequirements": [{"type": "VCPU", "value": str(args.vcpus)},
                                         {"type": "MEMORY", "value": "32"}]})["jobDefinitionArn"]
        say(f"{args.jobs} jobs of {args.vcpus} vCPU(s) each ({args.jobs * args.vcpus} vCPUs; a node has {node_cpus:g})")
        jobs, seen, elapsed = _run_set(batch, manager, queue, definition, args.jobs, 300)
        per_node: dict[str, int] = {}
        for job_nodes in seen.values():
            for node in job_nodes:
                per_node[node] = per_node.get(node, 0) + 1
        summary["spread"] = {
            "jobs": args.jobs, "vcpusEach": args.vcpus, "secondsEach": args.seconds,
            "succeeded": sum(j["status"] == "SUCCEEDED" for j in jobs), "jobsPerNode": per_node,
            "maxRunningAtOnce": _max_overlap(jobs), "wallSeconds": round(elapsed, 1)}
        say(f"spread: {summary['spread']}")
        if len(per_node) < 2:
            raise RuntimeError(f"only {len(per_node)} node(s) ran jobs: {per_node}")
        summary["multiNode"] = multinode_across(batch, logs, manager, queue, node_cpus)
        summary["latency"] = measure_latency(batch, queue)
        summary["throughput"] = measure_throughput(batch, manager, queue)
        if not args.no_node_loss:
            summary["nodeLoss"] = node_loss(batch, manager, queue, worker, args)
        summary["submitJobsPerSecond"] = measure_submissions(batch, definition)
        summary["listing"] = measure_listing(manager)
        say(f"summary: {json.dumps(summary)}")
    finally:
        say("cleaning up")
        rig.close()
    out = ROOT / "build" / "swarm-two-engines.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def multinode_across(batch, logs, manager, queue: str, node_cpus: float) -> dict:
    """A two-node job whose nodes cannot share an engine: the worker node reads a line the main node serves
    at its address on the job's overlay network."""
    env = "echo node=$AWS_BATCH_JOB_NODE_INDEX main=${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-self}"
    main = env + "; echo hello-from-main | nc -l -p 7000"
    worker = env + '; until nc "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000; do sleep 0.2; done'

    def node(command: str) -> dict:
        return {"image": IMAGE, "command": ["sh", "-c", command], "resourceRequirements": [
            {"type": "VCPU", "value": str(int(node_cpus))}, {"type": "MEMORY", "value": "32"}]}
    definition = batch.register_job_definition(
        jobDefinitionName="across", type="multinode", nodeProperties={
            "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
                {"targetNodes": "0", "container": node(main)}, {"targetNodes": "1", "container": node(worker)}]},
    )["jobDefinitionArn"]
    say(f"multi-node: 2 nodes of {int(node_cpus)} vCPUs each (one per engine)")
    job_id = batch.submit_job(jobName="across", jobQueue=queue, jobDefinition=definition)["jobId"]
    children = {f"{job_id}#0", f"{job_id}#1"}
    seen: dict[str, set[str]] = {}

    def ended():
        _watch_nodes(manager, children, seen)
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        return job if job["status"] in ("SUCCEEDED", "FAILED") else None
    job = wait_until(ended, 180, "the multi-node job")
    nodes = batch.describe_jobs(jobs=sorted(children))["jobs"]
    worker_job = next(n for n in nodes if n["jobId"].endswith("#1"))
    lines = [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=worker_job["container"]["logStreamName"])["events"]]
    result = {"status": job["status"], "mainNodeAddress": next(
        (n["container"].get("networkInterfaces", [{}])[0].get("privateIpv4Address") for n in nodes
         if n["jobId"].endswith("#0")), None),
        "enginesOfNodes": {k.rsplit("#", 1)[1]: sorted(v) for k, v in seen.items()}, "workerOutput": lines}
    result["onDistinctEngines"] = len({node for v in seen.values() for node in v}) == 2
    say(f"multi-node: {result}")  # recorded, not fatal: the measurements after it still run
    return result


def node_loss(batch, manager, queue: str, worker: str, args) -> dict:
    """Cut the worker's link while jobs run on it: they end as lost hosts and their retry runs elsewhere."""
    definition = batch.register_job_definition(
        jobDefinitionName="lossy", type="container", retryStrategy={"attempts": 2, "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]},
        containerProperties={"image": IMAGE, "command": ["sleep", "20"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "32"}]})["jobDefinitionArn"]
    cut: dict = {}

    def cut_link(batch, ids, seen) -> bool:
        running = [j for j in batch.describe_jobs(jobs=ids)["jobs"] if j["status"] == "RUNNING"]
        on_worker = [j for j in running if worker in seen.get(j["jobId"], set())]
        if not on_worker:
            return False
        time.sleep(1)
        say(f"cutting the worker's link while {len(on_worker)} job(s) run on it")
        run("ip", "netns", "exec", NETNS, "ip", "link", "set", VETH_NODE, "down")
        cut["at"] = time.time()
        return True
    say("node loss: 4 jobs of 1 vCPU sleeping 20 s, retried on Host EC2*")
    jobs, _, elapsed = _run_set(batch, manager, queue, definition, 4, 300, during=cut_link)
    lost = [a for j in jobs for a in j.get("attempts", []) if a.get("statusReason", "").startswith("Host EC2")]
    result = {"jobs": len(jobs), "succeeded": sum(j["status"] == "SUCCEEDED" for j in jobs),
              "lostAttempts": len(lost), "lostReasons": sorted({a["statusReason"] for a in lost}),
              "lostAfterSeconds": round(min(a["stoppedAt"] for a in lost) / 1000 - cut["at"], 1) if lost else None,
              "wallSeconds": round(elapsed, 1)}
    say(f"node loss: {result}")
    return result


if __name__ == "__main__":
    sys.exit(main())
