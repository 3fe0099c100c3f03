"""Learned quantities a model reports each epoch (e.g. LM-ResNet's k_n), for metrics.jsonl and the summary."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

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
