"""Whole networks (stem -> scheme -> head) and the model registry.

``build_model(name, in_channels, num_classes, **options)`` is the one way to make a model from a name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from resdyn.errors import ConfigError
from resdyn.nets import (  # noqa: F401  (each registers its families)
    cifar,
    fractal,
    imagenet,
    meanfield,
    mlp,
    odenet,
    revnet,
)
from resdyn.nets.aliases import ALIASES
from resdyn.nets.base import FAMILIES, MODELS, Family, ModelName, Network, required
from resdyn.typed import build_table

for _name, (_family, _fixed, _help) in ALIASES.items():
    MODELS.add(_name, ModelName(_family, _fixed), _help)


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return MODELS.names()


def model_family(name: str) -> tuple[Family, dict[str, Any]]:
    """The family of the model ``name`` and the options the name fixes."""
    entry = MODELS.get(name)
    return FAMILIES.get(entry.family), entry.fixed


def model_options(name: str) -> list[dataclasses.Field]:
    """The options ``name`` accepts (fields of its family's options dataclass, less the ones the name fixes)."""
    family, fixed = model_family(name)
    return [f for f in dataclasses.fields(family.options) if f.name not in fixed]


def build_model(name: str, in_channels: int = 3, num_classes: int = 10, **options: Any) -> nn.Module:
    """Build the registered model ``name`` for images with ``in_channels`` channels and ``num_classes`` classes.

    ``options`` are checked against the family's options dataclass: unknown or mistyped options are errors
    that list the valid ones.
    """
    family, fixed = model_family(name)
    accepted = model_options(name)
    valid = sorted(f.name for f in accepted)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        clash = sorted(set(unknown) & set(fixed))
        by_name = f"; {name!r} fixes {', '.join(clash)}" if clash else ""
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}"
                          f"{by_name}")
    missing = [f.name for f in accepted if required(f) and f.name not in options]
    if missing:
        raise ConfigError(f"model {name!r} needs the option(s) {', '.join(missing)} (e.g. depth=56); "
                          f"`resdyn models --options {name}` lists them")
    return family.build(build_table(family.options, {**fixed, **options}, "model.options"), in_channels, num_classes)


__all__ = ["FAMILIES", "MODELS", "Network", "build_model", "list_models", "model_options"]
