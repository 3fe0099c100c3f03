"""What can be checked of a run's config before its data loads or anything trains: the dataset is known (and
its files are there when they may not be downloaded), and the model builds with its options for the dataset's
images and takes an image of every size it will see.

``resdyn compare`` checks every experiment of a suite this way before the first one trains, so that a typo in
its last row is not found hours into the suite (``resdyn train`` meets the same errors within seconds anyway).
"""

from __future__ import annotations

import torch

from resdyn.data.datasets import dataset_spec, locate
from resdyn.errors import ConfigError
from resdyn.nets import build_model
from resdyn.train.config import Config


def model_input_sizes(config: Config, image_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The image sizes the model will see: the evaluation size (after ``data.resize`` and ``data.crop``) and,
    with progressive resizing, the smallest training size."""
    dc = config.data
    side = dc.crop if dc.crop is not None else dc.resize
    full = (side, side) if side is not None else image_size
    sizes = [full]
    if dc.progressive_min_size is not None and dc.progressive_min_size < full[0]:
        sizes.append((dc.progressive_min_size, dc.progressive_min_size))
    return sizes


def check_runnable(config: Config) -> None:
    """Raise a resdyn error (ConfigError, UnknownNameError, DatasetNotFoundError) if ``config`` cannot train:
    an unknown dataset or test part, data files missing where downloading is off, an unknown model or option,
    or an image too small for the model. Builds the model on the CPU (without touching the global RNG) and runs
    one blank image of each size through it in evaluation mode; reads no data."""
    dc = config.data
    spec = dataset_spec(dc.name, dc.test_part)
    if not dc.download:
        locate(dc.name, dc.dir)
    info = spec.info
    with torch.random.fork_rng(devices=[]):
        model = build_model(config.model.name, info.in_channels, info.num_classes, **config.model.options).eval()
        for height, width in model_input_sizes(config, info.image_size):
            try:
                with torch.no_grad():
                    model(torch.zeros(1, info.in_channels, height, width))
            except RuntimeError as e:
                raise ConfigError(f"{config.model.name} cannot run on the {height}x{width} images it would see "
                                  f"({str(e).splitlines()[0]}); raise data.resize, data.crop or "
                                  "data.progressive_min_size") from None
