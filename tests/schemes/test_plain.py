"""The plain scheme (He et al. 2015's plain baselines): the same fields, no skip, no shortcut."""

import numpy as np
import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.analysis.profile import count_parameters
from resdyn.errors import ConfigError
from resdyn.schemes import SCHEMES, Euler, Plain, stability_region

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_a_zero_field_gives_zero_not_the_input():
    x = torch.randn(2, 4, 3, 3)
    fields, shortcuts = [Zero(), Zero(), Zero()], [nn.Identity()] * 3
    assert torch.equal(Plain(fields, shortcuts)(x), torch.zeros_like(x))
    assert torch.equal(Euler(fields, shortcuts)(x), x)  # the skip a plain network lacks


def test_each_step_is_the_field_of_the_state_then_the_activation():
    torch.manual_seed(0)
    fields = [nn.Linear(5, 5) for _ in range(3)]
    x = torch.randn(4, 5)
    expected = x
    for f in fields:
        expected = torch.relu(f(expected))
    assert torch.allclose(Plain(fields, [nn.Identity()] * 3, nn.ReLU())(x), expected)


def test_a_plain_scheme_refuses_shortcuts():
    with pytest.raises(ValueError, match="no shortcuts"):
        Plain([nn.Linear(2, 2)], [nn.Linear(2, 2)])


def test_stability_is_the_unit_disc_around_zero():
    z = np.array([0.5, -0.99j, 1.5, -1.2 + 0.1j])
    assert np.allclose(stability_region("plain", z), np.abs(z))


def test_plain20_has_exactly_the_parameters_and_weights_of_resnet20_with_option_a():
    plain, resnet = build_model("plain20"), build_model("resnet20", shortcut_option="A")
    assert count_parameters(plain) == count_parameters(resnet) == 269_722
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in resnet.state_dict().items()}
    assert all(isinstance(s, nn.Identity) for s in plain.body.shortcuts)


def test_plain_and_resnet_differ_only_by_the_skip():
    """Same seed, same weights: plain-56 and ResNet-56 are one option apart, and their outputs differ."""
    torch.manual_seed(0)
    plain = build_model("plain56").eval()
    torch.manual_seed(0)
    resnet = build_model("resnet", depth=56).eval()
    for a, b in zip(plain.parameters(), resnet.parameters(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(2, 3, 16, 16)
    assert plain(x).shape == (2, 10) and not torch.allclose(plain(x), resnet(x))
    assert isinstance(plain.body, SCHEMES.get("plain"))


def test_the_field_maps_the_shape_at_a_transition():
    """No shortcut at a stride-2 widening step: the state is the field's output, of the new shape."""
    model = build_model("plain20").eval()
    step = 3  # the first field of the second stage: 16 -> 32 channels, stride 2
    x = torch.randn(2, 16, 8, 8)
    field = model.body.field(step)
    assert torch.equal(model.body.step(step, x, None)[0], field(x))
    assert field(x).shape == (2, 32, 4, 4)


def test_plain_refuses_what_needs_a_skip():
    with pytest.raises(ConfigError, match="no skip connection, so no shortcut.*leave shortcut_option unset"):
        build_model("plain20", shortcut_option="B")
    with pytest.raises(ConfigError, match="stochastic depth drops a field.*no skip.*use shake-shake or gaussian"):
        build_model("plain20", noise="stochastic-depth")
