"""TensorBoard event files: every scalar of a record, read back with TensorBoard's own reader, and resume."""

from __future__ import annotations

import sys

import pytest

from resdyn.errors import ConfigError
from resdyn.runs import RunDir
from resdyn.tensorboard import TensorBoardLog, require_tensorboard


def test_a_missing_tensorboard_is_a_config_error_that_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what `import` sees when it is absent
    for make in (require_tensorboard, lambda: TensorBoardLog(tmp_path)):
        with pytest.raises(ConfigError, match=r"needs the tensorboard package .*pip install 'resdyn\[tensorboard\]'"):
            make()
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in ``folder``'s event files as [(step, value)], as TensorBoard itself reads them."""
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    reader = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    reader.Reload()
    return {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


# Values exact in float32, the precision of TensorBoard's scalars.
K = [-0.5, -0.25, 0.125, 0.75, 1.5, -1.25, 0.0, 0.5, 0.25, -0.125, 2.0]


def record(epoch: int, step: int, **extra) -> dict:
    return {"epoch": epoch, "step": step, "lr": 0.5 / epoch, "train_loss": 2.0 / epoch, "train_acc": 0.25 * epoch,
            "test_loss": 1.5 / epoch, "test_acc": 0.125 * epoch, "epoch_time_s": 4.0, "images_per_s": 1024.0,
            **extra}


def test_every_number_of_the_record_and_every_step_lr_is_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    with TensorBoardLog(tmp_path) as log:
        for step in range(1, 9):
            log.step(step, 0.0625 * step)
        log.epoch(record(1, 4, lm_k=K, lm_k_outside_stability=[4, 5, 10], nfe_forward_mean=26.0))
        log.epoch(record(2, 8, lm_k=K[::-1], lm_k_outside_stability=[], nfe_forward_mean=32.0))
    got = scalars(tmp_path)
    assert got["step/lr"] == [(s, 0.0625 * s) for s in range(1, 9)]
    for key in ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s", "images_per_s"):
        assert got[f"epoch/{key}"] == [(4, record(1, 4)[key]), (8, record(2, 8)[key])]
    assert got["epoch/nfe_forward_mean"] == [(4, 26.0), (8, 32.0)]
    assert got["epoch/lm_k_outside_stability"] == [(4, 3), (8, 0)]  # how many k_n left [-1, 1]
    assert [got[f"lm_k/{i:02d}"] for i in range(len(K))] == [[(4, a), (8, b)] for a, b in zip(K, K[::-1], strict=True)]
    assert len(got) == 1 + 10 + len(K)  # nothing else: step/lr, the record's 10 numbers, k_0..k_10


def test_a_resumed_run_reads_as_one_run(tmp_path):
    """A run killed after step 6 (its checkpoint at step 4) and resumed: TensorBoard shows steps 1-8 once."""
    pytest.importorskip("tensorboard")
    with TensorBoardLog(tmp_path) as killed:
        for step in range(1, 7):
            killed.step(step, 1.0)
        killed.epoch(record(1, 4))
    with TensorBoardLog(tmp_path, steps_done=4) as resumed:
        for step in range(5, 9):
            resumed.step(step, 0.5)
        resumed.epoch(record(2, 8))
    got = scalars(tmp_path)
    assert got["step/lr"] == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (5, 0.5), (6, 0.5), (7, 0.5), (8, 0.5)]
    assert got["epoch/test_acc"] == [(4, 0.125), (8, 0.25)]


def test_a_run_with_train_tensorboard_logs_its_records_lm_k_and_every_steps_lr(tmp_path):
    """``train.tensorboard = true``: the loop writes every epoch record (each k_n too) at the epoch's step, and
    the learning rate of every optimiser step, which a resume continues without gaps or repeats."""
    pytest.importorskip("tensorboard")
    from resdyn.train.config import Config, apply_overrides
    from resdyn.train.loop import train
    from resdyn.train.progress import Progress

    config = apply_overrides(Config(), [
        "model.name=lm-resnet", "model.options.depth=14", "data.name=digits", "data.limit_train=128",
        "data.limit_test=64", "data.crop_padding=1", "train.epochs=1", "train.batch_size=32",
        "train.eval_batch_size=512", "train.device=cpu", "train.tensorboard=true",
    ])
    run = tmp_path / "run"
    train(config, run, progress=Progress("off"))
    config.train.epochs = 2
    train(config, run, resume=True, progress=Progress("off"))
    metrics = [m.to_json() for m in RunDir(run).read_metrics()]
    got = scalars(run)
    assert [step for step, _ in got["epoch/test_acc"]] == [m["step"] for m in metrics] == [4, 8]
    assert [v for _, v in got["epoch/test_acc"]] == pytest.approx([m["test_acc"] for m in metrics])
    k = [[v for _, v in got[f"lm_k/{i}"]] for i in range(len(metrics[0]["lm_k"]))]
    assert len(k) == 3 and k == [pytest.approx([m["lm_k"][i] for m in metrics]) for i in range(3)]
    assert [step for step, _ in got["step/lr"]] == list(range(1, 9))
    assert got["step/lr"][-1][1] == pytest.approx(metrics[-1]["lr"])


def test_grad_stats_are_logged_per_unit_at_the_step_they_were_measured_in(tmp_path):
    pytest.importorskip("tensorboard")
    from resdyn.train.config import Config, apply_overrides
    from resdyn.train.loop import train
    from resdyn.train.progress import Progress

    config = apply_overrides(Config(), [
        "model.name=mlp", "model.options.image_size=8", "data.name=digits", "data.limit_train=128",
        "data.limit_test=64", "data.augment=false", "train.epochs=1", "train.batch_size=32", "train.device=cpu",
        "train.tensorboard=true", "train.grad_stats=true", "train.grad_stats_every=2",
    ])
    train(config, tmp_path, progress=Progress("off"))
    records = RunDir(tmp_path).read_gradstats()
    got = scalars(tmp_path)
    for i, name in enumerate(["stem", "fields.0", "fields.1", "head"]):
        assert [step for step, _ in got[f"grad_norm/{i}-{name}"]] == [r.step + 1 for r in records] == [1, 3]
        assert [v for _, v in got[f"grad_norm/{i}-{name}"]] == pytest.approx([r.grad_norm[i] for r in records])
        assert [v for _, v in got[f"activation_rms/{i}-{name}"]] == pytest.approx(
            [r.activation_rms[i] for r in records])
