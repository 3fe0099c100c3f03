"""Stochastic depth and shake-shake with step Δt converge weakly, at order 1, to their SDEs (geometric Brownian
motion for linear fields); without the √Δt noise scaling the limit loses its noise. The exact discrete moments
are checked against a Monte Carlo of resdyn's own ShakeShakeBranches module."""

import math

import numpy as np
import pytest
import torch

from resdyn.noise import ShakeShakeBranches
from resdyn.schemes.sde import (
    gbm_moments,
    shake_shake_sde,
    shake_shake_step,
    stochastic_depth_sde,
    stochastic_depth_step,
    terminal_moments,
)

T = 1.0
#: the second moment of these GBMs has a large O(Δt²) term: local orders are 0.85 at Δt = 1/8 and 0.98 at 1/128
DTS = [1 / 32, 1 / 64, 1 / 128, 1 / 256, 1 / 512]


def order(errors):
    slope, _ = np.polyfit(np.log(DTS), np.log(np.abs(errors)), 1)
    return slope


def test_shake_shake_converges_weakly_at_order_one():
    a1, a2 = 1.0, -2.0
    mean, second = gbm_moments(*shake_shake_sde(a1, a2), T)
    errors = np.array([np.subtract(terminal_moments(shake_shake_step(a1, a2, dt), round(T / dt)), (mean, second))
                       for dt in DTS])
    assert order(errors[:, 0]) == pytest.approx(1.0, abs=0.05)
    assert order(errors[:, 1]) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("p", [0.5, 0.8])
def test_stochastic_depth_converges_weakly_at_order_one(p):
    a = 1.5
    mean, second = gbm_moments(*stochastic_depth_sde(a, p), T)
    errors = np.array([np.subtract(terminal_moments(stochastic_depth_step(a, p, dt), round(T / dt)), (mean, second))
                       for dt in DTS])
    assert order(errors[:, 0]) == pytest.approx(1.0, abs=0.05)
    assert order(errors[:, 1]) == pytest.approx(1.0, abs=0.05)
    assert second - mean**2 > 0.5  # a nontrivial SDE: the limit keeps a variance of order one


def test_without_the_sqrt_scaling_the_noise_vanishes():
    """Noise scaled with Δt (like the mean) instead of √Δt: Var X_T -> 0 at order 1, and the moments converge to
    the ODE X' = p a X, not to the SDE."""
    a, p = 1.5, 0.5
    variances, to_ode = [], []
    for dt in DTS:
        mean, second = terminal_moments(stochastic_depth_step(a, p, dt, noise_scale=dt), round(T / dt))
        variances.append(second - mean**2)
        to_ode.append(second - math.exp(2 * p * a * T))
    assert order(variances) == pytest.approx(1.0, abs=0.05) and variances[-1] < 0.02
    # at p = 1/2 the O(Δt) terms of E X² cancel (-p² + p(1 - p) = 0): order 2 there, at least 1 in general
    assert order(to_ode) > 0.95


def test_shake_shake_module_has_the_exact_discrete_moments():
    """resdyn's ShakeShakeBranches at Δt = 1/8 on linear fields, 8 layers, 200,000 samples, seed 0: the sample
    E X_L and E X_L² are within four standard errors of the exact discrete values."""
    a1, a2, dt = 1.0, -2.0, 1 / 8
    branches = ShakeShakeBranches(lambda x: a1 * x, lambda x: a2 * x, dt=dt, independent_backward=False).train()
    torch.manual_seed(0)
    x = torch.ones(200_000, 1, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(round(T / dt)):
            x = x + branches(x)
    mean, second = terminal_moments(shake_shake_step(a1, a2, dt), round(T / dt))
    for sample, exact in ((x, mean), (x**2, second)):
        assert abs(float(sample.mean()) - exact) < 4 * float(sample.std()) / math.sqrt(len(sample))
