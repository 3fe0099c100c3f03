"""PolyNet's polynomial scheme (Zhang, Li, Loy, Lin 2017, "PolyNet"; the FIUBA 75.26 report on Lu et al. 2018,
sec. 2.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from resdyn.errors import ConfigError
from resdyn.schemes.base import Scheme


@dataclass(frozen=True)
class PolyOptions:
    #: the highest power of ``F``: 2 (``x + F x + F F x``) or 3
    order: int = 2

    def __post_init__(self) -> None:
        if self.order not in (2, 3):
            raise ConfigError(f"PolyNet order must be 2 or 3, got {self.order}")


class Poly(Scheme):
    """``x_{n+1} = x_n + F(x_n) + F(F(x_n))``, computed as ``x_n + (I + F) F x_n`` with one shared ``F``.

    ``(I + F + F^2)`` is the second-order truncation of ``(I - F)^{-1}``, so the block approximates a
    backward-Euler step of ``dx/dt = f(x)`` (Lu et al. 2018; the FIUBA 75.26 report's eq. 9), a method of order 1;
    ``order=3`` adds ``F^3``.
    (``order`` here is the polynomial's degree, an option; the scheme's order of convergence is 1.)
    """

    order = 1
    Options = PolyOptions

    def step(self, n: int, x: torch.Tensor, carry: Any) -> tuple[torch.Tensor, Any]:
        f = self.field(n)
        # (I + F) F x = F x + F(F x): each higher power applies F once more to the last power.
        power = f(x)
        total = power
        for _ in range(self.options.order - 1):
            power = f(power)
            total = total + power
        return x + total, None

    @classmethod
    def characteristic(cls, z: np.ndarray, order: float = 2, **coefficients: float) -> np.ndarray:
        growth = 1 + sum(z**p for p in range(1, int(order) + 1))
        return np.stack([np.ones_like(z), -growth], axis=-1)
