"""The examples/ folder runs as its README says, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import needs_docker

ROOT = Path(__file__).resolve().parent.parent


@needs_docker
def test_array_pipeline_example_joins_every_part(batchemu_endpoint, tmp_path):
    folder = tmp_path / "pipeline"
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "array_pipeline" / "run.py"), "--endpoint-url",
                          batchemu_endpoint, "--folder", str(folder)], capture_output=True, text=True, timeout=180,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (folder / "result.txt").read_text() == "part 0 of 3\npart 1 of 3\npart 2 of 3\n"
    assert "join: SUCCEEDED" in run.stdout
