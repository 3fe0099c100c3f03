"""The plain network: the same fields with no skip connection (the plain baselines of He, Zhang, Ren, Sun,
"Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv 2015): plain-18/34 on ImageNet, Fig. 4 and
Table 2; plain-20/32/44/56 on CIFAR-10, Fig. 6 left, whose deeper nets train worse: the degradation problem)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from resdyn.schemes.base import Scheme


class Plain(Scheme):
    """``x_{n+1} = sigma(f_n(x_n))``: each field replaces the state instead of adding to it.

    Not a discretisation of ``dx/dt = f(x)``: a field absorbs the step size, so ``f_n = O(h)`` and the state
    collapses to ``O(h)`` whatever the solution; the scheme is inconsistent (``order = 0``: refining the steps does
    not reduce the error). It is the baseline the skip connection is measured against.

    There is no shortcut ``P_n``: where the shape changes the field itself maps it (a stride-2, wider convolution),
    so ``shortcuts`` must all be ``nn.Identity`` and a plain network has exactly the parameters of the residual
    one with parameter-free (option A) shortcuts.
    """

    order = 0
    skip = False

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
        **options: Any,
    ) -> None:
        if not all(isinstance(s, nn.Identity) for s in shortcuts):
            raise ValueError("a plain network has no shortcuts: pass nn.Identity() for every field")
        super().__init__(fields, shortcuts, activation, **options)

    def step(self, n: int, x: torch.Tensor, carry: Any) -> tuple[torch.Tensor, Any]:
        return self.field(n)(x), None

    @classmethod
    def characteristic(cls, z: np.ndarray, **coefficients: float) -> np.ndarray:
        """``ρ - z``: stable where the field contracts, ``|z| <= 1``."""
        return np.stack([np.ones_like(z), -z], axis=-1)
