"""Stochastic depth and shake-shake as weak discretisations of SDEs (Lu et al. 2018, sec. 3; Y. Lu's slides on
arXiv:1710.10121; eq. 27 of the FIUBA replication report), checked on linear fields, where the limit is geometric
Brownian motion with closed-form moments.

With a step ``Δt`` (depth ``L = T/Δt``) the noise must scale as ``√Δt`` and the mean as ``Δt``::

    shake-shake     X_{n+1} = X_n + (Δt/2 + √Δt (η - 1/2)) f1(X_n) + (Δt/2 + √Δt (1/2 - η)) f2(X_n),  η ~ U(0, 1)
                    -> dX = (f1 + f2)/2 dt + (f1 - f2)/√12 dW
    stochastic      X_{n+1} = X_n + (p Δt + √Δt (η - p)) f(X_n),  P(η = 1) = p
    depth           -> dX = p f dt + √(p (1 - p)) f dW

(at ``Δt = 1`` both are the plain rules ``X + η f1 + (1-η) f2`` and ``X + η f``). Scaling the noise with ``Δt``
instead of ``√Δt`` gives a variance ``O(Δt)`` per unit time: the limit is the deterministic ODE ``X' = p f``.

For ``f = a x`` (and ``f1 = a1 x``, ``f2 = a2 x``) each step multiplies ``X`` by an independent ``1 + C_n``, so
``E X_L^m = x0^m (E (1 + C)^m)^L`` exactly: :func:`step_moments` gives ``E(1+C), E(1+C)²``, and the weak error
against :func:`gbm_moments` is a deterministic number whose order in ``Δt`` can be fitted.
"""

from __future__ import annotations

import math

#: Var(η) of η ~ U(0, 1)
UNIFORM_VARIANCE = 1 / 12


def gbm_moments(mu: float, sigma: float, t: float, x0: float = 1.0) -> tuple[float, float]:
    """``E X_t`` and ``E X_t²`` of ``dX = μ X dt + σ X dW``: ``x0 e^{μt}`` and ``x0² e^{(2μ + σ²) t}``."""
    return x0 * math.exp(mu * t), x0**2 * math.exp((2 * mu + sigma**2) * t)


def shake_shake_sde(a1: float, a2: float) -> tuple[float, float]:
    """``(μ, σ)`` of the shake-shake limit for ``f1 = a1 x``, ``f2 = a2 x``."""
    return (a1 + a2) / 2, (a1 - a2) * math.sqrt(UNIFORM_VARIANCE)


def stochastic_depth_sde(a: float, p: float) -> tuple[float, float]:
    """``(μ, σ)`` of the stochastic-depth limit for ``f = a x`` with survival probability ``p``."""
    return p * a, a * math.sqrt(p * (1 - p))


def step_moments(drift: float, noise_variance: float) -> tuple[float, float]:
    """``E(1 + C)`` and ``E(1 + C)²`` of one step's multiplier, ``C`` with mean ``drift`` and variance
    ``noise_variance``."""
    return 1 + drift, (1 + drift) ** 2 + noise_variance


def shake_shake_step(a1: float, a2: float, dt: float) -> tuple[float, float]:
    """One shake-shake step's multiplier moments: ``C = μ Δt + √Δt (η - 1/2)(a1 - a2)``."""
    mu, sigma = shake_shake_sde(a1, a2)
    return step_moments(mu * dt, sigma**2 * dt)


def stochastic_depth_step(a: float, p: float, dt: float, noise_scale: float | None = None) -> tuple[float, float]:
    """One stochastic-depth step's multiplier moments: ``C = a (p Δt + s (η - p))`` with the noise scale ``s =
    √Δt`` (the SDE's scaling) unless ``noise_scale`` is given (``Δt``: the scaling that loses the noise)."""
    scale = math.sqrt(dt) if noise_scale is None else noise_scale
    return step_moments(a * p * dt, a**2 * scale**2 * p * (1 - p))


def terminal_moments(step: tuple[float, float], steps: int, x0: float = 1.0) -> tuple[float, float]:
    """``E X_L`` and ``E X_L²`` after ``steps`` independent steps with multiplier moments ``step``."""
    first, second = step
    return x0 * first**steps, x0**2 * second**steps
