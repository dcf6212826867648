"""batchemu as a user installs it: a wheel built from this checkout, installed into a fresh virtual environment
outside the checkout (so the checkout is not what gets imported), runs `batchemu serve` with its API and its
dashboard (templates and static files are package data), and registers its pytest plugin (pytest11 entry point).
Both archives pass `twine check --strict` (metadata complete, the README renders as the long description).

The build needs setuptools>=77 (build isolation) and the install needs batchemu's dependencies and pytest: from
PyPI, a configured index, or pip's cache (which makes later runs fast).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from batchemu import __version__
from tests.conftest import make_queue, register, submit, wait_for_status
from tests.waiting import wait_for, wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# What building the checkout needs and nothing else: no .venv, no build/ left by an in-place build (setuptools
# puts what build/lib still holds into the wheel, deleted modules too), no state files.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                     ".pytest_cache", ".ruff_cache", ".state", ".clients", "*.sqlite3", "*.sqlite3-*", "results", "site")
_OFFLINE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
            "No matching distribution found for setuptools")

INNER_TEST = '''
import sys

import pytest
from waiting import wait_until

import batchemu
from batchemu.config import Config


@pytest.fixture
def batchemu_config():
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate")


def test_a_job_succeeds_on_the_plugins_server(batch_client):
    assert batchemu.__file__.startswith(sys.prefix), batchemu.__file__  # the wheel's, not a checkout's
    ce = batch_client.create_compute_environment(
        computeEnvironmentName="ce", type="MANAGED", state="ENABLED",
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["optimal"],
                          "instanceRole": "ecsInstanceRole", "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]})
    wait_until(lambda: batch_client.describe_compute_environments(
        computeEnvironments=["ce"])["computeEnvironments"][0]["status"] == "VALID", 10)
    batch_client.create_job_queue(
        jobQueueName="jq", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])
    wait_until(lambda: batch_client.describe_job_queues(jobQueues=["jq"])["jobQueues"][0]["status"] == "VALID", 10)
    batch_client.register_job_definition(
        jobDefinitionName="jd", type="container",
        containerProperties={"image": "registry.invalid/nothing:1", "command": ["true"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "64"}]})
    job_id = batch_client.submit_job(jobName="job", jobQueue="jq", jobDefinition="jd")["jobId"]
    wait_until(lambda: batch_client.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "SUCCEEDED", 30)
'''


def _run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a build or install step; skip when it failed only for want of a package index, else fail with its
    output."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        output = done.stdout[-4000:] + done.stderr[-4000:]
        if any(sign in output for sign in _OFFLINE):
            pytest.skip(f"{what} needs PyPI (or a pip index or cache holding setuptools>=77, batchemu's "
                        f"dependencies and pytest), which this machine cannot reach: {output[-600:]}")
        pytest.fail(f"{what} failed ({done.returncode}): {' '.join(command)}\n{output}")
    return done


def _clean_environment(venv: Path) -> dict[str, str]:
    """The environment of a user's shell with the fresh venv activated: nothing of this test run's Python,
    pytest or batchemu settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PYTEST", "BATCHEMU_", "VIRTUAL_ENV", "COV_CORE"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def _package_files(source: Path) -> set[str]:
    """Every file of the batchemu package in the source tree, as paths inside a wheel."""
    return {path.relative_to(source).as_posix() for path in (source / "batchemu").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def _build(source: Path, dist: Path) -> Path:
    """The wheel of `source`, built as `python -m build` builds it: an sdist, then the wheel from that sdist,
    both checked to hold the whole package. Run from `dist` so that no folder named build/ in the working
    directory (make test writes build/test-suite/) shadows the build package."""
    wanted = _package_files(source)
    dist.mkdir()
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], "python -m build", cwd=dist)
    (sdist,) = dist.glob("batchemu-*.tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert not wanted - in_sdist, f"{sdist.name} lacks {sorted(wanted - in_sdist)}"
    # what `batchemu serve` reads besides Python modules, and what the metadata is built from
    assert {"batchemu/http/dashboard/templates/overview.html", "batchemu/http/dashboard/static/htmx.min.js",
            "pyproject.toml", "README.md"} <= in_sdist, sorted(in_sdist)
    (wheel,) = dist.glob("batchemu-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    assert not wanted - in_wheel, f"{wheel.name} lacks {sorted(wanted - in_wheel)}"
    assert {"batchemu/http/dashboard/templates/overview.html", "batchemu/http/dashboard/static/htmx.min.js"} <= in_wheel
    # PyPI's own check of both archives: metadata complete, the README renders as the long description.
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)], "twine check",
                   cwd=dist)
    assert checked.stdout.count("PASSED") == 2, checked.stdout + checked.stderr
    return wheel


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get_content_type(), response.read().decode()


def _serve_and_run_a_job(venv: Path, env: dict[str, str], home: Path) -> None:
    """`batchemu serve --executor simulate` of the venv: a job SUCCEEDS through its API, its dashboard pages
    and static script answer, and it stops cleanly on SIGTERM."""
    out, err = home / "serve.out", home / "serve.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([str(venv / "bin" / "batchemu"), "serve", "--executor", "simulate", "--port", "0",
                                    "--state", str(home / "s.sqlite3")],
                                   cwd=home, env=env, stdout=stdout, stderr=stderr)
    try:
        def first_line() -> str:
            if process.poll() is not None:
                pytest.fail(f"batchemu serve exited {process.returncode}: {err.read_text()[-3000:]}")
            text = out.read_text()
            return text.splitlines()[0] if "\n" in text else ""
        line = wait_until(first_line, 20, what="batchemu serve's first line",
                          on_timeout=lambda: err.read_text())
        assert f"batchemu {__version__} listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ", 1)[1].split()[0]

        client = boto3.client("batch", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing", config=BotoConfig(retries={"max_attempts": 1}))
        queue = make_queue(client)
        job_id = submit(client, queue, register(client, ["echo", "from the wheel"]))
        wait_for_status(client, job_id, ("SUCCEEDED",), timeout=30)

        # The overview is the dashboard's `/`; its other pages are under /_batchemu/dashboard.
        for path, marker in (("/", queue["name"]), (f"/_batchemu/dashboard/queues/{queue['name']}", job_id),
                             (f"/_batchemu/dashboard/jobs/{job_id}", "SUCCEEDED")):
            status, kind, body = _get(url + path)
            assert (status, kind) == (200, "text/html"), (path, status, kind, body[:500])
            assert "<html" in body and marker in body, (path, body[:2000])
        status, kind, body = _get(url + "/_batchemu/dashboard/static/htmx.min.js")
        assert status == 200 and "javascript" in kind and "htmx" in body, (status, kind, body[:200])

        process.send_signal(signal.SIGTERM)
        code = wait_for(process.poll, lambda rc: rc is not None, "batchemu serve to exit after SIGTERM", 15,
                        on_timeout=lambda: err.read_text())
        assert code == 0, err.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_wheel_installs_serves_and_registers_its_pytest_plugin(tmp_path):
    source, dist, home = tmp_path / "source", tmp_path / "dist", tmp_path / "home"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    home.mkdir()
    wheel = _build(source, dist)

    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
    if made.returncode != 0 and "ensurepip" in made.stdout + made.stderr:
        pytest.skip(f"python -m venv cannot make a venv with pip here (on Debian/Ubuntu: apt-get install "
                    f"python3-venv): {made.stdout}{made.stderr}")
    assert made.returncode == 0, made.stdout + made.stderr
    python = str(venv / "bin" / "python")
    env = _clean_environment(venv)
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel), "pytest"],
         "installing the wheel into a fresh venv", cwd=home, env=env)

    # (a) the venv's batchemu is the wheel's, and its command runs.
    where = _run([python, "-c", "import batchemu; print(batchemu.__file__)"], "import batchemu", cwd=home, env=env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    version = _run([str(venv / "bin" / "batchemu"), "--version"], "batchemu --version", cwd=home, env=env)
    assert version.stdout.strip() == f"batchemu {__version__}", version.stdout + version.stderr

    # (b) batchemu serve: API, dashboard, SIGTERM.
    _serve_and_run_a_job(venv, env, home)

    # (c) the pytest plugin, found through its entry point by the venv's pytest.
    suite = home / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(ROOT / "tests" / "waiting.py", suite / "waiting.py")
    (suite / "test_with_plugin.py").write_text(INNER_TEST)
    ran = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", "-rs", str(suite)], cwd=suite, env=env,
                         capture_output=True, text=True, check=False)
    output = ran.stdout[-6000:] + ran.stderr[-3000:]
    assert ran.returncode == 0, output
    plugins = [line for line in ran.stdout.splitlines() if line.startswith("plugins:")]
    assert plugins and f"batchemu-{__version__}" in plugins[0], output  # registered by its entry point
    assert "1 passed" in ran.stdout, output
