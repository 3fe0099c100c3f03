"""The run folder: the one reader and writer of a run's files.

    config.toml     the full resolved config
    metrics.jsonl   one JSON object per finished epoch
    checkpoint.pt   everything needed to resume, replaced atomically after every epoch
    best.pt         model weights at the best validation score (only with early stopping)
    summary.json    written when the run finishes

Training writes these and reporting reads them; neither imports the other. Checkpoints are loaded with
``weights_only=True``, so a checkpoint file can never run code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from resdyn.atomic import atomic_write
from resdyn.errors import ResdynError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RunError(ResdynError, RuntimeError):
    """A run folder that cannot be used as asked (missing, already taken, unreadable)."""


class RunDir:
    """A run's folder on disk."""

    CONFIG = "config.toml"
    METRICS = "metrics.jsonl"
    CHECKPOINT = "checkpoint.pt"
    BEST = "best.pt"
    SUMMARY = "summary.json"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # -- creating -------------------------------------------------------------------------------------
    def create(self, config_toml: str, overwrite: bool = False) -> None:
        """Start a new run here: refuse a folder that already holds one unless ``overwrite``."""
        if self.has_checkpoint() or self.file(self.METRICS).exists():
            if not overwrite:
                raise RunError(
                    f"{self.path} already holds a run; continue it with `resdyn train --resume {self.path}`, "
                    "choose another --out, or pass --overwrite to start again"
                )
            for name in (self.METRICS, self.CHECKPOINT, self.BEST, self.SUMMARY):
                self.file(name).unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config_toml)

    def reopen(self, epochs: int, config_toml: str) -> None:
        """Continue a run after ``epochs`` finished epochs: drop later metrics and the (now stale) summary."""
        self.truncate_metrics(epochs)
        self.file(self.SUMMARY).unlink(missing_ok=True)
        self.write_config(config_toml)

    def write_config(self, config_toml: str) -> None:
        atomic_write(self.file(self.CONFIG), lambda f: f.write(config_toml.encode()))

    def read_config(self) -> dict[str, Any]:
        path = self.file(self.CONFIG)
        try:
            return tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run folder: {self.CONFIG} is missing") from None
        except tomllib.TOMLDecodeError as e:
            raise RunError(f"{path} is corrupt: {e}") from None

    # -- metrics --------------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.file(self.METRICS), "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete line; a torn last line (the run was killed while writing it) is ignored."""
        path = self.file(self.METRICS)
        if not path.exists():
            return []
        records = []
        lines = path.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1 and not line.endswith("\n"):
                    break
                raise RunError(f"{path} line {i + 1} is not valid JSON") from None
        return records

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the records of epochs 1..``epochs``: those a resumed run has not redone."""
        kept = [r for r in self.read_metrics() if r["epoch"] <= epochs]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.file(self.METRICS), lambda f: f.write(text.encode()))

    # -- checkpoints ----------------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.file(self.CHECKPOINT).exists()

    def save_checkpoint(self, state: dict[str, Any], name: str = CHECKPOINT) -> None:
        atomic_write(self.file(name), lambda f: torch.save(state, f))

    def load_checkpoint(self, name: str = CHECKPOINT, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Load with ``weights_only=True``: tensors and plain containers only, no code."""
        path = self.file(name)
        if not path.exists():
            raise RunError(f"no {name} in {self.path}: nothing to resume (start the run without --resume)")
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
            raise RunError(f"cannot load {path}: {e}") from None

    # -- summary --------------------------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(self.file(self.SUMMARY), lambda f: f.write(text.encode()))

    def read_summary(self) -> dict[str, Any] | None:
        path = self.file(self.SUMMARY)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise RunError(f"{path} is corrupt: {e}") from None
