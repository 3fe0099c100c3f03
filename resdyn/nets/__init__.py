"""Whole networks (stem -> scheme -> head) and the model registry.

``build_model(name, in_channels, num_classes, **options)`` is the one way to make a model from a name.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from resdyn.errors import ConfigError
from resdyn.nets import cifar, fractal, meanfield, odenet, revnet  # noqa: F401  (each registers its models)
from resdyn.nets.base import MODELS, Network


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return MODELS.names()


def build_model(name: str, in_channels: int = 3, num_classes: int = 10, **options: Any) -> nn.Module:
    """Build the registered model ``name`` for images with ``in_channels`` channels and ``num_classes`` classes.

    Unknown names and unknown options are errors that list the valid ones.
    """
    builder = MODELS.get(name)
    params = inspect.signature(builder).parameters
    valid = sorted(p for p in params if p not in ("in_channels", "num_classes"))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return builder(in_channels=in_channels, num_classes=num_classes, **options)


__all__ = ["MODELS", "Network", "build_model", "list_models"]
