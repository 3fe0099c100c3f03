"""The mean-field recurrences' integrals against high-precision references, and the asymptotic claims of Macedo's
talk on Yang & Schoenholz 2017 as fitted rates with the fit's quality asserted."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

from resdyn.errors import ConfigError
from resdyn.meanfield import theory
from resdyn.meanfield.theory import AlphaReLU, ReLU, Tanh, angular_integral

integrate = pytest.importorskip("scipy.integrate")  # test-only: scikit-learn (the test extra) brings SciPy


def gaussian_mp(f, q, mean=0.0, var=None):
    """E f(Y), Y ~ N(mean, var or q), by mpmath's adaptive quadrature split at the activation's features."""
    var = q if var is None else var
    sd = mp.sqrt(var)
    density = lambda y: mp.exp(-((y - mean) ** 2) / (2 * var)) / mp.sqrt(2 * mp.pi * var)  # noqa: E731
    points = sorted({mean - 12 * sd, mean + 12 * sd} | {x for x in (-20, -5, -1, 0, 1, 5, 20)
                                                        if mean - 12 * sd < x < mean + 12 * sd})
    return mp.quad(lambda y: f(y) * density(y), points)


# q from tiny to 10^3 and beyond: a tanh FRN of depth 1000 visits q ≈ 10^3
LARGE_Q = [1e-3, 1.0, 40.0, 300.0, 1000.0, 5000.0]


@pytest.mark.parametrize("q", LARGE_Q)
def test_tanh_one_dimensional_integrals_match_high_precision(q):
    mp.mp.dps = 20
    tanh = Tanh()
    assert tanh.second(np.array(q)) == pytest.approx(float(gaussian_mp(lambda y: mp.tanh(y) ** 2, q)), rel=1e-11)
    assert tanh.derivative_second(np.array(q)) == pytest.approx(
        float(gaussian_mp(lambda y: mp.sech(y) ** 4, q)), rel=1e-9)


def gaussian_quadpack(f, mean, var):
    """E f(Y), Y ~ N(mean, var), by QUADPACK split at the activation's features (an independent adaptive rule)."""
    sd = math.sqrt(var)
    lo, hi = mean - 12 * sd, mean + 12 * sd
    points = [x for x in (-20, -1, 0, 1, 20) if lo < x < hi] or None
    density = lambda y: math.exp(-((y - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)  # noqa: E731
    return integrate.quad(lambda y: f(y) * density(y), lo, hi, points=points, limit=200, epsabs=0, epsrel=1e-13)[0]


@pytest.mark.parametrize(("q", "gap"), [(1.0, 0.5), (40.0, 4.0), (400.0, 1.0), (1000.0, 30.0)])
def test_tanh_correlation_integral_matches_adaptive_reference(q, gap):
    """D = E (tanh u - tanh u')² / 2 as a nested integral, u' | u ~ N(ρu, q(1 - ρ²)), by adaptive QUADPACK (mpmath
    takes minutes for a double integral; QUADPACK's 1e-13 is far below what is tested)."""
    rho, var = 1 - gap / q, gap * (2 * q - gap) / q

    def outer(u):
        t = math.tanh(u)
        return gaussian_quadpack(lambda y: (t - math.tanh(y)) ** 2 / 2, rho * u, var)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)  # inner rules at the 1e-13 roundoff floor
        reference = gaussian_quadpack(outer, 0.0, q)
    assert Tanh().half_distance(np.array(q), np.array(gap)) == pytest.approx(reference, rel=1e-10)


def test_fixed_low_order_gauss_hermite_is_the_trap():
    """What the scale-aware rule avoids: 20-point Gauss-Hermite, within 0.2% at q = 1, is off by percents at
    q = 300 for E tanh² (the length) and misses E sech⁴ (the gradient) almost entirely."""
    x, w = np.polynomial.hermite_e.hermegauss(20)
    w = w / math.sqrt(2 * math.pi)
    tanh = Tanh()

    def errors(q):
        r = math.sqrt(q)
        return (abs(np.sum(w * np.tanh(r * x) ** 2) / tanh.second(np.array(q)) - 1),
                abs(np.sum(w / np.cosh(r * x) ** 4) / tanh.derivative_second(np.array(q)) - 1))

    assert max(errors(1.0)) < 2e-3
    length_error, gradient_error = errors(300.0)
    assert length_error > 0.04 and gradient_error > 0.9


@pytest.mark.parametrize("alpha", [0.55, 0.7, 0.9, 1.0])
@pytest.mark.parametrize("theta", [1e-3, 0.3, 1.5, 3.0])
def test_alpha_relu_angular_integral_matches_high_precision(alpha, theta):
    mp.mp.dps = 25
    length = mp.pi - theta
    reference = mp.quad(lambda d: mp.sin(d) ** alpha * mp.sin(length - d) ** alpha, [0, length / 2, length])
    assert angular_integral(np.array(theta), alpha) == pytest.approx(float(reference), rel=1e-11)


@pytest.mark.parametrize("alpha", [0.6, 0.8])
def test_alpha_relu_moments_match_high_precision(alpha):
    mp.mp.dps = 25
    q = 700.0
    relu = AlphaReLU(alpha)
    positive = lambda f: (lambda y: f(y) if y > 0 else 0)  # noqa: E731
    assert relu.mean(q) == pytest.approx(float(gaussian_mp(positive(lambda y: y**alpha), q)), rel=1e-10)
    assert relu.second(q) == pytest.approx(float(gaussian_mp(positive(lambda y: y ** (2 * alpha)), q)), rel=1e-10)
    # E φ'² = α² ∫_0^∞ y^{2α-2} N(y; 0, q) dy; t = y^{2α-1} removes the singularity at 0
    k = 2 * alpha - 1
    smooth = mp.quad(lambda t: mp.exp(-(t ** (2 / k)) / (2 * q)), [0, 10, 100, 1000, mp.inf]) / k
    assert relu.derivative_second(q) == pytest.approx(float(alpha**2 * smooth / mp.sqrt(2 * mp.pi * q)), rel=1e-10)


def test_alpha_relu_at_alpha_one_is_the_relu_arc_cosine_kernel():
    q = np.array([0.3, 2.0, 1e4])
    gap = q * np.array([1e-6, 0.4, 1.9])
    one, relu = AlphaReLU(1.0), ReLU()
    np.testing.assert_allclose(one.mean(q), relu.mean(q), rtol=1e-13)
    np.testing.assert_allclose(one.second(q), relu.second(q), rtol=1e-13)
    np.testing.assert_allclose(one.derivative_second(q), relu.derivative_second(q), rtol=1e-13)
    np.testing.assert_allclose(one.half_distance(q, gap), relu.half_distance(q, gap), rtol=1e-8)


def test_relu_half_distance_is_exact_near_equal_inputs():
    """D = q(1 - ρ)/2 - q θ³/(6π) + O(θ⁵): the closed form keeps its digits where 1 - ρ is 1e-12."""
    q, gap = 5.0, 5e-12
    theta = 2 * math.asin(math.sqrt(gap / q / 2))
    expected = gap / 2 - q * theta**3 / (6 * math.pi)
    assert ReLU().half_distance(np.array(q), np.array(gap)) == pytest.approx(expected, rel=1e-9)


def test_tanh_frn_log_R_grows_linearly_in_sqrt_depth():
    """The talk: tanh FRNs have R = χ^0/χ^L = exp(Θ(√L)). log R against √L over L = 50..1500 is a line (R² >
    0.999), and a line in L fits markedly worse."""
    depth = 1500
    result = theory("frn", "tanh", depth, sigma_w2=1.0, sigma_v2=1.0, sigma_a2=0.25, correlations=False)
    log_chi = np.log(result.chi)
    depths = np.arange(50, depth + 1, 50)
    log_r = log_chi[0] - log_chi[depths]

    def r_squared(x, y):
        fit = np.polyval(np.polyfit(x, y, 1), x)
        return 1 - np.sum((y - fit) ** 2) / np.sum((y - y.mean()) ** 2)

    assert r_squared(np.sqrt(depths), log_r) > 0.999
    assert r_squared(depths, log_r) < 0.99
    assert np.polyfit(np.sqrt(depths), log_r, 1)[0] > 0


def test_relu_frn_length_grows_exponentially():
    """log p is linear in L with slope log(1 + σ_v² σ_w² / 2) (R² > 0.99999)."""
    sw, sv = 0.8, 1.0
    result = theory("frn", "relu", 200, sigma_w2=sw, sigma_v2=sv, sigma_a2=0.5, sigma_b2=0.5, correlations=False)
    depths = np.arange(20, 201)
    log_p = np.log(result.p[depths])
    slope, intercept = np.polyfit(depths, log_p, 1)
    residual = log_p - (slope * depths + intercept)
    assert 1 - np.sum(residual**2) / np.sum((log_p - log_p.mean()) ** 2) > 0.99999
    assert slope == pytest.approx(math.log(1 + sv * sw / 2), rel=1e-3)


def test_alpha_relu_frn_length_grows_polynomially():
    """p ~ L^{1/(1-α)}: for α = 0.6, 0.75, 0.9 (one vectorised solve) the log-log slope over L = 10^3..10^5 is
    within 2% of 1/(1-α), with R² > 0.9999."""
    alphas, depth = np.array([0.6, 0.75, 0.9]), 100_000
    result = theory("frn", "alpha-relu", depth, alpha=alphas, sigma_w2=1.0, sigma_v2=1.0, correlations=False)
    depths = np.unique(np.geomspace(1000, depth, 40).astype(int))
    log_l = np.log(depths)
    for i, alpha in enumerate(alphas):
        log_p = np.log(result.p[depths, i])
        slope, intercept = np.polyfit(log_l, log_p, 1)
        residual = log_p - (slope * log_l + intercept)
        assert 1 - np.sum(residual**2) / np.sum((log_p - log_p.mean()) ** 2) > 0.9999
        assert slope == pytest.approx(1 / (1 - alpha), rel=0.02)


def test_rrn_mean_term_dominates_the_length_recurrence():
    """The RRN's skip path carries φ(h): with ReLU the mean accumulates and 2 M(q) μ is most of p. Leaving it out
    (p' = p + V(q)) underestimates p^30 by more than a factor 100 (the simulation agrees with the full recurrence:
    test_simulate.py)."""
    sw, sb, depth = 0.5, 0.1, 30
    full = theory("rrn", "relu", depth, sigma_w2=sw, sigma_b2=sb, correlations=False).p[-1]
    p = 1.0
    for _ in range(depth):
        p = p + ReLU().second(sw * p + sb)
    assert full / p > 100


def test_vectorised_over_a_sigma_grid_equals_pointwise():
    grid = np.array([0.3, 1.0, 2.5])
    together = theory("frn", "tanh", 12, sigma_w2=grid, sigma_a2=0.1)
    for i, sw in enumerate(grid):
        alone = theory("frn", "tanh", 12, sigma_w2=sw, sigma_a2=0.1)
        np.testing.assert_allclose(together.p[:, i], alone.p, rtol=1e-12)
        np.testing.assert_allclose(together.s[:, i], alone.s, rtol=1e-12)
        assert together.log_R[i] == pytest.approx(float(alone.log_R), rel=1e-12)


def test_layer_zero_is_the_input():
    result = theory("rrn", "tanh", 3, sigma_w2=1.0, p0=2.0, e0=0.25)
    assert (result.p[0], result.e[0], result.s[0], result.chi[-1]) == pytest.approx((2.0, 0.25, 1.5, 1.0))
    assert result.p.shape == (4,) and float(result.log_R) == pytest.approx(math.log(result.chi[0]))


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (("resnet", "tanh", 5), {"sigma_w2": 1.0}, "unknown net"),
    (("frn", "gelu", 5), {"sigma_w2": 1.0}, "unknown activation"),
    (("frn", "alpha-relu", 5), {"sigma_w2": 1.0}, "needs alpha"),
    (("frn", "alpha-relu", 5), {"sigma_w2": 1.0, "alpha": 0.4}, "alpha must be > 1/2"),
    (("frn", "tanh", 5), {"sigma_w2": 1.0, "alpha": 0.7}, "means nothing"),
    (("rrn", "tanh", 5), {"sigma_w2": 1.0, "sigma_a2": 0.5}, "no V or a"),
    (("frn", "tanh", 0), {"sigma_w2": 1.0}, "depth must be"),
    (("frn", "tanh", 5), {"sigma_w2": -1.0}, "variances"),
    (("frn", "tanh", 5), {"sigma_w2": 1.0, "e0": 1.5}, "cosine"),
])
def test_bad_settings_are_config_errors(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        theory(*args, **kwargs)
