"""PolyNet's polynomial scheme (Zhang, Li, Loy, Lin 2017, "PolyNet"; seed 000 sec. 2.3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from resdyn.errors import ConfigError


class Poly(nn.Module):
    """``x_{n+1} = x_n + F(x_n) + F(F(x_n))``, computed as ``x_n + (I + F) F x_n`` with one shared ``F``.

    ``(I + F + F^2)`` is the second-order truncation of ``(I - F)^{-1}``, so the block approximates a
    backward-Euler step of ``dx/dt = f(x)`` (seed 000 eq. 9); ``order=3`` adds ``F^3`` (``x + (I + (I + F) F) F x``).
    A step whose shortcut ``P_n`` changes the state's shape cannot compose ``F`` with itself, so it is the
    Euler step ``P_n x_n + F(x_n)``. ``activation`` (post-activation ReLU) applies to the sum.
    """

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
        order: int = 2,
    ) -> None:
        super().__init__()
        if len(fields) != len(shortcuts):
            raise ValueError(f"{len(fields)} fields but {len(shortcuts)} shortcuts")
        if order not in (2, 3):
            raise ConfigError(f"PolyNet order must be 2 or 3, got {order}")
        self.fields = nn.ModuleList(fields)
        self.shortcuts = nn.ModuleList(shortcuts)
        self.activation = activation if activation is not None else nn.Identity()
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for f, shortcut in zip(self.fields, self.shortcuts, strict=True):
            if not isinstance(shortcut, nn.Identity):
                x = self.activation(shortcut(x) + f(x))
                continue
            # (I + F) F x = F x + F(F x): each higher order applies F once more to the last power.
            power = f(x)
            total = power
            for _ in range(self.order - 1):
                power = f(power)
                total = total + power
            x = self.activation(x + total)
        return x
