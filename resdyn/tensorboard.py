"""TensorBoard event files for a run folder (``train.tensorboard = true``; ``pip install 'resdyn[tensorboard]'``).

A view for watching a run while it trains; ``metrics.jsonl`` and ``resdyn report`` stay the record. The x axis
of every scalar is the number of optimiser steps done, so the per-epoch record and the per-step learning
rate line up: an epoch's record is logged at its last step (``record["step"]``), a step's learning rate at
that step counted from 1.

Tags: ``epoch/<key>`` for each number of the record (losses, accuracies, lr, images_per_s, an ODE block's
``nfe_*``), ``<key>/<i>`` for each position of a list of values (LM-ResNet's ``lm_k/07`` is k_7), ``step/lr``; with
``train.grad_stats``, ``grad_norm/<i>-<unit>``, ``bias_grad_norm/...`` and ``activation_rms/...`` per unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from resdyn.errors import ConfigError
from resdyn.runs import GradStatsRecord

INSTALL = "pip install 'resdyn[tensorboard]' (or pip install tensorboard)"


def require_tensorboard() -> type:
    """torch's ``SummaryWriter``; a ConfigError that says how to install tensorboard where it is missing.
    Config validation calls it, so that a run asking for TensorBoard fails before any work."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError(f"train.tensorboard = true needs the tensorboard package ({e}): {INSTALL}; "
                          "or set train.tensorboard = false") from None
    return SummaryWriter


class TensorBoardLog:
    """Writes a run's scalars as TensorBoard event files into ``folder`` (the run folder).

    ``steps_done`` is the optimiser steps already taken: 0 for a new run, the checkpoint's step on resume.
    Events that earlier writers logged past it (a killed run's steps after its last checkpoint, or a whole run
    that ``--overwrite`` replaced) are purged from TensorBoard's view, so a resumed run reads as one.
    """

    def __init__(self, folder: str | Path, steps_done: int = 0) -> None:
        self._writer = require_tensorboard()(log_dir=str(folder), purge_step=steps_done + 1)

    def epoch(self, record: Mapping[str, Any]) -> None:
        """Log an epoch's metrics record (a line of metrics.jsonl) at its step, and flush it to disk."""
        at = record["step"]
        for key, value in record.items():
            if key == "step":
                continue
            if not isinstance(value, list):
                self._writer.add_scalar(f"epoch/{key}", value, at)
            elif all(isinstance(v, int) for v in value):
                # Integers list positions, not values (``lm_k_outside_stability``): how many is what to plot.
                self._writer.add_scalar(f"epoch/{key}", len(value), at)
            else:
                width = len(str(len(value) - 1))  # zero-padded, so TensorBoard sorts k_10 after k_9
                for i, v in enumerate(value):
                    self._writer.add_scalar(f"{key}/{i:0{width}d}", v, at)
        self._writer.flush()

    def grad_stats(self, records: Sequence[GradStatsRecord]) -> None:
        """Log gradient statistics (train.grad_stats) at the step each was measured in (counted from 1), as
        ``grad_norm/<i>-<unit>``, ``bias_grad_norm/...`` and ``activation_rms/...``, units numbered in network
        order."""
        for record in records:
            width = len(str(len(record.layers) - 1))
            for key in ("grad_norm", "bias_grad_norm", "activation_rms"):
                for i, (name, value) in enumerate(zip(record.layers, getattr(record, key), strict=True)):
                    if value is not None:
                        self._writer.add_scalar(f"{key}/{i:0{width}d}-{name}", value, record.step + 1)
        if records:
            self._writer.flush()

    def step(self, step: int, lr: float) -> None:
        """Log the learning rate of optimiser step ``step`` (counted from 1: the steps done after it)."""
        self._writer.add_scalar("step/lr", lr, step)

    def close(self) -> None:
        """Write what is pending and close the event file."""
        self._writer.close()

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
