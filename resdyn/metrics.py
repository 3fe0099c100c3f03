"""What a model tells the training loop: learned quantities to log each epoch (e.g. LM-ResNet's k_n, an ODE
block's function evaluations) and extra loss terms (e.g. regularisers of the dynamics)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn


class ReportsMetrics(ABC):
    """Mixin for modules with learned quantities worth logging every epoch; values must be JSON-serialisable."""

    @abstractmethod
    def metrics(self) -> dict[str, Any]:
        """Name -> value (numbers or lists of numbers)."""


def model_metrics(model: nn.Module) -> dict[str, Any]:
    """The merged ``metrics()`` of every reporting submodule of ``model``."""
    merged: dict[str, Any] = {}
    for module in model.modules():
        if isinstance(module, ReportsMetrics):
            merged.update(module.metrics())
    return merged


class AddsLoss(ABC):
    """Mixin for modules that contribute a regularisation term to the training loss (e.g. an ODE block's
    kinetic-energy penalty); the loop adds ``extra_loss()`` of every such submodule after each forward."""

    @abstractmethod
    def extra_loss(self) -> torch.Tensor | None:
        """The term accumulated by the last training forward pass (None when there is none); resets it."""


def extra_loss(model: nn.Module) -> torch.Tensor | None:
    """The sum of ``extra_loss()`` over the submodules of ``model`` that add one, or None."""
    terms = [t for m in model.modules() if isinstance(m, AddsLoss) for t in [m.extra_loss()] if t is not None]
    return torch.stack([t.float() for t in terms]).sum() if terms else None
