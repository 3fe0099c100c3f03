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
class Augment:
    """Training augmentation: pad with zeros by ``crop_padding`` and crop back at a random offset (0: off);
    flip horizontally with probability 1/2 if ``flip``."""

    crop_padding: int = 4
    flip: bool = True

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ConfigError(f"crop_padding must be >= 0, got {self.crop_padding}")


def augment_batch(images: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Randomly crop and flip each image of a uint8 batch ``(B, C, H, W)``, all images at once."""
    batch, channels, height, width = images.shape
    device = images.device
    p = augment.crop_padding
    if p > 0:
        padded = F.pad(images, (p, p, p, p))  # zeros: black in pixel space, as torchvision pads
        dy = torch.randint(0, 2 * p + 1, (batch,), generator=generator, device=device)
        dx = torch.randint(0, 2 * p + 1, (batch,), generator=generator, device=device)
        rows = (dy[:, None] + torch.arange(height, device=device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(width, device=device))[:, None, None, :]
        b = torch.arange(batch, device=device)[:, None, None, None]
        c = torch.arange(channels, device=device)[None, :, None, None]
        images = padded[b, c, rows, cols]
    if augment.flip:
        flip = torch.rand(batch, generator=generator, device=device) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(3), images)
    return images


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed that depends only on ``(seed, epoch)``, distinct for distinct pairs."""
    digest = hashlib.sha256(f"resdyn-loader:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class DeviceLoader:
    """Whole split resident on ``device`` as uint8; batches are normalised float tensors.

    Yields ``(x, y)``: ``x`` float32 ``(B, C, H, W)``, augmented then normalised with ``info.mean`` and
    ``info.std``; ``y`` int64 ``(B,)``; both on ``device``. With ``shuffle`` or ``augment`` the epoch's
    permutation and augmentation depend only on ``(seed, epoch)``: call ``set_epoch`` before each epoch.
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
        self.labels = split.labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.epoch = 0
        shape = (1, info.in_channels, 1, 1)
        self.mean = torch.tensor(info.mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(info.std, dtype=torch.float32, device=self.device).view(shape)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation and augmentation of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[index]
            if self.augment is not None:
                x = augment_batch(x, self.augment, generator)
            x = (x.float() / 255 - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]
