"""The mlp family: Nielsen's fully-connected nets (ch. 5), plain or residual, as the plain and Euler schemes."""

import pytest
import torch

from resdyn import build_model
from resdyn.analysis.profile import count_parameters
from resdyn.errors import ConfigError
from resdyn.schemes import Euler, Plain, scheme_name

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("residual", [False, True])
def test_784_30_30_30_10_has_its_hand_counted_parameters(residual):
    model = build_model("mlp", 1, 10, widths=[30, 30, 30], residual=residual)
    assert count_parameters(model) == 784 * 30 + 30 + 30 * 30 + 30 + 30 * 30 + 30 + 30 * 10 + 10 == 25_720
    assert isinstance(model.body, Euler if residual else Plain)
    assert scheme_name(model) == ("euler" if residual else "plain")


@pytest.mark.parametrize("residual", [False, True])
def test_each_layer_is_its_equation(residual):
    """x_1 = s(W_0 x + b_0); x_{n+1} = s(W_n x_n + b_n), plus x_n when residual; scores W_L x_L + b_L."""
    torch.manual_seed(0)
    model = build_model("mlp", 1, 10, widths=[30, 30, 30], residual=residual)
    image = torch.randn(4, 1, 28, 28)
    first = model.stem[2][0]
    x = torch.sigmoid(first(image.flatten(1)))
    for field in model.body.fields:
        x = (x if residual else 0) + torch.sigmoid(field[0](x))
    torch.testing.assert_close(model(image), model.head(x))


def test_options_reach_the_layers():
    model = build_model("mlp", 3, 7, widths=[20, 10], activation="tanh", image_size=8)
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [20, 10, 7]
    assert model.stem[2][0].in_features == 3 * 8 * 8
    assert all(isinstance(f[1], torch.nn.Tanh) for f in model.body.fields)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)  # other sizes are pooled to image_size first
    assert len(build_model("mlp", widths=[5]).body.fields) == 0  # one hidden layer: the stem alone


def test_init_normal_draws_every_layer_with_init_std_and_zero_biases():
    torch.manual_seed(0)
    model = build_model("mlp", 1, 10, widths=[300, 300], init="normal", init_std=0.05)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.weight.var().item() == pytest.approx(0.05**2, rel=0.05)
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


@pytest.mark.parametrize(("options", "message"), [
    ({"residual": True, "widths": [30, 20]}, r"residual mlp .* hidden widths must be equal; got \[30, 20\]"),
    ({"widths": []}, "at least one hidden width"),
    ({"widths": [30, 0]}, "every width and image_size at least 1"),
    ({"activation": "swish"}, "activation: expected one of 'relu', 'sigmoid'"),
    ({"init": "normal", "init_std": -1.0}, "init_std .* must be positive"),
])
def test_bad_options_say_what_is_valid(options, message):
    with pytest.raises(ConfigError, match=message):
        build_model("mlp", **options)
