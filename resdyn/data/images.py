"""Image files decoded with Pillow and the ImageNet transforms, one image at a time (in a loader's worker processes).

The transforms are torchvision's (``RandomResizedCrop(224)`` + ``RandomHorizontalFlip()`` for training, ``Resize(256)``
+ ``CenterCrop(224)`` for evaluation; torchvision 0.15-0.20, ``transforms/transforms.py``), written again on Pillow
because resdyn does not depend on torchvision. Their random draws are torchvision's, in the same order, from a
``torch.Generator`` passed in: where torchvision is importable, the tests check the crop boxes and the pixels
against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resdyn.data.errors import DataError
from resdyn.errors import ConfigError

# torchvision's IMG_EXTENSIONS: what an image folder's files may be.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# The channel means and deviations of ImageNet's training images in [0, 1], as every torchvision model uses them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def decode(path: str | Path) -> Image.Image:
    """The image at ``path`` as 8-bit RGB: greyscale, CMYK, palette and alpha images are converted (the alpha
    dropped), as torchvision's loader does. A file Pillow cannot read in full (not an image, truncated) is a
    DataError naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot decode {path}: {e}") from None


def to_uint8(image: Image.Image) -> torch.Tensor:
    """An RGB Pillow image as a contiguous uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def random_resized_crop_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
                            generator: torch.Generator) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random crop of a ``width`` x ``height`` image: torchvision's
    ``RandomResizedCrop.get_params`` (after Szegedy et al. 2015's Inception augmentation).

    Up to 10 attempts draw an area fraction uniformly from ``scale`` and an aspect ratio log-uniformly from
    ``ratio``; the first box that fits is placed uniformly. If none fits, the central crop of the whole image,
    its aspect ratio clamped to ``ratio``.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        w = round(math.sqrt(target_area * aspect_ratio))
        h = round(math.sqrt(target_area / aspect_ratio))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=generator).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=generator).item())
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def centre_crop(image: Image.Image, size: int) -> Image.Image:
    """The central ``size`` x ``size`` of ``image``, placed as torchvision's ``CenterCrop``."""
    top, left = round((image.height - size) / 2), round((image.width - size) / 2)
    return image.crop((left, top, left + size, top + size))


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """``image`` resized (bilinear, antialiased by Pillow when shrinking) so that its shorter side is ``size``
    pixels, its longer side truncated as torchvision's ``Resize(size)`` computes it."""
    short, long = sorted(image.size)
    new_short, new_long = size, int(size * long / short)
    new_size = (new_short, new_long) if image.width <= image.height else (new_long, new_short)
    return image if new_size == image.size else image.resize(new_size, Image.Resampling.BILINEAR)


@dataclass(frozen=True)
class TrainTransform:
    """Training augmentation: a random crop of ``scale`` of the area and ``ratio`` aspect
    (:func:`random_resized_crop_box`), resized to ``size`` x ``size`` (bilinear), flipped horizontally with
    probability 1/2 if ``flip``. torchvision's ``RandomResizedCrop(size)`` + ``RandomHorizontalFlip()``."""

    size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"the training crop must be at least 1 pixel, got {self.size}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError(f"the crop's scale is an area fraction range 0 < low <= high, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ConfigError(f"the crop's aspect ratio range needs 0 < low <= high, got {self.ratio}")

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None,
                 size: int | None = None) -> Image.Image:
        """``image`` augmented with the draws of ``generator``, at ``size`` (None: ``self.size``) pixels."""
        if generator is None:
            raise ValueError("the training transform draws its crop and flip from a generator; pass one")
        size = size or self.size
        top, left, h, w = random_resized_crop_box(image.width, image.height, self.scale, self.ratio, generator)
        image = image.crop((left, top, left + w, top + h)).resize((size, size), Image.Resampling.BILINEAR)
        if self.flip and torch.rand(1, generator=generator).item() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image

    @property
    def output_size(self) -> int:
        return self.size


@dataclass(frozen=True)
class EvalTransform:
    """Evaluation's deterministic view: the shorter side resized to ``resize``, the central ``crop`` x ``crop``
    cut out. torchvision's ``Resize(256)`` + ``CenterCrop(224)``, the single-crop evaluation of He et al. 2015."""

    resize: int = 256
    crop: int = 224

    def __post_init__(self) -> None:
        if not 1 <= self.crop <= self.resize:
            raise ConfigError(f"the evaluation crop ({self.crop}) must be at least 1 pixel and fit in the resized "
                              f"image's shorter side ({self.resize})")

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None,
                 size: int | None = None) -> Image.Image:
        """``image`` resized and centre-cropped; at ``size`` (None: ``crop``) pixels, the resize scaled alike."""
        crop = size or self.crop
        return centre_crop(resize_shorter_side(image, round(self.resize * crop / self.crop)), crop)

    @property
    def output_size(self) -> int:
        return self.crop


Transform = TrainTransform | EvalTransform
