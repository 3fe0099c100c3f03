"""The ImageNet ResNet family: exact parameter counts against torchvision's, Mult-Adds at 224 px, the LM-ResNets'
learned k_n, every scheme, errors."""

import pytest
import torch

from resdyn import build_model
from resdyn.analysis.profile import count_parameters, mult_adds
from resdyn.errors import ConfigError
from resdyn.schemes.multistep import LinearMultistep

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# What pre-activation changes in a post-activation bottleneck network of 1000 classes (He et al. 2016): each stage's
# first field normalises its input (BN(in)) where the post-activation one normalises its output (BN(4c)); the
# projection shortcuts lose their BN (their input is the un-normalised state); the head gains BN(2048).
FIRST_FIELD_BN = 2 * ((64 - 256) + (256 - 512) + (512 - 1024) + (1024 - 2048))  # -3968
PROJECTION_BN = -2 * (256 + 512 + 1024 + 2048)  # -7680
HEAD_BN = 2 * 2048
PREACT = FIRST_FIELD_BN + PROJECTION_BN + HEAD_BN  # -7552
# The LM-ResNet authors' BN-ReLU-conv1x1 shortcut (B-preact) keeps a BN(in) at each of the 4 transitions.
B_PREACT_BN = 2 * (64 + 256 + 512 + 1024)  # +3712


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # torchvision.models.resnet18 ... resnet152 (1000 classes), option-B shortcuts, post-activation.
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
        ("preact-resnet50", 25_557_032 + PREACT),
        ("preact-resnet101", 44_549_160 + PREACT),
        ("preact-resnet152", 60_192_808 + PREACT),
        # One k_n per two-step block: every block but the 4 that change the shape (the first of each stage, the
        # network's first among them), so 16 - 4 = 12 in LM-ResNet-50 and 33 - 4 = 29 in LM-ResNet-101.
        ("lm-resnet50", 25_557_032 + PREACT + B_PREACT_BN + 12),
        ("lm-resnet101", 44_549_160 + PREACT + B_PREACT_BN + 29),
    ],
)
def test_parameter_counts_at_1000_classes(name, params):
    with torch.device("meta"):  # counting needs no weights
        model = build_model(name, num_classes=1000)
    assert count_parameters(model) == params


def test_the_counts_written_out():
    assert 25_557_032 + PREACT == 25_549_480
    assert 25_557_032 + PREACT + B_PREACT_BN + 12 == 25_553_204
    assert 44_549_160 + PREACT + B_PREACT_BN + 29 == 44_545_349


@pytest.mark.parametrize(("name", "k"), [("lm-resnet50", 12), ("lm-resnet101", 29)])
def test_lm_resnets_learn_one_k_per_two_step_block(name, k):
    with torch.device("meta"):
        model = build_model(name, num_classes=1000)
    assert isinstance(model.body, LinearMultistep)
    assert model.body.k.shape == (k,)


def test_resnet50_mult_adds_at_224():
    # He et al. 2015, Table 1: 3.8 x 10^9 FLOPs (their multiply-adds); torchvision's figure for its ResNet-50 is
    # 4.09 G, the count of every convolution and the classifier.
    macs = mult_adds(build_model("resnet50", num_classes=1000), (3, 224, 224))
    assert macs / 1e9 == pytest.approx(4.1, rel=0.02)


def test_stem_and_stages_shrink_224_to_7():
    model = build_model("imagenet-resnet", depth=50, width=4, num_classes=5)
    x = torch.randn(1, 3, 224, 224)
    assert model.stem(x).shape == (1, 4, 56, 56)
    assert model.body(model.stem(x)).shape == (1, 4 * 8 * 4, 7, 7)
    assert model(x).shape == (1, 5)


@pytest.mark.parametrize("scheme", ["euler", "lm", "poly", "rk4", "ab2", "leapfrog", "momentum", "plain"])
@pytest.mark.parametrize("preact", [False, True])
def test_every_scheme_trains_a_step(scheme, preact):
    options = {"depth": 50, "width": 4, "scheme": scheme, "preact": preact}
    if scheme == "leapfrog" and not preact:
        with pytest.raises(ConfigError, match="preact=true"):  # a ReLU after each step cannot be inverted
            build_model("imagenet-resnet", **options)
        return
    torch.manual_seed(0)
    model = build_model("imagenet-resnet", **options, num_classes=3)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 64, 64)), torch.tensor([0, 2]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_noise_wraps_the_fields():
    model = build_model("imagenet-resnet", depth=18, width=4, noise="stochastic-depth",
                        noise_options={"survival_last": 0.5})
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_invalid_depth_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"depth 51 .* 18, 34, 50, 101, 152"):
        build_model("imagenet-resnet", depth=51)


def test_plain_scheme_refuses_a_shortcut_option():
    with pytest.raises(ConfigError, match="no skip connection"):
        build_model("imagenet-resnet", depth=18, scheme="plain", shortcut_option="B")
