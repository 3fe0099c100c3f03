"""Datasets in their published formats, verified by checksum, and a loader that keeps them on the device; image
folders too large for a device (ImageNet) and the loader that streams them."""

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
from resdyn.data.folder import FOLDER_DATASETS, FolderDataset, FolderSplit, image_folder, imagenet, load_folder_dataset
from resdyn.data.images import EvalTransform, TrainTransform
from resdyn.data.loader import Augment, DeviceLoader, Progressive, Resize
from resdyn.data.streaming import StreamingLoader

__all__ = [
    "DATASETS",
    "FOLDER_DATASETS",
    "Augment",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DeviceLoader",
    "EvalTransform",
    "FileCheck",
    "FolderDataset",
    "FolderSplit",
    "Progressive",
    "Resize",
    "Split",
    "StreamingLoader",
    "TrainTransform",
    "image_folder",
    "imagenet",
    "load_dataset",
    "load_folder_dataset",
    "locate",
    "split_validation",
    "take",
    "verify",
]
