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
    from resdyn.cli import models
    from resdyn.errors import ConfigError

    def user_error(args):
        raise ConfigError("depth must be 6n+2")

    monkeypatch.setattr(models, "run", user_error)
    assert main(["models"]) == 1
    assert capsys.readouterr().err == "resdyn: error: depth must be 6n+2\n"

    def bug(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(models, "run", bug)
    with pytest.raises(ValueError, match="internal invariant"):
        main(["models"])


def test_every_subcommand_runs_its_own_module_and_nothing_falls_through():
    """Each parser is bound to its module's run: an unhandled command can no longer fall through to `data`."""
    import argparse

    from resdyn.cli import COMMANDS, build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(sub.choices) == len(COMMANDS)
    for module in COMMANDS:
        (name,) = [n for n, p in sub.choices.items() if p.get_default("run") is module.run]
        assert name == module.add_parser(argparse.ArgumentParser().add_subparsers()).prog.split()[-1]


def test_the_recorded_command_is_built_in_one_place(monkeypatch):
    from resdyn.cli import command_line

    assert command_line(["train", "--out", "my runs/a"]) == "resdyn train --out 'my runs/a'"
    monkeypatch.setattr("sys.argv", ["resdyn", "models", "--options", "resnet"])
    assert command_line(None) == "resdyn models --options resnet"


# -- bad input is refused before any work, in one line -----------------------------------------------------
def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("resdyn: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("flag", ["--limit-train", "--limit-test"])
def test_a_zero_limit_is_refused_before_training(flag, tmp_path, capsys):
    assert main(["train", *SMALL, flag, "0", "--out", str(tmp_path / "run")]) == 1
    assert f"data.{flag[2:].replace('-', '_')} must be at least 1" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("lr", ["nan", "inf", "-inf"])
def test_a_non_finite_learning_rate_is_refused(lr, tmp_path, capsys):
    assert main(["train", *SMALL, f"--lr={lr}", "--out", str(tmp_path / "run")]) == 1
    assert "optim.lr must be a finite number" in one_line_error(capsys)


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "tpu", "mps", "gpu0"])
def test_a_device_this_machine_lacks_is_one_clear_line(device, tmp_path, capsys):
    import torch

    present = torch.cuda.device_count() > 3 if device.startswith("cuda") else device == "mps" and (
        torch.backends.mps.is_available())
    if present:
        pytest.skip(f"this machine has {device}")
    assert main(["train", *SMALL, "--device", device, "--out", str(tmp_path / "run")]) == 1
    assert f"device {device!r}" in one_line_error(capsys)


def test_flag_values_are_assigned_as_given_not_reread_as_toml():
    from resdyn.cli import build_parser, resolve_train_config

    args = build_parser().parse_args(["train", "--data-dir", "/data/my\\dir", "--model", 'a"b', "--lr", "0.5",
                                      "--set", "data.flip=false"])
    config, changes = resolve_train_config(args)
    assert config.data.dir == "/data/my\\dir" and config.model.name == 'a"b' and config.optim.lr == 0.5
    assert config.data.flip is False
    assert ("data.dir", "/data/my\\dir") in changes


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a checkpoint at all"])
def test_resuming_a_damaged_checkpoint_says_so_and_what_to_do(content, tmp_path, capsys):
    from resdyn.train.config import Config, dump_config

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text(dump_config(Config()))
    (out / "checkpoint.pt").write_bytes(content)
    assert main(["train", "--resume", str(out)]) == 1
    err = one_line_error(capsys)
    assert f"cannot load {out / 'checkpoint.pt'}: the file is damaged" in err
    assert "--overwrite" in err and "weights_only" not in err


def test_resume_overrides_are_recorded_and_carried_but_a_failed_one_is_not(tmp_path, capsys):
    """config.toml keeps the config the run started with; each resume's overrides and command are recorded;
    a later resume applies those of earlier resumes that trained, and not those of one that failed."""
    out = tmp_path / "run"
    fixed = ["--limit-test", "64", "--set", "schedule.name=constant"]
    assert main(["train", *SMALL, *fixed, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--set", "optim.lr=1e30"]) == 1
    assert "non-finite loss" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--epochs", "2", "--lr", "0.05"]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 0

    run = RunDir(out)
    assert run.read_config()["train"]["epochs"] == 1 and run.read_config()["optim"]["lr"] == 0.1
    resumes = run.read_resumes()
    assert [(r.from_epoch, r.overrides, r.applied) for r in resumes] == [
        (1, [["train.epochs", 2], ["optim.lr", 1e30]], False),
        (1, [["train.epochs", 2], ["optim.lr", 0.05]], True),
        (2, [["train.epochs", 3]], True),
    ]
    assert resumes[1].command == f"resdyn train --resume {out} --epochs 2 --lr 0.05"
    trained = run.load_checkpoint().config
    assert trained["optim"]["lr"] == 0.05 and trained["train"]["epochs"] == 3  # the second resume's lr carried
    assert run.current_config() == trained
    assert [m.lr for m in run.read_metrics()] == [0.1, 0.05, 0.05]


def test_training_a_suite_says_to_compare_it(capsys):
    assert main(["train", "-c", "suites/demo-fashion-mnist"]) == 1
    assert ("suites/demo-fashion-mnist is a suite (it has a [suite] table), not a single run: run it with "
            "`resdyn compare -c suites/demo-fashion-mnist`") in capsys.readouterr().err
