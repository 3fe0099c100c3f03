"""Modified equations of ResNet and LM-ResNet (Lu, Zhong, Li & Dong, ICML 2018, sec. 2.3; Y. Lu's slides on
arXiv:1710.10121): the ODE that a scheme's trajectory follows to one order higher than the ODE it discretises.

Taylor-expanding the steps in ``Δt``::

    ResNet     u_{n+1} = u_n + Δt f(u_n)                      u' + (Δt/2) u'' = f(u)
    LM-ResNet  u_{n+1} = (1 - k) u_n + k u_{n-1} + Δt f(u_n)  (1 + k) u' + (1 - k)(Δt/2) u'' = f(u)

so ResNet is first order for ``u' = f(u)`` and second order for its modified equation; LM-ResNet with a fixed
``k`` is first order for ``(1 + k) u' = f(u)``. Solving the second-order modified equation as written needs a
second initial condition that the scheme does not have; its first-order truncation (``u'' = (f' f)/(1 + k)²``
up to ``O(Δt)``) is a first-order ODE with the same ``O(Δt²)`` closeness to the scheme::

    u' = f(u) / (1 + k) - (1 - k) Δt / (2 (1 + k)³) f'(u) f(u)

which :func:`modified_field` builds (``f' f`` as a Jacobian-vector product) and :func:`solve` integrates with
classical RK4 on a grid 8 times finer than ``Δt``: its error, ``O((Δt/8)⁴)``, is far below the ``O(Δt²)``
being measured, and a fixed grid keeps the result deterministic (an adaptive solver's tolerance would have to be
tuned to every ``Δt``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from resdyn.errors import ConfigError
from resdyn.schemes.multistep import LinearMultistep

Field = Callable[[torch.Tensor], torch.Tensor]
#: RK4 substeps per scheme step when solving a modified equation (module doc)
SUBSTEPS = 8


def euler_trajectory(f: Field, u0: torch.Tensor, dt: float, steps: int) -> torch.Tensor:
    """ResNet's states ``u_0..u_steps`` for ``u_{n+1} = u_n + Δt f(u_n)``, stacked on a new first axis."""
    states = [u0]
    for _ in range(steps):
        states.append(states[-1] + dt * f(states[-1]))
    return torch.stack(states)


def lm_trajectory(f: Field, u0: torch.Tensor, u1: torch.Tensor, k: float, dt: float, steps: int) -> torch.Tensor:
    """LM-ResNet's states ``u_0..u_steps`` for ``u_{n+1} = (1 - k) u_n + k u_{n-1} + Δt f(u_n)`` (the paper's
    ``k``) from the starting values ``u_0, u_1``."""
    states = [u0, u1]
    for _ in range(steps - 1):
        states.append((1 - k) * states[-1] + k * states[-2] + dt * f(states[-1]))
    return torch.stack(states)


def modified_field(f: Field, dt: float, k: float = 0.0) -> Field:
    """The right-hand side ``f/(1+k) - (1-k)Δt/(2(1+k)³) f' f`` of the truncated modified equation (module doc);
    ``k = 0`` is ResNet's ``f - (Δt/2) f' f``."""
    if k <= -1:
        raise ConfigError(f"the modified equation needs 1 + k > 0, got k = {k}")

    def field(u: torch.Tensor) -> torch.Tensor:
        value, jvp = torch.func.jvp(f, (u,), (f(u),))
        return value / (1 + k) - (1 - k) * dt / (2 * (1 + k) ** 3) * jvp

    return field


def solve(field: Field, u0: torch.Tensor, dt: float, steps: int, substeps: int = SUBSTEPS) -> torch.Tensor:
    """``u' = field(u)`` at ``t = 0, Δt, .., steps·Δt`` by classical RK4 with ``substeps`` steps per ``Δt``."""
    h = dt / substeps
    states, u = [u0], u0
    for _ in range(steps):
        for _ in range(substeps):
            k1 = field(u)
            k2 = field(u + h / 2 * k1)
            k3 = field(u + h / 2 * k2)
            k4 = field(u + h * k3)
            u = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        states.append(u)
    return torch.stack(states)


def modified_coefficients(k: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer, the coefficients ``(1 + k_n, (1 - k_n) Δt / 2)`` of ``u'`` and ``u''`` in LM-ResNet's modified
    equation, from the paper-convention ``k_n``.

    In a trained net the field absorbs the step (``u_{n+1} = ... + f_n(u_n)``), so ``Δt`` is a choice of time
    scale: ``Δt = 1`` reads the net as stepping one unit per layer, ``Δt = T / layers`` as covering ``[0, T]``.
    Where ``1 + k_n <= 0`` the first-order term changes sign: the layer is no longer a consistent step forward.
    """
    return 1 + k, (1 - k) * dt / 2


def lm_modified_coefficients(scheme: LinearMultistep, dt: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`modified_coefficients` of a (trained) LM-ResNet body's learned ``k_n`` (``scheme.k_paper()``, the
    values ``metrics()`` logs as ``lm_k``, whatever the scheme's convention)."""
    return modified_coefficients(scheme.k_paper(), dt)
