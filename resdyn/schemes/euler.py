"""Forward Euler: the plain residual network (He et al. 2015, "Deep Residual Learning"; He et al. 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from resdyn.schemes.base import Scheme


class Euler(Scheme):
    """``x_{n+1} = sigma(P_n x_n + f_n(x_n))``: one forward-Euler step of ``dx/dt = f(x)`` per field (order 1).

    ``P_n`` is the shortcut (identity inside a stage, a downsampling map at a transition) and ``sigma`` the
    activation that the post-activation ResNet of He et al. 2015 applies after the sum (identity for the
    pre-activation ResNet of He et al. 2016, which is exactly Euler).
    """

    order = 1

    def step(self, n: int, x: torch.Tensor, carry: Any) -> tuple[torch.Tensor, Any]:
        return x + self.field(n)(x), None

    @classmethod
    def characteristic(cls, z: np.ndarray, **coefficients: float) -> np.ndarray:
        return np.stack([np.ones_like(z), -(1 + z)], axis=-1)
