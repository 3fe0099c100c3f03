"""Decoding and the ImageNet transforms on Pillow images: torchvision's RandomResizedCrop algorithm, flip, resize-256 +
centre crop 224, conversion of greyscale and CMYK to RGB, broken files named."""

import io
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from resdyn.data.errors import DataError
from resdyn.data.images import EvalTransform, TrainTransform, decode, random_resized_crop_box, to_uint8
from resdyn.errors import ConfigError


def jpeg(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    width, height = size
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                Image.new("L", (width, height), 90)))
    image.convert(mode).save(path, "JPEG", quality=90)
    return path


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_crop_box_lies_inside_with_area_and_ratio_in_range():
    for seed in range(200):
        top, left, height, width = random_resized_crop_box(500, 375, (0.08, 1.0), (3 / 4, 4 / 3), generator(seed))
        assert 0 <= top and top + height <= 375 and 0 <= left and left + width <= 500
        # Rounding each side to whole pixels moves the area and the ratio a little off the drawn ones.
        assert 0.08 * 0.95 <= width * height / (500 * 375) <= 1.0
        assert 3 / 4 * 0.95 <= width / height <= 4 / 3 * 1.05


def test_the_crop_box_falls_back_to_a_centre_crop_clamped_to_the_ratios():
    # No box of 2 to 3 times the area fits: after 10 attempts, the central crop of the largest ratio allowed.
    assert random_resized_crop_box(10, 100, (2.0, 3.0), (3 / 4, 4 / 3), generator(0)) == (43, 0, 13, 10)
    assert random_resized_crop_box(100, 10, (2.0, 3.0), (3 / 4, 4 / 3), generator(0)) == (0, 43, 10, 13)
    assert random_resized_crop_box(40, 40, (2.0, 3.0), (3 / 4, 4 / 3), generator(0)) == (0, 0, 40, 40)


def test_the_crop_box_draws_as_torchvision_does():
    transforms = pytest.importorskip("torchvision.transforms")
    image = Image.new("RGB", (500, 375))
    for seed in range(50):
        torch.manual_seed(seed)
        expected = transforms.RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3])
        assert random_resized_crop_box(500, 375, (0.08, 1.0), (3 / 4, 4 / 3), generator(seed)) == tuple(expected)


def test_training_transform_matches_torchvision_pixel_for_pixel(tmp_path):
    transforms = pytest.importorskip("torchvision.transforms")
    image = decode(jpeg(tmp_path / "a.jpg", (500, 375)))
    reference = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()])
    for seed in range(10):
        torch.manual_seed(seed)
        assert torch.equal(to_uint8(TrainTransform()(image, generator(seed))), transforms.PILToTensor()(
            reference(image)))


def test_training_transform_is_a_function_of_its_generator(tmp_path):
    image = decode(jpeg(tmp_path / "a.jpg", (500, 375)))
    transform = TrainTransform()
    first, again = (to_uint8(transform(image, generator(3))) for _ in range(2))
    assert first.shape == (3, 224, 224) and first.dtype == torch.uint8
    assert torch.equal(first, again)
    assert not torch.equal(first, to_uint8(transform(image, generator(4))))


def test_flip_mirrors_the_crop():
    image = Image.linear_gradient("L").rotate(90).convert("RGB").resize((64, 48))  # dark to light, left to right
    no_flip = TrainTransform(size=16, flip=False)
    flip = TrainTransform(size=16)
    flipped = 0
    for seed in range(20):
        plain, maybe = to_uint8(no_flip(image, generator(seed))), to_uint8(flip(image, generator(seed)))
        if not torch.equal(plain, maybe):
            assert torch.equal(plain.flip(2), maybe)
            flipped += 1
    assert 0 < flipped < 20


def test_evaluation_resizes_the_shorter_side_then_crops_the_centre(tmp_path):
    transform = EvalTransform()
    image = decode(jpeg(tmp_path / "a.jpg", (500, 375)))
    out = to_uint8(transform(image))
    assert out.shape == (3, 224, 224)
    assert torch.equal(out, to_uint8(transform(image)))  # deterministic
    # As torchvision's Resize(256) + CenterCrop(224): 500 x 375 -> 341 x 256, then the central 224 x 224.
    resized = image.resize((341, 256), Image.Resampling.BILINEAR)
    left, top = round((341 - 224) / 2), round((256 - 224) / 2)
    assert torch.equal(out, to_uint8(resized.crop((left, top, left + 224, top + 224))))


def test_evaluation_matches_torchvision(tmp_path):
    transforms = pytest.importorskip("torchvision.transforms")
    reference = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()])
    for size in [(500, 375), (300, 700), (256, 256)]:
        image = decode(jpeg(tmp_path / "a.jpg", size))
        assert torch.equal(to_uint8(EvalTransform()(image)), reference(image))


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGB"])
def test_decoding_gives_rgb(tmp_path, mode):
    image = decode(jpeg(tmp_path / f"{mode}.jpg", (31, 17), mode))
    assert image.mode == "RGB" and image.size == (31, 17)


def test_a_png_with_alpha_and_a_palette_image_decode_to_rgb(tmp_path):
    Image.new("RGBA", (5, 4), (10, 20, 30, 40)).save(tmp_path / "a.png")
    Image.new("P", (5, 4)).save(tmp_path / "p.png")
    assert decode(tmp_path / "a.png").getpixel((0, 0)) == (10, 20, 30)
    assert decode(tmp_path / "p.png").mode == "RGB"


def test_a_broken_or_truncated_file_is_named(tmp_path):
    (tmp_path / "text.jpg").write_bytes(b"not a jpeg")
    data = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(data, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    for name in ("text.jpg", "cut.jpg"):
        with pytest.raises(DataError, match=rf"cannot decode .*{name}"):
            decode(tmp_path / name)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="scale"):
        TrainTransform(scale=(0.5, 0.1))
    with pytest.raises(ConfigError, match="crop"):
        EvalTransform(resize=200, crop=224)
    assert math.isclose(TrainTransform().ratio[1], 4 / 3)
