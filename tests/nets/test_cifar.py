"""The CIFAR ResNet family: exact parameter counts against the reference implementations, shapes, errors."""

import pytest
import torch

from resdyn import build_model, list_models
from resdyn.analysis.profile import count_parameters, mult_adds
from resdyn.errors import ConfigError
from resdyn.fields import PadShortcut
from resdyn.registry import UnknownNameError


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # Option-A counts of the reference CIFAR ResNets (He et al. 2015; akamaster/pytorch_resnet_cifar10).
        ("resnet20", 269_722),
        ("resnet32", 464_154),
        ("resnet44", 658_586),
        ("resnet56", 853_018),
        ("resnet110", 1_727_962),
        # Pre-activation bottleneck ResNet-164 with projection shortcuts (He et al. 2016; 1.70M as in
        # bearpaw/pytorch-classification's preresnet-164).
        ("resnet164", 1_703_258),
    ],
)
def test_parameter_counts_match_reference(name, params):
    assert count_parameters(build_model(name)) == params


def test_preactivation_moves_batchnorm_without_changing_count():
    assert count_parameters(build_model("resnet20", preact=True)) == 269_722


def test_input_channels_and_classes_follow_the_data():
    model = build_model("resnet20", in_channels=1, num_classes=7)
    # One stem conv loses 2 of its 3 input channels (2 * 16 * 9 weights); the classifier has 7 outputs.
    assert count_parameters(model) == 269_722 - 2 * 16 * 9 - 3 * 65
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)


@pytest.mark.parametrize("options", [{}, {"preact": True}, {"shortcut_option": "B"}, {"block": "bottleneck"}])
def test_any_valid_depth_builds_and_runs(options):
    depth = 11 if options.get("block") == "bottleneck" else 8
    model = build_model("resnet", depth=depth, **options)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_invalid_depth_says_which_depths_are_valid():
    with pytest.raises(ValueError, match=r"depth 21 is not valid for basic blocks: it must be 6n \+ 2"):
        build_model("resnet", depth=21)


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        build_model("resnet21")
    assert "unknown model 'resnet21'" in str(e.value)
    for name in ("resnet20", "resnet56", "resnet164"):
        assert name in str(e.value)


def test_unknown_option_lists_valid_options():
    valid = ("activation, block, dropout, field_dropout, init, init_std, noise, noise_options, norm, preact, "
             "scheme, scheme_options, shortcut_option")
    with pytest.raises(ConfigError, match=rf"no option\(s\) depth; valid options: {valid}; 'resnet20' fixes depth"):
        build_model("resnet20", depth=3)


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    y = PadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


def test_resnet20_mult_adds():
    # Convolutions and the classifier: the 40.55 M per image quoted throughout the CIFAR pruning literature.
    macs = mult_adds(build_model("resnet20"), (3, 32, 32))
    assert macs == 40_551_040
    # The FIUBA 75.26 report on Lu et al. 2018 gives 5.22 G per batch of 128 for LM-ResNet-20, whose count also
    # takes in element-wise work; the convolutions are all but 0.6% of it.
    assert macs * 128 / 1e9 == pytest.approx(5.22, rel=0.01)


def test_registry_lists_the_family():
    names = list_models()
    for depth in (20, 32, 44, 56, 110, 164, 1202):
        assert f"resnet{depth}" in names
