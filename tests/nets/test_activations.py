"""The one table of nonlinearities (resdyn.fields.ACTIVATIONS): each is its function, every family with a
nonlinearity takes it, and the default ReLU leaves every model as it was."""

from typing import get_args

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from resdyn import build_model
from resdyn.errors import ConfigError
from resdyn.fields import ACTIVATIONS, Activation

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# torch's functional forms, at PyTorch's default parameters (leaky slope 0.01, ELU alpha 1, exact GELU, beta 1)
FUNCTIONS = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "leaky-relu": F.leaky_relu, "elu": F.elu,
    "gelu": F.gelu, "silu": F.silu, "softplus": F.softplus,
}
KINDS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky-relu": nn.LeakyReLU, "elu": nn.ELU,
         "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus}


def test_the_table_is_the_options_type():
    assert tuple(ACTIVATIONS) == get_args(Activation) and set(FUNCTIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_is_its_function(name, inplace):
    torch.manual_seed(0)
    x = 4 * torch.randn(10_000, dtype=torch.float64)
    given = x.clone()
    y = ACTIVATIONS[name](inplace=inplace)(given)
    torch.testing.assert_close(y, FUNCTIONS[name](x), rtol=0, atol=1e-12)
    # Only ReLU works in place, and only when asked: the others' backward needs the input they were given.
    assert torch.equal(given, y if inplace and name == "relu" else x)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_backpropagates_its_derivative(name):
    x = torch.linspace(-3, 3, 61, dtype=torch.float64).add(0.01).requires_grad_()  # away from ReLU's kink at 0
    (grad,) = torch.autograd.grad(ACTIVATIONS[name]()(x).sum(), x)
    (expected,) = torch.autograd.grad(FUNCTIONS[name](x).sum(), x)
    torch.testing.assert_close(grad, expected)


def explicit_resnet20(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ResNet-20 (post-activation basic fields, option A) step by step with torch.relu in every place a ReLU
    stands: stem, inside each field, after each step."""
    conv, bn = model.stem[0], model.stem[1]
    x = torch.relu(bn(conv(x)))
    for field, shortcut in zip(model.body.fields, model.body.shortcuts, strict=True):
        conv1, bn1, _, conv2, bn2 = field
        x = torch.relu(shortcut(x) + bn2(conv2(torch.relu(bn1(conv1(x))))))
    return model.head(x)


def test_the_default_relu_leaves_resnet20_as_it_was():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    # the stem's, one inside each of the 9 fields, and the scheme's one after every step
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 1 + 9 + 1
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), explicit_resnet20(model, x), rtol=0, atol=0)
    torch.manual_seed(0)
    same = build_model("resnet20", activation="relu").eval()
    assert torch.equal(same(x), model(x))


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "relu"])
def test_an_activation_stands_everywhere_relu_stood(name):
    """A sigmoid plain-20 is sigmoid in its stem, its fields and after every step; same parameters."""
    relu_count = sum(isinstance(m, nn.ReLU) for m in build_model("plain20").modules())
    torch.manual_seed(0)
    model = build_model("plain20", activation=name)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert sum(isinstance(m, KINDS[name]) for m in model.modules()) == relu_count
    assert isinstance(model.body.activation, KINDS[name])
    assert model.state_dict().keys() == build_model("plain20").state_dict().keys()
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    conv, bn = model.stem[0], model.stem[1]
    state = FUNCTIONS[name](bn(conv(x)))
    for field in model.body.fields:
        conv1, bn1, _, conv2, bn2 = field
        state = FUNCTIONS[name](bn2(conv2(FUNCTIONS[name](bn1(conv1(state))))))
    torch.testing.assert_close(model(x), model.head(state))


@pytest.mark.parametrize(("family", "options", "kind"), [
    ("resnet", {"depth": 8, "preact": True, "shortcut_option": "B-preact"}, nn.ELU),
    ("resnext29", {"cardinality": 2, "base_width": 2, "widen_factor": 1, "blocks": 1}, nn.ELU),
    ("revnet", {"depth": 38}, nn.ELU),
    ("fractalnet", {"columns": 2, "blocks": 2, "channels": [4, 8]}, nn.ELU),
    ("odenet", {"width": 8}, nn.ELU),
    ("odenet-resnet", {"width": 8, "blocks": 1}, nn.ELU),
    ("mlp", {"widths": [8, 8]}, nn.ELU),
])
def test_every_family_with_a_nonlinearity_takes_the_table(family, options, kind):
    model = build_model(family, 1, 3, activation="elu", **options)
    assert any(isinstance(m, kind) for m in model.modules())
    if family not in ("odenet", "odenet-resnet"):  # their downsampling and classifier keep ReLU, on purpose
        assert not any(isinstance(m, nn.ReLU) for m in model.modules())


def test_an_unknown_activation_lists_the_valid_ones():
    valid = "'relu', 'sigmoid', 'tanh', 'leaky-relu', 'elu', 'gelu', 'silu', 'softplus'"
    with pytest.raises(ConfigError, match=f"activation: expected one of {valid}, got 'swish'"):
        build_model("resnet", depth=8, activation="swish")


def test_the_mean_field_nets_take_the_activations_their_theory_has():
    assert isinstance(build_model("rrn", activation="tanh").body[0].phi, nn.Tanh)
    with pytest.raises(ConfigError, match="activation: expected one of 'tanh', 'relu', 'alpha-relu', got 'gelu'"):
        build_model("frn", activation="gelu")
