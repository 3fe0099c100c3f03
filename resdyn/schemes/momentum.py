"""Momentum (heavy-ball) residual networks (Polyak 1964; Sander, Ablin, Blondel, Peyré 2021, "Momentum Residual
Neural Networks", ICML):

    v_{n+1} = γ v_n + (1 - γ) f_n(x_n),        x_{n+1} = x_n + v_{n+1},

that is ``x_{n+1} = x_n + γ (x_n - x_{n-1}) + (1 - γ) f_n(x_n)``: a damped second-order system
``ε x'' + x' = f(x)`` stepped with velocity, and, for ``dx/dt = f(x)``, a consistent two-step method of order 1.
It is LM-ResNet's two-step form with ``k = -γ`` fixed and the field scaled by ``1 - γ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from resdyn.errors import ConfigError
from resdyn.schemes.base import Scheme


@dataclass(frozen=True)
class MomentumOptions:
    #: the momentum γ in [0, 1): 0 is forward Euler
    gamma: float = 0.9

    def __post_init__(self) -> None:
        if not 0 <= self.gamma < 1:
            raise ConfigError(f"momentum gamma must be in [0, 1), got {self.gamma}")


class Momentum(Scheme):
    """``v_{n+1} = γ v_n + (1 - γ) f_n(x_n)``, ``x_{n+1} = x_n + v_{n+1}``; ``carry`` is ``v_n`` (0 at a start)."""

    order = 1
    Options = MomentumOptions

    def step(self, n: int, x: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        gamma = self.options.gamma
        f = self.field(n)(x)
        v = (1 - gamma) * f if v is None else gamma * v + (1 - gamma) * f
        return x + v, v

    @classmethod
    def characteristic(cls, z: np.ndarray, gamma: float = 0.9, **coefficients: float) -> np.ndarray:
        """``ρ^2 - (1 + γ + (1 - γ) z) ρ + γ``."""
        ones = np.ones_like(z)
        return np.stack([ones, -(1 + gamma + (1 - gamma) * z), gamma * ones], axis=-1)
