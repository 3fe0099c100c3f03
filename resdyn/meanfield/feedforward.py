"""Mean-field theory of plain feed-forward nets (Poole et al. 2016; Schoenholz et al. 2017): the contrast that
Yang & Schoenholz 2017 (as presented in G. B. Macedo's talk, IMECC Unicamp, 2020) draw with residual nets.

The net, with ``N`` units, ``W ~ N(0, σ_w²/N)`` and ``b ~ N(0, σ_b²)`` fresh in every layer and the input
``x^0``::

    h^l = W^l x^{l-1} + b^l,    x^l = φ(h^l)          (l = 1..L)

For two inputs the pre-activations are Gaussian with variance ``q^l`` and covariance ``q^l - g^l`` (``g`` the
half squared distance, tracked for the same reason as the residual theory's ``s``: ``1 - c`` stays exact near
``c = 1``); with ``V, D, V'`` the integrals of ``resdyn.meanfield.theory``::

    q^1 = σ_w² p0 + σ_b²,        q^{l+1} = σ_w² V(q^l) + σ_b²
    g^1 = σ_w² (1 - e0) p0,      g^{l+1} = σ_w² D(q^l, g^l)
    c^l = 1 - g^l / q^l          (the correlation coefficient of the two pre-activations)

Gradients, ``χ^l = <(∂E/∂h_i^l)²>`` (``χ^0``: of the input), under gradient independence:
``χ^l = σ_w² V'(q^l) χ^{l+1}`` and ``χ^0 = σ_w² χ^1``.

The fixed point ``(q*, c*)`` and its stability (Schoenholz et al. 2017, eqs. 5-9): ``χ_1 = σ_w² V'(q*)`` is the
slope of the correlation map at ``c = 1``; ``c* = 1`` is stable (the ordered phase) when ``χ_1 < 1`` and unstable
(chaos, ``c* < 1``) when ``χ_1 > 1``; ``χ_1 = 1`` is the order-to-chaos line. The depth scales are the inverse
log-slopes of the two maps at the fixed point::

    ξ_q^{-1} = -log(σ_w² dV/dq(q*))                       (Schoenholz et al.: χ_1 + σ_w² E φ''φ, the same
                                                          number, since dV/dq = E φ'² + E φ''φ by the heat equation)
    ξ_c^{-1} = -log(σ_w² E φ'(u)φ'(u') at (q*, c*))       (by Price's theorem the slope of the covariance map, which
                                                          is ∂D/∂g; at c* = 1 it is χ_1)

Signals propagate about ``ξ_c`` layers, and Schoenholz et al. (Fig. 5) find nets trainable up to about
``6 ξ_c``: :func:`trainable_depth` is that line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from resdyn.errors import ConfigError
from resdyn.meanfield.theory import Moments, check_variances, moments

#: activations of the feed-forward theory: the residual nets' three and erf (closed forms, Williams 1997)
FFN_ACTIVATIONS = ("tanh", "relu", "alpha-relu", "erf")
#: bisection steps for c*: the bracket (0, q*] shrinks to 2^-48 q*, below the integrals' own accuracy
BISECTIONS = 48


class Erf:
    """erf: closed forms from ``E erf(u) erf(u') = (2/π) arcsin(2c / (1 + 2q))`` (Williams 1997) and
    ``E erf'(u)² = (4/π) E e^{-2u²} = (4/π) / √(1 + 4q)``."""

    def mean(self, q: np.ndarray) -> np.ndarray:
        return np.zeros_like(np.asarray(q, dtype=float))

    def second(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        return 2 / math.pi * np.arcsin(2 * q / (1 + 2 * q))

    def derivative_second(self, q: np.ndarray) -> np.ndarray:
        return 4 / math.pi / np.sqrt(1 + 4 * np.asarray(q, dtype=float))

    def half_distance(self, q: np.ndarray, gap: np.ndarray) -> np.ndarray:
        # (2/π)(arcsin a - arcsin b) = (2/π) arcsin(a√(1-b²) - b√(1-a²)): no cancellation when gap → 0
        q, gap = np.asarray(q, dtype=float), np.asarray(gap, dtype=float)
        a, b = 2 * q / (1 + 2 * q), 2 * (q - gap) / (1 + 2 * q)
        return 2 / math.pi * np.arcsin(a * np.sqrt(1 - b * b) - b * np.sqrt(1 - a * a))


def ffn_moments(activation: str, alpha: float | np.ndarray | None = None) -> Moments:
    """The integrals of a feed-forward activation (``FFN_ACTIVATIONS``)."""
    if activation == "erf":
        if alpha is not None:
            raise ConfigError("alpha is the exponent of 'alpha-relu' and means nothing for 'erf'")
        return Erf()
    if activation not in FFN_ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; valid: {', '.join(FFN_ACTIVATIONS)}")
    return moments(activation, alpha)


@dataclass(frozen=True)
class FeedForwardTheory:
    """Per-layer quantities, layers ``0..depth`` on the first axis (then the σ grid's shape).

    Layer 0 is the input (``q[0] = p0``, ``c[0] = e0``); layer ``l >= 1`` the pre-activations ``h^l``. ``chi``
    is normalised to ``χ^L = 1`` (``log_chi`` its logarithm, finite where ``chi`` overflows), ``log_R =
    log χ^0``.
    """

    q: np.ndarray
    c: np.ndarray
    gap: np.ndarray
    chi: np.ndarray
    log_chi: np.ndarray
    log_R: np.ndarray


def feedforward_theory(activation: str, depth: int, *, sigma_w2: float | np.ndarray,
                       sigma_b2: float | np.ndarray = 0.0, alpha: float | np.ndarray | None = None,
                       p0: float = 1.0, e0: float = 0.5) -> FeedForwardTheory:
    """Iterate the feed-forward recurrences (module doc) for ``depth`` layers; σ's broadcast like ``theory``'s."""
    check_variances(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    if depth < 1:
        raise ConfigError(f"depth must be at least 1, got {depth}")
    if not 0 < p0 < math.inf or not -1 <= e0 <= 1:
        raise ConfigError(f"need 0 < p0 < inf and -1 <= e0 <= 1, got p0 = {p0}, e0 = {e0}")
    phi = ffn_moments(activation, alpha)
    sw, sb, _ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                      (sigma_w2, sigma_b2, 0.0 if alpha is None else alpha)))
    q = [np.full(sw.shape, p0), sw * p0 + sb]
    gap = [np.full(sw.shape, (1 - e0) * p0), sw * (1 - e0) * p0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(depth - 1):
            gap.append(sw * phi.half_distance(q[-1], gap[-1]))
            q.append(sw * phi.second(q[-1]) + sb)
        q_arr, gap_arr = np.stack(q), np.stack(gap)
        log_growth = np.log(sw * phi.derivative_second(q_arr[1:-1])) if depth > 1 else np.zeros((0, *sw.shape))
        # χ^l / χ^L = Π_{l < k < L} σ_w² V'(q^k) for l >= 1, and χ^0 = σ_w² χ^1
        tail = np.concatenate([np.cumsum(log_growth[::-1], axis=0)[::-1], np.zeros((1, *sw.shape))])
        log_chi = np.concatenate([tail[:1] + np.log(sw)[None], tail])
        c = np.concatenate([np.full((1, *sw.shape), e0), 1 - gap_arr[1:] / q_arr[1:]])
        chi = np.exp(log_chi)
    return FeedForwardTheory(q=q_arr, c=c, gap=gap_arr, chi=chi, log_chi=log_chi, log_R=log_chi[0])


@dataclass(frozen=True)
class FixedPoint:
    """The large-depth fixed point of a feed-forward net and its stability (module doc); arrays over the σ grid.

    ``q`` is inf where the length map has no fixed point (ReLU at σ_w² >= 2 with σ_b² > 0), and the other
    quantities NaN there.
    """

    q: np.ndarray
    c: np.ndarray
    chi_1: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray


def _grid(activation: str, sigma_w2: object, sigma_b2: object, alpha: object) -> tuple[Moments, np.ndarray, ...]:
    check_variances(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    phi = ffn_moments(activation, alpha)
    sw, sb, _ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                      (sigma_w2, sigma_b2, 0.0 if alpha is None else alpha)))
    return phi, sw, sb


def _length_fixed_point(phi: Moments, sw: np.ndarray, sb: np.ndarray, iterations: int, tol: float) -> np.ndarray:
    """``q*`` by iterating ``q -> σ_w² V(q) + σ_b²`` from 1; inf where it grows without bound."""
    q = np.ones(sw.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iterations):
            new = sw * phi.second(q) + sb
            done = np.all((np.abs(new - q) <= tol * np.abs(new)) | ~(new < 1e150))
            q = new
            if done:
                break
    return np.where(q < 1e150, q, np.inf)


def fixed_point(activation: str, *, sigma_w2: float | np.ndarray, sigma_b2: float | np.ndarray = 0.0,
                alpha: float | np.ndarray | None = None, iterations: int = 2000, tol: float = 1e-12) -> FixedPoint:
    """``q*, c*, χ_1, ξ_q, ξ_c``: ``q*`` by iterating the length map from ``q = 1``; ``c* = 1`` wherever
    ``χ_1 <= 1`` (there it is the stable fixed point; near the line the map approaches it only as ``1 - c ~
    1/l``), else the root of the correlation map by bisection.

    The correlation root assumes an odd activation (tanh, erf); ReLU and α-ReLU nets with ``χ_1 > 1`` have no
    finite ``q*`` at ``σ_b² > 0`` (ReLU) or are not covered (α-ReLU's ``c*``).
    """
    phi, sw, sb = _grid(activation, sigma_w2, sigma_b2, alpha)
    q = _length_fixed_point(phi, sw, sb, iterations, tol)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        chi_1 = sw * phi.derivative_second(q)
        chaotic = chi_1 > 1
        # c* < 1 where chaotic: the root of F(g) = σ_w² D(q*, g) - g in (0, q*], bracketed since F > 0 near 0
        # (slope χ_1 > 1) and F(q*) = -σ_b² <= 0 (odd φ; c = 0 maps to σ_b²/q*). Bisection, vectorised: the
        # map itself converges only at the rate 1 - 1/ξ_c, slowly near the transition.
        odd = activation in ("tanh", "erf")
        lo, hi = np.zeros(sw.shape), np.where(chaotic, q, 0.0)
        for _ in range(BISECTIONS if chaotic.any() and odd else 0):
            mid = (lo + hi) / 2
            above = np.where(chaotic, sw * phi.half_distance(q, mid) - mid > 0, False)
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        gap = np.where(chaotic, (lo + hi) / 2 if odd else np.nan, 0.0)
        # slopes at the fixed point: dV/dq by a central difference (V is smooth in q > 0), and for c* < 1
        # E φ'φ' = ∂D/∂g, also by a central difference
        h = 1e-5 * q
        dv_dq = (phi.second(q + h) - phi.second(q - h)) / (2 * h)
        slope_c = phi.derivative_second(q)
        if chaotic.any():
            slope_c = np.where(chaotic, (phi.half_distance(q, gap + h) - phi.half_distance(q, gap - h)) / (2 * h),
                               slope_c)
        return FixedPoint(q=q, c=1 - gap / q, chi_1=chi_1, xi_q=-1 / np.log(sw * dv_dq),
                          xi_c=-1 / np.log(sw * slope_c))


def order_to_chaos(activation: str, sigma_b2: float, *, alpha: float | None = None, lo: float = 0.05,
                   hi: float = 10.0, tol: float = 1e-6) -> float:
    """The ``σ_w²`` where ``χ_1 = σ_w² V'(q*) = 1`` at this ``σ_b²``: a vectorised grid search, refined around the
    sign change of ``log χ_1`` until the bracket is narrower than ``tol``. ReLU: 2 (at σ_b² = 0; for σ_b² > 0
    the length has no fixed point there)."""
    while hi - lo > tol:
        grid = np.linspace(lo, hi, 33)
        phi, sw, sb = _grid(activation, grid, sigma_b2, alpha)
        with np.errstate(invalid="ignore", divide="ignore"):
            ordered = sw * phi.derivative_second(_length_fixed_point(phi, sw, sb, 5000, 1e-13)) < 1
        if ordered.all() or not ordered[0]:
            raise ConfigError(f"no order-to-chaos transition for sigma_w2 in [{lo}, {hi}] at sigma_b2 = {sigma_b2}")
        k = int(np.argmin(ordered))  # the first chaotic grid point
        lo, hi = grid[k - 1], grid[k]
    return (lo + hi) / 2


def trainable_depth(activation: str, sigma_w2: np.ndarray, *, sigma_b2: float = 0.0,
                    alpha: float | None = None, multiple: float = 6.0) -> np.ndarray:
    """``multiple · ξ_c`` over ``sigma_w2``: the depth up to which Schoenholz et al. 2017 (Fig. 5) find plain
    nets trainable; it peaks (diverges) at the order-to-chaos line."""
    return multiple * fixed_point(activation, sigma_w2=np.asarray(sigma_w2, dtype=float), sigma_b2=sigma_b2,
                                  alpha=alpha).xi_c


@dataclass(frozen=True)
class FeedForwardSimulation:
    """Per-network values of random feed-forward nets, shape ``(samples, depth + 1)``, as the theory's: ``q``
    (layer 0: the input's ``<x_i²>``), ``c`` (correlation of the two inputs' pre-activations), ``chi``
    normalised to ``χ^L = 1``; ``log_R`` is ``(samples,)``."""

    q: np.ndarray
    c: np.ndarray
    chi: np.ndarray
    log_R: np.ndarray


def simulate_feedforward(activation: str, depth: int, *, width: int, samples: int, seed: int, sigma_w2: float,
                         sigma_b2: float = 0.0, alpha: float | None = None, p0: float = 1.0,
                         e0: float = 0.5, backward: str = "same") -> FeedForwardSimulation:
    """Run ``samples`` random feed-forward nets of ``width`` units forward on two inputs and backward from a
    random ``∂E/∂h^L ~ N(0, 1)``, by exact backpropagation (``"same"``) or with fresh backward weights
    (``"independent"``, the theory's assumption)."""
    import torch

    from resdyn.meanfield.simulate import Layer, two_inputs
    from resdyn.nets.meanfield import make_activation

    ffn_moments(activation, alpha)
    check_variances(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    if backward not in ("same", "independent"):
        raise ConfigError(f"backward must be 'same' or 'independent', got {backward!r}")
    if width < 2 or samples < 1 or depth < 1:
        raise ConfigError(f"need width >= 2, samples >= 1 and depth >= 1, got {width}, {samples}, {depth}")
    phi = torch.erf if activation == "erf" else make_activation(activation, 1.0 if alpha is None else alpha)
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([two_inputs(width, p0, e0, g) for _ in range(samples)])  # (samples, width, 2)
    hs = []
    for layer in range(1, depth + 1):
        w = Layer.draw(seed, layer, samples, width, False, sigma_w2, 1.0, 0.0, sigma_b2)
        h = w.w_scale * (w.w @ x.float()).double() + w.b
        hs.append(h)
        x = phi(h)
    states = torch.stack(hs, dim=1)  # (samples, depth, width, 2)
    lengths = (states**2).mean(2)
    q = torch.cat([torch.full((samples, 1), p0, dtype=torch.float64), lengths.mean(-1)], dim=1)
    c = (states[..., 0] * states[..., 1]).mean(2) / lengths.prod(-1).sqrt()
    c = torch.cat([torch.full((samples, 1), e0, dtype=torch.float64), c], dim=1)
    grad = torch.randn(samples, width, generator=g, dtype=torch.float64)
    grads = [grad]
    for layer in range(depth, 0, -1):
        backward_seed = seed if backward == "same" else seed + 7_919_000_003
        w = Layer.draw(backward_seed, layer, samples, width, False, sigma_w2, 1.0, 0.0, sigma_b2)
        back = w.w_scale * (w.w.transpose(1, 2) @ grad[..., None].float()).double()[..., 0]  # ∂E/∂x^{l-1}
        if layer > 1:
            h = hs[layer - 2][..., 0].requires_grad_()
            (slope,) = torch.autograd.grad(phi(h).sum(), h)  # φ'(h^{l-1}): φ acts elementwise
            back = slope * back
        grad = back
        grads.append(grad)
    chi = torch.stack(grads[::-1], dim=1).pow(2).mean(2)
    chi = chi / chi[:, -1:]
    return FeedForwardSimulation(q=q.numpy(), c=c.numpy(), chi=chi.numpy(), log_R=chi[:, 0].log().numpy())
