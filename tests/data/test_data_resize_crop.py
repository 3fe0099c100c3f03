"""Resize and crop as Gładzik's thesis (AGH Kraków 2019) prepares its images: upscale 28 -> 32, a random 28x28 crop
in training (every valid offset equally likely, no flip unless asked), and a deterministic view of the same size in
evaluation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resdyn.data import Augment, DatasetInfo, DeviceLoader, Resize, Split, load_dataset
from resdyn.data.loader import apply_resize, augment_batch, centre_crop, resize_images
from resdyn.errors import ConfigError
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import load_data

GREY = DatasetInfo("grey", 10, 1, (28, 28), (0.0,), (1 / 255,), tuple("abcdefghij"))  # x = the pixel value
COORDS = DatasetInfo("coords", 10, 2, (32, 32), (0.0, 0.0), (1 / 255, 1 / 255), tuple("abcdefghij"))


def coordinates(n: int, size: int, first: int = 0) -> torch.Tensor:
    """``n`` two-channel images whose pixels say where they are: channel 0 holds ``first + row``, channel 1
    ``first + column``; a crop's top-left pixel then gives its offset."""
    index = torch.arange(first, first + size, dtype=torch.uint8)
    image = torch.stack([index[:, None].expand(size, size), index[None, :].expand(size, size)])
    return image.expand(n, 2, size, size).contiguous()


def offsets(crops: torch.Tensor, first: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return crops[:, 0, 0, 0].long() - first, crops[:, 1, 0, 0].long() - first


def chi_square(counts: torch.Tensor) -> float:
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


def test_the_training_crop_offset_is_uniform_over_every_valid_offset() -> None:
    # A 32x32 image has 5 x 5 offsets of a 28x28 crop. 20,000 draws: chi-square with 24 degrees of freedom,
    # whose 1e-4 upper quantile is 59.0; the generator is seeded, so this is one fixed, reproducible draw.
    images = coordinates(20_000, 32)
    augment = Augment(crop_padding=0, flip=False, crop=28)
    crops = augment_batch(images, augment, torch.Generator().manual_seed(0))
    assert crops.shape == (20_000, 2, 28, 28) and crops.dtype == torch.uint8
    dy, dx = offsets(crops)
    assert int(dy.min()) == int(dx.min()) == 0 and int(dy.max()) == int(dx.max()) == 4
    counts = torch.bincount(dy * 5 + dx, minlength=25).double()
    assert counts.numel() == 25 and bool((counts > 0).all())
    assert chi_square(counts) < 59.0
    # every crop is the window at its offset, rows and columns in order: no flip
    rows = torch.arange(28)
    assert torch.equal(crops[:, 0, :, 0].long(), dy[:, None] + rows)
    assert torch.equal(crops[:, 1, 0, :].long(), dx[:, None] + rows)
    again = augment_batch(images, augment, torch.Generator().manual_seed(0))
    assert torch.equal(crops, again)


def test_padding_and_cropping_together_reach_every_offset_of_the_padded_image() -> None:
    # 8x8 padded by 2 is 12x12: a 6x6 crop has offsets 0..6 per axis. Pixels hold row/column + 1, padding 0.
    images = coordinates(4_000, 8, first=1)
    crops = augment_batch(images, Augment(crop_padding=2, flip=False, crop=6), torch.Generator().manual_seed(1))
    assert crops.shape == (4_000, 2, 6, 6)
    # column 3 of a crop is padded column dx + 3 in 3..9, always inside the image (padded columns 2..9); its
    # first non-zero row r holds image row v - 1 = dy + r - 2
    column = crops[:, 0, :, 3]
    row = (column > 0).float().argmax(1)
    dy = column[torch.arange(4_000), row].long() + 1 - row
    assert set(dy.tolist()) == set(range(7))
    assert chi_square(torch.bincount(dy, minlength=7).double()) < 27.9  # 6 d.o.f., 1e-4 upper quantile


def test_flip_happens_only_when_asked() -> None:
    images = coordinates(2_000, 32)
    flipped = augment_batch(images, Augment(crop_padding=0, flip=True, crop=28), torch.Generator().manual_seed(2))
    reversed_rows = flipped[:, 1, 0, 0] > flipped[:, 1, 0, 1]
    assert 0.45 < float(reversed_rows.float().mean()) < 0.55
    kept = augment_batch(images, Augment(crop_padding=0, flip=False, crop=28), torch.Generator().manual_seed(2))
    assert bool((kept[:, 1, :, 1:] > kept[:, 1, :, :-1]).all())


def test_resize_is_torchvision_style_bilinear_and_stays_uint8() -> None:
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (5, 3, 28, 28), generator=generator, dtype=torch.uint8)
    up = resize_images(images, 32)
    reference = F.interpolate(images.float(), size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    assert up.dtype == torch.uint8 and up.shape == (5, 3, 32, 32)
    assert torch.equal(up, reference.round().clamp(0, 255).to(torch.uint8))
    assert resize_images(images, 28) is images  # the same size: untouched
    flat = torch.full((2, 1, 28, 28), 77, dtype=torch.uint8)
    assert bool((resize_images(flat, 32) == 77).all()) and bool((resize_images(flat, 20) == 77).all())
    assert torch.equal(resize_images(images, 32, chunk=2), up)  # chunking changes nothing


def test_centre_crop_takes_the_middle() -> None:
    crop = centre_crop(coordinates(1, 32), 28)
    assert crop.shape == (1, 2, 28, 28) and offsets(crop) == (torch.tensor([2]), torch.tensor([2]))
    odd = centre_crop(coordinates(1, 31), 28)  # 3 spare pixels: torchvision puts round(1.5) = 2 before
    assert offsets(odd) == (torch.tensor([2]), torch.tensor([2]))


def loader_images(loader: DeviceLoader, epoch: int) -> torch.Tensor:
    loader.set_epoch(epoch)
    return torch.cat([x for x, _ in loader]).round().to(torch.uint8)


def test_seed_004_training_and_evaluation_views() -> None:
    generator = torch.Generator().manual_seed(4)
    split = Split(torch.randint(0, 256, (50, 1, 28, 28), generator=generator, dtype=torch.uint8), torch.arange(50) % 10)
    train = DeviceLoader(split, GREY, 16, shuffle=True, seed=5, resize=Resize(32),
                         augment=Augment(crop_padding=0, flip=False, crop=28))  # fmt: skip
    assert train.image_size == (28, 28) and train.images.shape == (50, 1, 32, 32)  # resized once, on load
    x = loader_images(train, 0)
    assert x.shape == (50, 1, 28, 28)
    assert not torch.equal(x, loader_images(train, 1))  # new crops every epoch
    centre = resize_images(split.images, 32)[..., 2:30, 2:30]
    for name, resize, expected in (("resize", Resize(28), split.images),  # Gładzik 2019: resize to the crop size
                                   ("centre", Resize(32, centre_crop=28), centre)):  # fmt: skip
        evaluation = DeviceLoader(split, GREY, 16, resize=resize)
        assert evaluation.image_size == (28, 28), name
        first = loader_images(evaluation, 0)
        assert torch.equal(first, expected), name
        assert torch.equal(first, loader_images(evaluation, 7)), name  # deterministic: no epoch changes it


def test_a_crop_that_does_not_fit_is_a_config_error() -> None:
    split = Split(coordinates(4, 32), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ConfigError, match="a 40x40 crop does not fit in 32x32 images padded by 2"):
        DeviceLoader(split, COORDS, 4, augment=Augment(crop_padding=2, crop=40))
    with pytest.raises(ConfigError, match="a 33x33 centre crop does not fit in 32x32 images"):
        DeviceLoader(split, COORDS, 4, resize=Resize(centre_crop=33))
    with pytest.raises(ConfigError, match="crop must be at least 1"):
        Augment(crop=0)
    with pytest.raises(ConfigError, match="data.resize must be at least 1 pixel"):
        apply_overrides(Config(), ["data.resize=0"]).validate()


@pytest.mark.parametrize("eval_crop", ["resize", "centre"])
def test_load_data_gives_both_splits_the_crop_size(eval_crop: str) -> None:
    pytest.importorskip("sklearn", reason="the digits dataset comes with scikit-learn")
    config = apply_overrides(Config(), ["data.name=digits", "data.resize=10", "data.crop=8", "data.crop_padding=0",
                                        "data.flip=false", f"data.eval_crop={eval_crop}", "train.batch_size=64"])
    data = load_data(config, torch.device("cpu"), channels_last=False)
    assert data.info.image_size == (8, 8)  # what the model sees, and what its Mult-Adds are counted on
    assert next(iter(data.train))[0].shape == (64, 1, 8, 8) and next(iter(data.test))[0].shape[1:] == (1, 8, 8)
    # without augmentation training sees evaluation's view of its images
    plain = load_data(apply_overrides(config, ["data.augment=false"]), torch.device("cpu"), channels_last=False)
    view = Resize(8) if eval_crop == "resize" else Resize(10, centre_crop=8)
    assert plain.train.augment is None
    assert torch.equal(plain.train.images, apply_resize(load_dataset("digits").train.images, view))
    assert torch.equal(plain.test.images, data.test.images)
