"""A resume continues the same run: one that would change what the checkpoint is (the model, its options, the
data) is refused before anything in the folder is touched, naming the difference; a resume whose metrics.jsonl
lost epochs says so, and the summary's per-epoch time is not inflated by the loss."""

import shutil

import pytest

from resdyn.cli import main
from resdyn.runs import RunDir

SMALL = ["--model", "resnet", "--set", "model.options.depth=8", "--data", "digits", "--device", "cpu",
         "--set", "data.crop_padding=1", "--set", "data.flip=false", "--progress", "off",
         "--limit-train", "64", "--limit-test", "32", "--epochs", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "good"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "lock"}


@pytest.mark.parametrize("change, says", [
    (["--data", "fashion-mnist"], "data.name 'digits' -> 'fashion-mnist'"),
    (["--model", "resnet32"], "model.name 'resnet' -> 'resnet32'"),
    (["--set", "model.options.depth=14"], "model.options"),
    (["--limit-test", "16"], "data.limit_test 32 -> 16"),
])
def test_a_resume_that_changes_the_run_is_refused_before_anything_is_touched(tmp_path, finished, capsys,
                                                                              change, says):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "2", *change]) == 1
    err = capsys.readouterr().err
    assert err.startswith("resdyn: error: ") and err.count("\n") == 1, err
    assert says in err and "--out" in err
    assert snapshot(run) == before  # the summary of the finished run is still there, the metrics untouched


def test_a_resume_with_the_same_run_and_new_training_settings_goes_on(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--lr", "0.05"]) == 0
    assert [m.epoch for m in RunDir(run).read_metrics()] == [1, 2]


def test_a_resume_after_metrics_were_lost_warns_and_times_epochs_by_the_checkpoint(tmp_path, finished, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "metrics.jsonl").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert "metrics.jsonl holds 0 of the 1 epoch(s) the checkpoint has trained" in err, err
    summary = RunDir(run).read_summary()
    assert summary.epochs == 3 and [m.epoch for m in RunDir(run).read_metrics()] == [2, 3]
    assert summary.train_time_per_epoch_s == pytest.approx(summary.train_time_s / 3)


class Killed(Exception):
    pass


def test_a_resume_that_only_evaluates_keeps_the_trainings_peak_memory(tmp_path):
    """Issue 29.2: a run killed after its last epoch's checkpoint, resumed, only evaluates: its summary's peak
    memory was that evaluation's. The checkpoint now carries the training's peak."""
    from resdyn.train.config import Config, apply_overrides
    from resdyn.train.loop import train
    from resdyn.train.progress import Progress

    config = apply_overrides(Config(), ["model.name=resnet", "model.options.depth=8", "data.name=digits",
                                        "data.limit_train=64", "train.epochs=1", "train.device=cpu"])

    def killed_after_saving(epoch, record):
        raise Killed

    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(config, out, progress=Progress("off"), on_epoch_end=killed_after_saving)
    trained = RunDir(out).load_checkpoint().state
    assert trained.peak_memory_bytes > 0 and trained.peak_memory_kind.startswith("peak_rss")
    summary = train(config, out, resume=True, progress=Progress("off"))
    assert summary.peak_memory_bytes >= trained.peak_memory_bytes
