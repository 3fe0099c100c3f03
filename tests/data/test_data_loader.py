"""DeviceLoader: exact batches, labels paired with their images, crops that are crops, epochs replayable."""

from __future__ import annotations

import math

import pytest
import torch

from resdyn.data import Augment, DatasetInfo, DeviceLoader, Split
from resdyn.data.loader import augment_batch, epoch_seed

INFO = DatasetInfo("toy", 10, 3, (6, 6), (0.25, 0.5, 0.75), (0.5, 0.25, 0.125), tuple("abcdefghij"))


def toy_split(n: int = 23, size: int = 6) -> Split:
    """Distinct images; each label is its index mod 10."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)
    return Split(images, torch.arange(n) % 10)


def raw(x: torch.Tensor, info: DatasetInfo = INFO) -> torch.Tensor:
    """Undo the normalisation: back to pixel values 0..255."""
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).round()


def epoch(loader: DeviceLoader, number: int) -> tuple[torch.Tensor, torch.Tensor]:
    loader.set_epoch(number)
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_shapes_dtypes_and_length() -> None:
    split = toy_split()
    loader = DeviceLoader(split, INFO, 5)
    batches = list(loader)
    assert len(loader) == len(batches) == 5
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (5, 3, 6, 6) and y.dtype == torch.int64
    dropped = DeviceLoader(split, INFO, 5, drop_last=True)
    assert len(dropped) == 4 and [len(y) for _, y in dropped] == [5, 5, 5, 5]


def test_normalisation_is_per_channel() -> None:
    split = toy_split()
    x, y = epoch(DeviceLoader(split, INFO, 7), 0)
    mean = torch.tensor(INFO.mean).view(1, 3, 1, 1)
    std = torch.tensor(INFO.std).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (split.images.double() / 255 - mean.double()).div(std.double()).float())
    assert torch.equal(y, split.labels)


def test_every_example_once_per_epoch() -> None:
    split = toy_split()
    loader = DeviceLoader(split, INFO, 4, shuffle=True, augment=Augment(), seed=3)
    for number in range(3):
        _, y = epoch(loader, number)
        assert sorted(y.tolist()) == sorted(split.labels.tolist())
    images = Split(split.images, torch.arange(23))  # labels that are indices
    _, y = epoch(DeviceLoader(images, INFO, 4, shuffle=True, seed=3, drop_last=True), 0)
    assert len(y) == 20 and len(set(y.tolist())) == 20


def test_epoch_depends_only_on_seed_and_epoch() -> None:
    split = toy_split()
    a = DeviceLoader(split, INFO, 4, shuffle=True, augment=Augment(), seed=11)
    b = DeviceLoader(split, INFO, 4, shuffle=True, augment=Augment(), seed=11)
    xa, ya = epoch(a, 5)
    epoch(b, 2)  # a different history must not matter
    xb, yb = epoch(b, 5)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    xa2, ya2 = epoch(a, 5)  # replaying an epoch gives it again
    assert torch.equal(xa, xa2) and torch.equal(ya, ya2)
    x6, y6 = epoch(a, 6)
    assert not torch.equal(ya, y6) and not torch.equal(xa, x6)
    other = DeviceLoader(split, INFO, 4, shuffle=True, augment=Augment(), seed=12)
    assert not torch.equal(ya, epoch(other, 5)[1])


def test_epoch_seeds_are_distinct() -> None:
    seeds = {epoch_seed(seed, number) for seed in range(30) for number in range(30)}
    assert len(seeds) == 900 and all(0 <= s < 2**63 for s in seeds)


def test_without_shuffle_the_order_is_the_split_order() -> None:
    split = toy_split()
    _, y = epoch(DeviceLoader(split, INFO, 6, augment=Augment()), 4)
    assert torch.equal(y, split.labels)


def test_crop_with_no_padding_and_no_flip_is_identity() -> None:
    split = toy_split()
    plain = DeviceLoader(split, INFO, 8, shuffle=True, seed=1)
    augmented = DeviceLoader(
        split, INFO, 8, shuffle=True, seed=1, augment=Augment(crop_padding=0, flip=False)
    )
    xp, yp = epoch(plain, 2)
    xa, ya = epoch(augmented, 2)
    assert torch.equal(xp, xa) and torch.equal(yp, ya)


def candidates(image: torch.Tensor, p: int) -> list[torch.Tensor]:
    """Every crop of the zero-padded image and its mirror image, by slicing one at a time."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * p, w + 2 * p, dtype=image.dtype)
    padded[:, p : p + h, p : p + w] = image
    crops = [padded[:, dy : dy + h, dx : dx + w] for dy in range(2 * p + 1) for dx in range(2 * p + 1)]
    return crops + [crop.flip(2) for crop in crops]


@pytest.mark.parametrize("augment", [Augment(), Augment(crop_padding=2, flip=False), Augment(0, True)])
def test_each_augmented_image_is_a_crop_or_flip_of_its_own_image(augment: Augment) -> None:
    images = toy_split(40).images
    split = Split(images, torch.arange(40))  # a label names its image
    loader = DeviceLoader(split, INFO, 16, shuffle=True, augment=augment, seed=4)
    seen: set[int] = set()
    for number in range(2):
        x, y = epoch(loader, number)
        assert x.shape == (40, 3, 6, 6)
        pixels = raw(x).to(torch.uint8)
        for image, label in zip(pixels, y.tolist(), strict=True):
            matches = [k for k, c in enumerate(candidates(images[label], augment.crop_padding))
                       if torch.equal(image, c)]  # fmt: skip
            assert matches, f"an image labelled {label} is no crop or flip of image {label}"
            seen.update(matches)
    n = (2 * augment.crop_padding + 1) ** 2
    assert len(seen) > (1 if n == 1 else 5)  # the offsets and flips vary
    if not augment.flip:
        assert max(seen) < n


def test_augmentation_is_batched_and_keeps_dtype() -> None:
    images = toy_split(8).images
    out = augment_batch(images, Augment(), torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == images.shape


def test_channels_last_changes_layout_not_values() -> None:
    split = toy_split()
    x, _ = next(iter(DeviceLoader(split, INFO, 8)))
    xc, _ = next(iter(DeviceLoader(split, INFO, 8, channels_last=True)))
    assert xc.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, xc)


def test_the_split_is_not_modified() -> None:
    split = toy_split()
    before = split.images.clone()
    epoch(DeviceLoader(split, INFO, 4, shuffle=True, augment=Augment()), 0)
    assert torch.equal(split.images, before)


def test_bad_arguments_are_refused() -> None:
    split = toy_split()
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(split, INFO, 0)
    grey = DatasetInfo("grey", 10, 1, (6, 6), (0.5,), (0.5,), tuple("abcdefghij"))
    with pytest.raises(ValueError, match="1 channels"):
        DeviceLoader(split, grey, 4)
    with pytest.raises(ValueError, match="crop_padding"):
        Augment(crop_padding=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_stay_on_the_device() -> None:
    loader = DeviceLoader(toy_split(), INFO, 8, device="cuda", shuffle=True, augment=Augment())
    x, y = next(iter(loader))
    assert x.is_cuda and y.is_cuda and math.isfinite(float(x.sum()))


@pytest.mark.parametrize("augment", [None, Augment(), Augment(crop_padding=0, flip=True), Augment(flip=False)])
def test_an_epoch_started_at_a_batch_yields_exactly_its_tail(augment):
    """A training stopped inside an epoch resumes from batch k with the very batches (order and augmentation)
    an uninterrupted epoch would train on from there."""
    from resdyn.data import DatasetInfo, DeviceLoader, Split

    images = torch.randint(0, 256, (37, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 3, (37,))
    info = DatasetInfo("toy", 3, 1, (8, 8), (0.5,), (0.25,), ("a", "b", "c"))
    loader = DeviceLoader(Split(images, labels), info, 5, shuffle=True, augment=augment, seed=3)
    loader.set_epoch(2)
    whole = list(loader)
    for start in (0, 1, 4, len(whole) - 1, len(whole)):
        tail = list(loader.batches(start))
        assert len(tail) == len(whole) - start
        for (x, y), (wx, wy) in zip(tail, whole[start:], strict=True):
            assert torch.equal(x, wx) and torch.equal(y, wy)
