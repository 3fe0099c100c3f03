"""Explicit Runge-Kutta residual networks from a Butcher tableau (Butcher 1964; Hairer, Nørsett, Wanner,
"Solving ODEs I", sec. II.1). One step of ``dx/dt = f(x)`` with step 1 (the fields absorb the step size):

    k_i = f(x + sum_{j<i} a_ij k_j),   i = 1..s,        x_{n+1} = x_n + sum_i b_i k_i.

The fields are autonomous, so the nodes ``c_i`` only enter the consistency checks. By default the ``s`` stages
share the step's field (the parameters of a ResNet of the same depth, ``s`` evaluations per step);
``stage_fields=True`` gives each stage its own field (``s`` times the parameters): then ``k_i = f_i(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import torch

from resdyn.schemes.base import Scheme


@dataclass(frozen=True)
class ButcherTableau:
    """``c``, ``A`` (strictly lower triangular: explicit) and ``b``; checks the order conditions it claims.

    Conditions (Hairer, Nørsett, Wanner, Table II.2.1), with ``c_i = sum_j a_ij``: order 1 ``sum b = 1``;
    order 2 ``b·c = 1/2``; order 3 ``b·c^2 = 1/3``, ``b·Ac = 1/6``; order 4 ``b·c^3 = 1/4``, ``b·(c∘Ac) = 1/8``,
    ``b·Ac^2 = 1/12``, ``b·A^2c = 1/24``. Exact fractions, so a wrong entry cannot pass by rounding.
    """

    c: tuple[Fraction, ...]
    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    order: int

    def __post_init__(self) -> None:
        s = len(self.b)
        if len(self.c) != s or len(self.a) != s or any(len(row) != s for row in self.a):
            raise ValueError(f"a Butcher tableau of {s} stages needs c of length {s} and an {s}x{s} A")
        if any(self.a[i][j] != 0 for i in range(s) for j in range(i, s)):
            raise ValueError("A must be strictly lower triangular (an explicit method)")
        if any(sum(row) != ci for row, ci in zip(self.a, self.c, strict=True)):
            raise ValueError("each node c_i must equal the sum of its row of A")
        failed = [name for name, (lhs, rhs) in self.conditions().items() if lhs != rhs]
        if failed:
            raise ValueError(f"the tableau does not satisfy the order-{self.order} conditions {', '.join(failed)}")

    def conditions(self) -> dict[str, tuple[Fraction, Fraction]]:
        """The order conditions up to ``order``, name -> (value, required)."""
        a, b, c = self.a, self.b, self.c
        s = range(len(b))
        ac = [sum(a[i][j] * c[j] for j in s) for i in s]
        every = {
            "sum b = 1": (1, sum(b), Fraction(1)),
            "b.c = 1/2": (2, sum(b[i] * c[i] for i in s), Fraction(1, 2)),
            "b.c^2 = 1/3": (3, sum(b[i] * c[i] ** 2 for i in s), Fraction(1, 3)),
            "b.Ac = 1/6": (3, sum(b[i] * ac[i] for i in s), Fraction(1, 6)),
            "b.c^3 = 1/4": (4, sum(b[i] * c[i] ** 3 for i in s), Fraction(1, 4)),
            "b.(c Ac) = 1/8": (4, sum(b[i] * c[i] * ac[i] for i in s), Fraction(1, 8)),
            "b.Ac^2 = 1/12": (4, sum(b[i] * a[i][j] * c[j] ** 2 for i in s for j in s), Fraction(1, 12)),
            "b.A^2c = 1/24": (4, sum(b[i] * a[i][j] * ac[j] for i in s for j in s), Fraction(1, 24)),
        }
        if self.order > 4:
            raise ValueError("order conditions are checked up to order 4")
        return {name: (lhs, rhs) for name, (p, lhs, rhs) in every.items() if p <= self.order}

    @property
    def stages(self) -> int:
        return len(self.b)


def tableau(c: list[str], a: list[list[str]], b: list[str], order: int) -> ButcherTableau:
    """A :class:`ButcherTableau` from fractions written as strings (``"1/2"``)."""
    return ButcherTableau(tuple(map(Fraction, c)), tuple(tuple(map(Fraction, row)) for row in a),
                          tuple(map(Fraction, b)), order)


@dataclass(frozen=True)
class RungeKuttaOptions:
    #: one field per stage (s times the parameters) instead of one field per step shared by its stages
    stage_fields: bool = False


class RungeKutta(Scheme):
    """An explicit Runge-Kutta step per field; a subclass is its ``tableau`` (its ``order`` is the tableau's)."""

    tableau: ClassVar[ButcherTableau]
    Options = RungeKuttaOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "tableau" in cls.__dict__:
            cls.order = cls.tableau.order
            cls.evaluations = cls.tableau.stages

    @classmethod
    def fields_per_step(cls, options: RungeKuttaOptions) -> int:
        return cls.tableau.stages if options.stage_fields else 1

    def step(self, n: int, x: torch.Tensor, carry: Any) -> tuple[torch.Tensor, Any]:
        t = self.tableau
        k: list[torch.Tensor] = []
        for i in range(t.stages):
            xi = x
            for a, kj in zip(t.a[i][:i], k, strict=True):
                if a != 0:
                    xi = xi + float(a) * kj
            k.append(self.field(n, i)(xi))
        return x + sum(float(b) * ki for b, ki in zip(t.b, k, strict=True) if b != 0), None

    @classmethod
    def characteristic(cls, z: np.ndarray, **coefficients: float) -> np.ndarray:
        """``ρ - R(z)``, ``R(z) = 1 + z b^T (I - zA)^{-1} 1``, by running the stages on ``u = 1``."""
        t = cls.tableau
        k: list[np.ndarray] = []
        for i in range(t.stages):
            k.append(z * (1 + sum(float(a) * kj for a, kj in zip(t.a[i][:i], k, strict=True))))
        growth = 1 + sum(float(b) * ki for b, ki in zip(t.b, k, strict=True))
        return np.stack([np.ones_like(z), -growth], axis=-1)


class Midpoint(RungeKutta):
    """Explicit midpoint (Runge 1895), order 2: ``x_{n+1} = x_n + f(x_n + f(x_n)/2)``."""

    tableau = tableau(["0", "1/2"], [["0", "0"], ["1/2", "0"]], ["0", "1"], order=2)


class Heun(RungeKutta):
    """Heun's method (Heun 1900), order 2: ``k_1 = f(x_n)``, ``x_{n+1} = x_n + (k_1 + f(x_n + k_1))/2``."""

    tableau = tableau(["0", "1"], [["0", "0"], ["1", "0"]], ["1/2", "1/2"], order=2)


class RK4(RungeKutta):
    """The classical Runge-Kutta method (Kutta 1901), order 4: ``x_{n+1} = x_n + (k_1 + 2k_2 + 2k_3 + k_4)/6``."""

    tableau = tableau(
        ["0", "1/2", "1/2", "1"],
        [["0", "0", "0", "0"], ["1/2", "0", "0", "0"], ["0", "1/2", "0", "0"], ["0", "0", "1", "0"]],
        ["1/6", "1/3", "1/3", "1/6"],
        order=4,
    )
