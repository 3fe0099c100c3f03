"""The run folder: atomic writes, torn metrics lines, refusing to clobber a run, safe checkpoint loading, the
lock that keeps a second training out, and typed records that old folders still read into."""

import json
import os
import pickle
import socket
import subprocess
import sys

import pytest
import torch

from resdyn.runs import Checkpoint, EpochRecord, GradStatsRecord, RunDir, RunError, Summary, TrainState


def checkpoint(epoch: int) -> Checkpoint:
    return Checkpoint(TrainState(epoch=epoch, step=10 * epoch, versions=["abc"]), {"w": torch.arange(3)}, {},
                      None, None, {"torch": torch.get_rng_state()}, {"train": {"epochs": 3}})


def record(epoch: int, **changes) -> EpochRecord:
    base = dict(step=epoch, lr=0.1, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.1 * epoch,
                epoch_time_s=1.0, eval_time_s=0.1, images_per_s=100.0)
    return EpochRecord(epoch=epoch, **{**base, **changes})


def test_checkpoint_round_trip_and_atomic_replace(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.save_checkpoint(checkpoint(1))

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        run.save_checkpoint(checkpoint(2))
    monkeypatch.undo()
    loaded = run.load_checkpoint()
    assert loaded.state == checkpoint(1).state and torch.equal(loaded.model["w"], torch.arange(3))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left behind


def test_a_checkpoint_of_another_format_is_refused_by_name(tmp_path):
    torch.save({"format": 1, "epoch": 2, "model": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(RunError, match="checkpoint.pt"):
        RunDir(tmp_path).load_checkpoint()


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 10, pickle.dumps({"epoch": 1})])
def test_a_damaged_checkpoint_is_named_with_what_to_do(tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(RunError) as e:
        RunDir(tmp_path).load_checkpoint()
    message = str(e.value)
    assert str(tmp_path / "checkpoint.pt") in message and "damaged" in message
    assert "--overwrite" in message and "Restore a copy" in message
    assert "weights_only" not in message and "\n" not in message  # never torch's unsafe advice


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_get_the_permissions_of_an_ordinary_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = RunDir(tmp_path)
        run.save_checkpoint(checkpoint(1))
        run.write_summary(Summary(model="resnet", data="digits", params=1, test_acc=0.5))
    finally:
        os.umask(old)
    for name in ("checkpoint.pt", "summary.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_loading_a_checkpoint_never_runs_code(tmp_path):
    run = RunDir(tmp_path)
    with open(run.file("checkpoint.pt"), "wb") as f:
        pickle.dump({"epoch": 1, "payload": Exploit()}, f)
    with pytest.raises(RunError, match="cannot load"):
        run.load_checkpoint()
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_torn_last_metrics_line_is_ignored_and_truncation(tmp_path):
    run = RunDir(tmp_path)
    for epoch in (1, 2, 3):
        run.append_metrics(record(epoch, model={"lm_k": [0.1 * epoch]}))
    with open(run.file("metrics.jsonl"), "a") as f:
        f.write('{"epoch": 4, "te')
    assert run.read_metrics() == [record(e, model={"lm_k": [0.1 * e]}) for e in (1, 2, 3)]
    run.truncate_metrics(2)
    assert [r.epoch for r in run.read_metrics()] == [1, 2]


def test_records_and_summaries_are_the_flat_json_of_earlier_versions(tmp_path):
    """The model's reports sit beside the fixed keys, as before the types; a record lacking a fixed key, or
    holding a wrong type, is named as corrupt."""
    run = RunDir(tmp_path)
    run.append_metrics(record(1, val_acc=0.5, model={"nfe_forward_mean": 26.0}))
    line = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert line["nfe_forward_mean"] == 26.0 and line["val_acc"] == 0.5 and "val_loss" not in line
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "test_acc": 0.5}\n')
    with pytest.raises(RunError, match="line 1 is corrupt: it lacks step, lr"):
        run.read_metrics()
    (tmp_path / "summary.json").write_text('{"model": "resnet", "data": "digits", "params": "many", "test_acc": 1}')
    with pytest.raises(RunError, match="summary.json is corrupt: params: expected int"):
        run.read_summary()
    # A summary of main before Mult-Adds, depth and world size were recorded: those read as unknown.
    (tmp_path / "summary.json").write_text(json.dumps(
        {"model": "resnet", "data": "digits", "params": 5, "test_acc": 0.75, "lm_k": [0.5], "epochs": 2}))
    summary = run.read_summary()
    assert (summary.test_acc, summary.epochs, summary.model_metrics) == (0.75, 2, {"lm_k": [0.5]})
    assert summary.mult_adds_per_image is None and summary.depth is None and summary.world_size is None


def test_corrupt_metrics_line_in_the_middle_is_an_error(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(RunError, match="line 2 is not valid JSON"):
        RunDir(tmp_path).read_metrics()


def test_create_refuses_an_existing_run(tmp_path):
    run = RunDir(tmp_path / "r")
    run.create("a = 1\n")
    run.append_metrics(record(1))
    # Records but no checkpoint: nothing to resume, so only --overwrite is offered.
    with pytest.raises(RunError, match="no checkpoint.pt, so it cannot be resumed: pass --overwrite"):
        run.create("a = 2\n")
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(RunError, match="already holds a run; continue it with `resdyn train --resume"):
        run.create("a = 2\n")
    run.create("a = 2\n", overwrite=True)
    assert run.read_metrics() == [] and run.read_config() == {"a": 2}


def test_missing_pieces_are_named(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RunError, match="config.toml is missing"):
        run.read_config()
    with pytest.raises(RunError, match="nothing to resume"):
        run.load_checkpoint()
    assert run.read_summary() is None
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(RunError, match="summary.json is corrupt"):
        run.read_summary()
    summary = Summary(model="resnet", data="digits", params=1, test_acc=0.5, model_metrics={"lm_k": [1.0]})
    run.write_summary(summary)
    assert run.read_summary() == summary


def test_the_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock() as previous:
        assert previous is None
        with pytest.raises(RunError) as e, RunDir(tmp_path / "run").lock():
            pass
        assert f"pid {os.getpid()} on {socket.gethostname()}" in str(e.value)
        assert "in use by another training" in str(e.value)
    assert not run.file("lock").exists()  # released and removed
    with run.lock():
        pass


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    """A process holding the lock is killed (-9): the kernel drops its flock, its file stays, and the next
    training takes it over, reporting whose it was."""
    run = RunDir(tmp_path)
    code = ("import sys, time; from resdyn.runs import RunDir; "
            f"lock = RunDir({str(tmp_path)!r}).lock(); lock.__enter__(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match=f"pid {holder.pid} on"):
            with run.lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    assert run.file("lock").exists()
    with run.lock() as previous:
        assert previous.startswith(f"pid {holder.pid} on {socket.gethostname()}")


def grad_record(epoch: int, step: int) -> GradStatsRecord:
    return GradStatsRecord(epoch=epoch, step=step, layers=["stem", "head"], weight_grad_norm=[0.1, 0.2],
                           bias_grad_norm=[0.01, None], activation_rms=[0.5, 1.5])


def test_gradstats_lines_round_trip_are_truncated_on_resume_and_removed_on_overwrite(tmp_path):
    run = RunDir(tmp_path)
    run.create("")
    run.append_gradstats([grad_record(1, 0), grad_record(1, 5)])
    run.append_gradstats([grad_record(2, 10)])
    assert run.read_gradstats() == [grad_record(1, 0), grad_record(1, 5), grad_record(2, 10)]
    assert run.read_gradstats()[0].grad_norm == [pytest.approx((0.1**2 + 0.01**2) ** 0.5), 0.2]
    run.reopen(1)
    assert run.read_gradstats() == [grad_record(1, 0), grad_record(1, 5)]
    run.save_checkpoint(checkpoint(1))
    run.create("", overwrite=True)
    assert not run.file(RunDir.GRADSTATS).exists() and run.read_gradstats() == []


def test_a_gradstats_line_whose_lists_disagree_is_corrupt(tmp_path):
    (tmp_path / "gradstats.jsonl").write_text(json.dumps(
        {"epoch": 1, "step": 0, "layers": ["stem", "head"], "weight_grad_norm": [1.0], "bias_grad_norm": [1.0, 1.0],
         "activation_rms": [1.0, 1.0]}) + "\n")
    with pytest.raises(RunError, match="gradstats.jsonl line 1"):
        RunDir(tmp_path).read_gradstats()
