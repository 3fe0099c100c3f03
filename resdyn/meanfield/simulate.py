"""Finite-width Monte Carlo of the mean-field quantities on random FRNs and RRNs: the theory's referee.

Each of ``samples`` independent networks of ``width`` units is drawn as the theory assumes (fresh Gaussian
``W, V, b, a`` per layer) and run forward on two inputs with ``<x_i²> = p0``, cosine ``e0`` and mean 0, then
backward from a random ``∂E/∂x^L ~ N(0, 1)`` by exact backpropagation (``backward="same"``, what autograd
computes; ``tests/meanfield`` checks the two agree) or with fresh, independent ``W, V`` (``"independent"``, the
gradient independence assumption of the theory made literal).

A network's weights are never stored: each layer's are drawn from a generator seeded by ``(seed, layer)`` and
drawn again for the backward pass, so memory is ``O(depth x width)`` rather than ``O(depth x width²)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from resdyn.errors import ConfigError
from resdyn.meanfield.theory import ActivationName, Net, check_settings, check_variances, moments
from resdyn.nets.meanfield import make_activation

QUANTITIES = ("p", "gamma", "e", "s", "chi")


@dataclass(frozen=True)
class Simulation:
    """Per-network values, shape ``(samples, depth + 1)`` (``log_R``: ``(samples,)``); ``chi`` is normalised to
    ``χ^L = 1`` in each network, like the theory's, and so are the parameters' ``chi_w, chi_v, chi_a, chi_b``
    (the mean squared gradient over the entries of layer ``l``'s ``W, V, a, b`` for the first input; NaN at
    layer 0, and for an RRN's absent ``V, a``)."""

    p: np.ndarray
    gamma: np.ndarray
    e: np.ndarray
    s: np.ndarray
    chi: np.ndarray
    log_R: np.ndarray
    chi_w: np.ndarray
    chi_v: np.ndarray
    chi_a: np.ndarray
    chi_b: np.ndarray

    def summary(self) -> dict[str, dict[str, list[float]]]:
        """Mean and standard deviation over the networks of each quantity, as lists (``curves.json``)."""
        out = {name: {"mean": getattr(self, name).mean(0).tolist(), "std": getattr(self, name).std(0).tolist()}
               for name in QUANTITIES}
        out["log_R"] = {"mean": float(self.log_R.mean()), "std": float(self.log_R.std())}
        return out


def two_inputs(width: int, p0: float, e0: float, generator: torch.Generator) -> torch.Tensor:
    """Two zero-mean vectors with ``<x_i²> = p0`` exactly and cosine ``e0`` exactly, as the columns of a
    ``(width, 2)`` float64 tensor."""
    raw = torch.randn(width, 2, generator=generator, dtype=torch.float64)
    raw -= raw.mean(0)  # Gram-Schmidt keeps combinations of zero-mean vectors zero-mean
    u1 = raw[:, 0] / raw[:, 0].norm()
    u2 = raw[:, 1] - (raw[:, 1] @ u1) * u1
    u2 /= u2.norm()
    scale = math.sqrt(width * p0)
    return torch.stack([scale * u1, scale * (e0 * u1 + math.sqrt(1 - e0 * e0) * u2)], dim=1)


@dataclass(frozen=True)
class Layer:
    """One layer's weights for every network: ``W, V`` as standard normals in float32 with their scales ``σ/√N``
    kept apart (scaling a product is cheaper than scaling a matrix, and float32 draws are 7x faster on the CPU),
    the biases ``b, a`` in float64. An RRN's layer has no ``V, a``."""

    w: torch.Tensor
    b: torch.Tensor
    w_scale: float
    v: torch.Tensor | None = None
    a: torch.Tensor | None = None
    v_scale: float = 0.0

    @staticmethod
    def draw(seed: int, layer: int, samples: int, width: int, full: bool, sw: float, sv: float, sa: float,
             sb: float) -> Layer:
        """Layer ``layer``'s weights, always the same for the same ``(seed, layer)``."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + layer)
        w = torch.randn(samples, width, width, generator=g)
        b = torch.randn(samples, width, 1, generator=g, dtype=torch.float64) * math.sqrt(sb)
        if not full:
            return Layer(w, b, math.sqrt(sw / width))
        v = torch.randn(samples, width, width, generator=g)
        a = torch.randn(samples, width, 1, generator=g, dtype=torch.float64) * math.sqrt(sa)
        return Layer(w, b, math.sqrt(sw / width), v, a, math.sqrt(sv / width))

    def step(self, x: torch.Tensor, phi: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, x')``: ``h = W x + b`` and ``x' = V φ(h) + x + a`` (FRN) or ``φ(h) + x`` (RRN)."""
        h = _product(self.w, self.w_scale, x) + self.b
        if self.v is None:
            return h, x + phi(h)
        return h, x + _product(self.v, self.v_scale, phi(h)) + self.a

    def pre_activation_grad(self, grad: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        """``δ = ∂E/∂h = φ'(h) ⊙ Vᵀ ∂E/∂x'`` (RRN: ``φ'(h) ⊙ ∂E/∂x'``), for ``grad = ∂E/∂x'`` of shape (samples,
        width); it is also ``∂E/∂b``."""
        back = grad if self.v is None else _product(self.v.transpose(1, 2), self.v_scale, grad[..., None])[..., 0]
        return slope * back

    def back(self, grad: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """``∂E/∂x = ∂E/∂x' + Wᵀ δ``, for ``grad = ∂E/∂x'`` and ``δ`` from :meth:`pre_activation_grad`."""
        return grad + _product(self.w.transpose(1, 2), self.w_scale, delta[..., None])[..., 0]


def _product(matrix: torch.Tensor, scale: float, x: torch.Tensor) -> torch.Tensor:
    return scale * (matrix @ x.float()).double()


def simulate(net: Net, activation: ActivationName, depth: int, *, width: int, samples: int, seed: int,
             sigma_w2: float, sigma_v2: float = 1.0, sigma_a2: float = 0.0, sigma_b2: float = 0.0,
             alpha: float | None = None, p0: float = 1.0, e0: float = 0.5,
             backward: Literal["same", "independent"] = "same") -> Simulation:
    """Run ``samples`` random networks of ``width`` units and ``depth`` layers forward and backward (module doc).

    ``net="ffn"``: plain feed-forward nets; returns :class:`resdyn.meanfield.feedforward.FeedForwardSimulation`.
    """
    if net == "ffn":
        from resdyn.meanfield.feedforward import simulate_feedforward

        if sigma_v2 != 1.0 or sigma_a2 != 0.0:
            raise ConfigError("a feed-forward net has no V or a: leave sigma_v2 = 1, sigma_a2 = 0")
        return simulate_feedforward(activation, depth, width=width, samples=samples, seed=seed, sigma_w2=sigma_w2,
                                    sigma_b2=sigma_b2, alpha=alpha, p0=p0, e0=e0, backward=backward)
    check_settings(net, sigma_v2, sigma_a2, p0, e0)
    check_variances(sigma_w2=sigma_w2, sigma_v2=sigma_v2, sigma_a2=sigma_a2, sigma_b2=sigma_b2)
    moments(activation, alpha)  # the same checks of activation and alpha as the theory's
    if width < 2 or samples < 1 or depth < 1:
        raise ConfigError(f"need width >= 2, samples >= 1 and depth >= 1, got {width}, {samples}, {depth}")
    if backward not in ("same", "independent"):
        raise ConfigError(f"backward must be 'same' or 'independent', got {backward!r}")
    phi = make_activation(activation, 1.0 if alpha is None else alpha)
    full = net == "frn"
    sigmas = (sigma_w2, sigma_v2, sigma_a2, sigma_b2)
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([two_inputs(width, p0, e0, g) for _ in range(samples)])  # (samples, width, 2)
    xs, hs = [x], []
    for layer in range(1, depth + 1):
        h, x = Layer.draw(seed, layer, samples, width, full, *sigmas).step(x, phi)
        hs.append(h[..., 0])
        xs.append(x)
    grad = torch.randn(samples, width, generator=g, dtype=torch.float64)
    grads = [grad]
    # layers L..1: <δ²> (= χ_b) and <(∂E/∂x^l)²> <φ(h^l)²> (= χ_v), the mean of an outer product's squares
    delta_sq, branch_sq = [], []
    # backward seeds: the forward's for exact backpropagation, others for independent weights
    backward_seed = seed if backward == "same" else seed + 7_919_000_003
    for layer in range(depth, 0, -1):
        h = hs[layer - 1].requires_grad_()
        out = phi(h)
        (slope,) = torch.autograd.grad(out.sum(), h)  # φ'(h): φ acts elementwise
        weights = Layer.draw(backward_seed, layer, samples, width, full, *sigmas)
        delta = weights.pre_activation_grad(grad, slope)
        delta_sq.append(delta.pow(2).mean(1))
        branch_sq.append(grad.pow(2).mean(1) * out.detach().pow(2).mean(1))
        grad = weights.back(grad, delta)
        grads.append(grad)
    states = torch.stack(xs, dim=1)  # (samples, depth + 1, width, 2)
    lengths = (states**2).mean(2)
    p = lengths.mean(-1)
    gamma = (states[..., 0] * states[..., 1]).mean(2)
    chi = torch.stack(grads[::-1], dim=1).pow(2).mean(2)
    top = chi[:, -1:]
    chi = chi / top
    missing = torch.full((samples, 1), torch.nan, dtype=torch.float64)
    chi_b = torch.cat([missing, torch.stack(delta_sq[::-1], dim=1) / top], dim=1)
    chi_w = chi_b * torch.cat([missing, lengths[:, :-1, 0]], dim=1)  # <δ_j²> <(x_k^{l-1})²>, first input
    if full:
        chi_v = torch.cat([missing, torch.stack(branch_sq[::-1], dim=1) / top], dim=1)
        chi_a = torch.cat([missing, chi[:, 1:]], dim=1)
    else:
        chi_v = chi_a = torch.full_like(chi, torch.nan)
    return Simulation(p=p.numpy(), gamma=gamma.numpy(), e=(gamma / lengths.prod(-1).sqrt()).numpy(),
                      s=(p - gamma).numpy(), chi=chi.numpy(), log_R=chi[:, 0].log().numpy(),
                      chi_w=chi_w.numpy(), chi_v=chi_v.numpy(), chi_a=chi_a.numpy(), chi_b=chi_b.numpy())
