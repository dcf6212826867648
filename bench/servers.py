"""Starting the servers under test as subprocesses, and reading their CPU time and memory from /proc."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: fields are counted after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of a process from /proc/<pid>/status (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class ServerProcess:
    """A server subprocess on a free loopback port; a context manager that stops it on exit."""

    name = "server"
    health_path = "/"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        # Kept open for the server's lifetime; closed in __exit__.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"bench-{self.name}-", suffix=".log", delete=False)

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self):
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=REPO)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if requests.get(self.url + self.health_path, timeout=1).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT}s: {self.log_tail()}")
            time.sleep(0.05)
        self.after_start()
        return self

    def after_start(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])


class Batchemu(ServerProcess):
    """`batchemu serve` of this checkout, on its own throw-away SQLite file."""

    name = "batchemu"
    health_path = "/_batchemu/health"

    def __init__(self) -> None:
        super().__init__()
        self._state_dir = tempfile.mkdtemp(prefix="bench-state-")

    def command(self) -> list[str]:
        executable = Path(sys.executable).parent / "batchemu"
        program = [str(executable)] if executable.exists() else [sys.executable, "-m", "batchemu"]
        return [*program, "serve", "--port", str(self.port), "--state", f"{self._state_dir}/state.sqlite3"]

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        shutil.rmtree(self._state_dir, ignore_errors=True)


class Moto(ServerProcess):
    """moto's server from a separate virtual environment, with Batch in its no-Docker mode."""

    name = "moto"
    health_path = "/moto-api/"

    def __init__(self, venv: Path) -> None:
        super().__init__()
        self.venv = venv

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "moto_server"), "-p", str(self.port)]

    def after_start(self) -> None:
        # With Docker, moto starts a thread and a container per SubmitJob even on a DISABLED compute
        # environment; its no-Docker mode is the one that measures the API alone.
        response = requests.post(self.url + "/moto-api/config", json={"batch": {"use_docker": False}}, timeout=5)
        response.raise_for_status()


def moto_venv(requested: str | None, create: bool) -> tuple[Path | None, str]:
    """The moto virtual environment to use and, when there is none, why."""
    venv = Path(requested) if requested else REPO / ".venv-moto"
    if (venv / "bin" / "moto_server").exists():
        return venv, ""
    if not create:
        return None, f"moto: not run ({venv} has no moto_server; pass --moto to create it)"
    print(f"creating {venv} with moto[server] ...", file=sys.stderr, flush=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "moto[server]"], check=True)
    return venv, ""
