"""DockerExecutor against the real Docker Engine and the local image batchemu-test:latest."""

from __future__ import annotations

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
    ContainerExit,
    ContainerSpec,
    EngineUnavailable,
    ImagePullError,
)
from batchemu.executors.docker import LABEL_LOG_GROUP, LABEL_LOG_STREAM, DockerExecutor

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

    def __init__(self, **config) -> None:
        self.config = Config(state=":memory:", instance_label=uuid.uuid4().hex, **config)
        self.executor = DockerExecutor(self.config)
        self.lines: dict[str, list[tuple[int, str]]] = {}
        self.groups: set[str] = set()
        self.exits: dict[str, ContainerExit] = {}
        self.woken = threading.Event()
        self._lock = threading.Lock()
        self.executor.set_log_sink(self._sink)
        self.executor.set_listener(self.woken.set)

    def _sink(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        with self._lock:
            self.groups.add(group)
            self.lines.setdefault(stream, []).extend(lines)

    def spec(self, command: list[str], **fields) -> ContainerSpec:
        job_id = str(uuid.uuid4())
        fields.setdefault("memory_mib", 64)
        return ContainerSpec(job_id=job_id, attempt=fields.pop("attempt", 1), image=fields.pop("image", IMAGE),
                             command=command, environment=fields.pop("environment", {}), vcpus=1,
                             log_group="/aws/batch/job", log_stream=f"jd/default/{job_id}", **fields)

    def text(self, spec: ContainerSpec) -> list[str]:
        with self._lock:
            return [line for _, line in self.lines.get(spec.log_stream, [])]

    def wait_exit(self, container_id: str, timeout: float = 30.0) -> ContainerExit:
        deadline = time.monotonic() + timeout
        while container_id not in self.exits:
            assert time.monotonic() < deadline, f"container {container_id[:12]} did not exit within {timeout} s"
            for found in self.executor.collect_exits():
                assert found.container_id not in self.exits, "an exit was reported twice"
                self.exits[found.container_id] = found
            self.woken.wait(0.5)
            self.woken.clear()
        return self.exits[container_id]

    def run(self, command: list[str], **fields) -> tuple[ContainerSpec, ContainerExit]:
        spec = self.spec(command, **fields)
        return spec, self.wait_exit(self.executor.start(spec))


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.05)


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
    assert (ok.job_id, ok.attempt, ok.exit_code, ok.oom_killed, ok.error) == (ok_spec.job_id, 1, 0, False, None)
    assert (failed.job_id, failed.exit_code, failed.oom_killed) == (failed_spec.job_id, 7, False)
    now_ms = time.time() * 1000
    for exit in (ok, failed):
        assert isinstance(exit.started_at, int) and isinstance(exit.finished_at, int)
        assert exit.started_at <= exit.finished_at
        assert abs(exit.finished_at - now_ms) < 600_000  # epoch milliseconds, not seconds or nanoseconds


def test_memory_over_the_limit_is_oom_killed(harness):
    h = harness()
    _, exit = h.run(["sh", "-c", 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo survived'], memory_mib=8)
    assert exit.exit_code == 137
    assert exit.oom_killed is True
    assert "survived" not in h.text(_)


def test_command_and_environment_reach_the_container(harness):
    h = harness()
    spec, exit = h.run(["sh", "-c", 'echo "foo=$FOO"; echo "to stderr" >&2; echo "$0|$1"', "zero", "one two"],
                       environment={"FOO": "bar baz", "AWS_BATCH_JOB_ATTEMPT": "1"})
    assert exit.exit_code == 0
    assert sorted(h.text(spec)) == sorted(["foo=bar baz", "to stderr", "zero|one two"])
    assert h.groups == {"/aws/batch/job"}
    now_ms = time.time() * 1000
    assert all(abs(stamp - now_ms) < 600_000 for stamp, _ in h.lines[spec.log_stream])


def test_lines_are_shipped_while_the_container_runs(harness):
    h = harness()
    spec = h.spec(["sh", "-c", "echo a; sleep 2; echo b"])
    container_id = h.executor.start(spec)
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
    with pytest.raises(ImagePullError) as raised:
        h.executor.start(h.spec(["true"], image="batchemu-no-such-image:1"))
    assert str(raised.value).startswith("CannotPullContainerError: ")
    assert "batchemu-no-such-image" in str(raised.value) or "registry" in str(raised.value)
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={h.config.instance_label}"}) == []


def test_command_not_found_fails_with_cannot_start(harness, docker_client):
    h = harness()
    with pytest.raises(ImagePullError) as raised:
        h.executor.start(h.spec(["no-such-command"]))
    assert str(raised.value).startswith("CannotStartContainerError: ")
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
    container = docker_client.containers.get(h.executor.start(spec))
    assert container.name == f"batchemu-{spec.job_id}-2"
    assert container.labels == {LABEL_JOB_ID: spec.job_id, LABEL_ATTEMPT: "2", LABEL_MANAGED: "1",
                                LABEL_INSTANCE: h.config.instance_label, LABEL_LOG_GROUP: "/aws/batch/job",
                                LABEL_LOG_STREAM: spec.log_stream, "team": "data"}
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
    container_id = h.executor.start(spec)
    assert (spec.job_id, 1) in h.executor.running()
    h.executor.stop(container_id, timeout=1)
    exit = h.wait_exit(container_id)
    assert exit.exit_code in (137, 143)  # sh as PID 1 ignores SIGTERM, so SIGKILL after the timeout
    assert exit.oom_killed is False
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
    container_id = h.executor.start(h.spec(["sh", "-c", "sleep 0.5"]))
    h.woken.clear()
    assert h.woken.wait(20), "no wake-up after the container exited"
    assert h.wait_exit(container_id).exit_code == 0


def test_a_new_executor_adopts_running_containers(harness):
    first = harness()
    spec = first.spec(["sh", "-c", "echo early; sleep 1.5; echo late; exit 5"])
    container_id = first.executor.start(spec)
    first.executor.close()
    second = harness(keep_containers=False)
    second.config.instance_label = first.config.instance_label
    assert second.executor.running() == {(spec.job_id, 1): container_id}
    exit = second.wait_exit(container_id)
    assert exit.exit_code == 5
    assert second.text(spec) == ["early", "late"]


def test_remove_all_removes_this_instance_only(harness, docker_client):
    mine, other = harness(), harness()
    mine.executor.start(mine.spec(["sleep", "60"]))
    mine.executor.start(mine.spec(["sleep", "60"]))
    their_spec = other.spec(["sleep", "60"])
    theirs = other.executor.start(their_spec)
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
            executor.start(ContainerSpec(job_id="j", attempt=1, image=IMAGE, command=["true"], environment={},
                                         vcpus=1, memory_mib=64, log_group="g", log_stream="s"))
        with pytest.raises(EngineUnavailable):
            executor.running()
        with pytest.raises(EngineUnavailable):
            executor.collect_exits()
        executor.remove_all()  # teardown never raises
    finally:
        executor.close()


def test_a_container_missing_from_running_is_in_the_next_collect_exits(harness, docker_client):
    """The scheduler takes a container in neither running() nor the next collect_exits() for one the engine
    lost; collect_exits() must not skip its list then, even when no die event is pending."""
    h = harness()
    spec = h.spec(["true"])
    container_id = h.executor.start(spec)
    docker_client.api.wait(container_id)
    assert h.woken.wait(20), "no wake-up after the container exited"
    # As if its die event were not handled yet and the last list of stopped containers were recent.
    h.executor._died.clear()
    h.executor._last_exit_scan = time.monotonic()
    assert (spec.job_id, 1) not in h.executor.running()
    assert container_id in [found.container_id for found in h.executor.collect_exits()]
