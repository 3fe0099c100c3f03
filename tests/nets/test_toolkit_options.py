"""The toolkit of Fuentes-Pineda's lecture (2023) on the resnet family: dropout in the head and the fields, the
initialisation scheme and the normalisation layer; each option changes what it names and nothing else (the defaults:
test_defaults_unchanged)."""

import math

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.analysis.profile import count_parameters
from resdyn.errors import ConfigError
from resdyn.fields import NORMS, Norm, norm_groups
from resdyn.nets.init import INIT_STD, WEIGHT_INITS
from resdyn.schemes import SCHEMES

NORM_TYPES = (nn.BatchNorm2d, nn.GroupNorm)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def train_step(model: nn.Module, channels: int = 1) -> dict[str, torch.Tensor]:
    """One loss and backward pass on a random batch; the gradients by parameter name (all present and finite)."""
    loss = nn.functional.cross_entropy(model(torch.randn(4, channels, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    return grads


def test_the_norm_names_are_the_options_values():
    assert tuple(NORMS) == Norm.__args__


LAYOUTS = [  # post- and pre-activation, basic fields with option A, bottlenecks with projections (option B)
    {"depth": 20, "preact": False}, {"depth": 20, "preact": True},
    {"depth": 11, "block": "bottleneck", "preact": False}, {"depth": 11, "block": "bottleneck", "preact": True},
]


@pytest.mark.parametrize("options", LAYOUTS)
def test_norm_none_removes_every_norm_and_still_trains(options):
    default = build_model("resnet", 1, 10, **options)
    bn_parameters = sum(count_parameters(m) for m in default.modules() if isinstance(m, nn.BatchNorm2d))
    model = build_model("resnet", 1, 10, norm="none", **options)
    assert not any(isinstance(m, NORM_TYPES) for m in model.modules())
    assert not any("running" in key for key in model.state_dict())
    assert count_parameters(model) == count_parameters(default) - bn_parameters
    train_step(model)


@pytest.mark.parametrize(("norm", "groups"), [("group", norm_groups), ("layer", lambda channels: 1)])
def test_group_and_layer_norm_replace_every_batch_norm(norm, groups):
    default, model = build_model("resnet", 1, 10, depth=20, preact=True), build_model("resnet", 1, 10, depth=20,
                                                                                      preact=True, norm=norm)
    replaced = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    bns = [m for m in default.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert [(m.num_groups, m.num_channels) for m in replaced] == [(groups(b.num_features), b.num_features)
                                                                  for b in bns]
    # Same affine parameters, same names; only BatchNorm's running statistics are gone.
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in default.named_parameters()]
    assert set(default.state_dict()) - set(model.state_dict()) == {
        k for k in default.state_dict() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    train_step(model)


def test_layer_norm_normalises_each_sample_over_all_its_units():
    model = build_model("resnet", 1, 10, depth=8, norm="layer")
    norm = model.stem[1]
    y = norm(torch.randn(3, 16, 5, 5) * 4 + 2).flatten(1)
    assert torch.allclose(y.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.var(1, unbiased=False), torch.ones(3), atol=1e-3)


@pytest.mark.parametrize("scheme", WEIGHT_INITS)
def test_init_draws_every_weight_with_its_schemes_variance(scheme):
    torch.manual_seed(0)
    model = build_model("resnet", 3, 10, depth=20, init=scheme)
    for name, m in model.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        w = m.weight.detach().double()
        fan_in = w[0].numel()
        fan_out = w.shape[0] * w[0][0].numel()
        variance = {"he": 2 / fan_in, "xavier": 2 / (fan_in + fan_out)}.get(scheme.split("-")[0], INIT_STD**2)
        # The sample variance of n draws has relative standard deviation sqrt(2 / n) (normal) or less (uniform).
        assert w.var().item() == pytest.approx(variance, rel=5 * math.sqrt(2 / w.numel())), name
        assert abs(w.mean().item()) < 5 * math.sqrt(variance / w.numel()), name
        if scheme.endswith("uniform"):
            assert w.abs().max().item() <= math.sqrt(3 * variance)
        if m.bias is not None:
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))


def test_default_init_is_he_normal_fan_out_on_the_convolutions_as_before():
    torch.manual_seed(0)
    conv = build_model("resnet", 3, 10, depth=20, init="default").body.fields[-1][0]
    fan_out = conv.weight.shape[0] * conv.weight[0][0].numel()
    assert conv.weight.var().item() == pytest.approx(2 / fan_out, rel=0.05)


def test_head_dropout_drops_pooled_features_in_training_and_is_the_identity_in_evaluation():
    torch.manual_seed(0)
    model = build_model("resnet", 1, 10, depth=8, dropout=0.5)
    head = model.head
    assert [type(m) for m in head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert head[2].p == 0.5
    pool, flatten, dropout, linear = head
    features = torch.rand(64, 64, 2, 2) + 0.1  # positive: a dropped feature is exactly zero
    pooled = flatten(pool(features))
    dropped = dropout(pooled)
    assert 0.4 < (dropped == 0).float().mean().item() < 0.6
    assert torch.allclose(dropped[dropped != 0], 2 * pooled[dropped != 0])  # the kept ones scaled by 1 / (1 - p)
    head.eval()
    assert torch.equal(head(features), linear(pooled))


def test_field_dropout_sits_before_each_fields_last_convolution():
    for options in LAYOUTS:
        model = build_model("resnet", 1, 10, field_dropout=0.2, **options)
        default = build_model("resnet", 1, 10, **options)
        assert count_parameters(model) == count_parameters(default)
        for field in model.body.fields:
            convs = [i for i, m in enumerate(field) if isinstance(m, nn.Conv2d)]
            assert isinstance(field[convs[-1] - 1], nn.Dropout) and field[convs[-1] - 1].p == 0.2
            assert sum(isinstance(m, nn.Dropout) for m in field) == 1


def test_field_dropout_is_random_in_training_and_off_in_evaluation():
    torch.manual_seed(0)
    model = build_model("resnet", 1, 10, depth=8, field_dropout=0.3, dropout=0.3)
    x = torch.randn(4, 1, 8, 8)
    assert not torch.allclose(model(x), model(x))
    model.eval()
    out = model(x)
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Dropout):
                setattr(module, name, nn.Identity())
    assert torch.equal(out, model(x))


def test_dropout_and_group_norm_under_leapfrog_replay_the_same_masks_in_memory_saving_backprop():
    """The reversible scheme recomputes each field in its backward pass: the dropout masks must be the same."""
    grads = []
    for memory_saving in (True, False):
        torch.manual_seed(0)
        model = build_model("resnet", 1, 4, depth=14, preact=True, scheme="leapfrog", field_dropout=0.3,
                            norm="group", scheme_options={"memory_saving": memory_saving})
        torch.manual_seed(1)
        grads.append(train_step(model))
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5), name


@pytest.mark.parametrize("scheme", SCHEMES.names())
def test_every_scheme_trains_a_step_with_every_toolkit_option_on(scheme):
    torch.manual_seed(0)
    model = build_model("resnet", 1, 4, depth=14, preact=True, scheme=scheme, dropout=0.2, field_dropout=0.2,
                        init="xavier-uniform", norm="layer")
    train_step(model)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"init": "glorot-normal"}, r"init: expected one of 'default', 'he-normal', 'he-uniform', 'xavier-normal', "
                                    r"'xavier-uniform', 'normal', 'uniform', got 'glorot-normal'"),
        ({"init": "normal", "init_std": 0.0}, r"init_std is the standard deviation .* must be positive, got 0.0"),
        ({"norm": "instance"}, r"norm: expected one of 'batch', 'group', 'layer', 'none', got 'instance'"),
        ({"dropout": 1.0}, r"dropout rate is a probability in \[0, 1\), got 1.0"),
        ({"field_dropout": -0.1}, r"dropout rate is a probability in \[0, 1\), got -0.1"),
        ({"dropout": "0.1"}, r"dropout: expected float, got '0.1'"),
    ],
)
def test_bad_toolkit_values_list_the_valid_ones(options, message):
    with pytest.raises(ConfigError, match=message):
        build_model("resnet", depth=8, **options)
