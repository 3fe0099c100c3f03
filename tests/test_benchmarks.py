"""benchmarks/gpu.sh: its dry run prints every command and checks their arguments without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resdyn.recipes import recipe_names

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["bench-b128", "fast", "revnet", "resnet20", "bench-b512", "r56-vs-lm"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="gpu.sh is a bash script")
def test_the_gpu_scripts_dry_run_checks_every_commands_arguments(tmp_path):
    out = tmp_path / "results"
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--dry-run", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert [line.split(",")[0].lstrip("[") for line in lines if line.startswith("[")] == STEPS
    checked = [line for line in lines if line.startswith(("ok: ", "FAILED: "))]
    assert len(checked) == len(STEPS)
    failed = [line for line in checked if line.startswith("FAILED: ")]
    # The recipe of the time-to-94% step is written on another branch; until it ships, its check is the only failure.
    shipped = "fashion-mnist-fast" in recipe_names()
    assert [" -c fashion-mnist-fast " in f for f in failed] == ([] if shipped else [True]), done.stdout
    assert done.returncode == (0 if shipped else 1), done.stderr
    assert not out.exists()  # a dry run writes nothing


def test_the_gpu_script_refuses_an_unknown_argument():
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--fast"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr
