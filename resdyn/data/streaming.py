"""The streaming loader: image files decoded and augmented in DataLoader worker processes, batch by batch, for
datasets too large to keep on a device (ImageNet); :class:`~resdyn.data.loader.DeviceLoader` stays the loader of
small ones, and this one has its interface (``set_epoch``, ``set_size``, ``len``, iteration yielding ``(images,
labels)`` on the device) plus :meth:`StreamingLoader.start_step`.

Resume stays exact because nothing depends on the past: an epoch's order is a permutation seeded by
``(seed, epoch)`` (the DeviceLoader's), the augmentation of image ``i`` in epoch ``e`` is drawn from a generator
seeded by ``(seed, e, i)`` in whichever worker decodes it, and each process reads its rank's slice of every global
batch. So the batches do not depend on the number of workers, and starting at step ``k`` gives exactly the
batches ``k, k + 1, ...`` of the whole epoch.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import DataLoader, Dataset

from resdyn.data.datasets import DatasetInfo
from resdyn.data.errors import DataError
from resdyn.data.folder import FolderSplit
from resdyn.data.images import TrainTransform, Transform, decode, to_uint8
from resdyn.data.loader import epoch_seed
from resdyn.errors import ConfigError

OnError = Literal["refuse", "skip"]
# What a worker hands back for one image: the uint8 image and its label, or None, the label and the file and the
# error that stopped its decoding.
Sample = tuple[torch.Tensor | None, int, tuple[str, str] | None]
Request = tuple[int, int, int | None]  # (image index, epoch, size)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit generator seed for the augmentation of image ``index`` in ``epoch``: a function of the three alone,
    so no worker count, worker assignment or starting step changes an image's augmentation."""
    digest = hashlib.sha256(f"resdyn-sample:{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class DecodedImages(Dataset):
    """What a worker does with a request ``(index, epoch, size)``: decode the file, transform it (drawing from
    :func:`sample_seed`'s generator), return it as uint8. A file that cannot be decoded comes back as
    ``(None, label, (path, error))``, and the loader refuses or skips it in the main process: an exception raised
    in a worker would leave persistent workers that take 5 s each to shut down."""

    def __init__(self, split: FolderSplit, transform: Transform, seed: int) -> None:
        self.split = split
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, request: Request) -> Sample:
        index, epoch, size = request
        label = int(self.split.labels[index])
        path = self.split.path(index)
        try:
            image = decode(path)
        except DataError as e:
            return None, label, (str(path), str(e))
        generator = None
        if isinstance(self.transform, TrainTransform):
            generator = torch.Generator().manual_seed(sample_seed(self.seed, epoch, index))
        return to_uint8(self.transform(image, generator, size)), label, None


Batch = tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]


def collate(samples: list[Sample]) -> Batch:
    """The decoded images stacked (uint8), their labels, and the files that could not be decoded with why."""
    kept = [(image, label) for image, label, _ in samples if image is not None]
    failed = [failure for image, _, failure in samples if failure is not None]
    images = torch.stack([image for image, _ in kept]) if kept else torch.empty(0, dtype=torch.uint8)
    return images, torch.tensor([label for _, label in kept], dtype=torch.int64), failed


@dataclass
class Plan:
    """Which images each step of an epoch reads on this rank: the state the loader and its batch sampler share
    (the sampler holds this, not the loader, so that no reference cycle delays the workers' shutdown)."""

    images: int
    batch_size: int
    shuffle: bool
    seed: int
    rank: int
    world_size: int
    drop_last: bool
    train: bool
    epoch: int = 0
    size: int | None = None
    start: int = 0

    def steps(self) -> int:
        """Global batches in an epoch, less a last training batch too small to give every rank an image
        (DistributedDataParallel needs every process to take every step)."""
        n = self.images
        steps = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        last = n - (steps - 1) * self.batch_size
        return steps - (1 if self.train and self.world_size > 1 and 0 < last < self.world_size else 0)

    def indices(self, start: int = 0) -> list[torch.Tensor]:
        """The image indices this rank reads at each step of the epoch from step ``start`` on (an evaluation's
        rank with no image in a last small batch skips it)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.images, generator=generator)
        else:
            order = torch.arange(self.images)
        steps = []
        for step in range(start, self.steps()):
            batch = order[step * self.batch_size : (step + 1) * self.batch_size]
            mine = batch.tensor_split(self.world_size)[self.rank]
            if len(mine):
                steps.append(mine)
        return steps


class Requests:
    """The batch sampler: this rank's requests ``(index, epoch, size)`` for each step of the plan's epoch from its
    start step."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __iter__(self) -> Iterator[list[Request]]:
        # Not a generator function: the epoch, size and start are read now, when the DataLoader's iteration
        # begins, not at its first batch.
        epoch, size = self.plan.epoch, self.plan.size
        return ([(i, epoch, size) for i in index.tolist()] for index in self.plan.indices(self.plan.start))

    def __len__(self) -> int:
        return len(self.plan.indices(self.plan.start))


def one_thread(worker: int) -> None:
    # A worker decodes one image at a time; torch's few operations on it need no thread pool of their own.
    torch.set_num_threads(1)


class StreamingLoader:
    """The images of ``split`` in batches of ``batch_size`` (the global batch, over all processes), decoded and
    transformed by ``transform`` in ``num_workers`` worker processes (0: in this one), normalised with
    ``info.mean`` and ``info.std`` on ``device``.

    Yields ``(x, y)``: ``x`` float32 ``(B, 3, S, S)``, ``y`` int64 ``(B,)``, both on ``device``; ``B`` is rank
    ``rank``'s slice of the global batch (``tensor_split`` over ``world_size``, as
    :func:`resdyn.train.data.shard` slices a DeviceLoader's). With ``shuffle`` the order is a permutation of
    ``(seed, epoch)``; a :class:`~resdyn.data.images.TrainTransform` draws each image's augmentation from
    ``(seed, epoch, index)``. Call ``set_epoch`` before each epoch, ``start_step`` to begin inside one.

    Workers persist across epochs, batches come to the host in pinned memory and, on CUDA, are copied to the device
    on a side stream one batch ahead, so the copy overlaps the training step. Images travel as uint8 and become
    floats on the device. ``on_error``: a file that cannot be decoded stops the epoch with a DataError naming it
    ("refuse"), or is left out of its batch with a warning naming it and recorded in ``skipped`` ("skip").
    """

    def __init__(
        self,
        split: FolderSplit,
        info: DatasetInfo,
        batch_size: int,
        *,
        transform: Transform,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        prefetch_factor: int = 2,
        drop_last: bool = False,
        channels_last: bool = False,
        on_error: OnError = "refuse",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not one of the {world_size} processes (0 to {world_size - 1})")
        if on_error not in ("refuse", "skip"):
            raise ConfigError(f"on_error is 'refuse' or 'skip', got {on_error!r}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        self.split = split
        self.labels = split.labels
        self.batch_size = batch_size
        self.image_size = (transform.output_size, transform.output_size)
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.plan = Plan(len(split), batch_size, shuffle, seed, rank, world_size, drop_last,
                         isinstance(transform, TrainTransform))
        self.on_error = on_error
        self.skipped: list[Path] = []
        shape = (1, info.in_channels, 1, 1)
        self.mean = torch.tensor(info.mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(info.std, dtype=torch.float32, device=self.device).view(shape)
        workers = num_workers > 0
        self.batches = DataLoader(
            DecodedImages(split, transform, seed), batch_sampler=Requests(self.plan), num_workers=num_workers,
            collate_fn=collate, pin_memory=self.device.type == "cuda", persistent_workers=workers,
            prefetch_factor=prefetch_factor if workers else None, worker_init_fn=one_thread if workers else None,
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the order and augmentation of ``epoch``."""
        self.plan.epoch = epoch

    def set_size(self, size: int | None) -> None:
        """Crop the images to ``size`` x ``size`` from now on (None: the transform's own size)."""
        if size is not None and size < 1:
            raise ConfigError(f"an image size must be at least 1 pixel, got {size}")
        self.plan.size = size

    def start_step(self, step: int) -> None:
        """Begin the next iteration at step ``step`` of the epoch (a resume inside it): it yields exactly the
        batches ``step, step + 1, ...`` an iteration of the whole epoch yields. Later iterations start at 0."""
        if not 0 <= step <= len(self):
            raise ConfigError(f"an epoch of {len(self)} steps cannot start at step {step}")
        self.plan.start = step

    def __len__(self) -> int:
        """Steps in an epoch (:meth:`Plan.steps`)."""
        return self.plan.steps()

    def indices(self) -> list[torch.Tensor]:
        """The image indices this rank reads at each step of the current epoch."""
        return self.plan.indices()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = iter(self.batches)  # reads the start step: the sampler's iteration begins here
        self.plan.start = 0
        if self.device.type == "cuda":
            yield from self.ahead(batches)
        else:
            for images, labels in self.decoded(batches):
                yield self.normalise(images, labels)

    def decoded(self, batches: Iterator[Batch]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The workers' batches; a file that could not be decoded refused, or named, recorded and left out (a batch
        of such files alone yields nothing)."""
        for images, labels, failed in batches:
            if failed and self.on_error == "refuse":
                raise DataError(f"{failed[0][1]} (on_error = 'skip' skips such files, naming them)")
            if failed:
                self.skipped += [Path(path) for path, _ in failed]
                warnings.warn(f"skipped {len(failed)} image file(s) that cannot be decoded: "
                              f"{'; '.join(error for _, error in failed)}", stacklevel=3)
            if len(labels):
                yield images, labels

    def normalise(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images.to(self.device, non_blocking=True).float() / 255 - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels.to(self.device, non_blocking=True)

    def ahead(self, batches: Iterator[Batch]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """CUDA: each batch copied and normalised on a side stream while the caller computes on the one before."""
        stream = torch.cuda.Stream(self.device)
        pending: tuple[torch.Tensor, torch.Tensor] | None = None
        for images, labels in self.decoded(batches):
            with torch.cuda.stream(stream):
                ready = self.normalise(images, labels)
            if pending is not None:
                yield self.wait(pending, stream)
            pending = ready
        if pending is not None:
            yield self.wait(pending, stream)

    def wait(self, batch: tuple[torch.Tensor, torch.Tensor], stream: torch.cuda.Stream
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch``, made on ``stream``, safe to use on the caller's current stream."""
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(stream)
        for tensor in batch:
            tensor.record_stream(current)
        return batch
