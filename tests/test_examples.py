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


@needs_docker
def test_sagemaker_training_example_leaves_its_model_in_the_folder(batchemu_endpoint, tmp_path):
    subprocess.run(["bash", str(ROOT / "scripts" / "build-training-image.sh")], check=True)
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "sagemaker_training" / "run.py"), "--endpoint-url",
                          batchemu_endpoint, "--folder", str(tmp_path)], capture_output=True, text=True, timeout=180,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    [model] = (tmp_path / "models").glob("squares-*/output/model/model.txt")
    assert model.read_text().startswith("epochs=5\ntrain_lines=10\n")
    assert "RUNNING -> SUCCEEDED" in run.stdout
    assert f"model: {model}" in run.stdout
