"""Every fenced code block of README.md and docs/ runs against a live batchemu, or says why not, so the
documentation cannot drift from the code. One test per block, named `file:line`.

The convention (docs/architecture.md, "Code blocks in the documentation", says it for writers): a block is run
unless an HTML comment right above it says `<!-- not run: reason -->`; a block in any language but python,
bash, sh or console must say so. Other comments above a block:

- `<!-- needs: docker -->`: the server runs jobs as containers (the test is marked `docker`); else it runs
  `--executor simulate`;
- `<!-- expect: TEXT -->`: what the block prints (stdout and stderr) contains TEXT;
- `<!-- name: NAME -->` and `<!-- after: NAME -->`: the block runs after the named block of the same page, on the
  same server; `<!-- continues -->` after the block just before it. Consecutive blocks of one language in such
  a chain run as one program, so a Python block sees the names the previous one defined.

Each test starts its own server on a free port with throw-away state; `http://127.0.0.1:8000`,
`127.0.0.1:8000` and `localhost:8000` in a block become that server's address, and `AWS_ENDPOINT_URL_BATCH`,
`AWS_ENDPOINT_URL_LOGS`, credentials and region are set for it. A Python block that defines a `test_`
function is a test file, run by pytest with batchemu's plugin (simulate executor unless it needs Docker).
Shell blocks run in bash with this environment's `batchemu` first on PATH and the AWS CLI of
`make clients` (`.clients/cli/bin`), from the repository's root; a `console` block runs its `$ ` lines.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchemu.config import Config
from tests.conftest import docker_ready

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNABLE = {"python", "bash", "sh", "console"}
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*([a-z][a-z -]*?)(?::\s*(.*?))?\s*-->$")
CLI_BIN = ROOT / ".clients" / "cli" / "bin"
TIMEOUT = 180  # seconds a block may run: a few jobs on a loaded 2-core machine


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with the HTML comments on the lines right above it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        markers, above = {}, index - 1
        while above >= 0 and (marker := MARKER.match(lines[above].strip())):
            markers[marker.group(1)] = marker.group(2) or ""
            above -= 1
        found.append(Block(page, index + 1, opening.group(1), "\n".join(lines[index + 1:end]) + "\n", markers))
        index = end + 1
    return found


ALL = [block for page in PAGES for block in blocks_of(page)]


def chain(block: Block) -> list[Block]:
    """The blocks that run before `block` (named by `after`, or the one before it for `continues`), then it."""
    same_page = [b for b in ALL if b.page == block.page]
    if "after" in block.markers:
        named = [b for b in same_page if b.markers.get("name") == block.markers["after"]]
        assert len(named) == 1, f"{block.id}: `after: {block.markers['after']}` names no single block of its page"
        return chain(named[0]) + [block]
    if "continues" in block.markers:
        before = [b for b in same_page if b.line < block.line]
        assert before, f"{block.id} continues no block"
        return chain(before[-1]) + [block]
    return [block]


def _param(block: Block):
    marks = []
    if any("needs" in b.markers for b in chain(block)) if "not run" not in block.markers else False:
        marks = [pytest.mark.docker, pytest.mark.skipif(not docker_ready(), reason="needs a Docker Engine with "
                                                        "batchemu-test:latest (run `make docker`)")]
    return pytest.param(block, id=block.id, marks=marks)


def test_every_block_is_run_or_says_why_not():
    unmarked = [b.id for b in ALL if b.language not in RUNNABLE and "not run" not in b.markers]
    assert unmarked == [], f"blocks neither runnable nor marked `<!-- not run: reason -->`: {unmarked}"
    unexplained = [b.id for b in ALL if "not run" in b.markers and not b.markers["not run"].strip()]
    assert unexplained == [], f"`not run` without a reason: {unexplained}"
    known = {"not run", "needs", "expect", "name", "after", "continues"}
    assert [(b.id, m) for b in ALL for m in b.markers if m not in known] == []


def _program(group: list[Block], url: str) -> tuple[str, str]:
    """The language and the text of consecutive blocks of one language, the endpoint substituted."""
    address = url.removeprefix("http://")
    texts = []
    for block in group:
        code = block.code
        if block.language == "console":
            code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ ")) + "\n"
        texts.append(code.replace("http://127.0.0.1:8000", url).replace("127.0.0.1:8000", address)
                     .replace("localhost:8000", address))
    language = "python" if group[0].language == "python" else "bash"
    return language, "\n".join(texts)


def _environment(url: str, executor: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATCHEMU_", "PYTEST_"))}
    env.update(AWS_ENDPOINT_URL_BATCH=url, AWS_ENDPOINT_URL_LOGS=url, AWS_ACCESS_KEY_ID="x",
               AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1", BATCHEMU_EXECUTOR=executor,
               PATH=os.pathsep.join([str(Path(sys.executable).parent), str(CLI_BIN), env.get("PATH", "")]))
    return env


def _run(language: str, text: str, env: dict[str, str], folder: Path) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    if language == "python" and re.search(r"^def test_", text, re.MULTILINE):
        (folder / "pytest.ini").write_text("[pytest]\n")
        (folder / "test_snippet.py").write_text(text)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"]
        cwd = folder
    elif language == "python":
        (folder / "snippet.py").write_text(text)
        command, cwd = [sys.executable, str(folder / "snippet.py")], folder
    else:
        command, cwd = ["bash", "-euo", "pipefail", "-c", text], ROOT
    # A session of its own, so that a block that overruns is stopped with everything it started.
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the block ran over {TIMEOUT} s: {command}\nstdout: {stdout}\nstderr: {stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("block", [_param(b) for b in ALL if "not run" not in b.markers])
def test_block_runs_against_a_live_server(block: Block, tmp_path):
    from batchemu.http.server import Server
    steps = chain(block)
    if any(re.search(r"^\s*(?:\S+=\S+\s+)*aws\s", b.code, re.MULTILINE) for b in steps) and not shutil.which(
            "aws", path=os.pathsep.join([str(CLI_BIN), os.environ.get("PATH", "")])):
        pytest.skip("the block runs the AWS CLI, which is not installed: `make clients` puts it in .clients/cli")
    executor = "docker" if any(b.markers.get("needs") == "docker" for b in steps) else "simulate"
    server = Server(Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor=executor,
                           simulate_seconds=0.1, instance_label=uuid.uuid4().hex)).start()
    try:
        groups: list[list[Block]] = []
        for step in steps:
            same = groups and (groups[-1][0].language == "python") == (step.language == "python")
            groups[-1].append(step) if same else groups.append([step])
        output = ""
        for number, group in enumerate(groups):
            language, text = _program(group, server.url)
            done = _run(language, text, _environment(server.url, executor), tmp_path / f"step-{number}")
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"{block.id} ({group[0].id}...) exited {done.returncode}:\n{text}\n{output}"
        expected = block.markers.get("expect")
        assert expected is None or expected in output, f"{block.id} printed no {expected!r}:\n{output}"
    finally:
        server.stop(remove_containers=True)
