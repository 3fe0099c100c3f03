"""Linear two-step scheme: LM-ResNet (Lu, Zhong, Li, Dong 2018, "Beyond Finite Layer Neural Networks")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.metrics import ReportsMetrics

Convention = Literal["paper", "code"]
# Where the k_n start: the paper's U(-0.1, 0); the authors' code draws k_code ~ U(1.0, 1.1) = 1 - k_paper.
K_INIT: dict[str, tuple[float, float]] = {"paper": (-0.1, 0.0), "code": (1.0, 1.1)}
# The modified-equation analysis (Lu et al. 2018, sec. 3) gives stability for -1 <= k_n <= 1 when f is a
# gradient flow.
STABLE_K = (-1.0, 1.0)


class LinearMultistep(nn.Module, ReportsMetrics):
    """``u_{n+1} = (1 - k_n) u_n + k_n u_{n-1} + f_n(u_n)``, one learnable ``k_n`` per step (Lu et al. 2018, eq. 24).

    Conventions: ``"paper"`` is the equation above with ``k_n ~ U(-0.1, 0)`` at start; ``"code"`` is the
    authors' implementation, ``u_{n+1} = f_n(u_n) + k_n u_n + (1 - k_n) u_{n-1}`` with ``k_n ~ U(1.0, 1.1)``.
    They are the same scheme under ``k_code = 1 - k_paper``; :meth:`k_paper` reports the paper's ``k`` either way.

    A two-step method needs a previous state. Where there is none of the step's shape -- the very first step,
    and every step whose shortcut ``P_n`` changes the shape (a downsampling transition) -- the step is a
    forward-Euler step ``u_{n+1} = P_n u_n + f_n(u_n)`` with no ``k``, and the state it hands on as
    ``u_n`` for the next step is ``P_n u_n``, the projected input. This is what the authors' code does (their
    transition blocks carry a ``k`` that is never used; ours have none). ``activation`` (the post-activation
    ResNet's ReLU) is applied to the sum, as in :class:`resdyn.schemes.Euler`.
    """

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
        convention: Convention = "paper",
        k_init: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if len(fields) != len(shortcuts):
            raise ValueError(f"{len(fields)} fields but {len(shortcuts)} shortcuts")
        if convention not in K_INIT:
            raise ConfigError(f"unknown LM convention {convention!r}; valid: 'paper', 'code'")
        self.fields = nn.ModuleList(fields)
        self.shortcuts = nn.ModuleList(shortcuts)
        self.activation = activation if activation is not None else nn.Identity()
        self.convention = convention
        # Steps with a previous state of their shape: all but the first and the transitions.
        self.two_step = [i > 0 and isinstance(s, nn.Identity) for i, s in enumerate(shortcuts)]
        low, high = k_init if k_init is not None else K_INIT[convention]
        self.k = nn.Parameter(torch.empty(sum(self.two_step)).uniform_(low, high))

    def step(self, n: int, u: torch.Tensor, u_prev: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        f = self.fields[n](u)
        if self.convention == "paper":
            return (1 - k) * u + k * u_prev + f
        return f + k * u + (1 - k) * u_prev

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        u_prev = u
        j = 0
        for n, (f, shortcut) in enumerate(zip(self.fields, self.shortcuts, strict=True)):
            if self.two_step[n]:
                u, u_prev = self.activation(self.step(n, u, u_prev, self.k[j])), u
                j += 1
            else:
                projected = shortcut(u)
                u, u_prev = self.activation(projected + f(u)), projected
        return u

    def k_paper(self) -> torch.Tensor:
        """The learned ``k_n`` in the paper's convention, one per two-step layer, in depth order."""
        k = self.k.detach()
        return k if self.convention == "paper" else 1 - k

    def metrics(self) -> dict[str, Any]:
        k = self.k_paper().float().cpu()
        low, high = STABLE_K
        outside = [i for i, v in enumerate(k.tolist()) if not low <= v <= high]
        return {"lm_k": [round(v, 6) for v in k.tolist()], "lm_k_outside_stability": outside}
