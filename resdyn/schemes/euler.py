"""Forward Euler: the plain residual network (He et al. 2015, 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Euler(nn.Module):
    """``x_{n+1} = sigma(P_n x_n + f_n(x_n))``: one forward-Euler step of ``dx/dt = f(x)`` per field.

    ``P_n`` is the shortcut (identity inside a stage, a downsampling map at a transition) and ``sigma`` the
    activation that the post-activation ResNet of He et al. 2015 applies after the sum (identity for the
    pre-activation ResNet of He et al. 2016, which is exactly Euler).
    """

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if len(fields) != len(shortcuts):
            raise ValueError(f"{len(fields)} fields but {len(shortcuts)} shortcuts")
        self.fields = nn.ModuleList(fields)
        self.shortcuts = nn.ModuleList(shortcuts)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for f, shortcut in zip(self.fields, self.shortcuts, strict=True):
            x = self.activation(shortcut(x) + f(x))
        return x
