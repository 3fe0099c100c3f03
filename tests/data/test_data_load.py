"""load_dataset reads every registered format back exactly, and refuses malformed data naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import CifarLike, MnistLike, idx_bytes, write, write_idx

from resdyn.data import DATASETS, DataError, Dataset, load_dataset, verify
from resdyn.errors import ConfigError
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


def test_qmnist_files_are_written_in_the_published_format(tmp_path: Path) -> None:
    # QMNIST README, sec. 2.2: magic 0x00000C02 (int32, 2 dimensions), rows, 8 columns, big-endian int32 rows
    folder = MnistLike(seed=3).write_qmnist(tmp_path, gz=False)
    data = (folder / "qmnist-test-labels-idx2-int").read_bytes()
    assert data[:12] == bytes.fromhex("00000c02") + (5).to_bytes(4, "big") + (8).to_bytes(4, "big")
    table = np.frombuffer(data, ">i4", offset=12).reshape(5, 8)
    assert set(table[:, 1]) <= {0, 1, 4} and (table[:, 4] == table[:, 0] + 30).all() and (table[:, 6:] == 0).all()


def qmnist_with_test_rows(tmp_path: Path, use_files: Callable, n_test: int) -> MnistLike:
    """QMNIST's files with ``n_test`` test digits, the tables expecting them; image i is blank but for its
    index in its first two pixels."""
    data = MnistLike(seed=4)
    index = np.arange(n_test)
    data.test_images = np.zeros((n_test, 28, 28), np.uint8)
    data.test_images[:, 0, 0], data.test_images[:, 0, 1] = index % 256, index // 256
    data.test_labels = (index % 10).astype(np.uint8)
    use_files("QMNIST_FILES", data.write_qmnist(tmp_path / "qmnist"))
    return data


def test_qmnist_test_parts_are_its_first_10000_digits_and_the_rest(tmp_path: Path, use_files: Callable) -> None:
    # The whole test file is the test split, as torchvision's QMNIST(train=False) and Gładzik 2019 (60,000 test
    # images) have it; test10k is its first 10,000 digits (MNIST's test set), test50k the rest.
    data = qmnist_with_test_rows(tmp_path, use_files, 10_004)
    whole = load_dataset("qmnist", tmp_path, download=False)
    assert_split(whole.test, data.test_images[:, None], data.test_labels)
    test10k = load_dataset("qmnist", tmp_path, download=False, test_part="test10k")
    assert_split(test10k.test, data.test_images[:10_000, None], data.test_labels[:10_000])
    test50k = load_dataset("qmnist", tmp_path, download=False, test_part="test50k")
    assert_split(test50k.test, data.test_images[10_000:, None], data.test_labels[10_000:])
    assert len(test50k.train) == len(whole.train) == 12  # the training split is never cut
    with pytest.raises(ConfigError, match="qmnist's test split has no part 'test5k'; its parts: test10k, test50k"):
        load_dataset("qmnist", tmp_path, download=False, test_part="test5k")
    with pytest.raises(ConfigError, match="mnist's test split has no part 'test10k'; it has no named parts"):
        load_dataset("mnist", tmp_path, download=False, test_part="test10k")


def test_a_qmnist_test_file_too_short_for_its_part_is_refused(tmp_path: Path, use_files: Callable) -> None:
    qmnist_with_test_rows(tmp_path, use_files, 9_999)
    with pytest.raises(DataError, match="qmnist's test split has 9999 examples, too few for its part test10k"):
        load_dataset("qmnist", tmp_path, download=False, test_part="test10k")


@pytest.mark.parametrize(
    ("table", "message"),
    [(np.zeros(12, np.uint8), r"expected QMNIST's idx2-int extended labels \(int32, 8 columns per image\), got "
                              r"uint8 of shape \(12,\)"),
     (np.zeros((12, 7), np.int32), r"got int32 of shape \(12, 7\)"),
     (np.zeros((12, 8), np.int32), "row 0 has class 0 but NIST class code 0")],
)  # fmt: skip
def test_qmnist_labels_must_be_its_extended_label_table(
    tmp_path: Path, use_files: Callable, table: np.ndarray, message: str
) -> None:
    folder = MnistLike(seed=5).write_qmnist(tmp_path / "qmnist")
    write_idx(folder, "qmnist-train-labels-idx2-int", table)
    use_files("QMNIST_FILES", folder)
    with pytest.raises(DataError, match=message):
        load_dataset("qmnist", tmp_path, download=False)


def test_mnist_labels_must_be_idx1_ubyte(tmp_path: Path, use_files: Callable) -> None:
    folder = MnistLike().write(tmp_path)
    write_idx(folder, "train-labels-idx1-ubyte", np.zeros((12, 8), np.int32))
    use_files("MNIST_FILES", folder)
    with pytest.raises(DataError, match=r"expected an idx1-ubyte label file \(one uint8 class per image\)"):
        load_dataset("mnist", tmp_path, download=False)
