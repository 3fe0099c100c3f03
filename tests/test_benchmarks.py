"""benchmarks/gpu.sh: its dry run prints every command and checks their arguments without a GPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resdyn.recipes import recipe_names

ROOT = Path(__file__).resolve().parent.parent
STEPS = ["bench-b128", "fast", "revnet", "resnet20", "bench-b512", "bench-compiled", "r56-vs-lm"]


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
    assert not [line for line in checked if line.startswith("FAILED: ")], done.stdout
    assert "fashion-mnist-fast" in recipe_names()
    assert done.returncode == 0, done.stderr
    assert not out.exists()  # a dry run writes nothing


@pytest.mark.skipif(shutil.which("bash") is None, reason="gpu.sh is a bash script")
def test_only_runs_the_named_steps(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--dry-run", "--only", "resnet20,fast"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert [line.split(",")[0].lstrip("[") for line in done.stdout.splitlines() if line.startswith("[")] == [
        "fast", "resnet20"]
    assert done.returncode == 0, done.stderr


def test_the_gpu_script_refuses_an_unknown_argument():
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--fast"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr


@pytest.mark.slow
def test_time_to_accuracy_runs_both_loops_on_a_recipe_and_writes_their_times(tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text("""
[model]
name = "resnet"
options = {depth = 8}
[data]
name = "digits"
crop_padding = 4
flip = false
limit_train = 1000
limit_test = 200
progressive_min_size = 4
progressive_end = 4
progressive_step = 2
[optim]
lr = 0.1
nesterov = true
[schedule]
name = "cosine"
[train]
epochs = 8
batch_size = 50
label_smoothing = 0.1
ema_decay = 0.9
tta_flip = true
""")
    out = tmp_path / "tta.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/time_to_accuracy.py"), "--recipe", str(recipe),
                           "--seeds", "0", "--baseline-seeds", "0", "--target", "0.0", "--out", str(out)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert [(r["loop"], r["seed"], r["reached"]) for r in result["runs"]] == [("resdyn", 0, True), ("plain", 0, True)]
    for r in result["runs"]:
        # digits has 10 classes: a trained network is well above chance, and the wall time covers the whole process
        assert r["test_acc"] > 0.3 and r["wall_s"] > 0.5
    assert result["ratio"] == pytest.approx(result["plain"]["median_wall_s"] / result["resdyn"]["median_wall_s"])


def test_recompute_bn_rescores_a_run_as_trained_and_with_recomputed_statistics(tmp_path):
    from resdyn.train.config import Config, apply_overrides
    from resdyn.train.loop import train
    from resdyn.train.progress import Progress

    config = apply_overrides(Config(), [
        "model.name=resnet", "model.options.depth=8", "data.name=digits", "data.limit_train=256",
        "data.limit_test=128", "train.epochs=2", "train.batch_size=64", "train.device=cpu", "train.precision=fp32",
        "optim.lr=0.3"])
    summary = train(config, tmp_path / "run", progress=Progress("off"))
    out = tmp_path / "rescored.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/recompute_bn.py"), str(tmp_path / "run"), "64",
                           "1000", "--json", str(out)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    # As trained: the run's own score. Recomputed: over the first 64 images, then all 256 (whole batches).
    assert rows[0]["statistics"] == "as trained" and rows[0]["test_acc"] == summary.test_acc
    assert rows[0]["test_loss"] == pytest.approx(summary.test_loss, rel=1e-5)
    assert [r["statistics"] for r in rows[1:]] == ["recomputed over 64 images", "recomputed over 256 images"]
    assert rows[1]["test_loss"] != pytest.approx(rows[0]["test_loss"], rel=1e-6)


def test_gradstats_overhead_times_both_loops_interleaved_and_a_recorded_step(tmp_path):
    out = tmp_path / "overhead.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/gradstats_overhead.py"), "--models", "mlp",
                           "--every", "2", "--steps", "2", "--repeats", "2", "--batch", "16", "--json", str(out)],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out.read_text())
    assert row["model"] == "mlp" and len(row["ratios"]) == 2 and row["ratio"] > 0 and row["record_s"] > 0
    assert "ratio" in done.stdout
