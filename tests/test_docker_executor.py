"""DockerExecutor against the real Docker Engine and the local image batchemu-test:latest."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid

import docker
import pytest

from batchemu.config import Config
from batchemu.executors import (
    LABEL_ATTEMPT,
    LABEL_INSTANCE,
    LABEL_JOB_ID,
    LABEL_MANAGED,
    ContainerSpec,
    EngineUnavailable,
    Outcome,
    StartFailure,
    TaskExit,
    TaskSpec,
)
from batchemu.executors.docker import LABEL_LOG_GROUP, LABEL_LOG_STREAM, DockerExecutor
from batchemu.executors.docker.engine import epoch_ms
from batchemu.executors.docker.logs import LogFiles, LogPump, _log_frames
from tests.waiting import LOAD_FACTOR, wait_for, wait_until

IMAGE = "batchemu-test:latest"


def _engine_problem() -> str | None:
    try:
        if subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=20).returncode != 0:
            return "`docker info` fails: no Docker Engine (run scripts/ensure-docker.sh)"
        if subprocess.run(["docker", "image", "inspect", IMAGE], check=False, capture_output=True,
                          timeout=20).returncode:
            return f"{IMAGE} is missing (run scripts/build-test-image.sh)"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` fails: {exc}"
    return None


_problem = _engine_problem()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(_problem is not None, reason=_problem or "")]


class Harness:
    """An executor with its own instance label, a log sink and a listener that record what they get."""

    def __init__(self, executor=DockerExecutor, **config) -> None:
        self.config = Config(state=":memory:", instance_label=uuid.uuid4().hex, **config)
        self.executor = executor(self.config)
        self.lines: dict[str, list[tuple[int, str]]] = {}
        self.groups: set[str] = set()
        self.exits: dict[str, TaskExit] = {}
        self.woken = threading.Event()
        self._lock = threading.Lock()
        self.executor.set_log_sink(self._sink)
        self.executor.set_listener(self.woken.set)

    def _sink(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        with self._lock:
            self.groups.add(group)
            self.lines.setdefault(stream, []).extend(lines)

    def container(self, command: list[str], job_id: str, **fields) -> ContainerSpec:
        fields.setdefault("memory_mib", 64)
        name = fields.get("name", "default")
        return ContainerSpec(image=fields.pop("image", IMAGE), command=command, environment=fields.pop("environment", {}),
                             vcpus=1, log_group="/aws/batch/job", log_stream=f"jd/{name}/{job_id}", **fields)

    def spec(self, command: list[str], **fields) -> TaskSpec:
        """A one-container task, as every job of a containerProperties definition runs."""
        job_id = str(uuid.uuid4())
        task = {key: fields.pop(key) for key in ("attempt", "labels", "volumes", "network") if key in fields}
        return TaskSpec(job_id=job_id, attempt=task.pop("attempt", 1), containers=[self.container(command, job_id, **fields)],
                        **task)

    def text(self, spec: TaskSpec, index: int = 0) -> list[str]:
        with self._lock:
            return [line for _, line in self.lines.get(spec.containers[index].log_stream, [])]

    def wait_task(self, task_id: str, timeout: float = 30.0) -> TaskExit:
        """The task's exit, collected from the executor (woken by its listener) until it comes."""
        def collect() -> dict[str, TaskExit]:
            if task_id not in self.exits:
                for found in self.executor.collect_exits():
                    assert found.task_id not in self.exits, "an exit was reported twice"
                    self.exits[found.task_id] = found
            return self.exits
        wait_for(collect, lambda exits: task_id in exits, f"the end of task {task_id}", timeout, 0.5,
                 on_timeout=lambda: f"engine: {self.engine_view()}", show=lambda exits: f"exits of {sorted(exits)}",
                 wake=self.woken)
        return self.exits[task_id]

    def wait_exit(self, task_id: str, timeout: float = 30.0):
        """The result of a one-container task's container."""
        exit = self.wait_task(task_id, timeout)
        assert len(exit.containers) == 1
        return exit.containers[0]

    def engine_view(self) -> str:
        """This harness's containers as the engine lists them, for a failure message."""
        try:
            listed = docker.from_env().containers.list(
                all=True, filters={"label": f"batchemu.instance={self.config.instance_label}"})
            return ", ".join(f"{c.name} {c.status} {c.attrs['State'].get('Error', '')}".strip() for c in listed) or "none"
        except docker.errors.DockerException as exc:
            return f"(engine did not answer: {exc})"

    def start(self, spec: TaskSpec) -> str:
        return self.executor.start(spec).task_id

    def run(self, command: list[str], **fields):
        spec = self.spec(command, **fields)
        return spec, self.wait_exit(self.start(spec))


@pytest.fixture
def harness():
    created = []

    def make(**config) -> Harness:
        created.append(Harness(**config))
        return created[-1]

    yield make
    for each in created:
        each.executor.remove_all()
        each.executor.close()


@pytest.fixture
def docker_client():
    import docker
    client = docker.from_env()
    yield client
    client.close()


def test_exit_codes_and_times_are_reported(harness):
    h = harness()
    ok_spec, ok = h.run(["true"])
    failed_spec, failed = h.run(["sh", "-c", "exit 7"])
    reported = {(e.job_id, e.attempt) for e in h.exits.values()}
    assert reported == {(ok_spec.job_id, 1), (failed_spec.job_id, 1)}
    assert (ok.outcome, ok.exit_code, ok.detail) == (Outcome.EXITED, 0, None)
    assert (failed.outcome, failed.exit_code) == (Outcome.EXITED, 7)
    now_ms = time.time() * 1000
    for exit in (ok, failed):
        assert isinstance(exit.started_at, int) and isinstance(exit.finished_at, int)
        assert exit.started_at <= exit.finished_at
        assert abs(exit.finished_at - now_ms) < 600_000  # epoch milliseconds, not seconds or nanoseconds


def test_memory_over_the_limit_is_oom_killed(harness):
    h = harness()
    _, exit = h.run(["sh", "-c", 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo survived'], memory_mib=8)
    assert (exit.outcome, exit.exit_code) == (Outcome.OOM_KILLED, 137)
    assert "survived" not in h.text(_)


def test_command_and_environment_reach_the_container(harness):
    h = harness()
    spec, exit = h.run(["sh", "-c", 'echo "foo=$FOO"; echo "to stderr" >&2; echo "$0|$1"', "zero", "one two"],
                       environment={"FOO": "bar baz", "AWS_BATCH_JOB_ATTEMPT": "1"})
    assert exit.exit_code == 0
    assert sorted(h.text(spec)) == sorted(["foo=bar baz", "to stderr", "zero|one two"])
    assert h.groups == {"/aws/batch/job"}
    now_ms = time.time() * 1000
    assert all(abs(stamp - now_ms) < 600_000 for stamp, _ in h.lines[spec.containers[0].log_stream])


def test_lines_are_shipped_while_the_container_runs(harness):
    h = harness()
    spec = h.spec(["sh", "-c", "echo a; sleep 2; echo b"])
    container_id = h.start(spec)
    wait_until(lambda: "a" in h.text(spec))
    assert "b" not in h.text(spec)
    assert h.executor.running() == {(spec.job_id, 1): container_id}
    exit = h.wait_exit(container_id)
    assert exit.exit_code == 0
    assert h.text(spec) == ["a", "b"]


def test_every_line_is_shipped_once_up_to_the_exit(harness):
    h = harness()
    script = 'i=0; while [ $i -lt 2500 ]; do echo "line $i"; i=$((i+1)); done; echo last >&2; exit 3'
    spec, exit = h.run(["sh", "-c", script])
    assert exit.exit_code == 3
    lines = h.text(spec)
    # stdout and stderr are separate pipes: each keeps its order, the two interleave by engine timestamp.
    assert [line for line in lines if line != "last"] == [f"line {i}" for i in range(2500)]
    assert lines.count("last") == 1


def test_missing_image_fails_with_cannot_pull(harness, docker_client):
    h = harness()
    with pytest.raises(StartFailure) as raised:
        h.executor.start(h.spec(["true"], image="batchemu-no-such-image:1"))
    assert raised.value.outcome is Outcome.PULL_FAILED
    assert "batchemu-no-such-image" in str(raised.value) or "registry" in str(raised.value)
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={h.config.instance_label}"}) == []


def test_an_image_removed_since_the_last_start_is_looked_for_again(harness, docker_client):
    """Found images are trusted for a few seconds without asking the engine; one removed meanwhile fails
    the create, which then looks for it again (and, without a registry, fails as any missing image)."""
    h = harness()
    tag = f"batchemu-test-removed:{uuid.uuid4().hex[:12]}"
    docker_client.images.get(IMAGE).tag(tag)
    try:
        assert h.run(["true"], image=tag)[1].exit_code == 0
    finally:
        docker_client.images.remove(tag)
    with pytest.raises(StartFailure) as raised:
        h.executor.start(h.spec(["true"], image=tag))
    assert raised.value.outcome is Outcome.PULL_FAILED


def test_command_not_found_fails_with_cannot_start(harness, docker_client):
    h = harness()
    with pytest.raises(StartFailure) as raised:
        h.executor.start(h.spec(["no-such-command"]))
    assert raised.value.outcome is Outcome.START_FAILED
    assert str(raised.value).startswith("Error response from daemon: ")
    assert "no-such-command" in str(raised.value)
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={h.config.instance_label}"}) == []


def test_container_carries_labels_and_limits(harness, docker_client, tmp_path):
    h = harness()
    (tmp_path / "input.txt").write_text("from the host\n")
    spec = h.spec(["sleep", "60"], attempt=2, memory_mib=96, labels={"team": "data"},
                  ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
                  linux_parameters={"initProcessEnabled": True, "sharedMemorySize": 32,
                                    "tmpfs": [{"containerPath": "/scratch", "size": 16, "mountOptions": ["noexec"]}]},
                  volumes=[{"name": "data", "host": {"sourcePath": str(tmp_path)}}],
                  mount_points=[{"sourceVolume": "data", "containerPath": "/data", "readOnly": True}])
    container = docker_client.containers.get(h.start(spec))
    assert container.name == f"batchemu-{spec.job_id}-2"
    assert container.labels == {LABEL_JOB_ID: spec.job_id, LABEL_ATTEMPT: "2", LABEL_MANAGED: "1",
                                LABEL_INSTANCE: h.config.instance_label, LABEL_LOG_GROUP: "/aws/batch/job",
                                LABEL_LOG_STREAM: spec.containers[0].log_stream, "team": "data"}
    host = container.attrs["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 96 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert host["NetworkMode"] == "host"
    assert host["AutoRemove"] is False
    assert host["Init"] is True
    assert host["ShmSize"] == 32 * 1024 * 1024
    assert host["Tmpfs"] == {"/scratch": "size=16m,noexec"}
    assert host["Binds"] == [f"{tmp_path}:/data:ro"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    output = container.exec_run(["cat", "/data/input.txt"]).output
    assert output == b"from the host\n"
    assert container.exec_run(["sh", "-c", "echo x > /data/new"]).exit_code != 0  # read-only mount


def test_stop_ends_a_sleeping_container(harness):
    h = harness()
    spec = h.spec(["sleep", "60"])
    container_id = h.start(spec)
    assert (spec.job_id, 1) in h.executor.running()
    h.executor.stop(container_id, timeout=1)
    exit = h.wait_exit(container_id)
    assert exit.exit_code in (137, 143)  # sh as PID 1 ignores SIGTERM, so SIGKILL after the timeout
    assert exit.outcome is Outcome.EXITED
    assert h.executor.running() == {}
    h.executor.stop(container_id, timeout=1)  # already gone: not an error
    h.executor.stop("0" * 64, timeout=1)


def test_each_exit_is_reported_once_then_removed(harness, docker_client):
    h = harness()
    _, exit = h.run(["true"])
    assert h.executor.collect_exits() == []

    def removed() -> bool:  # removal runs on the executor's removal pool, off the scheduler's pass
        try:
            docker_client.containers.get(exit.container_id)
        except docker.errors.NotFound:
            return True
        return False
    wait_until(removed, 20)
    assert h.executor.collect_exits() == []


def test_keep_containers_keeps_them_and_reports_once(harness, docker_client):
    h = harness(keep_containers=True)
    _, exit = h.run(["sh", "-c", "exit 4"])
    assert h.executor.collect_exits() == []
    assert h.executor.collect_exits() == []
    assert docker_client.containers.get(exit.container_id).attrs["State"]["ExitCode"] == 4


def test_listener_is_called_when_a_container_dies(harness):
    h = harness()
    container_id = h.start(h.spec(["sh", "-c", "sleep 0.5"]))
    h.woken.clear()
    assert h.woken.wait(20 * LOAD_FACTOR), "no wake-up after the container exited"
    assert h.wait_exit(container_id).exit_code == 0


def test_a_new_executor_adopts_running_containers(harness):
    first = harness()
    spec = first.spec(["sh", "-c", "echo early; sleep 1.5; echo late; exit 5"])
    container_id = first.start(spec)
    first.executor.close()
    second = harness(keep_containers=False)
    second.config.instance_label = first.config.instance_label
    assert second.executor.running() == {(spec.job_id, 1): container_id}
    exit = second.wait_exit(container_id)
    assert exit.exit_code == 5
    assert second.text(spec) == ["early", "late"]


def test_remove_all_removes_this_instance_only(harness, docker_client):
    mine, other = harness(), harness()
    mine.start(mine.spec(["sleep", "60"]))
    mine.start(mine.spec(["sleep", "60"]))
    their_spec = other.spec(["sleep", "60"])
    theirs = other.start(their_spec)
    assert len(mine.executor.running()) == 2
    mine.executor.remove_all()
    assert mine.executor.running() == {}
    assert docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={mine.config.instance_label}"}) == []
    assert other.executor.running() == {(their_spec.job_id, 1): theirs}


def test_unreachable_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    executor = DockerExecutor(Config(state=":memory:", instance_label=uuid.uuid4().hex))
    try:
        reachable, detail = executor.status()
        assert reachable is False
        assert "Cannot connect to the Docker Engine" in detail
        with pytest.raises(EngineUnavailable):
            executor.start(TaskSpec(job_id="j", attempt=1, containers=[ContainerSpec(
                image=IMAGE, command=["true"], environment={}, vcpus=1, memory_mib=64, log_group="g",
                log_stream="s")]))
        with pytest.raises(EngineUnavailable):
            executor.running()
        with pytest.raises(EngineUnavailable):
            executor.collect_exits()
        executor.remove_all()  # teardown never raises
    finally:
        executor.close()


# -- tasks of several containers ------------------------------------------------------------------------

def test_init_containers_run_in_order_on_a_shared_volume_before_the_others(harness, docker_client):
    h = harness()
    job_id = str(uuid.uuid4())
    mount = [{"sourceVolume": "work", "containerPath": "/work"}]
    containers = [
        h.container(["sh", "-c", "echo one >> /work/order"], job_id, name="first", init=True, essential=False,
                    mount_points=mount),
        h.container(["sh", "-c", "echo two >> /work/order"], job_id, name="second", init=True, essential=False,
                    mount_points=mount),
        h.container(["sh", "-c", "echo main >> /work/order; cat /work/order"], job_id, name="main",
                    mount_points=mount),
    ]
    spec = TaskSpec(job_id=job_id, attempt=1, containers=containers, volumes=[{"name": "work"}])
    task_id = h.start(spec)
    exit = h.wait_task(task_id)
    assert [(c.name, c.outcome, c.exit_code) for c in exit.containers] == [
        ("first", Outcome.EXITED, 0), ("second", Outcome.EXITED, 0), ("main", Outcome.EXITED, 0)]
    assert h.text(spec, 2) == ["one", "two", "main"]  # each container has its own stream
    assert exit.main.name == "main"

    def volumes_gone() -> bool:
        h.executor.collect_exits()  # removes what the previous call reported
        return not docker_client.volumes.list(filters={"label": f"batchemu.task={task_id}"})
    wait_until(volumes_gone)


def test_a_failed_init_container_fails_the_task_and_nothing_else_starts(harness):
    h = harness()
    job_id = str(uuid.uuid4())
    spec = TaskSpec(job_id=job_id, attempt=1, containers=[
        h.container(["sh", "-c", "exit 3"], job_id, name="setup", init=True, essential=False),
        h.container(["echo", "never"], job_id, name="main")])
    exit = h.wait_task(h.start(spec))
    assert [(c.name, c.outcome, c.exit_code) for c in exit.containers] == [
        ("setup", Outcome.EXITED, 3), ("main", Outcome.NOT_STARTED, None)]
    assert exit.main.name == "main" and exit.main.outcome is Outcome.NOT_STARTED


def test_dependencies_and_the_essential_container_end_the_sidecar(harness):
    h = harness()
    job_id = str(uuid.uuid4())
    spec = TaskSpec(job_id=job_id, attempt=1, containers=[
        h.container(["sleep", "60"], job_id, name="sidecar", essential=False),
        h.container(["sh", "-c", "echo prepared"], job_id, name="prepare", essential=False,
                    depends_on=[("sidecar", "START")]),
        h.container(["sh", "-c", "echo work; exit 4"], job_id, name="work", depends_on=[("prepare", "SUCCESS")]),
        h.container(["echo", "never"], job_id, name="on-failure", essential=False,
                    depends_on=[("missing", "COMPLETE")])])
    exit = h.wait_task(h.start(spec))
    by_name = {c.name: c for c in exit.containers}
    assert (by_name["prepare"].exit_code, by_name["work"].exit_code) == (0, 4)
    assert by_name["sidecar"].outcome is Outcome.EXITED and by_name["sidecar"].exit_code in (137, 143)
    assert by_name["on-failure"].outcome is Outcome.NOT_STARTED
    assert exit.main.name == "work"
    assert h.text(spec, 2) == ["work"]


def test_tasks_on_one_network_reach_each_other_and_the_network_goes_with_them(harness, docker_client):
    h = harness()
    group = f"job-{uuid.uuid4().hex[:8]}"
    server = h.spec(["sh", "-c", "echo ready | nc -l -p 7000"], network=group)
    started = h.executor.start(server)
    assert started.address and started.address.count(".") == 3
    networks = docker_client.networks.list(filters={"label": f"batchemu.network={group}"})
    assert [n.attrs["Labels"].get(LABEL_INSTANCE) for n in networks] == [h.config.instance_label]
    client = h.spec(["sh", "-c", f"sleep 0.5; nc {started.address} 7000"], network=group)
    client_id = h.start(client)
    assert h.wait_exit(client_id).exit_code == 0
    assert h.wait_exit(started.task_id).exit_code == 0
    assert h.text(client) == ["ready"]

    def network_gone() -> bool:
        h.executor.collect_exits()
        return not docker_client.networks.list(filters={"label": f"batchemu.network={group}"})
    wait_until(network_gone)


def test_remove_all_removes_task_networks(harness, docker_client):
    h = harness()
    group = f"job-{uuid.uuid4().hex[:8]}"
    h.start(h.spec(["sleep", "60"], network=group))
    assert docker_client.networks.list(filters={"label": f"batchemu.network={group}"})
    h.executor.remove_all()
    assert not docker_client.networks.list(filters={"label": f"batchemu.network={group}"})
    assert h.executor.running() == {}


def test_a_new_executor_carries_on_a_task_and_removes_its_network(harness, docker_client):
    first = harness()
    group = f"job-{uuid.uuid4().hex[:8]}"
    spec = first.spec(["sh", "-c", "sleep 1; exit 6"], network=group)
    task_id = first.start(spec)
    first.executor.close()  # a server killed mid-task: its container and network stay
    second = harness()
    second.config.instance_label = first.config.instance_label
    assert second.wait_exit(task_id).exit_code == 6

    def gone() -> bool:
        second.executor.collect_exits()
        return not docker_client.networks.list(filters={"label": f"batchemu.network={group}"}) and not \
            docker_client.containers.list(all=True, filters={"label": f"{LABEL_JOB_ID}={spec.job_id}"})
    wait_until(gone)


def test_a_network_whose_containers_vanished_is_removed_by_the_next_server(harness, docker_client):
    first = harness()
    group = f"job-{uuid.uuid4().hex[:8]}"
    task_id = first.start(first.spec(["sleep", "60"], network=group))
    first.executor.close()
    docker_client.api.remove_container(task_id, force=True)  # the engine lost it
    second = harness()
    second.config.instance_label = first.config.instance_label
    second.executor.collect_exits()
    assert not docker_client.networks.list(filters={"label": f"batchemu.network={group}"})


def test_a_task_that_cannot_start_leaves_no_network(harness, docker_client):
    h = harness()
    group = f"job-{uuid.uuid4().hex[:8]}"
    with pytest.raises(StartFailure) as raised:
        h.executor.start(h.spec(["no-such-command"], network=group))
    assert raised.value.outcome is Outcome.START_FAILED
    assert not docker_client.networks.list(filters={"label": f"batchemu.network={group}"})
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={h.config.instance_label}"}) == []


def test_a_container_missing_from_running_is_in_the_next_collect_exits(harness, docker_client):
    """The scheduler takes a task in neither running() nor the next collect_exits() for one the engine lost;
    collect_exits() must list the containers then, even when no die event is pending and the last list is
    recent."""
    h = harness()
    spec = h.spec(["true"])
    task_id = h.start(spec)
    docker_client.api.wait(task_id)
    assert h.woken.wait(20 * LOAD_FACTOR), "no wake-up after the container exited"
    # As if its die event were not handled yet, and the list of containers just read.
    h.executor._ctx.events.died.clear()
    h.executor._ctx.events.take_dead()
    h.executor._ctx.events.forget(docker_client.containers.get(task_id).id)
    h.executor._ctx.last_exit_scan = time.monotonic()
    assert (spec.job_id, 1) not in h.executor.running()
    assert task_id in [found.task_id for found in h.executor.collect_exits()]


def _calls_on_this_thread(executor) -> tuple[list[str], callable]:
    """Paths of the engine calls this thread makes through the executor's client, and an undo (the log
    pump and the removal pool share the client)."""
    client = executor._ctx.engine.client()
    calls, me, original = [], threading.get_ident(), client.api.request  # through requests or the lean transport

    def request(method, url, **kw):
        if threading.get_ident() == me:
            calls.append(url.split("://", 1)[-1].partition("/")[2])
        return original(method, url, **kw)
    client.api.request = request
    return calls, lambda: setattr(client.api, "request", original)


def test_a_pass_without_a_die_event_asks_the_engine_nothing(harness):
    """Between die events (and the periodic list), collect_exits() makes no engine call."""
    h = harness()
    _, exit = h.run(["sh", "-c", "exit 3"])
    assert exit.exit_code == 3
    h.executor.collect_exits()  # the removal of the reported task is handed to the removal pool
    calls, undo = _calls_on_this_thread(h.executor)
    try:
        h.executor._ctx.events.died.clear()
        h.executor._ctx.last_exit_scan = time.monotonic()
        assert h.executor.collect_exits() == []
        assert calls == []
    finally:
        undo()


def test_the_exit_of_a_task_it_started_is_reported_from_the_die_event_without_a_list(harness, docker_client):
    """A die event of a container of a task this executor started is enough: its exit is reported from the
    event's inspection and its logs, without listing containers or inspecting it again."""
    h = harness()
    spec = h.spec(["sh", "-c", "echo bye; exit 7"])
    task_id = h.start(spec)
    container_id = docker_client.containers.get(task_id).id
    wait_until(lambda: h.executor._ctx.events.inspection(container_id) is not None)
    calls, undo = _calls_on_this_thread(h.executor)
    try:
        h.executor._ctx.events.died.clear()
        h.executor._ctx.last_exit_scan = time.monotonic()
        exits = h.executor.collect_exits()
    finally:
        undo()
    assert [(e.task_id, e.containers[0].exit_code) for e in exits] == [(task_id, 7)]
    assert not [call for call in calls if "/containers/json" in call or call.endswith("/json")], calls
    assert h.text(spec) == ["bye"]


def _engine_calls_from_die_handlers(executor):
    """Paths of the engine calls made by the die events' handlers, and an undo."""
    client = executor._ctx.engine.client()
    calls, original = [], client.api.request  # every call the SDK makes, through requests or the lean transport

    def request(method, url, **kw):
        if threading.current_thread().name.startswith("batchemu-docker-die"):
            calls.append(url.split("://", 1)[-1].partition("/")[2])
        return original(method, url, **kw)
    client.api.request = request
    return calls, lambda: setattr(client.api, "request", original)


def test_a_container_that_exits_0_is_ended_from_its_events_and_any_other_is_inspected(harness, docker_client):
    """Its start and die events hold all of a clean exit (no inspection waits for the engine to let go of a
    container that just died); a failure is inspected, and reports the times the engine recorded."""
    h = harness()
    calls, undo = _engine_calls_from_die_handlers(h.executor)
    try:
        ok_spec = h.spec(["sh", "-c", "echo fine"])
        ok_task = h.start(ok_spec)
        ok = h.wait_exit(ok_task)
        seen_by_engine = epoch_ms(docker_client.info()["SystemTime"])  # the engine's clock, after the exit
        ok_id = ok.container_id
        state = docker_client.api.inspect_container(ok_id)["State"]  # removed by the next collect_exits()
        # Its last lines were shipped before its end was reported (from its log file, or asked of the engine).
        assert h.text(ok_spec) == ["fine"]
        assert [call for call in calls if ok_id in call and "/logs" not in call] == []
        failed_task = h.start(h.spec(["sh", "-c", "exit 5"]))
        failed = h.wait_exit(failed_task)
        failed_state = docker_client.api.inspect_container(failed.container_id)["State"]
        assert any(call.split("?")[0].endswith(f"/containers/{failed.container_id}/json") for call in calls), calls
    finally:
        undo()
    assert (ok.outcome, ok.exit_code, failed.outcome, failed.exit_code) == (Outcome.EXITED, 0, Outcome.EXITED, 5)
    # The inspected end is the engine's own record (a quick process can end before the engine stamps its start).
    assert failed.started_at == epoch_ms(failed_state["StartedAt"])
    assert failed.finished_at == max(epoch_ms(failed_state["FinishedAt"]), failed.started_at)
    # The events are stamped after the engine's own record of the start and of the end (the engine logs
    # "start" once it has marked the container running, and "die" once it has marked it stopped), and before
    # the engine's clock reads seen_by_engine: how long after depends on how busy the engine was, no more.
    engine_started, engine_finished = (epoch_ms(state["StartedAt"]), epoch_ms(state["FinishedAt"]))
    assert engine_started <= ok.started_at <= ok.finished_at <= seen_by_engine
    assert engine_finished <= ok.finished_at


def test_the_last_lines_are_read_once_even_when_a_list_shows_the_container_running_after(harness):
    """A container list can show a container running a moment after its die event: tracking it again from
    there must not read (and ship) its lines a second time."""
    h = harness()
    spec, exit = h.run(["sh", "-c", "echo one; echo two"])
    labels = {LABEL_LOG_GROUP: spec.containers[0].log_group, LABEL_LOG_STREAM: spec.containers[0].log_stream}
    pump = h.executor._ctx.logs
    client = h.executor._ctx.engine.client()
    assert pump.track(exit.container_id, labels) is None
    assert pump.ship_final_lines(client, exit.container_id, labels) is True  # as the first read found
    assert h.text(spec) == ["one", "two"]


def _log_file_readable(client, container_id: str) -> bool:
    root = client.info().get("DockerRootDir") or ""
    return os.access(os.path.join(root, "containers", container_id, f"{container_id}-json.log"), os.R_OK)


def test_the_log_file_of_a_container_that_ended_gives_what_the_engine_gives(docker_client, harness):
    """The last read of a dead container's output, from its json-file log when this process can open it,
    must give the same (timestamp, line) messages the engine's logs call gives: the log pump skips the lines
    it shipped already by exactly those."""
    h = harness(keep_containers=True)
    script = ('i=0; while [ $i -lt 1500 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; '
              'printf "caf\\303\\251 \\t tab"; printf "no newline at the end"')
    spec, exit = h.run(["sh", "-c", script])
    container_id = exit.container_id
    if not _log_file_readable(docker_client, container_id):
        pytest.skip("the engine's log files are not readable by this process (another host or user)")
    from_engine = list(_log_frames(docker_client, container_id, None, "all"))
    assert len(from_engine) == 3001
    assert LogFiles().frames(docker_client, container_id, None) == from_engine
    middle = from_engine[1500][0]
    since = (middle // 1000) / 1e6
    assert LogFiles().frames(docker_client, container_id, since) == list(
        _log_frames(docker_client, container_id, since, "all"))
    lines = h.text(spec)
    assert lines.count("out 1499") == lines.count("err 0") == 1 and len(lines) == 3001
    assert "caf\u00e9 \t tabno newline at the end" in lines


def test_a_log_file_that_cannot_be_read_here_leaves_the_read_to_the_engine(docker_client, tmp_path):
    """No file under the data root (an engine on another host), an unreadable one or a rotated one: None,
    and the pump asks the engine."""
    class Info:
        def __init__(self, root):
            self.root = root

        def info(self):
            return {"DockerRootDir": self.root}
    container_id = "ab" * 32
    assert LogFiles().frames(Info(str(tmp_path)), container_id, None) is None  # no such file
    folder = tmp_path / "containers" / container_id
    folder.mkdir(parents=True)
    log_file = folder / f"{container_id}-json.log"
    log_file.write_text('{"log":"hello\\n","stream":"stdout","time":"2026-11-30T23:55:45.4872705Z"}\n')
    assert LogFiles().frames(Info(str(tmp_path)), container_id, None) == [(1796082945487270500, b"hello\n")]
    (folder / f"{container_id}-json.log.1").write_text("")
    assert LogFiles().frames(Info(str(tmp_path)), container_id, None) is None  # rotated: older lines elsewhere
    (folder / f"{container_id}-json.log.1").unlink()
    log_file.write_text("not json\n")
    assert LogFiles().frames(Info(str(tmp_path)), container_id, None) is None
    assert LogFiles().frames(Info(str(tmp_path)), "../../etc", None) is None  # never a path outside the root


def test_a_log_file_read_since_a_moment_keeps_the_messages_of_that_microsecond(tmp_path):
    """`since` is whole microseconds, as the engine reads it: a message 40 ns into that microsecond is given
    (as the engine gives it), one 1 ns before it is not. Reading the floor as since * 1e9 lost the first."""
    class Info:
        def info(self):
            return {"DockerRootDir": str(tmp_path)}
    container_id = "cd" * 32
    folder = tmp_path / "containers" / container_id
    folder.mkdir(parents=True)
    (folder / f"{container_id}-json.log").write_text(
        '{"log":"before\\n","stream":"stdout","time":"2026-12-06T22:35:55.798436999Z"}\n'
        '{"log":"at\\n","stream":"stderr","time":"2026-12-06T22:35:55.798437040Z"}\n')
    since = (1796596555798437040 // 1000) / 1e6
    assert LogFiles().frames(Info(), container_id, since) == [(1796596555798437040, b"at\n")]


def test_a_read_of_a_live_container_never_holds_up_its_last_read():
    """The pump asks the engine for a live container's new lines without holding its cursor: the last read,
    made by a die handler once the container dies, must not wait behind that call (the engine answers it
    only once it has cleaned up after the container), nor may the two ship a line twice."""
    asked, release = threading.Event(), threading.Event()

    def live_frames(client, container_id, since, tail):
        asked.set()
        release.wait(10)
        return iter([(1_000_000_000, b"early\n")])

    def dead_frames(client, container_id, since):
        return [(1_000_000_000, b"early\n"), (2_000_000_000, b"last\n")]
    shipped = []
    pump = LogPump(None, threading.Event(), frames=live_frames, dead_frames=dead_frames, discover=False)
    pump.sink = lambda group, stream, lines: shipped.extend(text for _, text in lines)
    labels = {LABEL_LOG_GROUP: "/aws/batch/job", LABEL_LOG_STREAM: "s/default/1"}
    cursor = pump.track("c1", labels)
    live = threading.Thread(target=pump._ship_new_lines, args=(None, cursor))
    live.start()
    assert asked.wait(10)
    began = time.monotonic()
    assert pump.ship_final_lines(None, "c1", labels) is True
    assert time.monotonic() - began < 5  # not behind the live read, which waits for `release`
    release.set()
    live.join(10)
    assert shipped == ["early", "last"]
