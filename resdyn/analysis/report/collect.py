"""Reading run folders for the report: the finished runs, and every other folder named with why it was skipped.

Runs are read only through :class:`resdyn.runs.RunDir` (never by importing the training code), so a report
can be made from folders copied off another machine. A folder that is missing, unfinished or corrupt is named
with the reason; it never silently disappears from a comparison.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resdyn.experiment import identity_key
from resdyn.runs import EpochRecord, RunDir, RunError, Summary

RUN_FILES = (RunDir.CONFIG, RunDir.METRICS, RunDir.CHECKPOINT, RunDir.SUMMARY, RunDir.FAILURE)


@dataclass(frozen=True)
class Run:
    """A finished run as read from its folder."""

    path: Path
    #: the config the weights were last trained with (after any resume's overrides)
    config: dict[str, Any]
    summary: Summary
    metrics: list[EpochRecord]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def world_size(self) -> int:
        """The processes it trained with (1 where the summary predates the field)."""
        return self.summary.world_size or 1

    @property
    def identity_key(self) -> str:
        """Equal for, and only for, seeds of the same experiment (:func:`resdyn.experiment.identity_key`)."""
        return identity_key(self.config, self.world_size)

    @property
    def model(self) -> str:
        return self.config.get("model", {}).get("name", self.summary.model)

    @property
    def options(self) -> dict[str, Any]:
        return self.config.get("model", {}).get("options", {})

    @property
    def dataset(self) -> str:
        return self.config.get("data", {}).get("name", self.summary.data)

    @property
    def seed(self) -> int | None:
        return self.config.get("train", {}).get("seed", self.summary.seed)

    @property
    def meta(self) -> dict[str, Any]:
        return self.config.get("meta", {})


@dataclass(frozen=True)
class Skipped:
    """A folder that was asked for but could not be used, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """A run read more than once (the same folder named twice, or a copy: the same config and seed), counted once."""

    path: Path
    same_as: Path
    reason: str


def find_run_folders(paths: Iterable[str | Path]) -> list[Path]:
    """The run folders named by ``paths``: a run folder stands for itself, and a folder that is not one but holds
    run folders (a suite's ``out``) stands for those. Anything else is kept, to be reported as unreadable."""
    found: list[Path] = []
    for path in map(Path, paths):
        children = sorted(p for p in path.iterdir() if _looks_like_run(p)) if path.is_dir() else []
        if path.is_dir() and not _looks_like_run(path) and children:
            found.extend(children)
        else:
            found.append(path)
    return found


def _looks_like_run(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def read_run(path: Path) -> Run:
    """Read one finished run; a RunError says what is missing or corrupt."""
    if not path.exists():
        raise RunError("no such folder")
    if not path.is_dir():
        raise RunError("not a folder")
    run = RunDir(path)
    failure = run.read_failure()
    if failure is not None and not run.file(RunDir.SUMMARY).exists():
        again = (f"`resdyn train --resume {path}` (or the suite's command) tries again from its checkpoint"
                 if run.has_checkpoint() else "the suite's command starts it again")
        raise RunError(f"failed ({failure.time}): {failure.error}; {again}")
    config = run.current_config()
    metrics = run.read_metrics()
    summary = run.read_summary()
    if summary is None:
        advice = (f"continue it with `resdyn train --resume {path}`" if run.has_checkpoint() else
                  f"it has no {RunDir.CHECKPOINT} to resume from (it stopped, or its loss diverged, before an epoch "
                  f"was saved): start it again with `--out {path} --overwrite`")
        raise RunError(f"unfinished: no {RunDir.SUMMARY} ({len(metrics)} epoch(s) in {RunDir.METRICS}); {advice}")
    return Run(path, config, summary, metrics)


def read_runs(paths: Iterable[str | Path]) -> tuple[list[Run], list[Skipped]]:
    """The readable runs among ``paths`` and, for every other one, why it was skipped."""
    runs, skipped = [], []
    for path in find_run_folders(paths):
        try:
            runs.append(read_run(path))
        except RunError as e:
            skipped.append(Skipped(path, str(e)))
    return runs, skipped


def unique_runs(runs: Sequence[Run]) -> tuple[list[Run], list[Duplicate]]:
    """The runs with each counted once: a folder named twice (``A A ./A``) is one run, and so is a folder whose
    config and seed are those of another (a copy of it), since seeds are what the table's statistics count."""
    kept: list[Run] = []
    duplicates: list[Duplicate] = []
    by_path: dict[Path, Run] = {}
    by_config: dict[str, Run] = {}
    for run in runs:
        where = run.path.resolve()
        config = json.dumps([run.identity_key, run.seed], default=str)
        if where in by_path:
            duplicates.append(Duplicate(run.path, by_path[where].path, "the same folder"))
        elif config in by_config:
            duplicates.append(Duplicate(run.path, by_config[config].path, "the same config and seed"))
        else:
            kept.append(run)
            by_path[where], by_config[config] = run, run
    return kept, duplicates
