"""Files in run and report folders are never written through a link: a planted ``lock`` or ``report.md`` that
points elsewhere (a symbolic or a hard link), or a FIFO in their place, is refused by name and its target is left
untouched."""

import os

import pytest

from resdyn.atomic import atomic_write, open_own
from resdyn.cli import main
from resdyn.errors import UnsafeFileError
from resdyn.runs import EpochRecord, RunDir

SMALL = ["--model", "resnet", "--set", "model.options.depth=8", "--data", "digits", "--device", "cpu",
         "--set", "data.crop_padding=1", "--set", "data.flip=false", "--progress", "off",
         "--limit-train", "64", "--limit-test", "32", "--epochs", "1"]


@pytest.fixture
def precious(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    return target


def plant(folder, name, target, how):
    folder.mkdir(exist_ok=True)
    if how == "symlink":
        os.symlink(target, folder / name)
    elif how == "hardlink":
        os.link(target, folder / name)
    else:
        os.mkfifo(folder / name)


@pytest.mark.parametrize("how", ["symlink", "hardlink", "fifo"])
def test_a_planted_lock_is_refused_and_its_target_untouched(tmp_path, precious, how):
    run = RunDir(tmp_path / "run")
    plant(run.path, "lock", precious, how)
    with pytest.raises(UnsafeFileError, match=f"{run.file('lock')} is "), run.lock():
        pass
    assert precious.read_text() == "precious\n"
    assert os.path.lexists(run.file("lock"))  # refused, not removed: the user decides


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_training_into_a_folder_with_a_planted_lock_stops_before_writing(tmp_path, precious, how, capsys):
    out = tmp_path / "run"
    plant(out, "lock", precious, how)
    assert main(["train", *SMALL, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"resdyn: error: {out / 'lock'} is a" in err and "link" in err
    assert precious.read_text() == "precious\n"


def test_resuming_with_a_planted_lock_is_refused(tmp_path, precious, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    os.symlink(precious, out / "lock")
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 1
    assert f"{out / 'lock'} is a symbolic link" in capsys.readouterr().err
    assert precious.read_text() == "precious\n"
    assert [m.epoch for m in RunDir(out).read_metrics()] == [1]


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_metrics_are_never_appended_through_a_link(tmp_path, precious, how):
    run = RunDir(tmp_path / "run")
    plant(run.path, "metrics.jsonl", precious, how)
    record = EpochRecord(epoch=1, step=1, lr=0.1, train_loss=1.0, train_acc=0.5, epoch_time_s=1.0,
                         eval_time_s=0.1, images_per_s=64.0)
    with pytest.raises(UnsafeFileError, match="metrics.jsonl is a"):
        run.append_metrics(record)
    assert precious.read_text() == "precious\n"


def test_report_out_with_a_planted_report_md_is_refused(tmp_path, precious, capsys):
    run = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(run)]) == 0
    out = tmp_path / "report"
    plant(out, "report.md", precious, "symlink")
    assert main(["report", str(run), "--out", str(out)]) == 1
    assert f"resdyn: error: {out / 'report.md'} is a symbolic link" in capsys.readouterr().err
    assert precious.read_text() == "precious\n"


def test_atomic_writes_replace_a_hard_link_without_touching_the_other_name(tmp_path, precious):
    """A run folder copied with ``cp -al`` shares its files' inodes: rewriting one copy's file must leave the
    other's as it was (a rename gives the name a new file)."""
    os.link(precious, tmp_path / "copy.txt")
    atomic_write(tmp_path / "copy.txt", lambda f: f.write(b"new\n"))
    assert precious.read_text() == "precious\n" and (tmp_path / "copy.txt").read_text() == "new\n"


def test_open_own_creates_and_reopens_an_ordinary_file(tmp_path):
    path = tmp_path / "log"
    for line in (b"a\n", b"b\n"):
        fd = open_own(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, line)
        os.close(fd)
    assert path.read_bytes() == b"a\nb\n"
