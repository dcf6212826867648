"""`batchemu serve` / `python -m batchemu serve` as a user starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from batchemu.config import Config


def test_serve_answers_health_and_stops_cleanly_on_sigterm(tmp_path):
    state = tmp_path / "state.sqlite3"
    process = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", str(state),
                                "--no-scheduler"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "/_batchemu/health", timeout=10) as response:
            health = json.loads(response.read())
        assert health["state"] == str(state)
        assert health["version"]
        assert set(health["docker"]) == {"reachable", "detail"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
        process.wait()
    assert state.exists()  # the SQLite file is where the user asked


def test_only_loopback_binding_is_quiet():
    assert Config(host="127.0.0.1").is_loopback()
    assert Config(host="localhost").is_loopback()
    assert Config(host="::1").is_loopback()
    assert not Config(host="0.0.0.0").is_loopback()
    assert not Config(host="192.0.2.10").is_loopback()


def test_non_loopback_host_prints_a_warning(capsys, monkeypatch):
    from batchemu import cli

    class Refuse(Exception):
        pass

    def no_server(*args, **kwargs):
        raise Refuse  # stop before binding: only the warning is under test

    monkeypatch.setattr("batchemu.http.server.Server", no_server)
    try:
        cli.main(["serve", "--host", "0.0.0.0", "--state", ":memory:"])
    except Refuse:
        pass
    assert "WARNING: binding to 0.0.0.0" in capsys.readouterr().err


def test_scale_down_delay_comes_from_the_flag_or_the_environment(monkeypatch):
    from batchemu import cli
    seen = []

    class Refuse(Exception):
        pass

    def no_server(config, **kwargs):
        seen.append(config.scale_down_delay)
        raise Refuse

    monkeypatch.setattr("batchemu.http.server.Server", no_server)
    monkeypatch.delenv("BATCHEMU_SCALE_DOWN_DELAY", raising=False)
    for argv in (["serve", "--state", ":memory:"], ["serve", "--state", ":memory:", "--scale-down-delay", "2.5"]):
        try:
            cli.main(argv)
        except Refuse:
            pass
    assert seen == [None, 2.5]  # None: scalingPolicy, else batchemu.scheduler.scaling's default
    monkeypatch.setenv("BATCHEMU_SCALE_DOWN_DELAY", "7")
    assert Config().scale_down_delay == 7.0


def serve_fails(state: str) -> str:
    """stderr of a `batchemu serve` that must refuse its state file at start (exit status 2)."""
    process = subprocess.run([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", state,
                              "--no-scheduler"], check=False, capture_output=True, text=True, timeout=60)
    assert process.returncode == 2, (process.returncode, process.stdout, process.stderr)
    assert "Traceback" not in process.stderr
    return process.stderr


def test_corrupt_state_file_is_refused_at_start_and_left_untouched(tmp_path):
    state = tmp_path / "state.sqlite3"
    state.write_bytes(b"this is not sqlite" * 100)
    message = serve_fails(str(state))
    assert f"state file {state} is not a batchemu state file" in message
    assert state.read_bytes() == b"this is not sqlite" * 100


def test_locked_state_file_is_refused_at_start(tmp_path):
    import sqlite3
    state = tmp_path / "state.sqlite3"
    holder = sqlite3.connect(state, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    try:
        assert "is locked by another process" in serve_fails(str(state))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_state_path_that_cannot_be_created_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert "cannot be opened or created" in serve_fails(str(blocker / "state.sqlite3"))


def test_executor_simulate_seconds_and_image_map_come_from_flags_or_the_environment(monkeypatch):
    from batchemu import cli
    seen = []

    class Refuse(Exception):
        pass

    def no_server(config, **kwargs):
        seen.append((config.executor, config.simulate_seconds, config.image_map))
        raise Refuse

    monkeypatch.setattr("batchemu.http.server.Server", no_server)
    monkeypatch.setenv("BATCHEMU_IMAGE_MAP", "a=b")
    for argv in (["serve", "--state", ":memory:"],
                 ["serve", "--state", ":memory:", "--executor", "simulate", "--simulate-seconds", "1.5",
                  "--image-map", "x:1=y:2", "--image-map", "123456789012.dkr.ecr.us-east-1.amazonaws.com/z=z:dev"]):
        try:
            cli.main(argv)
        except Refuse:
            pass
    assert seen == [("docker", 0.2, {"a": "b"}),  # the flag replaces the variable
                    ("simulate", 1.5, {"x:1": "y:2", "123456789012.dkr.ecr.us-east-1.amazonaws.com/z": "z:dev"})]
    monkeypatch.setenv("BATCHEMU_EXECUTOR", "simulate")
    monkeypatch.setenv("BATCHEMU_IMAGE_MAP", "p=q, r:1=s")
    assert (Config().executor, Config().image_map) == ("simulate", {"p": "q", "r:1": "s"})
    with pytest.raises(SystemExit):
        cli.main(["serve", "--state", ":memory:", "--image-map", "no-equals-sign"])
    monkeypatch.setenv("BATCHEMU_IMAGE_MAP", "=x")
    assert cli.main(["serve", "--state", ":memory:"]) == 2  # a malformed variable: refused, not ignored


def _cpus_allowed(pid: int) -> str | None:
    """A process's or thread's CPUs; None for a thread that ended since it was listed (a finished HTTP worker)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("Cpus_allowed_list:"))
    except (FileNotFoundError, ProcessLookupError):
        return None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a process that may use two CPUs or more")
@pytest.mark.parametrize(("flag", "expected"), [([], "last"), (["--cpu", "all"], "all"), (["--cpu", "first"], "first")])
def test_serve_keeps_its_threads_on_one_cpu_unless_told_otherwise(tmp_path, flag, expected):
    allowed = sorted(os.sched_getaffinity(0))
    flag = ["--cpu", str(allowed[0])] if expected == "first" else flag
    process = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state",
                                str(tmp_path / "state.sqlite3"), "--no-scheduler", *flag],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("batchemu ") and lines[2].startswith("cpu: "), lines
        url = lines[0].split("listening on ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "/_batchemu/health", timeout=10):
            pass
        # Every thread of the server (its HTTP threads answer by now), not only the first.
        threads = {_cpus_allowed(int(tid)) for tid in os.listdir(f"/proc/{process.pid}/task")} - {None}
        want = {"last": str(allowed[-1]), "first": str(allowed[0]), "all": _cpus_allowed(os.getpid())}[expected]
        assert threads == {want}
    finally:
        process.kill()
        process.wait()


def test_a_cpu_it_may_not_use_is_refused():
    process = subprocess.run([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", ":memory:",
                              "--no-scheduler", "--cpu", "4096"], check=False, capture_output=True, text=True,
                             timeout=60)
    assert process.returncode == 2
    assert "--cpu: '4096' is not auto, all or one of the CPUs this process may use" in process.stderr
