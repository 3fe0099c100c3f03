"""Progressive resizing (data.progressive_*): the schedule of training sizes, and the loader's resized batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resdyn.data import DatasetInfo, DeviceLoader, Progressive, Split
from resdyn.errors import ConfigError
from resdyn.train.config import Config, apply_overrides

INFO = DatasetInfo("grey", 10, 1, (28, 28), (0.5,), (0.25,), tuple("abcdefghij"))


def test_sizes_hold_the_minimum_then_grow_linearly_in_steps_to_the_full_size() -> None:
    schedule = Progressive(min_size=16, start=4, end=9, step=4)
    sizes = [schedule.size(epoch, 28) for epoch in range(1, 15)]
    # epochs 5-8 interpolate 16 -> 28 at 1/5..4/5 of the way: 18.4, 20.8, 23.2, 25.6, rounded to multiples of 4
    assert sizes == [16, 16, 16, 16, 20, 20, 24, 24] + [28] * 6
    assert Progressive(20, 0, 2, step=1).size(1, 28) == 24  # halfway, no rounding to speak of
    assert Progressive(28, 0, 2).size(1, 28) == 28  # a minimum equal to the full size changes nothing


def test_a_schedule_that_cannot_work_is_refused() -> None:
    with pytest.raises(ConfigError, match="progressive_start < data.progressive_end"):
        Progressive(16, 5, 5)
    with pytest.raises(ConfigError, match="progressive_step"):
        Progressive(16, 0, 5, step=0)
    with pytest.raises(ConfigError, match="at least 1 pixel"):
        Progressive(0, 0, 5)
    with pytest.raises(ConfigError, match=r"larger than the 28x28 images"):
        Progressive(32, 0, 5).size(1, 28)


def test_the_config_needs_an_end_within_the_run() -> None:
    with pytest.raises(ConfigError, match="needs data.progressive_end"):
        apply_overrides(Config(), ["data.progressive_min_size=16"]).validate()
    with pytest.raises(ConfigError, match="after the last epoch"):
        apply_overrides(Config(), ["data.progressive_min_size=16", "data.progressive_end=11",
                                   "train.epochs=10"]).validate()
    config = apply_overrides(Config(), ["data.progressive_min_size=16", "data.progressive_end=10",
                                        "train.epochs=10"]).validate()
    assert config.data.progressive() == Progressive(16, 0, 10, 4)
    assert Config().data.progressive() is None


def test_the_loader_resizes_each_augmented_batch_and_goes_back_to_full_size() -> None:
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    split = Split(images, torch.arange(10) % 10)
    loader = DeviceLoader(split, INFO, 4)
    full = [x for x, _ in loader]
    loader.set_size(16)
    small = [x for x, _ in loader]
    assert [x.shape for x in small] == [(4, 1, 16, 16), (4, 1, 16, 16), (2, 1, 16, 16)]
    # the resize acts on the pixels (antialiased bilinear, as resize_images), then the normalisation
    expected = (F.interpolate(images[:4].float(), size=(16, 16), mode="bilinear", align_corners=False,
                              antialias=True) / 255 - 0.5) / 0.25
    torch.testing.assert_close(small[0], expected)
    assert loader.image_size == (28, 28)  # what evaluation sees does not change
    loader.set_size(None)
    assert all(torch.equal(a, b) for a, b in zip(full, [x for x, _ in loader], strict=True))
    with pytest.raises(ConfigError, match="at least 1 pixel"):
        loader.set_size(0)
