"""The command line: errors are specific and exit non-zero; train writes a run folder and prints its table."""

import subprocess
import sys

import pytest

from resdyn.cli import main
from resdyn.runs import RunDir

SMALL = ["--model", "resnet", "--set", "model.options.depth=8", "--data", "digits", "--device", "cpu",
         "--set", "data.crop_padding=1", "--set", "data.flip=false", "--progress", "lines"]


def test_unknown_model_lists_valid_names(capsys):
    assert main(["train", "--model", "resnet19", "--data", "digits"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'resnet19'" in err and "resnet20" in err and "resnet110" in err


def test_unknown_dataset_lists_valid_names(capsys):
    assert main(["train", "--data", "svhn"]) == 1
    err = capsys.readouterr().err
    assert "unknown dataset 'svhn'" in err and "fashion-mnist" in err and "cifar100" in err


def test_bad_override_names_the_key(capsys):
    assert main(["train", "--set", "train.epoch=3"]) == 1
    assert "unknown key(s) epoch in [train]; valid keys: epochs" in capsys.readouterr().err


def test_train_prints_table_and_writes_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(out), "--limit-train", "256",
                 "--limit-test", "128", "--seed", "3"]) == 0
    printed = capsys.readouterr()
    assert "test accuracy" in printed.out and f"results in {out}" in printed.out
    assert "epoch 1/1" in printed.err  # plain progress lines when not on a terminal
    summary = RunDir(out).read_summary()
    assert summary.train_images == 256 and summary.test_images == 128 and summary.seed == 3
    assert summary.command.startswith("resdyn train --model resnet")
    # The same --out again is refused rather than overwritten.
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(out)]) == 1
    assert "already holds a run" in capsys.readouterr().err


def test_resume_extends_a_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "1", "--limit-train", "256", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert [m.epoch for m in RunDir(out).read_metrics()] == [1, 2]
    # The folder keeps the config the run started with, and records what the resume changed.
    assert RunDir(out).read_config()["train"]["epochs"] == 1
    (resume,) = RunDir(out).read_resumes()
    assert resume.overrides == [["train.epochs", 2]] and resume.from_epoch == 1 and resume.applied
    assert resume.command == f"resdyn train --resume {out} --epochs 2"
    assert RunDir(out).current_config()["train"]["epochs"] == 2


def test_models_lists_counts(capsys):
    assert main(["models", "--no-mult-adds"]) == 0
    out = capsys.readouterr().out
    assert "resnet20" in out and "269,722" in out and "1,727,962" in out


def test_data_list_and_verify(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "qmnist", "fashion-mnist", "cifar10", "cifar100", "digits"):
        assert name in out


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "resdyn", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "train" in done.stdout


@pytest.mark.parametrize("argv", [["data", "where"], ["data", "verify"]])
def test_data_actions_need_a_name(argv, capsys):
    assert main(argv) == 1
    assert "needs a dataset name" in capsys.readouterr().err


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    """Only the ResdynError family is a user error; a ValueError from a bug must not be hidden as one."""
    import resdyn.cli as cli
    from resdyn.errors import ConfigError

    def user_error(args):
        raise ConfigError("depth must be 6n+2")

    monkeypatch.setattr(cli, "cmd_models", user_error)
    assert main(["models"]) == 1
    assert capsys.readouterr().err == "resdyn: error: depth must be 6n+2\n"

    def bug(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(cli, "cmd_models", bug)
    with pytest.raises(ValueError, match="internal invariant"):
        main(["models"])
