"""Noise: how training perturbs the dynamics, as wrappers around residual fields (Lu et al. 2018, sec. 4 of the
FIUBA replication report and the stochastic-dynamics slides of arXiv:1710.10121).

A noise object wraps the fields of a network one by one (``noise.wrap(make_field, index, count, keeps_shape)``),
so it works under every scheme: the scheme only ever sees a field. In eval mode every wrapper is
deterministic and returns the expectation of its training-time branch.

- Stochastic depth (Huang et al. 2016): ``x_{n+1} = x_n + eta_n f_n(x_n)``, ``P(eta_n = 1) = p_n``, ``p_n``
  falling linearly to ``p_L`` at the last field by one of three schedules (:data:`SD_SCHEDULES`): Huang et al.'s
  (the default), the LM-ResNet authors' code's, and ``linear``, Huang's with the transitions never dropped per
  batch. A dropped transition is ``P_n x``.
- Shake-shake (Gastaldi 2017) with the time step of the replication report's eq. 27:
  ``x_{n+1} = x_n + (dt/2 + sqrt(dt) (eta - 1/2)) f1(x_n) + (dt/2 + sqrt(dt) (1/2 - eta)) f2(x_n)``,
  ``eta ~ U(0, 1)`` per image; ``dt = 1`` is plain shake-shake.
- Gaussian noise injection: ``x_{n+1} = x_n + f(x_n) + sigma * eps``, ``eps ~ N(0, I)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.registry import Registry
from resdyn.typed import build_table

FieldFactory = Callable[[], nn.Module]


class Noise(ABC):
    """A way of perturbing residual fields during training."""

    @abstractmethod
    def wrap(self, make_field: FieldFactory, index: int, count: int, keeps_shape: bool) -> nn.Module:
        """The field at position ``index`` (0-based) of ``count``, built by ``make_field``, with noise.

        ``keeps_shape`` is False for a field that changes the state's shape (a downsampling transition).
        """


class DropBranch(nn.Module):
    """``eta * f(x)`` with ``eta ~ Bernoulli(survival_prob)``, one draw per batch (Huang et al. 2016) or per image.

    A dropped batch's branch is a zero: of the state's shape for a shape-keeping field, and a 0-dim zero for a
    transition (``keeps_shape=False``), whose output shape a skipped ``f`` cannot tell; it broadcasts, so the step
    is ``P_n x + 0 = P_n x``, as in Huang et al. 2016 and the LM-ResNet code, where a dropped transition keeps its
    downsampling shortcut.

    Scaling convention: with ``scaling="test"`` (Huang et al.) training uses ``eta`` in {0, 1} and eval
    multiplies the branch by ``survival_prob``; with ``scaling="train"`` (the LM-ResNet code, and timm's
    drop-path) training divides a surviving branch by ``survival_prob`` and eval uses the branch as it is.
    Both make eval the expectation of training. A dropped batch skips ``f`` altogether: that is where
    stochastic depth saves time.
    """

    def __init__(
        self, field: nn.Module, survival_prob: float, scaling: Literal["test", "train"] = "test",
        per: Literal["batch", "image"] = "batch", keeps_shape: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < survival_prob <= 1:
            raise ConfigError(f"survival probability must be in (0, 1], got {survival_prob}")
        self.field = field
        self.survival_prob = survival_prob
        self.scaling = scaling
        self.per = per
        self.keeps_shape = keeps_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.survival_prob
        if not self.training:
            out = self.field(x)
            return out * p if self.scaling == "test" else out
        scale = 1 / p if self.scaling == "train" else 1.0
        if self.per == "batch":
            if torch.rand(()) >= p:
                return torch.zeros_like(x) if self.keeps_shape else x.new_zeros(())
            out = self.field(x)
            return out * scale if scale != 1.0 else out
        out = self.field(x)
        keep = (torch.rand(out.shape[0], *([1] * (out.dim() - 1)), device=out.device) < p).to(out.dtype)
        return out * keep * scale

    def extra_repr(self) -> str:
        return f"survival_prob={self.survival_prob:.4f}, scaling={self.scaling}, per={self.per}"


SDSchedule = Literal["linear", "huang", "lm-code"]
SD_SCHEDULES: dict[str, str] = {
    "linear": "p_n = 1 - n/N (1 - p_L), n = 1..N, as huang; but a per-batch draw never drops a transition",
    "huang": "p_l = 1 - l/L (1 - p_L), l = 1..L over every block, transitions too (Huang et al. 2016)",
    "lm-code": "p_i = 1 - i/(n-1) (1 - p_L), i = 0..n-1 over every block, transitions too (the LM-ResNet code)",
}


@dataclass(frozen=True)
class StochasticDepth(Noise):
    """Survival falling linearly to ``survival_last`` (p_L: 0.8 for depth 56, 0.5 for 110 in Lu et al. 2018).

    The ``schedule`` (:data:`SD_SCHEDULES`) counts every field of the network, the transitions included:

    - ``"huang"`` (the default), Huang et al. 2016: ``p_l = 1 - (l / L)(1 - p_L)`` for the l-th of L blocks
      (l = 1..L; their input ``H_0`` is the always-active l = 0, as Lu's slides quote), so even the first block
      may drop.
      E[dropped blocks per pass] = ``(L + 1) / 2 (1 - p_L)``.
    - ``"lm-code"``, the LM-ResNet authors' code: ``p_i = 1 - i / (n - 1) (1 - p_L)`` for the i-th of n blocks
      (i = 0..n-1, n = 3 x blocks per stage), so the first block always survives and the last has ``p_L``.
      E[dropped] = ``n / 2 (1 - p_L)``.
    - ``"linear"``: Huang's ``p_n``, except that a per-batch draw never drops a transition (its branch always
      runs); no paper's rule.

    Both papers drop transitions: a dropped transition's step is its shortcut ``P_n x``.
    """

    survival_last: float = 0.5
    scaling: Literal["test", "train"] = "test"
    per: Literal["batch", "image"] = "batch"
    schedule: SDSchedule = "huang"

    def survival_prob(self, index: int, count: int) -> float:
        """``p`` of the field at 0-based ``index`` of ``count``, under the schedule."""
        if self.schedule == "lm-code":
            return 1 - index / max(count - 1, 1) * (1 - self.survival_last)
        return 1 - (index + 1) / count * (1 - self.survival_last)

    def wrap(self, make_field: FieldFactory, index: int, count: int, keeps_shape: bool) -> nn.Module:
        field = make_field()
        if not keeps_shape and self.per == "batch" and self.schedule == "linear":
            return field
        return DropBranch(field, self.survival_prob(index, count), self.scaling, self.per, keeps_shape)



class ShakeShakeBranches(nn.Module):
    """Two branches joined by a random affine combination; eval uses the mean combination ``dt/2 (f1 + f2)``.

    With ``independent_backward`` (Gastaldi's "Shake-Shake-Image") the backward pass uses a fresh ``eta``;
    otherwise the forward ``eta`` ("Shake-Even": Lu et al. 2018's stochastic-dynamics view, eq. 27 of the FIUBA
    replication report).
    """

    def __init__(self, field1: nn.Module, field2: nn.Module, dt: float = 1.0, independent_backward: bool = True):
        super().__init__()
        if dt <= 0:
            raise ConfigError(f"shake-shake time step must be positive, got {dt}")
        self.field1, self.field2 = field1, field2
        self.dt = dt
        self.independent_backward = independent_backward

    def coefficients(self, eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dt/2 + sqrt(dt)(eta - 1/2), dt/2 + sqrt(dt)(1/2 - eta))``."""
        half, root = self.dt / 2, math.sqrt(self.dt)
        return half + root * (eta - 0.5), half + root * (0.5 - eta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1, f2 = self.field1(x), self.field2(x)
        if not self.training:
            return self.dt / 2 * (f1 + f2)
        shape = (f1.shape[0],) + (1,) * (f1.dim() - 1)
        a, b = self.coefficients(torch.rand(shape, device=f1.device, dtype=f1.dtype))
        forward = a * f1 + b * f2
        if not self.independent_backward:
            return forward
        a2, b2 = self.coefficients(torch.rand(shape, device=f1.device, dtype=f1.dtype))
        backward = a2 * f1 + b2 * f2
        # The value of ``forward`` with the gradient of ``backward``.
        return backward + (forward - backward).detach()


@dataclass(frozen=True)
class ShakeShake(Noise):
    dt: float = 1.0
    independent_backward: bool = True

    def wrap(self, make_field: FieldFactory, index: int, count: int, keeps_shape: bool) -> nn.Module:
        return ShakeShakeBranches(make_field(), make_field(), self.dt, self.independent_backward)


class GaussianBranch(nn.Module):
    """``f(x) + sigma * eps`` in training, ``f(x)`` in eval."""

    def __init__(self, field: nn.Module, std: float) -> None:
        super().__init__()
        self.field = field
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.field(x)
        return out + self.std * torch.randn_like(out) if self.training else out


@dataclass(frozen=True)
class GaussianNoise(Noise):
    std: float = 0.01

    def wrap(self, make_field: FieldFactory, index: int, count: int, keeps_shape: bool) -> nn.Module:
        return GaussianBranch(make_field(), self.std)


NOISES: Registry[type[Noise]] = Registry("noise")
NOISES.add("stochastic-depth", StochasticDepth,
           "drop whole branches, survival falling linearly to survival_last (schedule: linear, huang, lm-code)")
NOISES.add("shake-shake", ShakeShake, "two branches per block, random affine join (dt generalisation)")
NOISES.add("gaussian", GaussianNoise, "add N(0, std^2) to every branch")


def make_noise(name: str | None, **options: object) -> Noise | None:
    """The noise ``name`` with its ``options`` (e.g. ``survival_last=0.8``), type-checked; None for no noise."""
    if name is None:
        if options:
            raise ConfigError(f"noise options {sorted(options)} given without a noise; set noise to one of "
                              f"{', '.join(NOISES.names())}")
        return None
    return build_table(NOISES.get(name), options, f"noise_options of {name}")
