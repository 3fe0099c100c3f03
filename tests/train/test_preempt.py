"""Stopping on a signal (issue 24, item 2): the training finishes its step, writes a checkpoint of it (inside
the epoch), exits with its own code, and a resume ends bit for bit where an uninterrupted run ends (CPU); a
second Ctrl-C stops at once; --requeue asks SLURM to requeue; --resume-if-present starts or resumes."""

import os
import signal
import subprocess
import sys
import time

import pytest
from test_loop import QUIET, SMALL, small, states_equal, without_times

from resdyn.cli import main
from resdyn.runs import RunDir
from resdyn.train import loop
from resdyn.train.loop import train
from resdyn.train.preempt import EXIT_PREEMPTED, Preempted


def signal_at_step(monkeypatch, step, signum=signal.SIGTERM, times=1):
    """Send ``signum`` to this process when the loop sets the lr of step ``step`` (counted from 1), ``times``
    times at once."""
    real, calls = loop._set_lr, [0]

    def set_lr(optimizer, lr):
        calls[0] += 1
        if calls[0] == step:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        real(optimizer, lr)

    monkeypatch.setattr(loop, "_set_lr", set_lr)


@pytest.mark.parametrize("step, extra", [
    (60, []),  # digits: 45 steps an epoch, so epoch 2, batch 15
    (60, ["train.ema_decay=0.9", "train.label_smoothing=0.1"]),
    (60, ["data.progressive_min_size=4", "data.progressive_end=3", "data.progressive_step=2"]),
    (45, []),  # the last step of epoch 1: the epoch ends, is saved, and the training stops after it
])
def test_a_stop_signal_checkpoints_the_step_and_a_resume_ends_where_a_straight_run_does(tmp_path, monkeypatch,
                                                                                        step, extra):
    config = small("train.epochs=3", *extra)
    train(config, tmp_path / "straight", progress=QUIET)
    signal_at_step(monkeypatch, step)
    with pytest.raises(Preempted) as stopped:
        train(config, tmp_path / "stopped", progress=QUIET)
    assert stopped.value.signal_name == "SIGTERM" and stopped.value.step == step
    state = RunDir(tmp_path / "stopped").load_checkpoint().state
    assert state.step == step and (state.epoch, state.epoch_batches) == ((1, 15) if step == 60 else (1, 0))
    assert [m.epoch for m in RunDir(tmp_path / "stopped").read_metrics()] == [1]
    monkeypatch.undo()
    train(config, tmp_path / "stopped", resume=True, progress=QUIET)

    a, b = RunDir(tmp_path / "straight"), RunDir(tmp_path / "stopped")
    assert states_equal(a.load_checkpoint().model, b.load_checkpoint().model)
    assert without_times(a.read_metrics()) == without_times(b.read_metrics())
    sa, sb = a.read_summary(), b.read_summary()
    assert (sa.test_acc, sa.test_loss, sa.steps) == (sb.test_acc, sb.test_loss, sb.steps)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are the process's again


def test_a_second_ctrl_c_stops_at_once_and_the_last_checkpoint_stays(tmp_path, monkeypatch):
    config = small("train.epochs=3")
    signal_at_step(monkeypatch, 60, signal.SIGINT, times=2)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", progress=QUIET)
    state = RunDir(tmp_path / "run").load_checkpoint().state
    assert (state.epoch, state.epoch_batches) == (1, 0)  # the end of epoch 1, as it was


def test_stop_signals_can_be_switched_off_and_unknown_ones_are_refused(tmp_path, monkeypatch):
    from resdyn.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train.stop_signals: 'SIGKILL' is not a signal a process can catch"):
        small("train.stop_signals=[\"SIGKILL\"]").validate()
    signal_at_step(monkeypatch, 3, signal.SIGUSR2)
    received = []
    previous = signal.signal(signal.SIGUSR2, lambda *a: received.append(a[0]))
    try:
        train(small("train.epochs=1", "train.stop_signals=[]"), tmp_path / "run", progress=QUIET)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert received == [signal.SIGUSR2]  # not ours to catch: the process's own handler saw it
    assert RunDir(tmp_path / "run").read_summary() is not None


# -- the command line: exit codes, requeue, start-or-resume ---------------------------------------------------
FLAGS = ["--model", "resnet", "--data", "digits", "--progress", "off",
         *[arg for o in SMALL[3:] for arg in ("--set", o)], "--set", "model.options.depth=8"]


def test_sigterm_exits_with_its_code_and_the_same_command_resumes_exactly(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "resdyn", "train", *FLAGS, "--epochs", "4", "--resume-if-present"]
    out = tmp_path / "run"
    proc = subprocess.Popen([*cmd, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(RunDir(out).read_metrics()) < 1:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, err
    assert "resdyn: stopped on SIGTERM after step" in err and f"--resume {out}" in err
    again = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference"
    subprocess.run([*cmd, "--out", str(reference)], env=env, capture_output=True, check=True, timeout=300)
    a, b = RunDir(reference), RunDir(out)
    assert states_equal(a.load_checkpoint().model, b.load_checkpoint().model)
    assert without_times(a.read_metrics()) == without_times(b.read_metrics())
    # Run once more, the same command: the run is finished, nothing trains and nothing changes.
    finished = out / "summary.json"
    before = finished.read_bytes()
    done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "finished: nothing to train" in done.stderr
    assert finished.read_bytes() == before


def test_resume_if_present_refuses_a_folder_of_another_experiment(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FLAGS, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", *FLAGS, "--epochs", "1", "--set", "optim.lr=0.05", "--out", str(out),
                 "--resume-if-present"]) == 1
    err = capsys.readouterr().err
    assert "holds a run of another config (optim.lr: 0.1 there, 0.05 here)" in err


def test_requeue_asks_slurm_to_requeue_the_job(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scontrol.log"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    signal_at_step(monkeypatch, 60, signal.SIGUSR1)
    out = tmp_path / "run"
    code = main(["train", *FLAGS, "--epochs", "3", "--out", str(out), "--resume-if-present", "--requeue"])
    assert code == EXIT_PREEMPTED
    assert log.read_text() == "requeue 4242\n"
    err = capsys.readouterr().err
    assert "stopped on SIGUSR1 after step 60 (epoch 2, batch 15)" in err and "requeued SLURM job 4242" in err
