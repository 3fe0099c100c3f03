"""Datasets in their published formats, verified by checksum, and a loader that keeps them on the device."""

from resdyn.data import catalog as catalog  # registers the datasets in DATASETS
from resdyn.data.checksums import FileCheck
from resdyn.data.datasets import (
    DATASETS,
    Dataset,
    DatasetInfo,
    Split,
    load_dataset,
    locate,
    split_validation,
    take,
    verify,
)
from resdyn.data.errors import ChecksumError, DataError, DatasetNotFoundError
from resdyn.data.loader import Augment, DeviceLoader, Progressive, Resize

__all__ = [
    "DATASETS",
    "Augment",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DeviceLoader",
    "FileCheck",
    "Progressive",
    "Resize",
    "Split",
    "load_dataset",
    "locate",
    "split_validation",
    "take",
    "verify",
]
