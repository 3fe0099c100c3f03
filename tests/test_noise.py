"""Noise wrappers: the survival schedule, eval determinism and expectations, shake-shake's combination."""

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.errors import ConfigError
from resdyn.noise import (
    DropBranch,
    GaussianNoise,
    ShakeShake,
    ShakeShakeBranches,
    StochasticDepth,
    make_noise,
)
from resdyn.registry import UnknownNameError


class Ones(nn.Module):
    def forward(self, x):
        return torch.ones_like(x)


def test_the_default_survival_schedule_is_huang_et_al_2016():
    # p_l = 1 - l/L (1 - p_L), l = 1..L, over every block, the two stride-2 transitions included
    sd = StochasticDepth(survival_last=0.5)
    assert sd.schedule == "huang"
    probs = [sd.survival_prob(i, 27) for i in range(27)]
    assert probs == pytest.approx([1 - (n / 27) * 0.5 for n in range(1, 28)])
    assert probs[-1] == pytest.approx(0.5)
    model = build_model("resnet56", noise="stochastic-depth", noise_options={"survival_last": 0.8})
    drops = [m for m in model.modules() if isinstance(m, DropBranch)]
    assert len(drops) == 27 and sum(not d.keeps_shape for d in drops) == 2
    assert [d.survival_prob for d in drops] == pytest.approx([1 - (n / 27) * 0.2 for n in range(1, 28)])


@pytest.mark.parametrize("scaling", ["test", "train"])
def test_drop_branch_train_rate_and_eval_expectation(scaling):
    torch.manual_seed(0)
    branch = DropBranch(Ones(), 0.7, scaling=scaling)
    x = torch.zeros(2, 3)
    kept = torch.stack([branch(x)[0, 0] for _ in range(4000)])
    survivor = 1.0 if scaling == "test" else 1 / 0.7
    assert all(v == 0.0 or v == pytest.approx(survivor) for v in kept.unique().tolist())
    assert (kept > 0).float().mean().item() == pytest.approx(0.7, abs=0.03)
    branch.eval()
    assert torch.equal(branch(x), branch(x))
    expected = 0.7 if scaling == "test" else 1.0
    assert torch.allclose(branch(x), torch.full_like(x, expected))
    # Training's mean equals eval's value.
    assert kept.mean().item() == pytest.approx(expected, rel=0.06)


def test_drop_branch_per_image():
    torch.manual_seed(1)
    branch = DropBranch(Ones(), 0.5, per="image")
    out = branch(torch.zeros(1000, 4))
    assert torch.equal(out, out[:, :1].expand_as(out))  # one draw per image
    assert out[:, 0].mean().item() == pytest.approx(0.5, abs=0.05)


def test_eval_is_deterministic_for_a_noisy_model():
    model = build_model("lm-resnet20", noise="stochastic-depth").eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("dt", [1.0, 0.25])
def test_shake_shake_combination(dt):
    torch.manual_seed(2)
    f1, f2 = nn.Linear(3, 3), nn.Linear(3, 3)
    block = ShakeShakeBranches(f1, f2, dt=dt, independent_backward=False)
    x = torch.randn(500, 3)
    out = block(x)
    # out = a f1 + b f2 with a + b = dt and a = dt/2 + sqrt(dt)(eta - 1/2), eta ~ U(0, 1).
    a = (out - dt * f2(x)) / (f1(x) - f2(x))
    assert torch.allclose(a, a[:, :1].expand_as(a), atol=1e-3)  # one eta per image
    a = a[:, 0]
    assert a.min() >= dt / 2 - dt**0.5 / 2 - 1e-4 and a.max() <= dt / 2 + dt**0.5 / 2 + 1e-4
    block.eval()
    assert torch.allclose(block(x), dt / 2 * (f1(x) + f2(x)))  # eval: the mean combination


def test_shake_shake_independent_backward_keeps_the_forward_value():
    torch.manual_seed(3)
    f1, f2 = nn.Linear(3, 3), nn.Linear(3, 3)
    x = torch.randn(4, 3)
    torch.manual_seed(5)
    even = ShakeShakeBranches(f1, f2, independent_backward=False)(x)
    torch.manual_seed(5)
    shaken = ShakeShakeBranches(f1, f2, independent_backward=True)(x)
    assert torch.allclose(even, shaken)
    shaken.sum().backward()
    grad_shaken = f1.weight.grad.clone()
    f1.weight.grad = None
    even.sum().backward()
    assert not torch.allclose(grad_shaken, f1.weight.grad)


def test_shake_shake_builds_two_fields_per_block():
    plain = sum(p.numel() for p in build_model("resnet20").parameters())
    shaken = sum(p.numel() for p in build_model("resnet20", noise="shake-shake").parameters())
    assert shaken - plain == plain - sum(p.numel() for p in build_model("resnet20").stem.parameters()) - sum(
        p.numel() for p in build_model("resnet20").head.parameters()
    )


def test_gaussian_noise():
    torch.manual_seed(4)
    branch = GaussianNoise(std=0.1).wrap(lambda: Ones(), 0, 1, True)
    x = torch.zeros(20000)
    noisy = branch(x) - 1
    assert noisy.std().item() == pytest.approx(0.1, rel=0.05)
    branch.eval()
    assert torch.equal(branch(x), torch.ones_like(x))


def test_make_noise_errors():
    assert make_noise(None) is None
    assert make_noise("shake-shake", dt=0.5) == ShakeShake(dt=0.5)
    with pytest.raises(UnknownNameError, match="valid noise names: gaussian, shake-shake, stochastic-depth"):
        make_noise("dropout")
    with pytest.raises(ConfigError, match="unknown key.*p .*valid keys: survival_last, scaling, per"):
        make_noise("stochastic-depth", p=0.5)
    with pytest.raises(ConfigError, match="given without a noise"):
        make_noise(None, survival_last=0.5)


# -- the published stochastic-depth schedules ------------------------------------------------------------------


class Counter(nn.Module):
    """A field that counts its calls and returns a zero branch."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.zeros_like(x)


# (model, schedule, p_L, blocks L = n, expected dropped blocks per pass by the paper's own formula)
PUBLISHED = [
    # Huang et al. 2016: p_l = 1 - l/L (1 - p_L), l = 1..L, so E = sum_l l/L (1 - p_L) = (L + 1)/2 (1 - p_L).
    ("resnet110", "huang", 0.5, 54, 55 / 2 * 0.5),
    ("resnet56", "huang", 0.8, 27, 28 / 2 * 0.2),
    # The LM-ResNet code: p_i = 1 - i/(n-1) (1 - p_L), i = 0..n-1, so E = sum_i i/(n-1) (1 - p_L) = n/2 (1 - p_L).
    ("lm-resnet110", "lm-code", 0.5, 54, 54 / 2 * 0.5),
    ("lm-resnet56", "lm-code", 0.8, 27, 27 / 2 * 0.2),
]


def drop_branches(name, schedule, survival_last):
    model = build_model(name, noise="stochastic-depth",
                        noise_options={"survival_last": survival_last, "schedule": schedule, "scaling": "train"})
    return [m for m in model.modules() if isinstance(m, DropBranch)]


@pytest.mark.parametrize(("name", "schedule", "survival_last", "blocks", "expected"), PUBLISHED)
def test_published_schedules_expected_dropped_blocks(name, schedule, survival_last, blocks, expected):
    drops = drop_branches(name, schedule, survival_last)
    # Every block can drop, the two stride-2 transitions included, as in both papers.
    assert len(drops) == blocks
    assert sum(not d.keeps_shape for d in drops) == 2
    probs = [d.survival_prob for d in drops]
    if schedule == "huang":
        assert probs == pytest.approx([1 - (b / blocks) * (1 - survival_last) for b in range(1, blocks + 1)])
    else:
        assert probs[0] == 1.0  # the LM code's first block always survives
        assert probs == pytest.approx([1 - i / (blocks - 1) * (1 - survival_last) for i in range(blocks)])
    assert probs[-1] == pytest.approx(survival_last)
    assert sum(1 - p for p in probs) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("name", "schedule", "survival_last", "blocks", "expected"), PUBLISHED)
def test_published_schedules_dropped_blocks_monte_carlo(name, schedule, survival_last, blocks, expected):
    # Each forward pass calls every wrapper once; a dropped one skips its field. Count the skips over many passes,
    # each wrapper on a small input with a counting field in place of the convolutions (the draws are the same).
    drops = drop_branches(name, schedule, survival_last)
    for d in drops:
        d.field = Counter()
    passes = 1500
    torch.manual_seed(13)
    x = torch.zeros(1, 1)
    for _ in range(passes):
        for d in drops:
            d.forward(x)
    dropped = [passes - d.field.calls for d in drops]
    mean = sum(dropped) / passes
    # The dropped count per pass is a sum of independent Bernoullis: variance sum p(1 - p). Its mean over the
    # passes is within 4 standard errors (a 6e-5 chance to fail for an unlucky seed; this one is fixed).
    variance = sum(d.survival_prob * (1 - d.survival_prob) for d in drops)
    assert abs(mean - expected) < 4 * (variance / passes) ** 0.5
    # Block by block too: each block's drop rate is within 4 standard errors of 1 - p.
    for d, n in zip(drops, dropped, strict=True):
        p = d.survival_prob
        assert abs(n / passes - (1 - p)) <= 4 * (p * (1 - p) / passes) ** 0.5


def test_linear_schedule_keeps_transitions_per_batch():
    # Huang's p_n, but a transition's branch always runs: the two stride-2 transitions are not wrapped
    drops = drop_branches("resnet110", "linear", 0.5)
    huang = drop_branches("resnet110", "huang", 0.5)
    assert len(drops) == 52 and len(huang) == 54
    kept = {d.survival_prob for d in huang} - {d.survival_prob for d in drops}
    assert sorted(kept) == pytest.approx([1 - 37 / 54 * 0.5, 1 - 19 / 54 * 0.5])  # blocks 19 and 37 (1-based)


@pytest.mark.parametrize("name", ["resnet", "lm-resnet"])
def test_a_dropped_transition_is_its_shortcut(name):
    model = build_model(name, depth=8, noise="stochastic-depth", shortcut_option="B",
                        noise_options={"schedule": "huang"}).train()
    body = model.body
    x = torch.randn(2, 16, 8, 8)
    for n in (1, 2):  # the two stride-2 transitions of the three fields
        branch = body.fields[n]
        assert isinstance(branch, DropBranch) and not branch.keeps_shape
        branch.survival_prob = 1e-12  # always dropped
        h = x if n == 1 else body.shortcuts[1](x)
        out, carry = body.transition(n, h)
        assert torch.equal(out, body.shortcuts[n](h))
    # A whole pass with every transition dropped runs and has the classifier's shape.
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
