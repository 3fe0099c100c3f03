"""load_dataset reads every registered format back exactly, and refuses malformed data naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import CifarLike, MnistLike, idx_bytes, write, write_idx

from resdyn.data import DATASETS, DataError, Dataset, load_dataset, verify
from resdyn.registry import UnknownNameError


def assert_split(split: object, images: np.ndarray, labels: np.ndarray) -> None:
    assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
    assert split.labels.dtype == torch.int64
    assert split.images.device.type == "cpu"
    np.testing.assert_array_equal(split.images.numpy(), images)
    np.testing.assert_array_equal(split.labels.numpy(), labels)


def test_registry_lists_the_six_datasets() -> None:
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "fashion-mnist", "mnist", "qmnist"]
    with pytest.raises(UnknownNameError, match="valid dataset names: cifar10, cifar100, digits"):
        load_dataset("imagenet")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_round_trip(tmp_path: Path, use_files: Callable, gz: bool) -> None:
    data = MnistLike()
    folder = data.write(tmp_path / "data" / "mnist", gz=gz)
    use_files("MNIST_FILES", folder)
    dataset = load_dataset("mnist", tmp_path / "data", download=False)
    assert isinstance(dataset, Dataset) and dataset.info.name == "mnist"
    assert_split(dataset.train, data.train_images[:, None], data.train_labels)
    assert_split(dataset.test, data.test_images[:, None], data.test_labels)
    assert len(dataset.train) == 12 and len(dataset.test) == 5


def test_fashion_mnist_reads_the_same_format(tmp_path: Path, use_files: Callable) -> None:
    data = MnistLike(seed=1)
    use_files("FASHION_MNIST_FILES", data.write(tmp_path), system_dirs=())
    dataset = load_dataset("fashion-mnist", tmp_path, download=False)
    assert dataset.info.classes[9] == "Ankle boot"
    assert_split(dataset.train, data.train_images[:, None], data.train_labels)


@pytest.mark.parametrize("gz", [True, False])
def test_qmnist_labels_are_column_0_of_idx2_int(tmp_path: Path, use_files: Callable, gz: bool) -> None:
    data = MnistLike(seed=2)
    folder = data.write_qmnist(tmp_path / "qmnist", gz=gz)
    use_files("QMNIST_FILES", folder)
    dataset = load_dataset("qmnist", tmp_path, download=False)
    assert_split(dataset.train, data.train_images[:, None], data.train_labels)
    assert_split(dataset.test, data.test_images[:, None], data.test_labels)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_round_trip(tmp_path: Path, use_files: Callable, num_classes: int) -> None:
    data = CifarLike(num_classes)
    folder = data.write(tmp_path)
    name, table = ("cifar10", "CIFAR10_FILES") if num_classes == 10 else ("cifar100", "CIFAR100_FILES")
    use_files(table, folder)
    dataset = load_dataset(name, tmp_path, download=False)
    assert dataset.info.num_classes == num_classes and dataset.info.in_channels == 3
    assert_split(dataset.train, data.train_images, data.train_labels)
    assert_split(dataset.test, data.test_images, data.test_labels)


def test_cifar_pixel_layout_is_planar_rgb(tmp_path: Path, use_files: Callable) -> None:
    data = CifarLike()
    data.train_images[0] = 0
    data.train_images[0, 1, 2, 3] = 200  # green, row 2, column 3: byte 1024 + 2 * 32 + 3 of the row
    folder = data.write(tmp_path)
    use_files("CIFAR10_FILES", folder)
    image = load_dataset("cifar10", tmp_path, download=False).train.images[0]
    assert image[1, 2, 3] == 200 and int(image.sum()) == 200


def test_cifar_meta_must_name_the_published_classes(tmp_path: Path, use_files: Callable) -> None:
    from datafiles import python2_pickle

    folder = CifarLike().write(tmp_path)
    write(folder / "batches.meta", python2_pickle({b"label_names": [b"a"] * 10}))
    use_files("CIFAR10_FILES", folder)
    with pytest.raises(DataError, match="batches.meta: class names"):
        load_dataset("cifar10", tmp_path, download=False)


def test_truncated_idx_is_refused_naming_the_file(tmp_path: Path) -> None:
    # With the real table: no digest of QMNIST's uncompressed files is published, so a truncated one
    # passes the checksum step as "unverified" and must be caught by the IDX structure check.
    folder = MnistLike().write_qmnist(tmp_path / "qmnist", gz=False)
    images = folder / "qmnist-train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(DataError, match=f"{images}: IDX payload is"):
        load_dataset("qmnist", tmp_path, download=False)
    with pytest.raises(DataError, match=f"{images}: IDX payload is"):
        verify("qmnist", tmp_path)


def test_labels_out_of_range_are_refused(tmp_path: Path, use_files: Callable) -> None:
    data = MnistLike()
    folder = data.write(tmp_path)
    write_idx(folder, "t10k-labels-idx1-ubyte", np.full(5, 10, np.uint8))
    use_files("MNIST_FILES", folder)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: labels must lie in 0..9, found 10..10"):
        load_dataset("mnist", tmp_path, download=False)


def test_label_count_must_match_image_count(tmp_path: Path, use_files: Callable) -> None:
    folder = MnistLike().write(tmp_path)
    write_idx(folder, "train-labels-idx1-ubyte", np.zeros(11, np.uint8))
    use_files("MNIST_FILES", folder)
    with pytest.raises(DataError, match="expected 12 labels"):
        load_dataset("mnist", tmp_path, download=False)


def test_images_of_the_wrong_shape_are_refused(tmp_path: Path, use_files: Callable) -> None:
    folder = MnistLike().write(tmp_path)
    write(folder / "train-images-idx3-ubyte", idx_bytes(np.zeros((12, 32, 32), np.uint8)))
    (folder / "train-images-idx3-ubyte.gz").unlink()
    use_files("MNIST_FILES", folder)
    with pytest.raises(DataError, match=r"expected uint8 images of shape \(N, 28, 28\)"):
        load_dataset("mnist", tmp_path, download=False)


def test_digits_split() -> None:
    pytest.importorskip("sklearn", reason="the digits dataset comes with scikit-learn")
    dataset = load_dataset("digits")
    assert len(dataset.train) == 1438 and len(dataset.test) == 359
    assert dataset.train.images.shape[1:] == (1, 8, 8) and dataset.train.images.dtype == torch.uint8
    assert int(dataset.train.images.max()) == 255 and int(dataset.train.images.min()) == 0
    assert set(dataset.train.labels.tolist()) == set(range(10))
    again = load_dataset("digits")
    assert torch.equal(again.test.images, dataset.test.images)  # the split is fixed
    # train and test partition the 1797 examples: together they are the whole set, as a multiset
    from sklearn.datasets import load_digits

    bunch = load_digits()
    everything = np.round(bunch.images * 255 / 16).astype(np.uint8).reshape(1797, -1)
    rows = np.concatenate([dataset.train.images.flatten(1).numpy(), dataset.test.images.flatten(1).numpy()])
    labels = np.concatenate([dataset.train.labels.numpy(), dataset.test.labels.numpy()])
    assert sorted(zip(map(bytes, rows), labels, strict=True)) == sorted(
        zip(map(bytes, everything), bunch.target, strict=True)
    )
