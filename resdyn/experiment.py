"""Experiment identity: which runs are seeds of one experiment.

A run's identity is its config, flattened to dotted keys, less the keys that say how it was executed rather
than what was run (its seed, device, progress display, where the data was read from), plus the number of
processes it trained with (``train.world_size``, from its summary: the config does not hold it, and it changes
the result, since each process's batch norm sees its share of every batch). Two runs with the same
identity are seeds of one experiment: the report makes them one row, and ``resdyn compare`` accepts a folder
whose stored config has the identity of the experiment it is asked to run there.

It reads config tables as plain nested dicts (as ``config.toml`` holds them), so the report can use it without
importing the training code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: config keys that say how a run was executed, not what was run: runs differing only here are one experiment
RUN_ONLY_KEYS = frozenset({"train.seed", "train.progress", "train.device", "data.dir", "data.download",
                           "train.stop_signals"})


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: ``{"model": {"options": {"depth": 8}}}`` -> ``{"model.options.depth": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def identity(config: Mapping[str, Any], world_size: int = 1) -> dict[str, Any]:
    """What makes a run the experiment it is: its flattened config less the seed and how it was executed, and
    the ``world_size`` (processes) it trained with."""
    return {**{k: v for k, v in flatten(config).items() if k not in RUN_ONLY_KEYS}, "train.world_size": world_size}


def identity_key(config: Mapping[str, Any], world_size: int = 1) -> str:
    """``identity(config, world_size)`` as one string: equal for, and only for, seeds of the same experiment."""
    return json.dumps(identity(config, world_size), sort_keys=True, default=str)


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The dotted keys, in order, whose values differ between configs ``a`` and ``b`` (a key one of them lacks
    differs unless the other holds None); the keys of ``RUN_ONLY_KEYS`` never do."""
    x, y = identity(a), identity(b)
    return sorted(k for k in x.keys() | y.keys() if x.get(k) != y.get(k))
