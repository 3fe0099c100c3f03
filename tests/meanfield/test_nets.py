"""The FRN / RRN classifiers: their layers are their equations, their initialisations have the stated variances,
and they train through resdyn's own loop."""

import json
import math

import pytest
import torch

from resdyn import build_model
from resdyn.errors import ConfigError
from resdyn.nets.meanfield import AlphaReLU, FullResidualLayer, ReducedResidualLayer, init_linear
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import train
from resdyn.train.progress import Progress


def test_layers_compute_their_update_rules():
    torch.manual_seed(0)
    x = torch.randn(5, 16)
    full = FullResidualLayer(16, torch.nn.Tanh())
    w, b, v, a = full.w.weight, full.w.bias, full.v.weight, full.v.bias
    torch.testing.assert_close(full(x), torch.tanh(x @ w.T + b) @ v.T + x + a)
    reduced = ReducedResidualLayer(16, AlphaReLU(0.7))
    h = x @ reduced.w.weight.T + reduced.w.bias
    torch.testing.assert_close(reduced(x), torch.where(h > 0, h.clamp_min(0) ** 0.7, 0.0) + x)


def test_alpha_relu_is_relu_at_one_and_has_finite_gradients_at_zero():
    x = torch.tensor([-1.0, 0.0, 0.5, 2.0], requires_grad=True)
    torch.testing.assert_close(AlphaReLU(1.0)(x), torch.relu(x))
    AlphaReLU(0.6)(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(("scheme", "variance"), [
    ("mean-field", 1.7 / 400), ("he-normal", 2 / 400), ("he-uniform", 2 / 400),
    ("xavier-normal", 2 / 800), ("xavier-uniform", 2 / 800),
])
def test_initialisations_have_their_variances(scheme, variance):
    torch.manual_seed(0)
    layer = torch.nn.Linear(400, 400)
    init_linear(layer, scheme, 1.7, 0.3)
    w = layer.weight.detach()
    assert w.var().item() == pytest.approx(variance, rel=0.02)  # 160,000 draws: the sample variance is within 0.4%
    assert abs(w.mean().item()) < 4 * math.sqrt(variance / w.numel())
    if scheme.endswith("uniform"):
        assert w.abs().max().item() <= math.sqrt(3 * variance)
    bias = layer.bias.detach()
    assert bias.var().item() == pytest.approx(0.3, rel=0.25) if scheme == "mean-field" else bias.abs().max() == 0


def test_builder_options_reach_the_layers():
    net = build_model("frn", in_channels=1, num_classes=3, width=24, depth=5, activation="alpha-relu", alpha=0.7,
                      init="he-uniform", image_size=8)
    assert len(net.body) == 5 and isinstance(net.body[0].phi, AlphaReLU) and net.body[0].phi.alpha == 0.7
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert net(torch.randn(2, 1, 12, 12)).shape == (2, 3)  # other sizes are pooled to image_size first
    rrn = build_model("rrn", in_channels=3, depth=2, width=8)
    assert not hasattr(rrn.body[0], "v")


@pytest.mark.parametrize(("name", "options", "match"), [
    ("frn", {"activation": "gelu"}, "activation: expected one of 'tanh', 'relu', 'alpha-relu'"),
    ("frn", {"init": "orthogonal"}, "init: expected one of 'mean-field', 'he-normal'"),
    ("frn", {"depth": 0}, "at least 1"),
    ("rrn", {"sigma_v2": 2.0}, "valid options"),
])
def test_bad_options_are_config_errors(name, options, match):
    with pytest.raises(ConfigError, match=match):
        build_model(name, **options)


def test_frn_trains_through_the_loop(tmp_path):
    """`resdyn train --model frn` on digits: the ordinary loop, no mean-field code in it, learns the task."""
    config = apply_overrides(Config(), [
        "model.name=frn", "model.options.image_size=8", "model.options.width=64", "model.options.depth=4",
        "data.name=digits", "data.augment=false", "train.epochs=3", "train.batch_size=32", "train.device=cpu",
        "optim.lr=0.05", "train.progress=off",
    ])
    train(config, tmp_path / "run", progress=Progress("off"))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_acc"] > 0.8
