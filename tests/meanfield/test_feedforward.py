"""Plain feed-forward nets' mean field (Poole et al. 2016; Schoenholz et al. 2017): closed forms, the
order-to-chaos line against independent references, depth scales as the fitted rates of the recurrences, and
the theory against random nets."""

import math

import mpmath as mp
import numpy as np
import pytest

from resdyn.errors import ConfigError
from resdyn.meanfield import simulate, theory
from resdyn.meanfield.feedforward import Erf, fixed_point, order_to_chaos, trainable_depth


def slope(x, y):
    """Least-squares slope and R² of y against x."""
    coef = np.polyfit(x, y, 1)
    fit = np.polyval(coef, x)
    return coef[0], 1 - np.sum((y - fit) ** 2) / np.sum((y - y.mean()) ** 2)


@pytest.mark.parametrize("q", [0.01, 1.0, 30.0])
def test_erf_closed_forms_match_quadrature(q):
    mp.mp.dps = 20
    gauss = lambda f: mp.quad(lambda y: f(y) * mp.npdf(y, 0, mp.sqrt(q)), [-mp.inf, 0, mp.inf])  # noqa: E731
    erf = Erf()
    assert erf.second(q) == pytest.approx(float(gauss(lambda y: mp.erf(y) ** 2)), rel=1e-12)
    assert erf.derivative_second(q) == pytest.approx(float(gauss(lambda y: 4 / mp.pi * mp.exp(-2 * y * y))),
                                                     rel=1e-12)
    # D at ρ = 0.3: u' | u ~ N(ρu, q(1-ρ²)), and E erf(m + s z) = erf(m / √(1 + 2s²)) for z ~ N(0, 1)
    rho = 0.3
    spread = mp.sqrt(1 + 2 * q * (1 - rho**2))
    cross = gauss(lambda u: mp.erf(u) * mp.erf(rho * u / spread))
    assert erf.half_distance(q, q * (1 - rho)) == pytest.approx(erf.second(q) - float(cross), rel=1e-9)


def test_order_to_chaos_relu_is_two():
    assert order_to_chaos("relu", 0.0) == pytest.approx(2.0, abs=1e-5)


def test_order_to_chaos_erf_matches_the_closed_form_line():
    """χ_1 = 1 means σ_w² = (π/4)√(1+4q*); with the fixed point q* = σ_w² V(q*) + σ_b² this is one equation in q*,
    solved by mpmath."""
    sb = 0.05
    q_star = mp.findroot(lambda q: q - sb - mp.sqrt(1 + 4 * q) / 2 * mp.asin(2 * q / (1 + 2 * q)), 0.5)
    expected = float(mp.pi / 4 * mp.sqrt(1 + 4 * q_star))
    assert order_to_chaos("erf", sb) == pytest.approx(expected, abs=2e-6)


def test_order_to_chaos_tanh_matches_an_independent_solve():
    """Schoenholz et al. 2017 (Fig. 1): at σ_b² = 0.05 the tanh transition is at σ_w² ≈ 1.76; here the two
    conditions q = σ_w² E tanh² + σ_b², σ_w² E sech⁴ = 1 are solved by mpmath's quadrature and root finder."""
    mp.mp.dps = 15
    sb = 0.05
    gauss = lambda f, q: mp.quad(lambda y: f(y) * mp.npdf(y, 0, mp.sqrt(q)), [-mp.inf, -1, 0, 1, mp.inf])  # noqa: E731
    q_star = mp.findroot(lambda q: q - sb - gauss(lambda y: mp.tanh(y) ** 2, q) / gauss(lambda y: mp.sech(y) ** 4, q),
                         0.6)
    expected = float(1 / gauss(lambda y: mp.sech(y) ** 4, q_star))
    assert expected == pytest.approx(1.76, abs=0.01)
    assert order_to_chaos("tanh", sb) == pytest.approx(expected, abs=2e-6)


@pytest.mark.parametrize(("sigma_w2", "phase"), [(1.2, "ordered"), (2.5, "chaotic")])
def test_depth_scales_are_the_fitted_rates_of_the_recurrences(sigma_w2, phase):
    """Started near the fixed point, |q^l - q*| decays as e^{-l/ξ_q} and |c^l - c*| as e^{-l/ξ_c} (Schoenholz
    et al. 2017, eqs. 6 and 9): the log-linear slopes agree with the fixed point's ξ's within 2%."""
    sb = 0.05
    fp = fixed_point("tanh", sigma_w2=sigma_w2, sigma_b2=sb)
    assert (fp.chi_1 < 1) == (phase == "ordered") and (float(fp.c) == 1.0) == (phase == "ordered")
    depth = 80
    result = theory("ffn", "tanh", depth, sigma_w2=sigma_w2, sigma_b2=sb, p0=(float(fp.q) - sb) / sigma_w2 * 1.2,
                    e0=0.9)
    layers = np.arange(8, 8 + min(25, int(6 * max(fp.xi_q, 1))))
    rate_q, r2 = slope(layers, np.log(np.abs(result.q[layers] - fp.q)))
    assert r2 > 0.999 and -1 / rate_q == pytest.approx(float(fp.xi_q), rel=0.02)
    layers = np.arange(40, depth + 1)  # past the nonlinear start (c^0 = 0.9 is far from c*)
    rate_c, r2 = slope(layers, np.log(np.abs(result.c[layers] - fp.c)))
    assert r2 > 0.999 and -1 / rate_c == pytest.approx(float(fp.xi_c), rel=0.02)


def test_gradients_vanish_and_explode_at_the_rate_chi_1():
    """In the ordered phase log χ^l / χ^L falls by log χ_1 per layer once q is at q* (and rises in the chaotic
    phase): χ^0 = R = χ_1^{-L} up to the first layers."""
    for sigma_w2 in (1.2, 2.5):
        fp = fixed_point("tanh", sigma_w2=sigma_w2, sigma_b2=0.05)
        result = theory("ffn", "tanh", 60, sigma_w2=sigma_w2, sigma_b2=0.05, p0=(float(fp.q) - 0.05) / sigma_w2)
        rate, r2 = slope(np.arange(1, 60), result.log_chi[1:60])
        assert r2 > 0.99999 and rate == pytest.approx(-math.log(float(fp.chi_1)), rel=1e-6)


def test_trainable_depth_peaks_at_the_order_to_chaos_line():
    """6 ξ_c over σ_w² (Schoenholz et al. 2017, Fig. 5): equal to 6 / (-log χ_1) in the ordered phase, and
    largest next to the transition on either side."""
    sw = np.linspace(1.0, 3.0, 21)
    depth = trainable_depth("tanh", sw, sigma_b2=0.05)
    fp = fixed_point("tanh", sigma_w2=sw, sigma_b2=0.05)
    ordered = fp.chi_1 < 1
    np.testing.assert_allclose(depth[ordered], -6 / np.log(fp.chi_1[ordered]), rtol=1e-9)
    transition = order_to_chaos("tanh", 0.05)
    assert abs(sw[np.argmax(depth)] - transition) <= 0.1 + 1e-9 and depth.max() > 100 > depth.min()


@pytest.mark.parametrize(("activation", "kw"), [("tanh", dict(sigma_w2=1.5, sigma_b2=0.05)),
                                                 ("erf", dict(sigma_w2=2.0, sigma_b2=0.1)),
                                                 ("relu", dict(sigma_w2=1.8, sigma_b2=0.1))])
def test_theory_matches_random_feedforward_nets(activation, kw):
    """8 nets of width 400, 16 layers, independent backward weights: the mean of q, c and log χ^0 within four
    standard errors (plus 1%) of the theory at every layer. c is a slow variable in the ordered phase, so its
    per-layer O(1/√N) noise accumulates: one net's c wanders by 0.05-0.1 (measured), hence no fixed tolerance."""
    depth, samples = 16, 8
    predicted = theory("ffn", activation, depth, **kw)
    sim = simulate("ffn", activation, depth, width=400, samples=samples, seed=1, backward="independent", **kw)
    for simulated, expected in ((sim.q / predicted.q, 1.0), (sim.c, predicted.c), (sim.log_R, predicted.log_R)):
        error = np.abs(simulated.mean(0) - expected)
        assert np.all(error <= 4 * simulated.std(0) / math.sqrt(samples) + 0.01), error


def test_feedforward_has_no_v_or_a():
    with pytest.raises(ConfigError, match="no V or a"):
        theory("ffn", "tanh", 3, sigma_w2=1.0, sigma_v2=2.0)
    with pytest.raises(ConfigError, match="unknown activation"):
        theory("ffn", "gelu", 3, sigma_w2=1.0)


def test_feedforward_map_draws_the_trainable_depth():
    from resdyn.meanfield.plots import feedforward_map_png

    sw = np.linspace(1.0, 3.0, 5)
    png = feedforward_map_png(sw, trainable_depth("erf", sw, sigma_b2=0.05), "erf",
                              {"values": [1.0, 2.0], "depths": [10, 20], "grid": [[0.9, 0.5], [0.8, 0.1]]})
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
