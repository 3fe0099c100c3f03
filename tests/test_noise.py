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


def test_survival_schedule_is_the_linear_rule():
    sd = StochasticDepth(survival_last=0.5)
    probs = [sd.survival_prob(i, 27) for i in range(27)]
    assert probs == pytest.approx([1 - (n / 27) * 0.5 for n in range(1, 28)])
    assert probs[-1] == pytest.approx(0.5)
    model = build_model("resnet56", noise="stochastic-depth", noise_options={"survival_last": 0.8})
    drops = [m for m in model.modules() if isinstance(m, DropBranch)]
    # The two stride-2 transitions keep their branch (a dropped one would need a zero of the new shape).
    assert len(drops) == 25
    assert drops[-1].survival_prob == pytest.approx(0.8)


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
