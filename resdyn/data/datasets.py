"""Datasets as uint8 tensors: what a dataset is, how it is loaded, located and verified, and how it is split.

A dataset is registered in ``DATASETS`` (see ``catalog.py``) as a function returning its ``DatasetSpec``:
the fixed facts (``DatasetInfo``), its published files and digests, and a reader from verified file
contents to train and test ``Split``s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from resdyn.data.checksums import FileCheck, read_verified, survey_file
from resdyn.data.errors import DataError
from resdyn.data.sources import Published, find
from resdyn.errors import ConfigError
from resdyn.registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    """Fixed facts about a dataset; ``mean`` and ``std`` are per channel, of train images scaled to [0, 1]."""

    name: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.classes) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.classes)} class names for {self.num_classes} classes")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"{self.name}: mean and std need one value per channel ({self.in_channels})")


@dataclass(frozen=True, eq=False)
class Split:
    """Images as uint8 ``(N, C, H, W)``, contiguous, on the CPU, and their int64 labels ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 (N,) with N = {len(self.images)}, got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: torch.Tensor) -> Split:
        """The examples at ``indices``, in that order."""
        return Split(self.images[indices].contiguous(), self.labels[indices])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset's info and its train and test splits."""

    info: DatasetInfo
    train: Split
    test: Split


class Payload(NamedTuple):
    """The verified, decompressed contents of a dataset file and the path it was read from."""

    path: Path
    data: bytes


Reader = Callable[[Sequence[Payload], DatasetInfo], tuple[Split, Split]]


@dataclass(frozen=True)
class DatasetSpec:
    """How to get a dataset: its info, its published files (``None`` when a Python package ships the data)
    and ``read``, which turns the files' contents, in the order of ``published.files``, into (train, test).
    ``test_parts`` names published parts of the test split (QMNIST's ``test10k``) by the rows they take."""

    info: DatasetInfo
    published: Published | None
    read: Reader
    test_parts: Mapping[str, slice] = field(default_factory=dict)


DATASETS: Registry[Callable[[], DatasetSpec]] = Registry("dataset")


def dataset_spec(name: str, test_part: str | None = None) -> DatasetSpec:
    """The registered dataset ``name`` (an unknown name is an error listing the valid ones), with ``test_part``
    checked against its named parts; nothing is read."""
    spec = DATASETS.get(name)()
    if test_part is not None and test_part not in spec.test_parts:
        valid = f"its parts: {', '.join(spec.test_parts)}" if spec.test_parts else "it has no named parts"
        raise ConfigError(f"{name}'s test split has no part {test_part!r}; {valid} (leave data.test_part out for "
                          "the whole test split)")
    return spec


def load_dataset(
    name: str, data_dir: str | Path | None = None, download: bool = True, test_part: str | None = None
) -> Dataset:
    """Load dataset ``name`` from the first place that holds all its files, downloading them if allowed.

    Every file is verified against its published digest (``ChecksumError`` otherwise); see ``sources.py``
    for the places searched and ``DatasetNotFoundError`` for what is raised when none holds the files.
    ``test_part`` keeps only that named part of the test split (``qmnist``: ``test10k``, ``test50k``).
    """
    spec = dataset_spec(name, test_part)
    payloads: list[Payload] = []
    if spec.published is not None:
        paths = find(name, spec.published, data_dir, download)
        payloads = [
            Payload(path, read_verified(file, path))
            for file, path in zip(spec.published.files, paths, strict=True)
        ]
    train, test = spec.read(payloads, spec.info)
    if test_part is not None:
        rows = spec.test_parts[test_part]
        needed = rows.start + 1 if rows.stop is None else rows.stop
        if len(test) < needed:
            raise DataError(f"{name}'s test split has {len(test)} examples, too few for its part {test_part} (rows "
                            f"{rows.start} to {'the end' if rows.stop is None else rows.stop - 1}); the test "
                            "file is not the published one: get it again")
        test = test.subset(torch.arange(len(test))[rows])
    return Dataset(spec.info, train, test)


def locate(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The files ``load_dataset(name, data_dir)`` would read, without downloading (a local copy of a
    published archive is extracted into the user cache); empty for a dataset shipped by a Python package."""
    spec = DATASETS.get(name)()
    return [] if spec.published is None else find(name, spec.published, data_dir, download=False)


def verify(name: str, data_dir: str | Path | None = None) -> list[FileCheck]:
    """Check every file of dataset ``name`` against its published digests, without downloading.

    Returns one ``FileCheck`` per file, every file checked even when an earlier one is damaged or differs.
    When all are ``ok`` or ``unverified``, the files are also parsed, so a file whose digest is unknown has at
    least passed the format's structural checks; a parse error raises ``DataError`` naming the file.
    """
    spec = DATASETS.get(name)()
    if spec.published is None:
        return []
    paths = find(name, spec.published, data_dir, download=False)
    checked = [survey_file(file, path) for file, path in zip(spec.published.files, paths, strict=True)]
    payloads = [Payload(check.path, data) for check, data in checked if check.status in ("ok", "unverified")]
    if len(payloads) == len(checked):
        spec.read(payloads, spec.info)
    return [check for check, _ in checked]


def _permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_validation(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split off ``round(fraction * len(split))`` examples, chosen by a permutation seeded with ``seed``,
    as a validation set; return ``(train, val)``, each in the original order."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    n_val = round(fraction * len(split))
    if not 0 < n_val < len(split):
        raise ConfigError(
            f"a fraction of {fraction} of {len(split)} examples leaves an empty train or validation set"
        )
    order = _permutation(len(split), seed)
    return split.subset(order[n_val:].sort().values), split.subset(order[:n_val].sort().values)


def take(split: Split, n: int | None, seed: int) -> Split:
    """The first ``n`` examples of a permutation seeded with ``seed``, in the original order; ``split``
    itself when ``n`` is ``None`` or at least ``len(split)``."""
    if n is None or n >= len(split):
        return split
    if n < 0:
        raise ConfigError(f"cannot take {n} examples")
    return split.subset(_permutation(len(split), seed)[:n].sort().values)
