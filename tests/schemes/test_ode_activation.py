"""The ODE field's activation decides whether the solver's tolerance controls the adjoint's gradient.

A ReLU field is only piecewise smooth; the adjoint method integrates its Jacobian, which jumps where a unit
switches, backward in time, and the adaptive solver's error estimate does not see the jumps. So at a tolerance
where a smooth field's adjoint gradient agrees with backprop through the solver to a few times ``rtol``, a ReLU
field's is off by percents (README, "ODENet field activation"; benchmarks/ode_activation_gradients.py measures it
on Gładzik 2019's field). In miniature: a time-dependent MLP field in float64, dopri5 at rtol = atol = 1e-4.
"""

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.errors import ConfigError
from resdyn.fields import ACTIVATIONS, MLPField, TimeConvField
from resdyn.schemes.ode import ODEBlock, Solver

RTOL = 1e-4
SMOOTH = ["softplus", "tanh", "silu"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def gradient(activation: str, adjoint: bool) -> torch.Tensor:
    """The gradient of ``<w, z(1)>`` with respect to the field's parameters, flattened (same field, z(0), w for
    every call with the same activation)."""
    torch.manual_seed(0)
    field = MLPField(4, hidden=16, activation=ACTIVATIONS[activation]).double()
    z0, w = torch.randn(2, 8, 4, dtype=torch.float64)
    block = ODEBlock(field, Solver(rtol=RTOL, atol=RTOL, adjoint=adjoint, max_steps=None))
    grads = torch.autograd.grad((block(z0) * w).sum(), list(field.parameters()))
    return torch.cat([g.flatten() for g in grads])


def adjoint_error(activation: str) -> float:
    """``|g_adjoint - g_backprop| / |g_backprop|`` at the same tolerance."""
    adjoint, backprop = gradient(activation, True), gradient(activation, False)
    return float((adjoint - backprop).norm() / backprop.norm())


@pytest.fixture(scope="module")
def relu_error() -> float:
    return adjoint_error("relu")


@pytest.mark.parametrize("activation", SMOOTH)
def test_the_tolerance_controls_a_smooth_fields_adjoint_gradient_and_not_a_relu_fields(activation, relu_error):
    smooth_error = adjoint_error(activation)
    # Measured: softplus 1.3e-4, tanh 4.5e-4, SiLU 3.3e-4; ReLU 2.6e-2 (more seeds: ReLU 2.1e-2 to 7.3e-2).
    assert smooth_error < 10 * RTOL
    assert relu_error > 100 * RTOL
    assert relu_error > 20 * smooth_error


def test_the_activation_is_an_option_of_the_odenet_and_keeps_its_parameters():
    relu = build_model("odenet", 1, 10).body.blocks[0].field.activation
    assert isinstance(relu, nn.ReLU) and relu.inplace  # Gładzik 2019's, in place as torchdiffeq's ODEfunc
    kinds = {"softplus": nn.Softplus, "tanh": nn.Tanh, "silu": nn.SiLU}
    for name, kind in kinds.items():
        model = build_model("odenet", 1, 10, activation=name, blocks=2)
        assert all(isinstance(block.field.activation, kind) for block in model.body.blocks)
        assert model.state_dict().keys() == build_model("odenet", 1, 10, blocks=2).state_dict().keys()
    with pytest.raises(ConfigError, match="activation: expected one of 'relu', 'sigmoid', .*'softplus', got 'swish'"):
        build_model("odenet", 1, 10, activation="swish")


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_the_time_conv_field_applies_its_activation_between_its_norms_and_convolutions(activation):
    torch.manual_seed(0)
    field = TimeConvField(8, ACTIVATIONS[activation])
    t, x = torch.tensor(0.3), torch.randn(2, 8, 5, 5)
    s = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "leaky-relu": nn.functional.leaky_relu,
         "elu": nn.functional.elu, "gelu": nn.functional.gelu, "silu": nn.functional.silu,
         "softplus": nn.functional.softplus}
    expected = field.norm3(field.conv2(t, s[activation](field.norm2(field.conv1(t, s[activation](field.norm1(x)))))))
    assert torch.allclose(field(t, x), expected, atol=1e-6)
