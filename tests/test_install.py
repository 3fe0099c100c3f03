"""The installed path: a wheel built from this checkout, installed into a fresh virtual environment, used from
a folder outside the repository as a new user would, with no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import matplotlib
import numpy
import pytest
import tomli_w
import torch
import torchdiffeq

from resdyn.recipes import recipe_names
from resdyn.version import __version__

REPO = Path(__file__).parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def run(*command: str | Path, cwd: Path) -> str:
    """Run ``command`` without this checkout on the path (no PYTHONPATH), so only the installed copy is seen."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    # Build from a copy of the sources: an in-tree build leaves build/ behind, whose stale files a later build
    # would package.
    source = tmp / "source"
    shutil.copytree(REPO / "resdyn", source / "resdyn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", tmp / "dist", source, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("resdyn-*.whl")
    return wheel


def fresh_venv(tmp: Path) -> Path:
    """A new virtual environment that sees the dependencies already installed here (torch is large), through a
    .pth file, and nothing else of this environment: no resdyn, no editable install of this checkout."""
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).strip())
    # pip too: the new environment has none of its own.
    found = {Path(m.__file__).parents[1] for m in (torch, numpy, torchdiffeq, matplotlib, tomli_w)}
    found.add(Path(sysconfig.get_paths()["purelib"]))
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(found)))
    return venv


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"{FASHION_MNIST} is absent: apt-get install dataset-fashion-mnist (make data)")
def test_the_wheel_installed_in_a_fresh_venv_is_the_whole_tool(tmp_path):
    wheel = build_wheel(tmp_path)
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("resdyn/recipes/") and
               n.endswith(".toml")}
    assert shipped == {f"resdyn/recipes/{name}.toml" for name in recipe_names()}

    venv = fresh_venv(tmp_path)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    resdyn = venv / "bin" / "resdyn"
    work = tmp_path / "work"  # a folder outside the repository, as a user's
    work.mkdir()

    version = run(resdyn, "--version", cwd=work).splitlines()[0]
    installed = f"{venv}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages/resdyn"
    assert version == f"resdyn {__version__} (installed, not a git checkout) from {installed}"

    listing = run(resdyn, "recipes", cwd=work)
    assert all(f"{name} " in listing for name in recipe_names()) and "6.31" in listing  # LM-ResNet-56's number

    # Two steps of the recipe's batch of 128: the point is the installed path, not the accuracy.
    run(resdyn, "train", "-c", "fashion-mnist-resnet20", "--epochs", "1", "--limit-train", "256",
        "--limit-test", "256", "--device", "cpu", "--progress", "off", "--out", "run", cwd=work)
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert (summary["train_images"], summary["test_images"], summary["epochs"]) == (256, 256, 1)
    assert summary["commit"] is None  # an installed copy has no commit to claim
    assert summary["command"].startswith("resdyn train -c fashion-mnist-resnet20")
    assert "nesterov = true" in (work / "run" / "config.toml").read_text()  # the shipped recipe's setting

    run(resdyn, "report", "run", "--out", "report", cwd=work)
    report = (work / "report" / "report.md").read_text()
    assert f"{100 * summary['test_acc']:.2f}" in report and (work / "report" / "report.html").is_file()


def test_every_dependency_is_bounded_on_both_sides():
    """A dependency's next major release may change the API resdyn uses: every requirement, in every extra too,
    names a lowest and a highest version (the highest excluded)."""
    import re

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                                for r in extra)]
    unbounded = [r for r in requirements if not (re.search(r">=\s*[\d.]+", r) and re.search(r"<\s*[\d.]+", r))]
    assert not unbounded, f"requirements without a lower and an upper bound: {unbounded}"
