"""Where a suite's runs train (issue 24, item 4): several at once on this machine (--executor pool) and as jobs
through submitit (its local executor: jobs as local processes, as the cluster path is tested without a
cluster). A run killed mid-way is recorded as failed, the same command finishes it, and the results equal a
sequential run's."""

import os
import re
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from resdyn.cli import main
from resdyn.compare import load_suite
from resdyn.runs import RunDir

SUITE = """
[suite]
name = "s"
seeds = [0, 1]
models = ["resnet"]

[[suite.variants]]
name = "a"

[[suite.variants]]
name = "b"
set = ["optim.lr=0.05"]

[model]
name = "resnet"
options = { depth = 8 }

[data]
name = "digits"
crop_padding = 1
flip = false
limit_train = 384

[train]
epochs = 3
batch_size = 32
eval_batch_size = 512
device = "cpu"
progress = "off"
"""


def write_suite(folder: Path) -> Path:
    path = folder / "suite.toml"
    path.write_text(textwrap.dedent(SUITE))
    return path


def results(out: Path) -> dict[str, tuple]:
    found = {}
    for run in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith((".", "report"))):
        s = RunDir(run).read_summary()
        found[run.name] = (s.test_acc, s.test_loss, s.steps) if s else None
    return found


def kill_when_training(folder: Path, stop: threading.Event) -> list[int]:
    """In the background: SIGTERM the first process seen holding ``folder``'s lock (read from the lock file)."""
    killed: list[int] = []

    def watch():
        while not stop.is_set():
            holder = RunDir(folder).holder()
            match = re.match(r"pid (\d+)", holder or "")
            if match and RunDir(folder).read_metrics():
                os.kill(int(match.group(1)), signal.SIGTERM)
                killed.append(int(match.group(1)))
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return killed


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The suite run one after another with one thread per run, as the pool's two workers each get."""
    folder = tmp_path_factory.mktemp("sequential")
    path = write_suite(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        assert main(["compare", "-c", str(path), "--out", str(folder / "out")]) == 0
    return results(folder / "out")


@pytest.mark.parametrize("executor", [["--executor", "pool", "--workers", "2"], ["--executor", "submitit-local"]])
def test_a_run_killed_mid_way_is_finished_by_the_same_command(tmp_path, capsys, monkeypatch, sequential, executor):
    if executor[1] == "submitit-local":
        pytest.importorskip("submitit", reason="needs submitit (pip install 'resdyn[cluster]')")
    # submitit's jobs run with this process's environment: one thread each, as the pool's workers and the
    # sequential reference have (float sums depend on the thread count)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = write_suite(tmp_path)
    out = tmp_path / "out"
    victim = out / "resnet-b-seed0"
    stop = threading.Event()
    killed = kill_when_training(victim, stop)
    command = ["compare", "-c", str(path), "--out", str(out), *executor]
    try:
        assert main(command) == 1
    finally:
        stop.set()
    assert killed, "the run finished before it could be killed"
    err = capsys.readouterr().err
    assert "resnet-b-seed0: failed: stopped on SIGTERM after step" in err
    status_code = main(["compare", "-c", str(path), "--out", str(out), "--status"])
    status = capsys.readouterr().out
    assert status_code == 0 and re.search(r"resnet-b-seed0 +failed \(.*\): stopped on SIGTERM", status), status
    assert "resnet-a-seed0" in status and "done: test accuracy" in status
    # The same command again: the killed run resumes (bit for bit on the CPU), the finished ones are skipped.
    assert main(command) == 0
    err = capsys.readouterr().err
    assert "resnet-a-seed0: finished, skipped" in err and "resnet-b-seed0: resuming" in err
    assert results(out) == sequential
    assert all(RunDir(p).read_failure() is None for p in out.iterdir() if p.is_dir())
    assert not (out / "report" / "report.md").read_text().count("failed (")


def test_a_folder_another_process_trains_is_left_to_it(tmp_path, capsys):
    path = write_suite(tmp_path)
    out = tmp_path / "out"
    (busy,) = [e for e in load_suite(path, out=out).experiments if e.name == "resnet-a-seed0"]
    with RunDir(busy.path).lock():
        assert RunDir(busy.path).holder().startswith(f"pid {os.getpid()} on ")
        main(["compare", "-c", str(path), "--out", str(out), "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert f"resnet-a-seed0: being trained by another process (pid {os.getpid()}" in err
    assert RunDir(busy.path).holder() is None and RunDir(out / "resnet-b-seed0").read_summary() is not None


@pytest.mark.parametrize("argv, says", [
    (["--executor", "pool"], "--gpus 0,1,... (one run per GPU) or --workers N"),
    (["--executor", "pool", "--workers", "2", "--gpus", "0"], "one of them"),
    (["--executor", "slurm", "--time", "4h"], "--time must be H:MM:SS"),
])
def test_executor_flags_are_checked(tmp_path, capsys, argv, says):
    path = write_suite(tmp_path)
    assert main(["compare", "-c", str(path), "--out", str(tmp_path / "out"), *argv]) == 1
    assert says in capsys.readouterr().err
