"""LM-ResNet's linear two-step scheme: the recurrence, its conventions, its Euler limit, its counts."""

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.analysis.profile import count_parameters
from resdyn.errors import ConfigError
from resdyn.schemes import Euler, LinearMultistep


class Scale(nn.Module):
    """f(u) = a * u: a field whose effect is easy to follow by hand."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = a

    def forward(self, u):
        return self.a * u


def test_recurrence_by_hand():
    fields = [Scale(0.5), Scale(0.25), Scale(-0.5), Scale(2.0)]
    scheme = LinearMultistep(fields, [nn.Identity()] * 4)
    with torch.no_grad():
        scheme.k.copy_(torch.tensor([0.3, -0.2, 0.7]))
    u0 = torch.tensor([1.0])
    u1 = u0 + 0.5 * u0  # first step: Euler, no previous state
    u2 = (1 - 0.3) * u1 + 0.3 * u0 + 0.25 * u1
    u3 = (1 - -0.2) * u2 + -0.2 * u1 + -0.5 * u2
    u4 = (1 - 0.7) * u3 + 0.7 * u2 + 2.0 * u3
    assert torch.allclose(scheme(u0), u4)


def test_transition_is_euler_and_hands_on_the_projected_state():
    project = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        project.weight.fill_(3.0)
    scheme = LinearMultistep([Scale(0.5), Scale(0.1), Scale(0.2)], [nn.Identity(), project, nn.Identity()])
    assert scheme.k.numel() == 1  # only the last step has a previous state of its shape
    with torch.no_grad():
        scheme.k.fill_(0.4)
    u0 = torch.tensor([[1.0]])
    u1 = 1.5 * u0
    u2, prev = 3.0 * u1 + 0.1 * u1, 3.0 * u1
    u3 = 0.6 * u2 + 0.4 * prev + 0.2 * u2
    assert torch.allclose(scheme(u0), u3)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_k_zero_is_the_euler_resnet_with_the_same_weights(mode):
    torch.manual_seed(0)
    euler = build_model("resnet20", preact=True)
    lm = build_model("lm-resnet20")
    assert isinstance(euler.body, Euler) and isinstance(lm.body, LinearMultistep)
    missing = lm.load_state_dict(euler.state_dict(), strict=False)
    assert missing.missing_keys == ["body.k"] and not missing.unexpected_keys
    with torch.no_grad():
        lm.body.k.zero_()
    getattr(euler, mode)(), getattr(lm, mode)()
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(euler(x), lm(x), atol=1e-6)


def test_paper_and_code_conventions_agree_under_k_code_equals_one_minus_k_paper():
    torch.manual_seed(1)
    paper = build_model("lm-resnet20", scheme_options={"convention": "paper"}).eval()
    code = build_model("lm-resnet20", scheme_options={"convention": "code"}).eval()
    code.load_state_dict(paper.state_dict())
    with torch.no_grad():
        code.body.k.copy_(1 - paper.body.k)
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(paper(x), code(x), atol=1e-5)
    assert torch.allclose(code.body.k_paper(), paper.body.k_paper())


def test_initial_k_follow_each_convention():
    torch.manual_seed(2)
    paper = build_model("lm-resnet56").body.k
    code = build_model("lm-resnet56", scheme_options={"convention": "code"}).body.k
    assert paper.min() >= -0.1 and paper.max() <= 0.0
    assert code.min() >= 1.0 and code.max() <= 1.1


def test_metrics_report_k_outside_the_stability_range():
    scheme = build_model("lm-resnet20").body
    with torch.no_grad():
        scheme.k.copy_(torch.tensor([0.5, -1.5, 0.0, 1.2, -1.0, 1.0]))
    metrics = scheme.metrics()
    assert metrics["lm_k"] == [0.5, -1.5, 0.0, 1.2, -1.0, 1.0]
    assert metrics["lm_k_outside_stability"] == [1, 3]


@pytest.mark.parametrize(
    ("depth", "paper_count"),
    # The FIUBA 75.26 report on Lu et al. 2018, table 1 (counts of the authors' MResNet): LM-ResNet-20/32/44/56/110/164.
    [(20, 273_475), (32, 467_913), (44, 662_351), (56, 856_789), (110, 1_731_760), (164, 1_703_760)],
)
def test_parameter_counts_against_the_reference_code(depth, paper_count):
    authors = build_model(f"lm-resnet{depth}", shortcut_option="B-preact")
    # The reference code's parameters that take no part in its forward pass, which resdyn does not create: a stem
    # BN (16 channels: 32), a stride-1 16->64 BN-ReLU-conv1x1 projection that only its bottleneck nets use
    # (2 * 16 + 16 * 64), and one k for each of the 3 steps with no previous state of their shape (the first
    # step and the two transitions; resdyn's LM creates k only where a previous state exists).
    unused = 32 + 3 if depth == 164 else 32 + (2 * 16 + 16 * 64) + 3
    assert count_parameters(authors) + unused == paper_count
    # Counted by resdyn: every k_n it uses, one per step with a previous state of its shape.
    blocks = 3 * ((depth - 2) // (9 if depth == 164 else 6))
    assert authors.body.k.numel() == blocks - 3
    # Option B differs from the authors' shortcut by the BN(in) of each projection only.
    in_channels = (16, 64, 128) if depth == 164 else (16, 32)
    b = count_parameters(build_model(f"lm-resnet{depth}", shortcut_option="B"))
    assert b + 2 * sum(in_channels) == count_parameters(authors)


def test_lm_resnext29_counts():
    # ResNeXt-29 8x64d has 34.4M parameters (Xie et al. 2017, table 7); LM adds one k per two-step block (6).
    with_100_classes = 34_426_698 + 90 * 1024 + 90
    assert count_parameters(build_model("resnext29-8x64d", num_classes=100)) == with_100_classes
    assert count_parameters(build_model("lm-resnext29-8x64d", num_classes=100)) - count_parameters(
        build_model("resnext29-8x64d", num_classes=100)
    ) == 6


def test_convention_is_an_option_of_lm_models_only():
    assert build_model("lm-resnext29-8x64d", scheme_options={"convention": "code"}).body.convention == "code"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) convention in \[scheme_options\]"):
        build_model("resnext29-8x64d", scheme_options={"convention": "code"})
