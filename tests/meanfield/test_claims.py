"""The claims of G. B. Macedo's talk on Yang & Schoenholz 2017 that tests/meanfield/test_theory.py does not fit
yet, each as a least-squares fit of the theory's own curve, asserting the fitted rate and the fit's quality.

Where the talk's wording and the theory differ, the README's "Mean-field theory" section says which holds and
why; benchmarks/results/theory-2026-12-04/README.md records the fitted numbers. The constants come from the
recurrences' large-depth limit: for tanh, ``V(q) → 1`` and ``V'(q) = E sech⁴(√q z) ≈ (4/3)/√(2πq)``, so an FRN's
``p ≈ (σ_v² + σ_a²) l`` and ``log R ≈ 2 · (4/3) σ_v² σ_w / √(2π(σ_v² + σ_a²)) · √L = TANH_SLOPE σ_w σ_v /
√(1 + ρ²) · √L`` with ``ρ² = σ_a²/σ_v²``; an RRN is the same with ``σ_v² = 1, σ_a² = 0``.
"""

import math

import numpy as np
import pytest

from resdyn.meanfield import theory
from resdyn.meanfield.theory import angular_integral

#: log R / (σ_w σ_v / √(1 + ρ²) · √L) for tanh nets at large depth: 2 · (4/3) / √(2π)
TANH_SLOPE = 8 / (3 * math.sqrt(2 * math.pi))


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(slope, intercept, R², max |residual|)`` of the least-squares line through ``(x, y)``."""
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return slope, intercept, 1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2), float(np.abs(residual).max())


def tanh_e_star(rho2: float) -> float:
    """The root in [0, 1) of ``(1 + ρ²)(1 - e) = (2/π) arccos e``: where ``p`` grows by ``σ_v² + σ_a²`` per layer
    and ``s`` by ``σ_v² D``, with tanh → sign at large ``q`` so that ``D → (2/π) arccos e``, ``1 - e = s/p``
    settles where the two increments' ratio is ``1 - e`` itself. Bisection: the left side minus the right is
    >= 0 at e = 0 and < 0 just below 1 (arccos e ≈ √(2(1 - e)))."""
    lo, hi = 0.0, 1 - 1e-12
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 + rho2) * (1 - mid) >= 2 / math.pi * math.acos(mid):
            lo = mid
        else:
            hi = mid
    return lo


def alpha_relu_e_star(alpha: float) -> float:
    """The fixed point e* < 1 of α-ReLU's normalised kernel map ``e ↦ J(arccos e) / J(0)`` (the increments' ratio
    of ``γ`` and ``p`` at large depth); it exists because the map's slope at ``e = 1`` is ``α²/(2α - 1) > 1``."""
    lo, hi = 0.0, 1 - 1e-12
    j0 = float(angular_integral(np.array(0.0), alpha))
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(angular_integral(np.array(math.acos(mid)), alpha)) / j0 > mid:
            lo = mid
        else:
            hi = mid
    return lo


def test_relu_frn_s_and_R_grow_as_exp_of_L_not_of_sqrt_L():
    """The talk: for ReLU FRNs s, R and p all grow as e^{√Θ(L)}. The recurrences give exp(Θ(L)): with the talk's
    σ_v² = 1, σ_a² = σ_b² = 1/2 and σ_w² in its range [0, 1.5], ``χ`` grows by exactly 1 + σ_v²σ_w²/2 per
    layer (V' = 1/2), so log R is linear in L to rounding; ``1 - e`` falls polynomially (toward L^{-2}: the
    arc-cosine kernel's θ³ term), so over L = 300..1000 log s = aL + b log L + c with a the same rate within
    0.5%, b < 0 and residuals below 0.01. A law in √L leaves residuals 100x larger."""
    sigma_w2 = np.array([0.5, 1.0, 1.5])
    result = theory("frn", "relu", 1000, sigma_w2=sigma_w2, sigma_v2=1.0, sigma_a2=0.5, sigma_b2=0.5)
    depths = np.arange(300, 1001)
    for i, sw in enumerate(sigma_w2):
        rate = math.log(1 + sw / 2)
        log_r = result.log_chi[0, i] - result.log_chi[depths, i]  # log R of the net cut at depth L
        slope, _, r2, _ = line_fit(depths.astype(float), log_r)
        assert slope == pytest.approx(rate, rel=1e-12) and r2 > 1 - 1e-12
        log_s = np.log(result.s[depths, i])
        design = np.stack([depths, np.log(depths), np.ones(len(depths))], axis=1)
        coef, *_ = np.linalg.lstsq(design, log_s, rcond=None)
        residual = np.abs(design @ coef - log_s).max()
        assert coef[0] == pytest.approx(rate, rel=0.005) and coef[1] < 0 and residual < 0.01
        assert line_fit(np.sqrt(depths), log_s)[3] > 100 * residual


def test_alpha_relu_frn_s_grows_like_p_not_like_L():
    """The talk: for α-ReLU FRNs s = (1 - e) p = Θ(p) = Θ(L). The recurrences give s = Θ(p), but p =
    Θ(L^{1/(1-α)}) (test_theory.py), so s's log-log slope over L = 10³..10⁵ is within 5% of 1/(1 - α) = 2.5,
    4, 10 (R² > 0.9999), not 1: the cosine e tends to the kernel map's fixed point e* < 1 (its distance to e*
    falls by more than 2x over the range), so s/p → 1 - e* > 0. The fitted slopes sit below 1/(1 - α) by the
    slow approach of e to e* (1 - e still falls)."""
    alphas, depth = np.array([0.6, 0.75, 0.9]), 100_000
    result = theory("frn", "alpha-relu", depth, alpha=alphas, sigma_w2=1.0, sigma_v2=1.0, sigma_a2=0.5,
                    sigma_b2=0.5)
    depths = np.unique(np.geomspace(1000, depth, 30).astype(int))
    for i, alpha in enumerate(alphas):
        slope, _, r2, _ = line_fit(np.log(depths), np.log(result.s[depths, i]))
        assert slope == pytest.approx(1 / (1 - alpha), rel=0.05) and r2 > 0.9999
        e_star = alpha_relu_e_star(alpha)
        gap = e_star - result.e[[1000, depth], i]
        assert np.all(gap > 0) and gap[1] < gap[0] / 2


@pytest.mark.parametrize("net", ["frn", "rrn"])
def test_tanh_log_R_is_sigma_w_sqrt_L(net):
    """The talk: tanh nets have R ≈ σ_w √L (and R = e^{Θ(√L)}). The recurrences give log R ≈ TANH_SLOPE σ_w σ_v
    / √(1 + ρ²) · √L (module doc): the log of R, not R, is σ_w √L. For σ_w² = 0.5..3, log R against √L over
    L = 100..1500 is a line (R² > 0.9999; a line in L: R² < 0.98) whose slope is within 5% of that constant
    (the finite-depth remainder, which shrinks as σ_w grows, is the gap), and those slopes against σ_w are a
    line through the origin (R² > 0.9999, intercept < 0.07) with slope within 4% of the constant."""
    sigma_w2, depth = np.array([0.5, 1.0, 1.5, 2.0, 3.0]), 1500
    kw = dict(sigma_v2=1.0, sigma_a2=0.25) if net == "frn" else {}
    constant = TANH_SLOPE / math.sqrt(1 + kw.get("sigma_a2", 0.0) / kw.get("sigma_v2", 1.0))
    result = theory(net, "tanh", depth, sigma_w2=sigma_w2, correlations=False, **kw)
    depths = np.arange(100, depth + 1, 50)
    slopes = []
    for i, sw in enumerate(sigma_w2):
        log_r = result.log_chi[0, i] - result.log_chi[depths, i]
        slope, _, r2, _ = line_fit(np.sqrt(depths), log_r)
        assert slope == pytest.approx(constant * math.sqrt(sw), rel=0.05) and r2 > 0.9999
        assert line_fit(depths.astype(float), log_r)[2] < 0.98
        slopes.append(slope)
    slope, intercept, r2, _ = line_fit(np.sqrt(sigma_w2), np.array(slopes))
    assert slope == pytest.approx(constant, rel=0.04) and abs(intercept) < 0.07 and r2 > 0.9999


def test_tanh_frn_e_star_below_one_is_set_by_rho2():
    """The talk: ρ² = σ_a²/σ_v² sets the fixed point e* < 1. At large depth (p = 2500, where a net of about 2000
    layers is) one layer of the recurrences moves e toward the root of (1 + ρ²)(1 - e) = (2/π) arccos e
    (:func:`tanh_e_star`): bisecting on the sign of that one-layer step finds, for ρ² = 0.25..9, the theory's
    e* within 0.03 of the formula (tanh differs from sign by O(q^{-1/2}) = 0.02 there), increasing with ρ²
    and below 1. (The approach to e* is slow, O(L^{-1/2}): at L = 120, e is still 0.05-0.09 above it.)"""
    rho2 = np.array([0.25, 1.0, 4.0, 9.0])
    p0 = 2500.0

    def step(e0: float, r: float) -> float:
        one = theory("frn", "tanh", 1, sigma_w2=1.0, sigma_v2=1 / (1 + r), sigma_a2=r / (1 + r), p0=p0, e0=e0)
        return float(one.e[1]) - e0

    lo, hi = np.zeros(len(rho2)), np.ones(len(rho2)) - 1e-9
    for i, r in enumerate(rho2):
        for _ in range(14):
            mid = (lo[i] + hi[i]) / 2
            lo[i], hi[i] = (mid, hi[i]) if step(mid, r) > 0 else (lo[i], mid)
    found = (lo + hi) / 2
    expected = np.array([tanh_e_star(r) for r in rho2])
    np.testing.assert_allclose(found, expected, atol=0.03)
    assert np.all(np.diff(found) > 0) and found[-1] < 1


def test_tanh_frn_log_R_is_constant_along_sigma_v2_over_one_plus_rho2():
    """The talk: with σ_v / √(1 + ρ²) held fixed the leading term of log R is constant across ρ. Fitting
    log log R against log(1 + ρ²) at L = 1500, ρ² = 0..9: holding σ_v²/(1 + ρ²) = 1 the slope is within 0.02
    of 0 (log R varies by under 4%); holding σ_v² = 1 instead it is within 0.05 of the leading term's -1/2
    (R² > 0.99)."""
    rho2 = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 9.0])
    x = np.log1p(rho2)
    sigma_v2 = 1 + rho2
    held = theory("frn", "tanh", 1500, sigma_w2=1.0, sigma_v2=sigma_v2, sigma_a2=rho2 * sigma_v2,
                  correlations=False).log_R
    fixed = theory("frn", "tanh", 1500, sigma_w2=1.0, sigma_v2=1.0, sigma_a2=rho2, correlations=False).log_R
    slope, _, _, _ = line_fit(x, np.log(held))
    assert abs(slope) < 0.02 and np.ptp(held) / held.mean() < 0.04
    slope, _, r2, _ = line_fit(x, np.log(fixed))
    assert slope == pytest.approx(-0.5, abs=0.05) and r2 > 0.99
