"""The one interface of the step-by-step schemes: fields, shortcuts, an activation, and one abstract ``step``.

A scheme moves the state ``x_n`` through a sequence of residual fields ``f_n`` (the branches of a residual
network), one step per field. Where a field changes the state's shape (a downsampling transition, whose
shortcut ``P_n`` is not the identity) there is no previous state of the new shape and no way to evaluate the
field at a point of the new shape, so every scheme takes the forward-Euler step ``x_{n+1} = P_n x_n + f_n(x_n)``
there and starts again after it, as a multistep ODE solver restarts after a discontinuity. Everything else is the
scheme's :meth:`Scheme.step`, which reads like its update rule.

Linear stability. For the test equation ``u' = λu`` a field is ``f(u) = z u`` with ``z = hλ`` (the field absorbs
the step size, as a residual branch does), and one step of a scheme is a linear recurrence whose characteristic
polynomial ``ρ^s + c_1 ρ^{s-1} + ... + c_s`` each scheme gives in :meth:`Scheme.characteristic`. The scheme is
stable at ``z`` when every root has ``|ρ| <= 1`` (Hairer, Nørsett, Wanner, "Solving ODEs I", sec. III.3;
Hairer & Wanner, "Solving ODEs II", sec. IV.2); :func:`stability_region` returns the largest ``|ρ|``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from resdyn.typed import build_table


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A scheme with nothing to choose."""


class Scheme(nn.Module, ABC):
    """``x_{n+1} = activation(step_n(x_n))`` over ``fields`` and their ``shortcuts``.

    Subclasses declare ``order`` (of convergence, as a method for ``dx/dt = f(x)``), ``reversible`` (whether the
    step can be inverted, so backprop need not store activations), ``evaluations`` (field evaluations per step),
    ``Options`` (a dataclass of the scheme's own keyword options, checked by :func:`resdyn.typed.build_table`),
    ``carries_state`` (whether ``carry`` is the previous state), ``skip`` (whether the step adds the state: False
    for the plain network, which takes no shortcuts), and implement :meth:`step` and
    :meth:`characteristic`. ``fields[n]`` is one module, or (a scheme with ``fields_per_step > 1``, e.g.
    Runge-Kutta with a field per stage) an ``nn.ModuleList`` of them.

    ``activation`` is the post-activation ResNet's ReLU after each step (He et al. 2015); None (the identity)
    for pre-activation fields (He et al. 2016), which makes the network exactly the scheme.
    """

    order: ClassVar[int]
    reversible: ClassVar[bool] = False
    evaluations: ClassVar[int] = 1
    carries_state: ClassVar[bool] = False
    skip: ClassVar[bool] = True
    Options: ClassVar[type] = NoOptions

    def __init__(
        self,
        fields: Sequence[nn.Module],
        shortcuts: Sequence[nn.Module],
        activation: nn.Module | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if len(fields) != len(shortcuts):
            raise ValueError(f"{len(fields)} fields but {len(shortcuts)} shortcuts")
        self.options = build_table(self.Options, options, f"{type(self).__name__} options")
        self.fields = nn.ModuleList(fields)
        self.shortcuts = nn.ModuleList(shortcuts)
        self.activation = activation if activation is not None else nn.Identity()
        self.keeps_shape = [isinstance(s, nn.Identity) for s in shortcuts]

    @classmethod
    def fields_per_step(cls, options: Any) -> int:
        """How many fields a shape-keeping step holds under ``options`` (an instance of ``cls.Options``)."""
        return 1

    def field(self, n: int, stage: int = 0) -> nn.Module:
        """The field of step ``n`` (of its ``stage``, when the step has one field per stage)."""
        f = self.fields[n]
        return f[stage] if isinstance(f, nn.ModuleList) else f

    def forward(self, x: torch.Tensor, carry: Any = None) -> torch.Tensor:
        """Step ``x`` through every field. ``carry`` is what a multistep scheme remembers of earlier steps
        (None: start from ``x`` alone); given, it supplies exact starting values, as an order test needs."""
        for n in range(len(self.fields)):
            if self.keeps_shape[n]:
                x, carry = self.step(n, x, carry)
            else:
                x, carry = self.transition(n, x)
            x = self.activation(x)
        return x

    def transition(self, n: int, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """``P_n x + f_n(x)`` where the shape changes. A scheme whose carry is the previous state
        (``carries_state``) carries on from ``P_n x``, the projected input, as LM-ResNet's authors' code does;
        the others start afresh (no carry)."""
        projected = self.shortcuts[n](x)
        return projected + self.field(n)(x), projected if self.carries_state else None

    @abstractmethod
    def step(self, n: int, x: torch.Tensor, carry: Any) -> tuple[torch.Tensor, Any]:
        """``(x_{n+1}, carry)`` from ``x_n`` and what earlier steps left in ``carry`` (None at a start)."""

    @classmethod
    @abstractmethod
    def characteristic(cls, z: np.ndarray, **coefficients: float) -> np.ndarray:
        """Coefficients ``[1, c_1, ..., c_s]`` (last axis) of the step's characteristic polynomial in ``ρ`` for
        the field ``f(u) = z u``; ``coefficients`` fix a scheme's free parameters (LM's ``k``)."""

    def extra_repr(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self.options).items())
        return f"order={self.order}" + (f", {shown}" if shown else "")


def stability_region(scheme: type[Scheme] | Scheme | str, z: np.ndarray | complex, **coefficients: float) -> np.ndarray:
    """The largest root modulus ``max |ρ|`` of ``scheme``'s step for ``u' = λu`` at each ``z = hλ``.

    The stability region is where it is ``<= 1`` (roots on the unit circle should also be simple; a plot
    need not care). ``scheme`` is a scheme class, instance or registered name (``"rk4"``); an architecture's name
    (``resdyn.schemes.ARCHITECTURES``: "ode", ...) is refused, as it has no such polynomial.
    """
    from resdyn.schemes import ARCHITECTURES, SCHEMES

    if isinstance(scheme, str) and scheme in ARCHITECTURES:
        raise ValueError(f"{scheme!r} is not a step-by-step scheme; it has no linear stability polynomial")
    cls = SCHEMES.get(scheme) if isinstance(scheme, str) else scheme if isinstance(scheme, type) else type(scheme)
    z = np.asarray(z, dtype=complex)
    coeffs = np.asarray(cls.characteristic(z, **coefficients), dtype=complex)
    coeffs = np.broadcast_to(coeffs, z.shape + coeffs.shape[-1:])
    s = coeffs.shape[-1] - 1
    # Roots of the monic polynomial are the eigenvalues of its companion matrix (batched over z).
    companion = np.zeros(z.shape + (s, s), dtype=complex)
    companion[..., 0, :] = -coeffs[..., 1:]
    if s > 1:
        companion[..., np.arange(1, s), np.arange(s - 1)] = 1
    return np.abs(np.linalg.eigvals(companion)).max(axis=-1)
