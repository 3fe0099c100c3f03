"""The real data available offline: Fashion-MNIST from Debian's dataset-fashion-mnist, and digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from resdyn.data import load_dataset, locate, verify
from resdyn.data.catalog import DIGITS_INFO, FASHION_MNIST_INFO

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian_files = pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"{DEBIAN} is absent: apt-get install dataset-fashion-mnist",
)


def mean_std(images: torch.Tensor) -> tuple[float, float]:
    scaled = images.double() / 255
    return scaled.mean().item(), scaled.std(correction=0).item()


@pytest.fixture(scope="module")
def fashion() -> object:
    # Module-scoped fixtures run before the per-test isolation of conftest.py: name the folder.
    return load_dataset("fashion-mnist", DEBIAN, download=False)


@needs_debian_files
def test_fashion_mnist_comes_from_the_debian_package(fashion: object) -> None:
    assert locate("fashion-mnist")[0] == DEBIAN / "train-images-idx3-ubyte.gz"
    assert fashion.train.images.shape == (60000, 1, 28, 28) and fashion.test.images.shape == (
        10000,
        1,
        28,
        28,
    )
    assert fashion.train.images.dtype == torch.uint8 and fashion.train.labels.dtype == torch.int64
    assert torch.equal(torch.bincount(fashion.train.labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(fashion.test.labels), torch.full((10,), 1000))


@needs_debian_files
def test_debian_recompressed_files_pass_by_their_payload_digest() -> None:
    checks = verify("fashion-mnist")
    assert len(checks) == 4 and all(check.ok for check in checks)
    assert all("8d4fb7e6" not in check.actual for check in checks)  # the .gz files are not the published ones


@needs_debian_files
def test_fashion_mnist_constants(fashion: object) -> None:
    mean, std = mean_std(fashion.train.images)
    assert FASHION_MNIST_INFO.mean[0] == pytest.approx(mean, abs=1e-7)
    assert FASHION_MNIST_INFO.std[0] == pytest.approx(std, abs=1e-7)


def test_digits_constants() -> None:
    pytest.importorskip("sklearn", reason="the digits dataset comes with scikit-learn")
    mean, std = mean_std(load_dataset("digits").train.images)
    assert DIGITS_INFO.mean[0] == pytest.approx(mean, abs=1e-7)
    assert DIGITS_INFO.std[0] == pytest.approx(std, abs=1e-7)
