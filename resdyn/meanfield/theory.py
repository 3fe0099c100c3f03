"""Mean-field recurrences of full and reduced residual networks (Yang & Schoenholz, NeurIPS 2017; G. B. Macedo's
talk on it, IMECC Unicamp, 2020).

Each recurrence is derived from the network's own equations, with ``N`` units per layer, weights
``W ~ N(0, σ_w²/N)``, ``V ~ N(0, σ_v²/N)``, biases ``b ~ N(0, σ_b²)``, ``a ~ N(0, σ_a²)``, fresh in every layer::

    FRN   h = W x + b,   x' = V φ(h) + x + a
    RRN   h = W x + b,   x' = φ(h) + x

For two inputs ``x, x'`` write ``p = <x_i²>`` (the length), ``γ = <x_i x'_i>`` (the correlation), ``μ = <x_i>``
(the mean) and ``s = p - γ = <(x_i - x'_i)²>/2`` (the expressivity). The pre-activations are Gaussian with
variance ``q = σ_w² p + σ_b²`` and covariance ``c = σ_w² γ + σ_b²``, so ``q - c = σ_w² s``. With ``u, u'`` such a
pair, ``M(q) = E φ(u)``, ``V(q) = E φ(u)²``, ``D(q, c) = E (φ(u) - φ(u'))² / 2`` and ``V'(q) = E φ'(u)²``:

    FRN   p' = p + σ_v² V(q) + σ_a²          s' = s + σ_v² D(q, c)     μ' = μ  (V has mean zero)
    RRN   p' = p + V(q) + 2 M(q) μ           s' = s + D(q, c)          μ' = μ + M(q)

The RRN's skip path carries ``φ(h)`` itself, so where ``φ`` has a non-zero mean (ReLU, α-ReLU) the mean of
``x`` grows along the depth and the cross term ``2 E[φ(h_i) x_i] = 2 M(q) μ`` is the largest part of ``p'``;
dropping it (the "variance only" recurrence) is wrong by orders of magnitude at depth 30. Tracking
``s = p - γ`` rather than ``γ`` keeps ``1 - e`` exact when the cosine ``e`` is close to one.

Gradients, ``χ^l = <(∂E/∂x_i^l)²>``: backpropagation gives ``∂E/∂x = ∂E/∂x' + Wᵀ(φ'(h) ⊙ Vᵀ ∂E/∂x')`` (FRN;
RRN without ``Vᵀ``). Under the **gradient independence assumption** the ``W, V`` of the backward pass are
treated as independent of those of the forward pass (exact in the infinite-width limit for these nets;
``resdyn.meanfield.simulate`` measures it at finite width), so ``χ^{l-1} = χ^l (1 + σ_v² σ_w² V'(q^l))`` (FRN)
and ``χ^{l-1} = χ^l (1 + σ_w² V'(q^l))`` (RRN); the explosion ratio is ``R = χ^0 / χ^L``.

The parameters' gradients, ``χ_*^l = <(∂E/∂*^l)²>`` for an entry of ``* = w, v, a, b`` of layer ``l`` (Yang &
Schoenholz's definitions, as the talk gives them), follow from the same backward pass. With ``δ = ∂E/∂h^l =
φ'(h) ⊙ Vᵀ ∂E/∂x^l`` (RRN: ``φ'(h) ⊙ ∂E/∂x^l``), ``∂E/∂b = δ``, ``∂E/∂w_jk = δ_j x_k^{l-1}``, ``∂E/∂v_ij =
(∂E/∂x_i^l) φ(h_j)`` and ``∂E/∂a = ∂E/∂x^l``; each is a product of a backward factor and a forward one that the
same assumption makes independent::

    FRN   χ_b^l = σ_v² V'(q^l) χ^l    χ_w^l = χ_b^l p^{l-1}    χ_v^l = V(q^l) χ^l    χ_a^l = χ^l
    RRN   χ_b^l = V'(q^l) χ^l         χ_w^l = χ_b^l p^{l-1}

(``p^{l-1} = <x_k²>`` includes the RRN's mean.) So a parameter's explosion ``χ_*^1 / χ_*^L`` is ``R`` times the
ratio of its forward factor at the two ends: for tanh FRNs ``V'(q)`` falls as ``q^{-1/2}`` and ``p`` grows
linearly, so ``χ_b`` explodes faster than ``χ`` and ``χ_w`` slower.

Integrals: ReLU has closed forms (the arc-cosine kernel, Cho & Saul 2009); α-ReLU's moments are Gamma
functions and its ``D`` a one-dimensional angular integral (tanh-sinh rule, exponentially convergent despite
the endpoint singularities); ReLU and α-ReLU are homogeneous, so none of these depends on the size of ``q``.
tanh has no closed forms, and ``q`` grows linearly with depth: a Gauss-Hermite rule of fixed order, exact near
``q ≈ 1``, misses the unit-scale features of ``tanh(√q z)`` at ``q`` in the hundreds. Here the Gaussian integral
is taken in the pre-activation's own variable, on panels no wider than the narrower of the two scales (the
activation's, 1, and the Gaussian's, √q), with the activation's constant tails integrated exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from resdyn.errors import ConfigError

Net = Literal["frn", "rrn", "ffn"]
ActivationName = Literal["tanh", "relu", "alpha-relu"]
NETS = ("frn", "rrn")
ACTIVATIONS = ("tanh", "relu", "alpha-relu")

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_erfc = np.vectorize(math.erfc, otypes=[float])
_gamma = np.vectorize(math.gamma, otypes=[float])
#: tanh(y) is ±1 and sech(y) is 0 to double precision beyond |y| = 20
FEATURE_RADIUS = 20.0
#: the Gaussian's mass beyond 10 standard deviations (1.5e-23) is left out
Z_MAX = 10.0
#: panels of the middle part of a Gaussian expectation: each at most min(1, std/2) wide
PANELS = 40
#: tanh's correlation integral needs ~20√q panels of 8 x 320 nodes each: at q = 1e5 that is 16 million
#: evaluations per layer and grid point. Beyond it ``D`` is not evaluated (NaN), and ``curves`` says so.
TANH_Q_MAX = 1e5


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], f_minus: np.ndarray | float, f_plus: np.ndarray | float,
                         mean: np.ndarray | float, std: np.ndarray | float) -> np.ndarray:
    """``E f(Y)`` for ``Y ~ N(mean, std²)``, elementwise over broadcast ``mean, std``, where ``f`` is smooth on
    the scale of 1 and equal to its limits ``f_minus`` / ``f_plus`` (broadcastable) beyond ``|y| = 20``.

    ``f`` gets an array of shape ``mean.shape + (nodes,)``. The part of ``y`` within both ``[-20, 20]`` and ten
    standard deviations is integrated by composite 8-point Gauss-Legendre on ``PANELS`` panels in ``z = (y -
    mean) / std``; each panel then spans at most ``min(1, std / 2)`` in ``y``, so both the activation and the
    Gaussian are resolved at any ``std``. The tails ``y > 20`` and ``y < -20`` contribute their limit times
    their exact probability.
    """
    mean, std = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(std, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = (FEATURE_RADIUS - mean) / std
        lower = (-FEATURE_RADIUS - mean) / std
    upper = np.nan_to_num(upper, nan=0.0, posinf=np.inf, neginf=-np.inf)
    lower = np.nan_to_num(lower, nan=0.0, posinf=np.inf, neginf=-np.inf)
    z_lo, z_hi = np.clip(lower, -Z_MAX, Z_MAX), np.clip(upper, -Z_MAX, Z_MAX)
    edges = z_lo[..., None] + (z_hi - z_lo)[..., None] * np.linspace(0.0, 1.0, PANELS + 1)
    half = (edges[..., 1:] - edges[..., :-1]) / 2
    z = ((edges[..., :-1] + half)[..., None] + half[..., None] * _GL_NODES).reshape(*mean.shape, -1)
    w = (half[..., None] * _GL_WEIGHTS).reshape(*mean.shape, -1) * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    # an infinite std (q past float64) leaves no mass in the middle: its 0 weights must not meet f(inf * 0)
    middle = np.sum(np.where(w == 0, 0.0, w * f(mean[..., None] + std[..., None] * z)), axis=-1)
    above = 0.5 * _erfc(upper / math.sqrt(2))
    below = 0.5 * _erfc(-lower / math.sqrt(2))
    return middle + np.asarray(f_plus) * above + np.asarray(f_minus) * below


class Moments(Protocol):
    """The Gaussian integrals of an activation that the recurrences need (``u, u'`` as in the module doc)."""

    def mean(self, q: np.ndarray) -> np.ndarray:
        """``M(q) = E φ(u)``."""

    def second(self, q: np.ndarray) -> np.ndarray:
        """``V(q) = E φ(u)²``."""

    def derivative_second(self, q: np.ndarray) -> np.ndarray:
        """``V'(q) = E φ'(u)²``."""

    def half_distance(self, q: np.ndarray, gap: np.ndarray) -> np.ndarray:
        """``D = E (φ(u) - φ(u'))² / 2`` for variances ``q`` and covariance ``c = q - gap``."""


class Tanh:
    """tanh: an odd activation (``M = 0``), integrals by :func:`gaussian_expectation`."""

    def mean(self, q: np.ndarray) -> np.ndarray:
        return np.zeros_like(np.asarray(q, dtype=float))

    def second(self, q: np.ndarray) -> np.ndarray:
        return gaussian_expectation(lambda y: np.tanh(y) ** 2, 1.0, 1.0, 0.0, np.sqrt(q))

    def derivative_second(self, q: np.ndarray) -> np.ndarray:
        return gaussian_expectation(lambda y: np.cosh(y) ** -4.0, 0.0, 0.0, 0.0, np.sqrt(q))

    def half_distance(self, q: np.ndarray, gap: np.ndarray) -> np.ndarray:
        q, gap = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(gap, dtype=float))
        values = [self._half_distance(qi, gi) for qi, gi in zip(q.ravel(), gap.ravel(), strict=True)]
        return np.array(values).reshape(q.shape)

    @staticmethod
    def _half_distance(q: float, gap: float) -> float:
        """Outer integral over ``u ~ N(0, q)`` on panels at most ``min(1, √q / 2)`` wide; inner over ``u' | u``,
        which is ``N(ρ u, q (1 - ρ²))`` with ``ρ = c / q`` and ``q (1 - ρ²) = gap (2q - gap) / q``."""
        if not q <= TANH_Q_MAX:  # also NaN and the infinite q of an overflowed p
            return math.nan
        if q <= 0 or gap <= 0:
            return 0.0
        root = math.sqrt(q)
        panels = max(PANELS, math.ceil(2 * Z_MAX * root / min(1.0, root / 2)))
        edges = np.linspace(-Z_MAX * root, Z_MAX * root, panels + 1)
        half = (edges[1:] - edges[:-1]) / 2
        u = ((edges[:-1] + half)[:, None] + half[:, None] * _GL_NODES).ravel()
        w = (half[:, None] * _GL_WEIGHTS).ravel() * np.exp(-u * u / (2 * q)) / math.sqrt(2 * math.pi * q)
        rho = 1 - gap / q
        std = math.sqrt(max(gap * (2 * q - gap) / q, 0.0))
        t = np.tanh(u)
        inner = gaussian_expectation(lambda y: (t[:, None] - np.tanh(y)) ** 2 / 2, (t + 1) ** 2 / 2,
                                     (t - 1) ** 2 / 2, rho * u, std)
        return float(np.sum(w * inner))


class ReLU:
    """ReLU: closed forms; ``D`` from the arc-cosine kernel ``E φ(u)φ(u') = q (sin θ + (π - θ) cos θ) / 2π``."""

    def mean(self, q: np.ndarray) -> np.ndarray:
        return np.sqrt(np.asarray(q, dtype=float) / (2 * math.pi))

    def second(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, dtype=float) / 2

    def derivative_second(self, q: np.ndarray) -> np.ndarray:
        return np.full_like(np.asarray(q, dtype=float), 0.5)

    def half_distance(self, q: np.ndarray, gap: np.ndarray) -> np.ndarray:
        # q/2 - kernel = q (π (1 - cos θ) - (sin θ - θ cos θ)) / 2π, and 1 - cos θ = gap / q exactly
        q, gap = np.asarray(q, dtype=float), np.asarray(gap, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            one_minus_cos = np.where(q > 0, gap / np.where(q > 0, q, 1.0), 0.0)
        theta = 2 * np.arcsin(np.sqrt(np.clip(one_minus_cos / 2, 0.0, 1.0)))
        return q * (math.pi * one_minus_cos - (np.sin(theta) - theta * np.cos(theta))) / (2 * math.pi)


_TS_STEP = 1 / 32
_TS_T = np.arange(-3.2, 3.2 + _TS_STEP / 2, _TS_STEP)
_TS_LEFT = 1 / (1 + np.exp(-math.pi * np.sinh(_TS_T)))  # d / L at each node, d in (0, L)
_TS_RIGHT = 1 / (1 + np.exp(math.pi * np.sinh(_TS_T)))  # (L - d) / L, without cancellation
_TS_WEIGHTS = _TS_STEP * (math.pi / 2) * np.cosh(_TS_T) / np.cosh(math.pi / 2 * np.sinh(_TS_T)) ** 2 / 2


def angular_integral(theta: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """``J(θ) = ∫_0^{π-θ} sin(d)^α sin(π - θ - d)^α dd`` by the tanh-sinh rule (elementwise over ``θ``, ``α``).

    With ``u, u'`` of variance ``q`` at angle ``θ`` (``cos θ = ρ``), polar coordinates give
    ``E φ(u)φ(u') = q^α 2^α Γ(1 + α) J(θ) / 2π`` for the α-ReLU (Cho & Saul's ``J_n`` for non-integer ``n``).
    """
    theta, alpha = np.broadcast_arrays(np.asarray(theta, dtype=float), np.asarray(alpha, dtype=float))
    length = (math.pi - theta)[..., None]
    values = (np.sin(length * _TS_LEFT) * np.sin(length * _TS_RIGHT)) ** alpha[..., None]
    return np.sum(values * _TS_WEIGHTS, axis=-1) * length[..., 0]


class AlphaReLU:
    """α-ReLU ``φ(x) = x^α`` for ``x > 0``, else 0: Gamma-function moments, angular ``D``."""

    def __init__(self, alpha: float | np.ndarray) -> None:
        self.alpha = np.asarray(alpha, dtype=float)

    def _half_moment(self, q: np.ndarray, power: float | np.ndarray) -> np.ndarray:
        """``E[u^power; u > 0] = (2q)^{power/2} Γ((power + 1)/2) / (2√π)``."""
        return (2 * np.asarray(q, dtype=float)) ** (power / 2) * _gamma((power + 1) / 2) / (2 * math.sqrt(math.pi))

    def mean(self, q: np.ndarray) -> np.ndarray:
        return self._half_moment(q, self.alpha)

    def second(self, q: np.ndarray) -> np.ndarray:
        return self._half_moment(q, 2 * self.alpha)

    def derivative_second(self, q: np.ndarray) -> np.ndarray:
        return self.alpha**2 * self._half_moment(q, 2 * self.alpha - 2)

    def half_distance(self, q: np.ndarray, gap: np.ndarray) -> np.ndarray:
        q, gap = np.asarray(q, dtype=float), np.asarray(gap, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            one_minus_cos = np.where(q > 0, gap / np.where(q > 0, q, 1.0), 0.0)
        theta = 2 * np.arcsin(np.sqrt(np.clip(one_minus_cos / 2, 0.0, 1.0)))
        scale = q**self.alpha * 2**self.alpha * _gamma(1 + self.alpha) / (2 * math.pi)
        return scale * (angular_integral(np.zeros_like(theta), self.alpha) - angular_integral(theta, self.alpha))


def moments(activation: str, alpha: float | np.ndarray | None = None) -> Moments:
    """The integrals of ``activation`` (``alpha`` is needed by, and only allowed for, ``"alpha-relu"``)."""
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    if activation == "alpha-relu":
        if alpha is None:
            raise ConfigError("activation 'alpha-relu' needs alpha (the exponent of x^alpha)")
        if not np.all(np.asarray(alpha) > 0.5) or not np.all(np.isfinite(alpha)):
            raise ConfigError(f"alpha must be > 1/2 and finite (below 1/2, E φ'(u)² and so the gradients diverge), "
                              f"got {alpha}")
        return AlphaReLU(alpha)
    if alpha is not None:
        raise ConfigError(f"alpha is the exponent of 'alpha-relu' and means nothing for {activation!r}")
    return Tanh() if activation == "tanh" else ReLU()


@dataclass(frozen=True)
class Theory:
    """Per-layer quantities, layers ``0..depth`` on the first axis, then the shape of the σ grid.

    ``chi`` is normalised to ``χ^L = 1``, so ``chi[0] = R`` and ``log_R = log chi[0]``; ``log_chi`` is its
    logarithm, summed from the per-layer logs, so it stays finite where ``chi`` overflows.

    ``chi_w, chi_v, chi_a, chi_b`` are the parameters' ``χ_*^l`` (module doc) with the same normalisation
    (``χ^L = 1``); layer 0, the input, has no parameters and holds NaN, as do ``chi_v, chi_a`` of an RRN.
    """

    p: np.ndarray
    gamma: np.ndarray
    e: np.ndarray
    s: np.ndarray
    chi: np.ndarray
    mean: np.ndarray
    log_R: np.ndarray
    log_chi: np.ndarray
    chi_w: np.ndarray
    chi_v: np.ndarray
    chi_a: np.ndarray
    chi_b: np.ndarray

    def first_nonfinite(self) -> dict[str, int]:
        """For each computed quantity with a non-finite value, the first such layer; for ``chi`` (normalised at the top,
        so it overflows at the bottom) the last such layer plus one, below which ``chi`` is not finite.

        Non-finite values come from float64's overflow (``p`` past 1.8e308, ``χ^0 = R`` past it while ``log R``
        is finite) or from tanh's correlation integral beyond ``TANH_Q_MAX``.
        """
        found = {}
        for name in ("p", "gamma", "e", "s", "mean"):
            bad = ~np.isfinite(getattr(self, name))
            bad = bad.reshape(len(bad), -1).any(1)
            if bad.any() and not bad[0]:  # layer 0 is the input: non-finite there means not computed
                found[name] = int(np.argmax(bad))
        bad_chi = ~np.isfinite(self.chi).reshape(len(self.chi), -1).any(1)
        if bad_chi.any():
            found["chi"] = int(len(bad_chi) - np.argmax(bad_chi[::-1]))
        return found


def _feedforward(activation: str, depth: int, sigma_w2: object, sigma_v2: object, sigma_a2: object,
                 sigma_b2: object, alpha: object, p0: float, e0: float) -> object:
    """``theory("ffn", ...)``: the feed-forward recurrences, which have no V or a."""
    from resdyn.meanfield.feedforward import feedforward_theory

    if np.any(np.asarray(sigma_v2) != 1.0) or np.any(np.asarray(sigma_a2) != 0.0):
        raise ConfigError("a feed-forward net (h = W x + b, x' = φ(h)) has no V or a: leave sigma_v2 = 1, "
                          "sigma_a2 = 0")
    return feedforward_theory(activation, depth, sigma_w2=sigma_w2, sigma_b2=sigma_b2, alpha=alpha, p0=p0, e0=e0)


def check_variances(**sigmas: float | np.ndarray) -> None:
    """Refuse variances that are negative, NaN or infinite, naming the parameter."""
    for name, value in sigmas.items():
        value = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise ConfigError(f"the sigma's are variances: {name} must be finite and >= 0, got {value.tolist()}")


def check_settings(net: str, sigma_v2: object, sigma_a2: object, p0: float, e0: float) -> None:
    """Refuse settings the equations cannot take: unknown nets, σ_v / σ_a on an RRN, inputs out of range."""
    if net not in NETS:
        raise ConfigError(f"unknown net {net!r}; valid: {', '.join(NETS)} (full and reduced residual nets)")
    if net == "rrn" and (np.any(np.asarray(sigma_v2) != 1.0) or np.any(np.asarray(sigma_a2) != 0.0)):
        raise ConfigError("an RRN (x' = φ(h) + x) has no V or a: leave sigma_v2 = 1 and sigma_a2 = 0")
    if not 0 < p0 < math.inf:
        raise ConfigError(f"p0 (the inputs' <x_i²>) must be finite and > 0, got {p0}")
    if not -1 <= e0 <= 1:
        raise ConfigError(f"e0 (the inputs' cosine) must be in [-1, 1], got {e0}")


def theory(net: Net, activation: ActivationName, depth: int, *, sigma_w2: float | np.ndarray,
           sigma_v2: float | np.ndarray = 1.0, sigma_a2: float | np.ndarray = 0.0,
           sigma_b2: float | np.ndarray = 0.0, alpha: float | np.ndarray | None = None, p0: float = 1.0,
           e0: float = 0.5, correlations: bool = True) -> Theory:
    """Solve the mean-field recurrences (module doc) for ``depth`` layers from inputs with ``<x_i²> = p0``,
    cosine ``e0`` and mean 0.

    ``net="ffn"`` is the plain feed-forward net of Poole et al. 2016 / Schoenholz et al. 2017, which has no V or
    a: it returns :class:`resdyn.meanfield.feedforward.FeedForwardTheory` (``q, c, chi``) instead.

    The σ's and ``alpha`` may be arrays (broadcast together): every output then has that shape after the
    layer axis, and ``log_R`` has it alone. With ``correlations=False`` only ``p``, ``mean`` and ``chi`` are
    computed (``gamma``, ``e`` and ``s`` are NaN): for tanh the correlation needs a two-dimensional integral
    per layer and grid point, the length and gradient only one-dimensional ones.
    """
    if net == "ffn":
        return _feedforward(activation, depth, sigma_w2, sigma_v2, sigma_a2, sigma_b2, alpha, p0, e0)
    check_settings(net, sigma_v2, sigma_a2, p0, e0)
    check_variances(sigma_w2=sigma_w2, sigma_v2=sigma_v2, sigma_a2=sigma_a2, sigma_b2=sigma_b2)
    if depth < 1:
        raise ConfigError(f"depth must be at least 1, got {depth}")
    phi = moments(activation, alpha)
    sw, sv, sa, sb, _ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                             (sigma_w2, sigma_v2, sigma_a2, sigma_b2, 0.0 if alpha is None else alpha)))
    full = net == "frn"
    p = [np.full(sw.shape, p0)]
    s = [np.full(sw.shape, (1 - e0) * p0)]
    mu = [np.zeros(sw.shape)]
    log_growth, second, slope = [], [], []  # per layer 1..L: log(χ^{l-1}/χ^l), V(q^l), V'(q^l)
    # past float64 the values become inf / NaN: expected, and reported by Theory.first_nonfinite
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(depth):
            q = sw * p[-1] + sb
            second.append(phi.second(q))
            slope.append(phi.derivative_second(q))
            if full:
                p.append(p[-1] + sv * second[-1] + sa)
                mu.append(mu[-1])
                log_growth.append(np.log1p(sv * sw * slope[-1]))
            else:
                m = phi.mean(q)
                p.append(p[-1] + second[-1] + 2 * m * mu[-1])
                mu.append(mu[-1] + m)
                log_growth.append(np.log1p(sw * slope[-1]))
            if correlations:
                s.append(s[-1] + (sv if full else 1.0) * phi.half_distance(q, sw * s[-1]))
    p_arr, mu_arr = np.stack(p), np.stack(mu)
    # χ^l / χ^L = Π_{k > l} growth_k: a reversed cumulative sum of the logs, and 0 at the top layer
    log_chi = np.concatenate([np.cumsum(np.stack(log_growth)[::-1], axis=0)[::-1], np.zeros((1, *sw.shape))])
    s_arr = np.stack(s) if correlations else np.full(p_arr.shape, np.nan)
    gamma = p_arr - s_arr
    with np.errstate(over="ignore", invalid="ignore"):
        e, chi = gamma / p_arr, np.exp(log_chi)
        params = _parameter_gradients(chi, p_arr, np.stack(second), np.stack(slope), sv if full else None)
    return Theory(p=p_arr, gamma=gamma, e=e, s=s_arr, chi=chi, mean=mu_arr,
                  log_R=log_chi[0], log_chi=log_chi, **params)


def _parameter_gradients(chi: np.ndarray, p: np.ndarray, second: np.ndarray, slope: np.ndarray,
                         sigma_v2: np.ndarray | None) -> dict[str, np.ndarray]:
    """``χ_w, χ_v, χ_a, χ_b`` at layers ``0..L`` (module doc) from ``χ^l`` and ``p^l`` (layers ``0..L``) and
    ``V(q^l), V'(q^l)`` (layers ``1..L``); ``sigma_v2=None`` for an RRN, which has no V or a."""
    missing = np.full((1, *chi.shape[1:]), np.nan)
    chi_b = (1.0 if sigma_v2 is None else sigma_v2) * slope * chi[1:]
    out = {"chi_b": chi_b, "chi_w": chi_b * p[:-1]}
    if sigma_v2 is None:
        out |= {"chi_v": np.full(chi_b.shape, np.nan), "chi_a": np.full(chi_b.shape, np.nan)}
    else:
        out |= {"chi_v": second * chi[1:], "chi_a": chi[1:]}
    return {name: np.concatenate([missing, value]) for name, value in out.items()}
