"""Adams-Bashforth residual networks: explicit linear multistep methods with fixed coefficients.

Bashforth & Adams 1883; Hairer, Nørsett, Wanner, "Solving ODEs I", sec. III.1. The ``s``-step method

    x_{n+1} = x_n + sum_{j=0}^{s-1} beta_j f(x_{n-j})

has order ``s``. LM-ResNet (:mod:`resdyn.schemes.multistep`, Lu et al. 2018) is their learnable generalisation:
it learns the weights of the previous states where these fix the weights of the previous field values.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import torch

from resdyn.schemes.base import Scheme


class AdamsBashforth(Scheme):
    """``x_{n+1} = x_n + sum_j beta_j f_{n-j}(x_{n-j})``; ``beta`` (newest first) sums to 1 (consistency).

    ``carry`` holds the last field values, newest first. With fewer than ``s`` of them (the start, and after a
    transition) the step is the Adams-Bashforth method of as many steps as there are values, from Euler up, so
    a network needs no starting procedure; an order test supplies exact starting values instead, because a
    self-started AB3 is only second order globally (its Euler first step errs by O(h^2)).
    """

    beta: ClassVar[tuple[Fraction, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "beta" in cls.__dict__ and sum(cls.beta) != 1:
            raise ValueError(f"{cls.__name__}: Adams-Bashforth weights must sum to 1, got {sum(cls.beta)}")

    def step(self, n: int, x: torch.Tensor, carry: list[torch.Tensor] | None) -> tuple[torch.Tensor, Any]:
        history = [self.field(n)(x), *(carry or [])][: len(self.beta)]
        beta = STARTING[len(history)] if len(history) < len(self.beta) else self.beta
        return x + sum(float(b) * f for b, f in zip(beta, history, strict=True)), history

    @classmethod
    def characteristic(cls, z: np.ndarray, **coefficients: float) -> np.ndarray:
        """``ρ^s - ρ^{s-1} - z sum_j beta_j ρ^{s-1-j}``."""
        ones = np.ones_like(z)
        return np.stack([ones, -ones - float(cls.beta[0]) * z, *(-float(b) * z for b in cls.beta[1:])], axis=-1)


class AB2(AdamsBashforth):
    """Two-step Adams-Bashforth, order 2: ``x_{n+1} = x_n + 3/2 f(x_n) - 1/2 f(x_{n-1})``."""

    order = 2
    beta = (Fraction(3, 2), Fraction(-1, 2))


class AB3(AdamsBashforth):
    """Three-step Adams-Bashforth, order 3: ``x_{n+1} = x_n + 23/12 f(x_n) - 16/12 f(x_{n-1}) + 5/12 f(x_{n-2})``."""

    order = 3
    beta = (Fraction(23, 12), Fraction(-16, 12), Fraction(5, 12))


# The lower-order methods a step falls back to while the history is short.
STARTING: dict[int, tuple[Fraction, ...]] = {1: (Fraction(1),), 2: AB2.beta}
