"""Hostile or damaged files: config files nested thousands deep or not UTF-8, a FIFO where a run's records should
be, numbers no record can hold. Each is one `resdyn: error:` line naming the file (or, in a report, a skipped
folder named beside the runs that could be read), never a traceback or a hang."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resdyn.cli import main
from resdyn.errors import ResdynError
from resdyn.runs import RunDir

SMALL = ["--model", "resnet", "--set", "model.options.depth=8", "--data", "digits", "--device", "cpu",
         "--set", "data.crop_padding=1", "--set", "data.flip=false", "--progress", "off",
         "--limit-train", "64", "--limit-test", "32", "--epochs", "1"]
DEEP = "a = " + "[" * 5000 + "]" * 5000 + "\n"
NOT_UTF8 = b"[train]\nepochs = 1\n# caf\xe9\n"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "good"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("resdyn: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("content, says", [(DEEP.encode(), "nested too deeply"), (NOT_UTF8, "is not UTF-8 text")])
@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_hostile_config_file_is_one_line(tmp_path, capsys, content, says, command):
    path = tmp_path / "hostile.toml"
    path.write_bytes(content)
    argv = ["train", "-c", str(path)] if command == "train" else ["compare", "-c", str(path), "--dry-run"]
    assert main(argv) == 1
    err = one_error_line(capsys)
    assert str(path) in err and says in err


@pytest.mark.parametrize("content, says", [(DEEP.encode(), "nested too deeply"), (NOT_UTF8, "is not UTF-8 text")])
def test_resuming_a_folder_whose_config_is_hostile_is_one_line(tmp_path, finished, capsys, content, says):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.toml", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        (run / name).write_bytes((finished / name).read_bytes())
    (run / "config.toml").write_bytes(content)
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 1
    err = one_error_line(capsys)
    assert str(run / "config.toml") in err and says in err


@pytest.mark.parametrize("damage", ["deep summary", "non-UTF-8 metrics", "summary out of range"])
def test_report_names_a_damaged_folder_and_reports_the_rest(tmp_path, finished, capsys, damage):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.toml", "metrics.jsonl", "summary.json"):
        (bad / name).write_bytes((finished / name).read_bytes())
    if damage == "deep summary":
        (bad / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "non-UTF-8 metrics":
        (bad / "metrics.jsonl").write_bytes(b'{"epoch": 1, "note": "\xff"}\n')
    else:
        summary = json.loads((finished / "summary.json").read_text())
        (bad / "summary.json").write_text(json.dumps({**summary, "test_acc": 7.5}))
    out = tmp_path / "report"
    assert main(["report", str(finished), str(bad), "--out", str(out)]) == 0
    assert f"skipped {bad}" in capsys.readouterr().err
    assert (out / "report.md").exists()


def test_a_summary_with_an_accuracy_above_one_is_corrupt(tmp_path, finished):
    summary = json.loads((finished / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "test_acc": 7.5}))
    with pytest.raises(ResdynError, match=r"test_acc = 7.5 is not an accuracy in \[0, 1\]"):
        RunDir(tmp_path).read_summary()


def test_report_does_not_hang_on_a_fifo_named_metrics(tmp_path, finished):
    """A reader blocks forever on a FIFO with no writer: resdyn reads only regular files."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.toml").write_bytes((finished / "config.toml").read_bytes())
    os.mkfifo(bad / "metrics.jsonl")
    done = subprocess.run([sys.executable, "-m", "resdyn", "report", str(finished), str(bad), "--out",
                           str(tmp_path / "report")], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert f"skipped {bad}" in done.stderr and "not a regular file (a FIFO)" in done.stderr


# -- values that would reach the library unchecked (issue 29, item 9) -----------------------------------------
@pytest.mark.parametrize("argv, says", [
    (["--seed", "99999999999999999999999"], "train.seed must be in [0, 2**63)"),
    (["--set", "optim.weight_decay=-1"], "optim.weight_decay must be >= 0, got -1"),
    (["--set", "train.label_smoothing=2"], "train.label_smoothing must be in [0, 1), got 2"),
    (["--set", "train.grad_clip=-0.5"], "train.grad_clip must be >= 0, got -0.5"),
])
def test_values_out_of_range_are_refused_before_the_data_loads(tmp_path, capsys, monkeypatch, argv, says):
    from resdyn.train import data as train_data

    monkeypatch.setattr(train_data, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded"))
    assert main(["train", *SMALL, *argv, "--out", str(tmp_path / "run")]) == 1
    assert says in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--in-channels", "--num-classes", "--image-size"])
def test_models_refuses_sizes_below_one(capsys, flag):
    with pytest.raises(SystemExit) as exit:
        main(["models", flag, "0", "--no-mult-adds"])
    assert exit.value.code == 2 and f"argument {flag}: must be at least 1, got 0" in capsys.readouterr().err


def test_models_says_which_model_an_image_is_too_small_for(capsys):
    assert main(["models", "--image-size", "1"]) == 1
    err = one_error_line(capsys)
    assert "cannot run on a 1x1 image" in err and "--image-size" in err


# -- messages that must not send the user in a circle (issue 29, item 10) ----------------------------------
def test_ctrl_c_says_how_to_continue_by_what_the_folder_holds(tmp_path, finished, capsys, monkeypatch):
    from resdyn.train import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", interrupted)
    assert main(["train", *SMALL, "--out", str(tmp_path / "fresh")]) == 130
    err = capsys.readouterr().err
    assert "--overwrite" in err and "--resume" not in err and "DIR" not in err
    assert main(["train", "--resume", str(finished), "--epochs", "2"]) == 130
    assert f"continue it with `resdyn train --resume {finished}`" in capsys.readouterr().err


def test_a_folder_without_its_checkpoint_points_one_way_only(tmp_path, finished, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.toml", "metrics.jsonl", "summary.json"):
        (run / name).write_bytes((finished / name).read_bytes())
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 1
    resume_says = capsys.readouterr().err
    assert "--overwrite" in resume_says and "without --resume" not in resume_says
    assert main(["train", *SMALL, "--out", str(run)]) == 1
    restart_says = capsys.readouterr().err
    assert "--overwrite" in restart_says and "--resume" not in restart_says
    assert main(["train", *SMALL, "--out", str(run), "--overwrite"]) == 0


def test_report_never_advises_resuming_a_run_without_a_checkpoint(tmp_path, finished, capsys):
    diverged = tmp_path / "diverged"
    diverged.mkdir()
    (diverged / "config.toml").write_bytes((finished / "config.toml").read_bytes())
    (diverged / "metrics.jsonl").write_text("")
    assert main(["report", str(finished), str(diverged), "--out", str(tmp_path / "report")]) == 0
    line = next(line for line in capsys.readouterr().err.splitlines() if str(diverged) in line)
    assert "--resume" not in line and "--overwrite" in line


# -- silent surprises (issue 29, item 11) ---------------------------------------------------------------------
def test_resume_with_another_out_is_refused_rather_than_extending_the_original(tmp_path, finished, capsys):
    before = (finished / "metrics.jsonl").read_bytes()
    assert main(["train", "--resume", str(finished), "--out", str(tmp_path / "forked"), "--epochs", "2"]) == 1
    err = one_error_line(capsys)
    assert "to fork the run, copy its folder" in err
    assert (finished / "metrics.jsonl").read_bytes() == before and not (tmp_path / "forked").exists()


def test_a_missing_data_dir_is_refused_not_ignored(tmp_path, capsys):
    assert main(["train", *SMALL, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 1
    assert "is not a folder" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


# -- filesystem errors (issue 29, item 5) ----------------------------------------------------------------------
def test_a_full_disk_is_one_line_and_leaves_a_resumable_folder(tmp_path):
    """A file-size limit makes the checkpoint's write fail as a full disk does (the write returns an error), in
    a real process: torch's own message for it was a RuntimeError "[enforce fail ...] unexpected pos"."""
    import resource

    out = tmp_path / "run"
    limit = 64 * 1024  # config and metrics fit; ResNet-8's checkpoint (about 1 MB) does not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "resdyn", "train", *SMALL, "--out", str(out)],
                          capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    assert done.returncode == 1, done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("resdyn: error: "), done.stderr
    assert f"{out / 'checkpoint.pt'}: File too large" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "metrics.jsonl"]  # no stray temp file
    # With room again, the folder is sound: it holds no checkpoint, and says to start again.
    assert main(["train", *SMALL, "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS", "EACCES", "EDQUOT"])
def test_a_failed_write_says_which_file_and_why(tmp_path, capsys, monkeypatch, errno_name):
    """What the library raises for a full disk, a read-only or forbidden folder is one line naming the file."""
    import errno

    from resdyn import runs

    code = getattr(errno, errno_name)

    def fail(path, write):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(runs, "atomic_write", fail)
    assert main(["train", *SMALL, "--out", str(tmp_path / "run")]) == 1
    err = one_error_line(capsys)
    # config.toml is the first file a run writes
    assert f"resdyn: error: {tmp_path / 'run' / 'config.toml'}: {os.strerror(code)}; " in err


def test_an_out_that_is_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("precious\n")
    assert main(["train", *SMALL, "--out", str(target)]) == 1
    err = one_error_line(capsys)
    assert f"--out {target} is a file, not a folder" in err
    assert target.read_text() == "precious\n"


def test_an_over_long_name_is_one_line(tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    assert main(["train", *SMALL, "--out", str(out)]) == 1
    err = one_error_line(capsys)
    assert "File name too long" in err and "x" * 300 in err
