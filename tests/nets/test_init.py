"""Every initialisation scheme draws its variance (resdyn.nets.init): He, Xavier, and the fixed-variance normal and
uniform of Fuentes-Pineda's lecture, on large layers, and through every family's ``init`` and ``init_std``."""

import math

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.nets.init import INIT_STD, WEIGHT_INITS, fill_weight

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def target(scheme: str, fan_in: int, fan_out: int, std: float) -> float:
    return {"he": 2 / fan_in, "xavier": 2 / (fan_in + fan_out)}.get(scheme.split("-")[0], std**2)


def assert_drawn_with_variance(w: torch.Tensor, variance: float, uniform: bool) -> None:
    """The sample variance of n draws has relative standard deviation sqrt(2 / n) (normal) or less (uniform): 5 of
    them is a test that fails about once in 10^6 runs; the mean is within 5 standard errors of 0."""
    w = w.detach().double()
    assert w.var().item() == pytest.approx(variance, rel=5 * math.sqrt(2 / w.numel()))
    assert abs(w.mean().item()) < 5 * math.sqrt(variance / w.numel())
    if uniform:
        bound = math.sqrt(3 * variance)
        assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
    else:  # a normal's kurtosis is 3 (a uniform's 9/5), its sample's standard deviation about sqrt(24 / n)
        kurtosis = (w**4).mean().item() / w.var().item() ** 2
        assert kurtosis == pytest.approx(3, abs=5 * math.sqrt(24 / w.numel()))


@pytest.mark.parametrize("std", [INIT_STD, 0.1, 1.0])
@pytest.mark.parametrize("scheme", WEIGHT_INITS)
def test_every_scheme_draws_its_variance_on_a_large_layer(scheme, std):
    torch.manual_seed(0)
    for weight, fan_in, fan_out in [(torch.empty(500, 1000), 1000, 500), (torch.empty(128, 64, 3, 3), 576, 1152)]:
        fill_weight(weight, scheme, std)
        assert_drawn_with_variance(weight, target(scheme, fan_in, fan_out, std), scheme.endswith("uniform"))


@pytest.mark.parametrize("scheme", ["normal", "uniform"])
@pytest.mark.parametrize(("family", "options"), [
    ("resnet", {"depth": 20}), ("revnet", {"depth": 38}), ("frn", {"width": 300, "depth": 2}),
])
def test_init_std_reaches_every_layer_it_names(family, options, scheme):
    torch.manual_seed(0)
    model = build_model(family, 3, 10, init=scheme, init_std=0.2, **options)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if family == "frn":  # the input and output projections keep N(0, 1 / fan_in) under every scheme
        layers = [m for layer in model.body for m in (layer.w, layer.v)]
    for m in layers:
        if m.weight.numel() >= 2000:  # the smallest convolutions are too few draws for a tight test
            assert_drawn_with_variance(m.weight, 0.04, scheme == "uniform")
        if m.bias is not None:
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
