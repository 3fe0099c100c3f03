"""Small image folders written with Pillow for the folder-dataset and streaming-loader tests: JPEGs of odd sizes, a
greyscale and a CMYK one among them, in train/<class>/ and val/<class>/."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

CLASSES = ("bird", "cat", "dog")  # written in another order below: the classes are sorted by name


def write_jpeg(path: Path, size: tuple[int, int], colour: tuple[int, int, int], mode: str = "RGB") -> Path:
    """A JPEG of ``size`` (width, height): a gradient tinted by ``colour``, saved in ``mode`` (RGB, L or CMYK)."""
    width, height = size
    gradient = Image.linear_gradient("L").rotate(90).resize((width, height))
    channels = [gradient.point(lambda v, c=c: (v + c) // 2) for c in colour]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.merge("RGB", channels).convert(mode).save(path, "JPEG", quality=90)
    return path


def write_image_folder(root: Path, train_per_class: int = 5, val_per_class: int = 2) -> Path:
    """``root`` with train/ and val/ class folders of JPEGs of odd sizes; one greyscale and one CMYK image in
    train/cat/. Returns ``root``."""
    for c, name in enumerate(reversed(CLASSES)):
        colour = (60 * c, 255 - 60 * c, 128)
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            for i in range(count):
                size = (37 + 11 * i + 3 * c, 29 + 7 * i)
                write_jpeg(root / split / name / f"{name}_{i:03d}.jpg", size, colour)
    write_jpeg(root / "train" / "cat" / "grey.jpg", (41, 33), (90, 90, 90), "L")
    write_jpeg(root / "train" / "cat" / "cmyk.JPEG", (35, 45), (200, 40, 40), "CMYK")
    return root
