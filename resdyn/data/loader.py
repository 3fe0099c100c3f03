"""One loader: a whole split resident on the device as uint8, batched, augmented and normalised there.

As in airbench, the data never leave the device: an epoch's permutation and augmentation come from a
generator on the device, seeded from ``(seed, epoch)`` alone, so an epoch can be replayed exactly on resume
and no batch waits on the CPU.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from resdyn.data.datasets import DatasetInfo, Split
from resdyn.errors import ConfigError


@dataclass(frozen=True)
class Resize:
    """What every image of a split becomes once, when the split is put on the device: resized to ``size`` x
    ``size`` (None: kept), then, if ``centre_crop`` is set, cut to its central ``centre_crop`` x ``centre_crop``.

    Gładzik's thesis (AGH Kraków 2019, sec. 4.4) trains on 28x28 images upscaled to ``Resize(32)`` and evaluates
    on images resized to the crop size, ``Resize(28)``; ``Resize(32, centre_crop=28)`` is the usual alternative.
    """

    size: int | None = None
    centre_crop: int | None = None

    def __post_init__(self) -> None:
        if self.size is not None and self.size < 1:
            raise ConfigError(f"the resize size must be at least 1 pixel, got {self.size}")
        if self.centre_crop is not None and self.centre_crop < 1:
            raise ConfigError(f"a centre crop must be at least 1 pixel, got {self.centre_crop}")


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """A float batch ``(B, C, H, W)`` resized to ``size`` x ``size``: bilinear with half-pixel centres
    (``align_corners=False``), antialiased when shrinking, as torchvision's ``Resize``."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def resize_images(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear resize of a uint8 batch ``(N, C, H, W)`` to ``(N, C, size, size)``, rounded back to uint8.

    As torchvision's ``Resize`` on PIL images, which Gładzik 2019 used: half-pixel centres (``align_corners=False``),
    antialiased when shrinking, and the result stored as 8-bit pixels again. Done in chunks of ``chunk`` images
    so that a whole split never exists in float at once.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8, device=images.device)
    for start in range(0, len(images), chunk):
        resized = resize_batch(images[start : start + chunk].float(), size)
        out[start : start + chunk] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` of a batch ``(N, C, H, W)``, placed as torchvision's ``CenterCrop``."""
    height, width = images.shape[-2:]
    top, left = round((height - size) / 2), round((width - size) / 2)
    return images[..., top : top + size, left : left + size]


def apply_resize(images: torch.Tensor, resize: Resize) -> torch.Tensor:
    """``images`` resized, and centre-cropped if ``resize`` says so, contiguous."""
    if resize.size is not None:
        images = resize_images(images, resize.size)
    if resize.centre_crop is not None:
        if resize.centre_crop > min(images.shape[-2:]):
            raise ConfigError(f"a {resize.centre_crop}x{resize.centre_crop} centre crop does not fit in "
                              f"{images.shape[-2]}x{images.shape[-1]} images: lower data.crop or raise data.resize")
        images = centre_crop(images, resize.centre_crop)
    return images.contiguous()


@dataclass(frozen=True)
class Augment:
    """Training augmentation, batched on the device: pad with zeros by ``crop_padding``, cut a ``crop`` x
    ``crop`` window (None: the image's own size) at an offset drawn uniformly from every offset where it fits,
    and flip horizontally with probability 1/2 if ``flip``. ``crop_padding = 0`` and no ``crop``: no crop."""

    crop_padding: int = 4
    flip: bool = True
    crop: int | None = None

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ConfigError(f"crop_padding must be >= 0, got {self.crop_padding}")
        if self.crop is not None and self.crop < 1:
            raise ConfigError(f"crop must be at least 1 pixel, got {self.crop}")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The size of an augmented ``height`` x ``width`` image; a crop larger than the padded image is a
        ConfigError."""
        if self.crop is None:
            return height, width
        if self.crop > min(height, width) + 2 * self.crop_padding:
            raise ConfigError(f"a {self.crop}x{self.crop} crop does not fit in {height}x{width} images padded by "
                              f"{self.crop_padding}: lower data.crop, or raise data.resize or data.crop_padding")
        return self.crop, self.crop


@dataclass(frozen=True)
class AugmentDraws:
    """The random draws of one batch's augmentation: crop offsets (None: no crop) and flips (None: no flip)."""

    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None


def draw_augment(batch: int, height: int, width: int, augment: Augment, generator: torch.Generator,
                 device: torch.device) -> AugmentDraws:
    """The draws :func:`augment_batch` makes for a batch of ``batch`` ``height`` x ``width`` images, in its order
    (so that a loader can skip batches by drawing only)."""
    p = augment.crop_padding
    out_height, out_width = augment.output_size(height, width)
    dy = dx = flip = None
    if p > 0 or (out_height, out_width) != (height, width):
        dy = torch.randint(0, height + 2 * p - out_height + 1, (batch,), generator=generator, device=device)
        dx = torch.randint(0, width + 2 * p - out_width + 1, (batch,), generator=generator, device=device)
    if augment.flip:
        flip = torch.rand(batch, generator=generator, device=device) < 0.5
    return AugmentDraws(dy, dx, flip)


def augment_batch(images: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Randomly crop and flip each image of a uint8 batch ``(B, C, H, W)``, all images at once."""
    batch, channels, height, width = images.shape
    device = images.device
    p = augment.crop_padding
    out_height, out_width = augment.output_size(height, width)
    draws = draw_augment(batch, height, width, augment, generator, device)
    if draws.dy is not None and draws.dx is not None:
        padded = F.pad(images, (p, p, p, p))  # zeros: black in pixel space, as torchvision pads
        dy, dx = draws.dy, draws.dx
        rows = (dy[:, None] + torch.arange(out_height, device=device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(out_width, device=device))[:, None, None, :]
        b = torch.arange(batch, device=device)[:, None, None, None]
        c = torch.arange(channels, device=device)[None, :, None, None]
        images = padded[b, c, rows, cols]
    if draws.flip is not None:
        images = torch.where(draws.flip[:, None, None, None], images.flip(3), images)
    return images


@dataclass(frozen=True)
class Progressive:
    """Progressive resizing, as FFCV trains ImageNet: the training images of epoch ``e`` (counted from 1) are
    resized to ``min_size`` pixels up to epoch ``start``, to the full size from epoch ``end`` on, and between to
    the linear interpolation of the two, rounded to a multiple of ``step`` pixels. Early epochs cost less (a
    convolution's work grows with the pixels) and the last ones train at the size evaluation sees."""

    min_size: int
    start: int
    end: int
    step: int = 4

    def __post_init__(self) -> None:
        if self.min_size < 1:
            raise ConfigError(f"data.progressive_min_size must be at least 1 pixel, got {self.min_size}")
        if self.step < 1:
            raise ConfigError(f"data.progressive_step must be at least 1 pixel, got {self.step}")
        if not 0 <= self.start < self.end:
            raise ConfigError(f"progressive resizing needs 0 <= data.progressive_start < data.progressive_end, got "
                              f"{self.start} and {self.end}")

    def size(self, epoch: int, full: int) -> int:
        """The training image size of ``epoch`` when evaluation's images are ``full`` x ``full``."""
        if self.min_size > full:
            raise ConfigError(f"data.progressive_min_size ({self.min_size}) is larger than the {full}x{full} "
                              "images the model is evaluated on: progressive resizing starts small")
        if epoch <= self.start:
            return self.min_size
        if epoch >= self.end:
            return full
        between = self.min_size + (full - self.min_size) * (epoch - self.start) / (self.end - self.start)
        return min(full, max(self.min_size, self.step * round(between / self.step)))


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed that depends only on ``(seed, epoch)``, distinct for distinct pairs."""
    digest = hashlib.sha256(f"resdyn-loader:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class DeviceLoader:
    """Whole split resident on ``device`` as uint8; batches are normalised float tensors.

    Yields ``(x, y)``: ``x`` float32 ``(B, C, H, W)``, augmented then normalised with ``info.mean`` and
    ``info.std``; ``y`` int64 ``(B,)``; both on ``device``. ``resize`` is applied once, to the whole split, when
    it is put on the device (it is deterministic); ``augment`` to every batch. With ``shuffle`` or ``augment``
    the epoch's permutation and augmentation depend only on ``(seed, epoch)``: call ``set_epoch`` before each
    epoch. ``image_size`` is the size of the images it yields, unless ``set_size`` (progressive resizing) asks
    for another square size, to which every batch is resized after its augmentation.
    """

    def __init__(
        self,
        split: Split,
        info: DatasetInfo,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: Augment | None = None,
        resize: Resize | None = None,
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if split.images.shape[1] != info.in_channels:
            raise ConfigError(
                f"{info.name} has {info.in_channels} channels, the split's images {split.images.shape[1]}"
            )
        self.device = torch.device(device)
        self.images = split.images.to(self.device)
        if resize is not None:
            self.images = apply_resize(self.images, resize)
        height, width = self.images.shape[-2:]
        self.image_size = augment.output_size(height, width) if augment is not None else (height, width)
        self.labels = split.labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.epoch = 0
        self.size: int | None = None
        shape = (1, info.in_channels, 1, 1)
        self.mean = torch.tensor(info.mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(info.std, dtype=torch.float32, device=self.device).view(shape)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation and augmentation of ``epoch``."""
        self.epoch = epoch

    def set_size(self, size: int | None) -> None:
        """Yield ``size`` x ``size`` images from now on (None: ``image_size``, as the split is stored)."""
        if size is not None and size < 1:
            raise ConfigError(f"an image size must be at least 1 pixel, got {size}")
        self.size = size

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches from batch ``start`` on: exactly those an iteration from the first batch yields
        from there (the skipped batches' random draws are made, and their images never touched), so that a
        training stopped inside an epoch resumes exactly."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        height, width = self.images.shape[-2:]
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            if i < start:
                if self.augment is not None:
                    draw_augment(len(index), height, width, self.augment, generator, self.device)
                continue
            x = self.images[index]
            if self.augment is not None:
                x = augment_batch(x, self.augment, generator)
            x = x.float()
            if self.size is not None:
                x = resize_batch(x, self.size)
            x = (x / 255 - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]
