"""Evaluation: test-time flip averages the softmax of each image and its mirror image, and a run says what it
used (its precision, and whether the scores are flipped)."""

from contextlib import nullcontext

import pytest
import torch
from torch import nn

from resdyn import device as device_module
from resdyn.data import DatasetInfo, DeviceLoader, Split
from resdyn.runs import RunDir
from resdyn.train.config import Config, apply_overrides
from resdyn.train.evaluate import evaluate, predict
from resdyn.train.loop import train
from resdyn.train.progress import Progress

INFO = DatasetInfo("toy", 3, 1, (4, 6), (0.5,), (0.25,), ("a", "b", "c"))


def loader() -> DeviceLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10, 1, 4, 6), dtype=torch.uint8, generator=generator)
    return DeviceLoader(Split(images, torch.randint(0, 3, (10,), generator=generator)), INFO, batch_size=4)


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(24, 3))


def test_a_model_blind_to_mirroring_scores_the_same_with_and_without_the_flip():
    torch.manual_seed(0)
    symmetric = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 3))
    plain = evaluate(symmetric, loader(), nullcontext)
    flipped = evaluate(symmetric, loader(), nullcontext, flip=True)
    assert flipped[1] == plain[1]
    assert flipped[0] == pytest.approx(plain[0], rel=1e-6)


def test_the_flip_scores_the_mean_of_the_two_softmaxes():
    model = linear_model().eval()
    x, y = next(iter(loader()))
    with torch.no_grad():
        mean = (model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2
        torch.testing.assert_close(predict(model, x, flip=True), mean.log())
    # The whole loader: the loss and accuracy of that mean, not of either prediction alone.
    xs, ys = zip(*loader(), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    with torch.no_grad():
        mean = (model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2
        plain = model(x)
    loss, acc = evaluate(model, loader(), nullcontext, flip=True)
    assert loss == pytest.approx(nn.functional.nll_loss(mean.log(), y).item(), rel=1e-5)
    assert acc == (mean.argmax(1) == y).float().mean().item()
    assert loss != pytest.approx(nn.functional.cross_entropy(plain, y).item(), rel=1e-3)


# ResNet-8 on scikit-learn's 8x8 digits, one short epoch.
TINY = ["model.name=resnet", "model.options.depth=8", "data.name=digits", "data.limit_train=256",
        "data.limit_test=128", "train.epochs=1", "train.batch_size=64", "train.device=cpu", "train.progress=off"]


def tiny(*overrides: str) -> Config:
    return apply_overrides(Config(), TINY + list(overrides))


@pytest.mark.parametrize("native", [False, True])
def test_a_cpu_run_trains_in_bf16_only_where_the_cpu_computes_it_natively(tmp_path, monkeypatch, native):
    why = "bf16 native on this CPU: test" if native else "bf16 not native on this CPU: test"
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: (native, why))
    summary = train(tiny(), tmp_path, progress=Progress("off"))
    expected = f"bf16, channels_last (auto: {why})" if native else f"fp32 (auto: {why})"
    assert summary.precision == expected
    assert summary.tta is None and RunDir(tmp_path).read_metrics()[0].tta is None


def test_a_run_with_the_flip_says_so_in_its_summary_and_metrics(tmp_path):
    summary = train(tiny("train.tta_flip=true", "train.precision=fp32"), tmp_path, progress=Progress("off"))
    assert summary.tta == "flip" and summary.precision == "fp32 (as configured)"
    assert [m.tta for m in RunDir(tmp_path).read_metrics()] == ["flip"]


def test_eval_every_scores_every_kth_epoch_and_the_last_and_the_summary_is_the_last_score(tmp_path):
    from resdyn import build_model
    from resdyn.errors import ConfigError
    from resdyn.train.data import load_data
    config = tiny("train.epochs=3", "train.eval_every=2", "train.precision=fp32", "train.tta_flip=true")
    summary = train(config, tmp_path, progress=Progress("off"))
    records = RunDir(tmp_path).read_metrics()
    assert [m.test_acc is not None for m in records] == [False, True, True]
    assert records[0].test_loss is None and "test_acc" not in records[0].to_json()
    # The summary's evaluation time per epoch is over the scored epochs, not diluted by the unscored one.
    assert summary.eval_time_per_epoch_s == pytest.approx((records[1].eval_time_s + records[2].eval_time_s) / 2)
    # The summary reuses the last epoch's score of the same weights: an independent evaluation of the
    # checkpoint's weights gives the very same numbers.
    assert (summary.test_acc, summary.test_loss) == (records[2].test_acc, records[2].test_loss)
    model = build_model("resnet", 1, 10, depth=8)
    model.load_state_dict(RunDir(tmp_path).load_checkpoint().model)
    data = load_data(config, torch.device("cpu"), channels_last=False)
    loss, acc = evaluate(model, data.test, nullcontext, flip=True)
    assert acc == summary.test_acc and loss == pytest.approx(summary.test_loss, rel=1e-6)
    with pytest.raises(ConfigError, match="eval_every = 1"):
        tiny("train.eval_every=2", "train.early_stop_patience=2", "data.val_fraction=0.1").validate()
    with pytest.raises(ConfigError, match="eval_every must be at least 1"):
        tiny("train.eval_every=0").validate()


# -- BatchNorm statistics recomputed at the end (train.recompute_bn) ----------------------------------------
def bn_loader(n: int = 12, batch_size: int = 4) -> DeviceLoader:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 1, 4, 6), dtype=torch.uint8, generator=generator)
    return DeviceLoader(Split(images, torch.zeros(n, dtype=torch.long)), INFO, batch_size=batch_size)


def test_recomputed_statistics_are_the_plain_average_over_the_batches_of_the_network_that_is_scored():
    from resdyn.train.evaluate import recompute_batchnorm
    torch.manual_seed(0)
    # Dropout before the BatchNorm: only the BatchNorm may run in training mode, or the statistics would be
    # those of a randomly thinned input that evaluation never sees.
    model = nn.Sequential(nn.Dropout(0.5), nn.Flatten(), nn.BatchNorm1d(24, momentum=0.1), nn.Linear(24, 3))
    norm = model[2]
    norm.running_mean.fill_(7.0)
    used = recompute_batchnorm(model, bn_loader(), nullcontext, images=8)
    assert used == 8  # the first two batches of four
    batches = [x.flatten(1) for x, _ in bn_loader()][:2]
    torch.testing.assert_close(norm.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0))
    torch.testing.assert_close(norm.running_var, torch.stack([b.var(0) for b in batches]).mean(0))
    assert norm.momentum == 0.1 and not model.training and not norm.training
    # Asking for more images than there are uses them all, rounding up to whole batches.
    assert recompute_batchnorm(model, bn_loader(), nullcontext, images=5) == 8
    assert recompute_batchnorm(model, bn_loader(), nullcontext, images=1000) == 12
    x = torch.cat([x.flatten(1) for x, _ in bn_loader()])
    torch.testing.assert_close(norm.running_mean, x.mean(0))
    # A network without BatchNorm is left alone.
    assert recompute_batchnorm(linear_model(), bn_loader(), nullcontext, images=8) == 0


def test_recompute_bn_scores_the_final_weights_with_their_own_statistics(tmp_path):
    from resdyn import build_model
    from resdyn.errors import ConfigError
    from resdyn.train.data import load_data
    from resdyn.train.evaluate import recompute_batchnorm
    base = ["train.epochs=2", "train.precision=fp32", "optim.lr=0.3"]
    plain = train(tiny(*base), tmp_path / "plain", progress=Progress("off"))
    config = tiny(*base, "train.recompute_bn=128")
    summary = train(config, tmp_path / "bn", progress=Progress("off"))
    kept, fresh = RunDir(tmp_path / "plain").load_checkpoint().model, RunDir(tmp_path / "bn").load_checkpoint().model
    # The same training: the weights agree, the running statistics do not.
    assert all(torch.equal(kept[k], fresh[k]) for k in kept if "running" not in k and "num_batches" not in k)
    statistics = [k for k in kept if k.endswith("running_var")]
    assert statistics and not any(torch.equal(kept[k], fresh[k]) for k in statistics)
    # They are the average over the first 128 images of the last epoch's training stream...
    data = load_data(config, torch.device("cpu"), channels_last=False)
    data.train.set_epoch(2)
    model = build_model("resnet", 1, 10, depth=8)
    model.load_state_dict(kept)
    recompute_batchnorm(model, data.train, nullcontext, 128)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, fresh[k], rtol=1e-5, atol=1e-6)
    # ...and the summary, the last epoch's record and an independent evaluation of the checkpoint agree.
    loss, acc = evaluate(model, data.test, nullcontext)
    last = RunDir(tmp_path / "bn").read_metrics()[-1]
    assert summary.test_acc == last.test_acc == acc
    assert summary.test_loss == pytest.approx(loss, rel=1e-5) and plain.test_loss != summary.test_loss
    with pytest.raises(ConfigError, match="recompute_bn must be at least 1"):
        tiny("train.recompute_bn=0").validate()


def test_an_ema_is_scored_with_batchnorm_statistics_of_its_own_weights(tmp_path):
    from resdyn import build_model
    from resdyn.train.data import load_data
    from resdyn.train.evaluate import recompute_batchnorm
    # A high learning rate and a long average: the EMA's averaged running statistics belong to no weights.
    config = tiny("train.epochs=2", "train.precision=fp32", "optim.lr=0.5", "train.ema_decay=0.98",
                  "schedule.name=constant")
    summary = train(config, tmp_path, progress=Progress("off"))
    assert summary.final_weights == "ema"
    checkpoint = RunDir(tmp_path).load_checkpoint()
    ema = {k.removeprefix("module."): v for k, v in checkpoint.ema.items() if k.startswith("module.")}
    data = load_data(config, torch.device("cpu"), channels_last=False)
    data.train.set_epoch(2)
    model = build_model("resnet", 1, 10, depth=8)
    model.load_state_dict(ema)
    loss, acc = evaluate(model, data.test, nullcontext)
    # The checkpoint holds the recomputed statistics: recomputing them again over the same images changes nothing.
    recompute_batchnorm(model, data.train, nullcontext, 10_000)
    assert evaluate(model, data.test, nullcontext) == pytest.approx((loss, acc), rel=1e-5)
    assert summary.test_acc == acc and summary.test_loss == pytest.approx(loss, rel=1e-5)
    records = RunDir(tmp_path).read_metrics()
    assert records[-1].test_acc == summary.test_acc
