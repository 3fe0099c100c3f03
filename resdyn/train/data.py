"""A training's data: the splits of a dataset, held out and limited as the config says, resident on the device;
each process's part of every batch (:func:`shard`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from resdyn.data import Augment, Dataset, DatasetInfo, DeviceLoader, Resize, Split, load_dataset, split_validation, take
from resdyn.distributed import World
from resdyn.errors import ConfigError
from resdyn.train.config import Config


@dataclass
class Data:
    """The splits of a run, on the device: training (shuffled, augmented), test, and validation if held out;
    ``info.image_size`` is the size of the images the model sees (after any resize and crop)."""

    info: DatasetInfo
    train: DeviceLoader
    test: DeviceLoader
    val: DeviceLoader | None


def load_data(config: Config, device: torch.device, channels_last: bool) -> Data:
    """Load the dataset ``data.name`` and put it on the device (:func:`prepare_data`)."""
    dc = config.data
    dataset = load_dataset(dc.name, dc.dir, download=dc.download, test_part=dc.test_part)
    return prepare_data(dataset, config, device, channels_last)


def prepare_data(dataset: Dataset, config: Config, device: torch.device, channels_last: bool) -> Data:
    """Hold out the validation split, apply the limits, and put every split of ``dataset`` on the device.

    Training images are resized to ``data.resize`` and then augmented (padded, cropped to ``data.crop`` at a random
    offset, flipped); evaluation's are resized and centre-cropped, or resized straight to the crop size
    (``data.eval_crop``), so both reach the model at the same size. Without ``data.augment`` training sees
    evaluation's images.
    """
    dc, tc = config.data, config.train
    train_split: Split = dataset.train
    val_split: Split | None = None
    if dc.val_fraction > 0:
        train_split, val_split = split_validation(train_split, dc.val_fraction, tc.seed)
    train_split = take(train_split, dc.limit_train, tc.seed)
    test_split = take(dataset.test, dc.limit_test, tc.seed)
    if dc.crop is not None and dc.eval_crop == "resize":
        eval_resize = Resize(dc.crop)
    else:
        eval_resize = Resize(dc.resize, centre_crop=dc.crop)
    if dc.augment:
        augment, train_resize = Augment(dc.crop_padding, dc.flip, dc.crop), Resize(dc.resize)
    else:
        augment, train_resize = None, eval_resize
    train_loader = DeviceLoader(train_split, dataset.info, tc.batch_size, device=device, shuffle=True,
                                augment=augment, resize=train_resize, seed=tc.seed, channels_last=channels_last)

    def eval_loader(split: Split) -> DeviceLoader:
        return DeviceLoader(split, dataset.info, tc.eval_batch_size, device=device, resize=eval_resize,
                            channels_last=channels_last)

    test_loader = eval_loader(test_split)
    info = dataclasses.replace(dataset.info, image_size=test_loader.image_size)
    return Data(info, train_loader, test_loader, eval_loader(val_split) if val_split is not None else None)


TensorPair = tuple[torch.Tensor, torch.Tensor]


def as_split(data: Split | TensorPair, what: str) -> Split:
    """A :class:`Split` from a pair ``(images, labels)``: images ``(N, C, H, W)`` as uint8, or as floats in
    [0, 1] (torchvision's ``ToTensor``), which are stored as 8-bit pixels as every split is; integer labels."""
    if isinstance(data, Split):
        return data
    if isinstance(data, DataLoader):
        raise ConfigError(f"{what}: a DataLoader is not accepted; pass its tensors (images, labels), e.g. "
                          "(dataset.data, dataset.targets), and let the config's data section augment them")
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
        raise ConfigError(f"{what} must be a pair of tensors (images, labels) or a resdyn.data Split, "
                          f"got {type(data).__name__}")
    images, labels = data
    if images.dim() != 4:
        raise ConfigError(f"{what}: images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if images.is_floating_point():
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ConfigError(f"{what}: float images must be pixel intensities in [0, 1] (not normalised: the loader "
                              f"normalises them), got values in [{images.min():.3g}, {images.max():.3g}]")
        images = (images * 255).round().to(torch.uint8)
    elif images.dtype != torch.uint8:
        raise ConfigError(f"{what}: images must be uint8 or float in [0, 1], got {images.dtype}")
    if labels.is_floating_point() or labels.is_complex() or labels.shape != images.shape[:1]:
        raise ConfigError(f"{what}: labels must be integers (N,) with N = {len(images)}, got {labels.dtype} "
                          f"{tuple(labels.shape)}")
    return Split(images.cpu().contiguous(), labels.cpu().long())


def as_dataset(train: Dataset | Split | TensorPair, test: Split | TensorPair | None) -> Dataset:
    """A :class:`Dataset` from a training and a test split (tensors or Splits), or the Dataset given; the info of
    tensors is computed from them (channel means and deviations of the training images, classes 0..max label)."""
    if isinstance(train, Dataset):
        if test is not None:
            raise ConfigError("a Dataset holds its own test split: pass test_data=None with it")
        return train
    if test is None:
        raise ConfigError("test_data is needed with training tensors: a pair (images, labels) or a Split")
    train_split, test_split = as_split(train, "train_data"), as_split(test, "test_data")
    if train_split.images.shape[1:] != test_split.images.shape[1:]:
        raise ConfigError(f"train_data's images are {tuple(train_split.images.shape[1:])}, test_data's "
                          f"{tuple(test_split.images.shape[1:])}: they must have the same channels and size")
    pixels = train_split.images.transpose(0, 1).flatten(1).double() / 255
    classes = int(max(train_split.labels.max(), test_split.labels.max())) + 1
    info = DatasetInfo("tensors", classes, pixels.shape[0], tuple(train_split.images.shape[2:]),
                       tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).clamp_min(1e-6).tolist()),
                       tuple(str(c) for c in range(classes)))
    return Dataset(info, train_split, test_split)


def shard(loader: DeviceLoader, world: World, train: bool,
          start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """This process's part of each of the loader's (global) batches from batch ``start`` on, with the global
    batch's size.

    Every process draws the same global batch (the order and augmentation depend only on seed and epoch) and
    keeps its rank's slice, so the union over ranks is exactly what one process would train on. A last training
    batch too small to give every process an image is dropped (DistributedDataParallel needs every process to
    take every step); evaluation keeps every image.
    """
    for x, y in loader.batches(start):
        n = len(y)
        if world.size > 1:
            if train and n < world.size:
                continue
            x, y = x.tensor_split(world.size)[world.rank], y.tensor_split(world.size)[world.rank]
        yield x, y, n


def train_steps(loader: DeviceLoader, world: World) -> int:
    """Steps in a training epoch: the loader's batches less a last one :func:`shard` drops."""
    last = len(loader.labels) - (len(loader) - 1) * loader.batch_size
    return len(loader) - (1 if world.size > 1 and last < world.size else 0)
