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
from resdyn.train.loop import train
from resdyn.train.perturb import WeightNoise, input_noise
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


@pytest.mark.parametrize("extra", [["data.input_noise=0.3"], ["optim.weight_noise=0.05"]])
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
