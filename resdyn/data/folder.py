"""Datasets read from folders of image files, too large to keep on a device: the streaming loader
(:mod:`resdyn.data.streaming`) decodes them batch by batch.

``image-folder`` is any ``train/<class>/<image>``, ``val/<class>/<image>`` tree; ``imagenet`` is the ILSVRC-2012
layout, whose validation images are either in class folders too or all in ``val/`` with their labels in the
devkit. The classes are the training class folders sorted by name (ImageNet's WordNet ids, as torchvision's
``ImageFolder`` orders them), so label ``i`` means the same class on every machine; ``info.classes`` records them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resdyn.data.datasets import DatasetInfo
from resdyn.data.errors import DataError, DatasetNotFoundError
from resdyn.data.images import IMAGE_EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD
from resdyn.registry import Registry

LAYOUT = "train/<class>/<image> and val/<class>/<image>"
DEVKIT = Path("ILSVRC2012_devkit_t12") / "data"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"


@dataclass(frozen=True, eq=False)
class FolderSplit:
    """The image files of a split: paths relative to ``root`` (bytes, in one numpy array: a list of a million
    Python strings would be copied page by page into every worker process as their reference counts change) and
    their int64 labels."""

    root: Path
    files: np.ndarray
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, index: int) -> Path:
        return self.root / os.fsdecode(self.files[index])


@dataclass(frozen=True, eq=False)
class FolderDataset:
    """A dataset's info and its training and test (validation) splits, as files; ``info.image_size`` is the size
    the evaluation transform crops to."""

    info: DatasetInfo
    train: FolderSplit
    test: FolderSplit


def visible(entries: list[os.DirEntry]) -> list[os.DirEntry]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def split_folder(root: Path, name: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder: an image folder holds {LAYOUT} (found in {root}: "
                        f"{', '.join(sorted(p.name for p in root.iterdir())) or 'nothing'})")
    return folder


def is_image(entry: os.DirEntry) -> bool:
    return entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)


def scan_classes(folder: Path, classes: tuple[str, ...] | None) -> tuple[list[str], list[int], tuple[str, ...]]:
    """Files (relative to ``folder``) and labels of ``folder/<class>/<image>``, class by class and by name. The
    classes are ``folder``'s own, sorted, unless ``classes`` fixes them (a validation split: its classes must be
    training classes). Loose images, empty classes and unknown classes are errors naming them."""
    with os.scandir(folder) as it:
        entries = visible(list(it))
    loose = [e.name for e in entries if is_image(e)]
    if loose:
        raise DataError(f"{folder} holds images ({', '.join(loose[:3])}, ...) outside class folders: an image "
                        f"folder holds {LAYOUT}, each image in the folder of its class")
    found = tuple(e.name for e in entries if e.is_dir())
    if classes is None:
        if not found:
            raise DataError(f"{folder} has no class folders: an image folder holds {LAYOUT}")
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{', '.join(str(folder / c) for c in unknown[:5])}: not among the training classes "
                        f"({len(classes)} folders in {folder.parent / 'train'})")
    index = {c: i for i, c in enumerate(classes)}
    files, labels, empty = [], [], []
    for name in found:
        with os.scandir(folder / name) as it:
            images = [e.name for e in visible(list(it)) if is_image(e)]
        if not images:
            empty.append(str(folder / name))
        files += [f"{name}/{image}" for image in images]
        labels += [index[name]] * len(images)
    if empty:
        raise DataError(f"no images in {', '.join(empty[:5])} (image files end in {', '.join(IMAGE_EXTENSIONS)})")
    return files, labels, classes


def as_split(folder: Path, files: list[str], labels: list[int]) -> FolderSplit:
    return FolderSplit(folder, np.array([os.fsencode(f) for f in files]), torch.tensor(labels, dtype=torch.int64))


def check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"no image folder at {root}: it should hold {LAYOUT}")
    return root


def image_folder(root: str | Path, *, name: str = "image-folder", mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD, image_size: int = 224) -> FolderDataset:
    """The images of ``root/train/<class>/`` and ``root/val/<class>/``; classes sorted by folder name. ``mean``
    and ``std`` normalise them (default: ImageNet's); ``image_size`` is the evaluation crop."""
    root = check_root(root)
    train_folder, val_folder = split_folder(root, "train"), split_folder(root, "val")
    files, labels, classes = scan_classes(train_folder, None)
    val_files, val_labels, _ = scan_classes(val_folder, classes)
    info = DatasetInfo(name, len(classes), 3, (image_size, image_size), tuple(mean), tuple(std), classes)
    return FolderDataset(info, as_split(train_folder, files, labels), as_split(val_folder, val_files, val_labels))


def devkit_labels(devkit: Path, classes: tuple[str, ...], count: int) -> list[int]:
    """The labels of the ``count`` validation images, in file-name order, from the devkit's ground truth (one
    ILSVRC2012_ID per line) and ``meta.mat`` (ILSVRC2012_ID -> WordNet id), mapped to the sorted ``classes``."""
    truth, meta = devkit / GROUND_TRUTH, devkit / "meta.mat"
    if not truth.is_file() or not meta.is_file():
        raise DataError(f"val/ holds images without class folders, so their labels come from the ILSVRC-2012 devkit: "
                        f"{truth} and {meta} are needed (extract ILSVRC2012_devkit_t12.tar.gz in the dataset's "
                        f"folder), or put the validation images in class folders val/<wnid>/")
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"reading {meta} needs scipy (pip install scipy), or put the validation images in class "
                        f"folders val/<wnid>/") from None
    synsets = loadmat(meta, squeeze_me=True)["synsets"]
    wnid_of = {int(i): str(w) for i, w, children in
               zip(synsets["ILSVRC2012_ID"], synsets["WNID"], synsets["num_children"], strict=True) if children == 0}
    ids = [int(line) for line in truth.read_text().split()]
    if len(ids) != count:
        raise DataError(f"{truth} has {len(ids)} labels for {count} validation images in val/")
    index = {c: i for i, c in enumerate(classes)}
    missing = sorted({wnid_of.get(i, f"ILSVRC2012_ID {i}") for i in ids} - set(index))
    if missing:
        raise DataError(f"validation classes {', '.join(missing[:5])} of {truth} have no training folder in train/")
    return [index[wnid_of[i]] for i in ids]


def imagenet(root: str | Path, *, image_size: int = 224) -> FolderDataset:
    """ILSVRC-2012 (Russakovsky et al. 2015) at ``root``: ``train/<wnid>/*.JPEG``, and ``val/`` either in class
    folders ``val/<wnid>/`` or flat, ``val/ILSVRC2012_val_<n>.JPEG``, labelled by the devkit in
    ``root/ILSVRC2012_devkit_t12/data``. Classes are the sorted WordNet ids (label 0 is n01440764)."""
    root = check_root(root)
    val_folder = split_folder(root, "val")
    with os.scandir(val_folder) as it:
        entries = visible(list(it))
    if any(e.is_dir() for e in entries) or not any(is_image(e) for e in entries):
        return image_folder(root, name="imagenet", image_size=image_size)
    train_folder = split_folder(root, "train")
    files, labels, classes = scan_classes(train_folder, None)
    val_files = [e.name for e in entries if is_image(e)]
    val_labels = devkit_labels(root / DEVKIT, classes, len(val_files))
    info = DatasetInfo("imagenet", len(classes), 3, (image_size, image_size), IMAGENET_MEAN, IMAGENET_STD, classes)
    return FolderDataset(info, as_split(train_folder, files, labels), as_split(val_folder, val_files, val_labels))


FOLDER_DATASETS: Registry[Callable[..., FolderDataset]] = Registry("folder dataset")
FOLDER_DATASETS.add("image-folder", image_folder, f"any folder of {LAYOUT}")
FOLDER_DATASETS.add("imagenet", imagenet, "ILSVRC-2012: train/<wnid>/, val/ in class folders or labelled by the devkit")


def load_folder_dataset(name: str, root: str | Path, **options: object) -> FolderDataset:
    """The folder dataset ``name`` (``FOLDER_DATASETS``) at ``root``."""
    return FOLDER_DATASETS.get(name)(root, **options)
