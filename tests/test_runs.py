"""The run folder: atomic writes, torn metrics lines, refusing to clobber a run, safe checkpoint loading."""

import json
import os
import pickle

import pytest
import torch

from resdyn.runs import RunDir, RunError


def test_checkpoint_round_trip_and_atomic_replace(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.save_checkpoint({"epoch": 1, "w": torch.arange(3)})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        run.save_checkpoint({"epoch": 2})
    monkeypatch.undo()
    state = run.load_checkpoint()
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.arange(3))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left behind


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_get_the_permissions_of_an_ordinary_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = RunDir(tmp_path)
        run.save_checkpoint({"epoch": 1})
        run.write_summary({"test_acc": 0.5})
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
        run.append_metrics({"epoch": epoch, "test_acc": 0.1 * epoch})
    with open(run.file("metrics.jsonl"), "a") as f:
        f.write('{"epoch": 4, "te')
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    run.truncate_metrics(2)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]


def test_corrupt_metrics_line_in_the_middle_is_an_error(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(RunError, match="line 2 is not valid JSON"):
        RunDir(tmp_path).read_metrics()


def test_create_refuses_an_existing_run(tmp_path):
    run = RunDir(tmp_path / "r")
    run.create("a = 1\n")
    run.append_metrics({"epoch": 1})
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
    run.write_summary({"test_acc": 0.5})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"test_acc": 0.5}
