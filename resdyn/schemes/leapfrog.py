"""Leapfrog residual networks: the explicit two-step midpoint rule, reversible (Chang, Meng, Haber, Ruthotto,
Begert, Holtham 2018, "Reversible Architectures for Arbitrarily Deep Residual Neural Networks", AAAI; Haber &
Ruthotto 2017, "Stable architectures for deep neural networks").

    u_{n+1} = u_{n-1} + f_n(u_n)

is the leapfrog (explicit midpoint) method ``u_{n+1} = u_{n-1} + 2h g(u_n)`` for ``du/dt = g(u)``, the field
absorbing ``2h``; order 2, and stable only on the imaginary segment ``z in [-2i, 2i]`` (``f(u) = z u``): it suits
conservative, oscillating dynamics (Haber & Ruthotto's Hamiltonian view), not damped ones.

Two consecutive steps on the pair ``(u_{n-1}, u_n)`` are exactly a RevNet coupling (Gomez et al. 2017),

    (u_{n+1}, u_{n+2}) = (u_{n-1} + f_n(u_n),  u_n + f_{n+1}(u_{n+1})),

whose inverse ``u_n = u_{n+2} - f_{n+1}(u_{n+1})``, ``u_{n-1} = u_{n+1} - f_n(u_n)`` is exact, so backprop runs
through :mod:`resdyn.schemes.reversible`'s memory-saving function and stores no activations in between: the
pair's two halves are the coupling's two channel halves. (Chang et al.'s "Hamiltonian" network, a Verlet step
of two coupled states, is the same coupling on channel halves: RevNet, ``scheme="reversible"``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.schemes.base import Scheme
from resdyn.schemes.reversible import Reversible, ReversibleBlock


@dataclass(frozen=True)
class LeapfrogOptions:
    #: backpropagate through runs of steps without storing activations (False: ordinary autograd, to compare)
    memory_saving: bool = True


class Leapfrog(Scheme):
    """``u_{n+1} = u_{n-1} + f_n(u_n)``; the first step and the transitions are Euler steps (``carry`` is
    ``u_{n-1}``), and runs of shape-keeping steps backpropagate without storing activations (``memory_saving``).

    A post-activation ReLU after each step would make the step impossible to invert, so the leapfrog scheme
    takes pre-activation fields only (``activation`` None).
    """

    order = 2
    reversible = True
    carries_state = True
    Options = LeapfrogOptions

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
        **options: Any,
    ) -> None:
        if activation is not None and not isinstance(activation, nn.Identity):
            raise ConfigError("the leapfrog scheme is reversible only without an activation after each step "
                              "(a ReLU cannot be inverted): use pre-activation fields (preact=true)")
        super().__init__(fields, shortcuts, None, **options)

    def step(self, n: int, u: torch.Tensor, u_prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.field(n)(u)
        return (u if u_prev is None else u_prev) + f, u

    def forward(self, u: torch.Tensor, carry: torch.Tensor | None = None) -> torch.Tensor:
        if not (self.options.memory_saving and torch.is_grad_enabled()):
            return super().forward(u, carry)
        n, count = 0, len(self.fields)
        while n < count:
            if not self.keeps_shape[n]:
                u, carry = self.transition(n, u)
                n += 1
            elif carry is None:
                u, carry = self.step(n, u, None)
                n += 1
            else:
                # Pairs of steps n, n+1, ... of one shape form one reversible run on the state (u_{n-1}, u_n).
                stop = n
                while stop + 1 < count and self.keeps_shape[stop] and self.keeps_shape[stop + 1]:
                    stop += 2
                if stop == n:  # a lone step: nothing to pair it with
                    u, carry = self.step(n, u, carry)
                    n += 1
                    continue
                pairs = [ReversibleBlock(self.field(i), self.field(i + 1)) for i in range(n, stop, 2)]
                state = Reversible(pairs)(torch.cat((carry, u), dim=1))
                carry, u = state.chunk(2, dim=1)
                n = stop
        return u

    @classmethod
    def characteristic(cls, z: np.ndarray, **coefficients: float) -> np.ndarray:
        """``ρ^2 - z ρ - 1``."""
        ones = np.ones_like(z)
        return np.stack([ones, -z, -ones], axis=-1)
