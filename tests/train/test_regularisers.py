"""The regularisers of Fuentes-Pineda's lecture (2023) beyond the loop's first ones: Gaussian noise on the inputs
(data.input_noise) and on the weights (optim.weight_noise), each only in training and exact in expectation;
Polyak averaging of every step (train.polyak_start); the lecture's label smoothing (eps/(k-1) off target); and
a resume that stays bit-exact with each of them on."""

import dataclasses

import pytest
import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.runs import RunDir
from resdyn.train.config import Config, apply_overrides
from resdyn.train.fit import load_run
from resdyn.train.loop import train
from resdyn.train.perturb import WeightNoise, input_noise, smoothed_loss
from resdyn.train.progress import Progress

QUIET = Progress("off")
MLP = ["model.name=mlp", "model.options.image_size=8", "data.name=digits", "data.augment=false",
       "data.limit_train=256", "data.limit_test=256", "train.batch_size=32", "train.device=cpu", "optim.lr=0.5",
       "train.precision=fp32"]


def mlp_config(*overrides):
    return apply_overrides(Config(), MLP + list(overrides))


def test_input_noise_is_gaussian_of_the_given_std_around_the_clean_input():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 3, 3)
    draws = torch.stack([input_noise(x, 0.5) for _ in range(20000)])
    n = len(draws)
    assert (draws.mean(0) - x).abs().max() < 5 * 0.5 / n**0.5
    assert (draws.std(0) - 0.5).abs().max() < 0.02
    assert input_noise(x, 0.0) is x


def test_weight_noise_is_exact_in_expectation_takes_gradients_at_the_noisy_point_and_restores_the_weights():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    clean = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 4)
    noise = WeightNoise([model.weight], std=0.3)
    outputs = []
    for _ in range(4000):
        noise.add()
        noisy = model.weight.detach().clone()
        out = model(x)
        outputs.append(out.detach())
        model.zero_grad()
        out.pow(2).sum().backward()
        expected = 2 * (x @ noisy.T + model.bias.detach()).T @ x  # d/dW of sum((x W^T + b)^2), at the noisy W
        torch.testing.assert_close(model.weight.grad, expected)
        noise.remove()
        assert all(torch.equal(model.state_dict()[k], clean[k]) for k in clean)  # bit for bit
    mean = torch.stack(outputs).mean(0)
    spread = 0.3 * x.norm(dim=1, keepdim=True) / len(outputs) ** 0.5  # std of the mean of each output
    assert ((mean - model(x).detach()).abs() < 5 * spread).all()


@pytest.mark.parametrize("override", ["data.input_noise=2.0", "optim.weight_noise=0.5"])
def test_noise_acts_in_training_only(tmp_path, override, one_thread):
    """At lr 0 nothing trains: the weights and every test score are those of the run without noise (evaluation sees
    no noise, and weight noise leaves the weights exactly as they were), while the training loss differs."""
    clean = train(mlp_config("optim.lr=0", "train.epochs=1"), tmp_path / "clean", progress=QUIET)
    noisy = train(mlp_config("optim.lr=0", "train.epochs=1", override), tmp_path / "noisy", progress=QUIET)
    a, b = RunDir(tmp_path / "clean"), RunDir(tmp_path / "noisy")
    wa, wb = a.load_checkpoint().model, b.load_checkpoint().model
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (clean.test_acc, clean.test_loss) == (noisy.test_acc, noisy.test_loss)
    assert a.read_metrics()[0].train_loss != b.read_metrics()[0].train_loss


@pytest.mark.parametrize("override, message", [
    ("data.input_noise=-0.1", "data.input_noise"),
    ("optim.weight_noise=-1", "optim.weight_noise"),
])
def test_negative_noise_is_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        mlp_config(override).validate()


@pytest.mark.parametrize("convention, off_target", [("torch", 0.1 / 5), ("lecture", 0.1 / 4)])
def test_label_smoothing_conventions(convention, off_target):
    """torch (Szegedy et al. 2016) moves eps/k to every class, the true one too (1 - eps + eps/k on it); the
    lecture replaces the zeros with eps/(k-1) and the one with 1 - eps (k = 5, eps = 0.01: 0.0025 and 0.99)."""
    torch.manual_seed(0)
    logits, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    config = mlp_config("train.label_smoothing=0.1", f"train.label_smoothing_convention={convention}")
    target = torch.full((6, 5), off_target)
    target[torch.arange(6), y] = 1 - off_target * 4
    expected = -(target * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(smoothed_loss(config.train)(logits, y), expected)
    if convention == "lecture":
        lecture = smoothed_loss(mlp_config("train.label_smoothing=0.01",
                                           "train.label_smoothing_convention=lecture").train)
        one_hot = torch.tensor([[0.0025, 0.0025, 0.99, 0.0025, 0.0025]])
        torch.testing.assert_close(lecture(logits[:1], torch.tensor([2])),
                                   -(one_hot * logits[:1].log_softmax(1)).sum())


def test_polyak_averages_every_step_from_its_epoch_and_is_the_final_model(tmp_path, monkeypatch, one_thread):
    import resdyn.train.loop as loop

    snapshots = []
    build = loop.build_parts

    def recording(config, model, placement):
        parts = build(config, model, placement)
        parts.optimizer.register_step_post_hook(
            lambda *_: snapshots.append({k: v.detach().clone() for k, v in parts.model.state_dict().items()}))
        return parts

    monkeypatch.setattr(loop, "build_parts", recording)
    summary = train(mlp_config("train.epochs=3", "train.polyak_start=2"), tmp_path, progress=QUIET)
    steps = 256 // 32
    assert len(snapshots) == 3 * steps and summary.final_weights == "polyak"
    loaded = load_run(tmp_path).model.state_dict()
    for name, value in loaded.items():  # the mean of the weights after each step of epochs 2 and 3
        torch.testing.assert_close(value, torch.stack([s[name] for s in snapshots[steps:]]).mean(0))
    assert not torch.equal(loaded["head.weight"], snapshots[-1]["head.weight"])


def test_polyak_and_swa_together_are_refused():
    with pytest.raises(ConfigError, match="train.polyak_start"):
        mlp_config("train.polyak_start=1", "train.swa_start=1").validate()
    with pytest.raises(ConfigError, match="train.polyak_start"):
        mlp_config("train.polyak_start=0").validate()


@pytest.mark.parametrize("extra", [["data.input_noise=0.3"], ["optim.weight_noise=0.05"], ["train.polyak_start=1"],
                                   ["train.label_smoothing=0.1", "train.label_smoothing_convention=lecture"]])
def test_resume_with_each_regulariser_equals_uninterrupted_run(tmp_path, extra, one_thread):
    config = mlp_config("train.epochs=3", *extra)
    train(config, tmp_path / "straight", progress=QUIET)

    def killed_after_epoch_1(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=QUIET, on_epoch_end=killed_after_epoch_1)
    train(config, tmp_path / "resumed", resume=True, progress=QUIET)
    a, b = RunDir(tmp_path / "straight"), RunDir(tmp_path / "resumed")
    ca, cb = a.load_checkpoint(), b.load_checkpoint()
    assert all(torch.equal(ca.model[k], cb.model[k]) for k in ca.model)
    assert (ca.swa is None) == (cb.swa is None)
    if ca.swa is not None:
        assert all(torch.equal(ca.swa[k], cb.swa[k]) for k in ca.swa)
    untimed = [dataclasses.replace(r, epoch_time_s=0, eval_time_s=0, images_per_s=0) for r in a.read_metrics()]
    assert untimed == [dataclasses.replace(r, epoch_time_s=0, eval_time_s=0, images_per_s=0)
                       for r in b.read_metrics()]
    assert a.read_summary().test_acc == b.read_summary().test_acc


def test_a_stop_inside_an_epoch_with_every_new_option_resumes_bit_for_bit(tmp_path, monkeypatch, one_thread):
    """A stop signal inside epoch 2 (resdyn.train.preempt), with gradient statistics, input and weight noise, Polyak
    averaging and the lecture's smoothing on: the resumed run ends with the straight run's weights, average and
    gradient statistics."""
    from test_preempt import signal_at_step

    from resdyn.train.preempt import Preempted

    config = mlp_config("train.epochs=3", "train.grad_stats=true", "train.grad_stats_every=3", "data.input_noise=0.2",
                        "optim.weight_noise=0.02", "train.polyak_start=1", "train.label_smoothing=0.1",
                        "train.label_smoothing_convention=lecture")
    train(config, tmp_path / "straight", progress=QUIET)
    signal_at_step(monkeypatch, 8 + 5)  # 8 steps an epoch: batch 5 of epoch 2
    with pytest.raises(Preempted):
        train(config, tmp_path / "stopped", progress=QUIET)
    assert RunDir(tmp_path / "stopped").load_checkpoint().state.epoch_batches == 5
    monkeypatch.undo()
    train(config, tmp_path / "stopped", resume=True, progress=QUIET)
    a, b = RunDir(tmp_path / "straight"), RunDir(tmp_path / "stopped")
    ca, cb = a.load_checkpoint(), b.load_checkpoint()
    assert all(torch.equal(ca.model[k], cb.model[k]) for k in ca.model)
    assert all(torch.equal(ca.swa[k], cb.swa[k]) for k in ca.swa)
    assert a.read_gradstats() == b.read_gradstats()
    assert a.read_summary().test_acc == b.read_summary().test_acc
