"""Linear two-step scheme: LM-ResNet (Lu, Zhong, Li, Dong 2018, "Beyond Finite Layer Neural Networks", ICML)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from resdyn.metrics import ReportsMetrics
from resdyn.schemes.base import Scheme

Convention = Literal["paper", "code"]
# Where the k_n start: the paper's U(-0.1, 0); the authors' code draws k_code ~ U(1.0, 1.1) = 1 - k_paper.
K_INIT: dict[str, tuple[float, float]] = {"paper": (-0.1, 0.0), "code": (1.0, 1.1)}
# The modified-equation analysis (Lu et al. 2018, sec. 3) gives stability for -1 <= k_n <= 1 when f is a
# gradient flow.
STABLE_K = (-1.0, 1.0)


@dataclass(frozen=True)
class LMOptions:
    #: "paper" (eq. 24, k ~ U(-0.1, 0)) or "code" (the authors' implementation, k_code = 1 - k_paper)
    convention: Convention = "paper"


class LinearMultistep(Scheme, ReportsMetrics):
    """``u_{n+1} = (1 - k_n) u_n + k_n u_{n-1} + f_n(u_n)``, one learnable ``k_n`` per step (Lu et al. 2018, eq. 24).

    The learnable generalisation of the explicit two-step methods: ``k = 0`` is forward Euler and ``k = -γ`` the
    heavy-ball step (:mod:`resdyn.schemes.momentum`). Order 1 for general ``k`` (consistency alone; second order
    would need ``f``'s coefficients to depend on ``k``, as Adams-Bashforth's do).

    Conventions: ``"paper"`` is the equation above with ``k_n ~ U(-0.1, 0)`` at start; ``"code"`` is the
    authors' implementation, ``u_{n+1} = f_n(u_n) + k_n u_n + (1 - k_n) u_{n-1}`` with ``k_n ~ U(1.0, 1.1)``.
    They are the same scheme under ``k_code = 1 - k_paper``; :meth:`k_paper` reports the paper's ``k`` either way.

    A two-step method needs a previous state. Where there is none of the step's shape -- the very first step,
    and every step whose shortcut ``P_n`` changes the shape (a downsampling transition) -- the step is a
    forward-Euler step ``u_{n+1} = P_n u_n + f_n(u_n)`` with no ``k``, and the state it hands on as
    ``u_n`` for the next step is ``P_n u_n``, the projected input. This is what the authors' code does (their
    transition blocks carry a ``k`` that is never used; ours have none).
    """

    order = 1
    carries_state = True
    Options = LMOptions

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
        **options: Any,
    ) -> None:
        super().__init__(fields, shortcuts, activation, **options)
        self.convention: Convention = self.options.convention
        # One k per step with a previous state of its shape: all but the first and the transitions.
        two_step = [n > 0 and keeps for n, keeps in enumerate(self.keeps_shape)]
        self.k_index = {n: j for j, n in enumerate(n for n, two in enumerate(two_step) if two)}
        low, high = K_INIT[self.convention]
        self.k = nn.Parameter(torch.empty(len(self.k_index)).uniform_(low, high))

    def step(self, n: int, u: torch.Tensor, u_prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.field(n)(u)
        if u_prev is None:
            return u + f, u
        k = self.k[self.k_index[n]]
        if self.convention == "paper":
            return (1 - k) * u + k * u_prev + f, u
        return f + k * u + (1 - k) * u_prev, u

    @classmethod
    def characteristic(cls, z: np.ndarray, k: float = 0.0, **coefficients: float) -> np.ndarray:
        """``ρ^2 - (1 - k + z) ρ - k`` for the paper's ``k`` (one value for every step)."""
        return np.stack([np.ones_like(z), -(1 - k + z), -k * np.ones_like(z)], axis=-1)

    def k_paper(self) -> torch.Tensor:
        """The learned ``k_n`` in the paper's convention, one per two-step layer, in depth order."""
        k = self.k.detach()
        return k if self.convention == "paper" else 1 - k

    def metrics(self) -> dict[str, Any]:
        k = self.k_paper().float().cpu()
        low, high = STABLE_K
        outside = [i for i, v in enumerate(k.tolist()) if not low <= v <= high]
        return {"lm_k": [round(v, 6) for v in k.tolist()], "lm_k_outside_stability": outside}
