"""The registered datasets: their facts, their published files with digests, and their readers.

Digests of the published files are torchvision's (``torchvision/datasets/mnist.py``, ``cifar.py``). Digests
of decompressed IDX files: Fashion-MNIST's were measured on the files of Debian's
``dataset-fashion-mnist`` and agree with those that several public projects list; MNIST's are listed by
several public projects; no public source lists QMNIST's, so an uncompressed QMNIST file is only checked
for its structure.

Each registered entry builds its spec from the module-level tables when called, so that a test can
substitute a table (``monkeypatch.setattr(catalog, "MNIST_FILES", ...)``) with the digests of small files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from resdyn.data.checksums import FileSpec
from resdyn.data.datasets import DATASETS, DatasetInfo, DatasetSpec, Payload, Split
from resdyn.data.errors import DataError
from resdyn.data.formats import load_pickle, parse_idx
from resdyn.data.sources import Archive, Published

DIGITS = tuple(str(d) for d in range(10))
CIFAR100_CLASSES = """
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
    camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
    dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
    leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
    otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road
    rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower
    sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale
    willow_tree wolf woman worm
"""

# MNIST's and the CIFARs' mean and std are the values in common use; QMNIST reuses MNIST's. Fashion-MNIST's
# and digits' were computed from their train images; tests/data/test_data_real.py recomputes them.
MNIST_INFO = DatasetInfo(
    name="mnist", num_classes=10, in_channels=1, image_size=(28, 28), mean=(0.1307,), std=(0.3081,),
    classes=DIGITS,
)  # fmt: skip
QMNIST_INFO = DatasetInfo(
    name="qmnist", num_classes=10, in_channels=1, image_size=(28, 28), mean=(0.1307,), std=(0.3081,),
    classes=DIGITS,
)  # fmt: skip
FASHION_MNIST_INFO = DatasetInfo(
    name="fashion-mnist", num_classes=10, in_channels=1, image_size=(28, 28), mean=(0.2860406,),
    std=(0.3530242,),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"),
)  # fmt: skip
CIFAR10_INFO = DatasetInfo(
    name="cifar10", num_classes=10, in_channels=3, image_size=(32, 32),
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)  # fmt: skip
CIFAR100_INFO = DatasetInfo(
    name="cifar100", num_classes=100, in_channels=3, image_size=(32, 32),
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    classes=tuple(CIFAR100_CLASSES.split()),
)  # fmt: skip
DIGITS_INFO = DatasetInfo(
    name="digits", num_classes=10, in_channels=1, image_size=(8, 8), mean=(0.3049499,), std=(0.3756348,),
    classes=DIGITS,
)  # fmt: skip

# The order of each file table is the order its reader expects.
MNIST_FILES = Published(
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "6bbc9ace898e44ae57da46a324031adb",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "a25bea736e30d166cdddb491f175f624",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "9fb629c4189551a2d022fa330f9573f3",
            "2646ac647ad5339dbf082846283269ea",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "ec29112dd5afa0611ce80d1b7f02629c",
            "27ae3e4e09519cfbb04c329615203637",
        ),
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)
QMNIST_FILES = Published(
    files=(
        FileSpec("qmnist-train-images-idx3-ubyte.gz", "ed72d4157d28c017586c42bc6afe6370"),
        FileSpec("qmnist-train-labels-idx2-int.gz", "0058f8dd561b90ffdd0f734c6a30e5e4"),
        FileSpec("qmnist-test-images-idx3-ubyte.gz", "1394631089c404de565df7b7aeaf9412"),
        FileSpec("qmnist-test-labels-idx2-int.gz", "5b5b05890a5e13444e108efe57b788aa"),
    ),
    mirrors=("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",),
)
FASHION_MNIST_FILES = Published(
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            "25c81989df183df01b3e8a0aad5dffbe",
            "9018921c3c673c538a1fc5bad174d6f9",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "bef4ecab320f06d8554ea6380940ec79",
            "8181f5470baa50b63fa0f6fddb340f0a",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "bb300cfdad3c16e7a12a480ee83cd310",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    how_to_get="on Debian or Ubuntu, `apt-get install dataset-fashion-mnist`",
)
CIFAR10_FILES = Published(
    files=(
        FileSpec("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        FileSpec("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        FileSpec("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        FileSpec("data_batch_4", "634d18415352ddfa80567beed471001a"),
        FileSpec("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        FileSpec("test_batch", "40351d587109b95175f43aff81a1287e"),
        FileSpec("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    ),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    archive=Archive("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"),
)
CIFAR100_FILES = Published(
    files=(
        FileSpec("train", "16019d7e3df5f24257cddd939b257f8d"),
        FileSpec("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        FileSpec("meta", "7973b15100ade9c7d40fb424638fde48"),
    ),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    archive=Archive("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python"),
)


def _class_labels(file: Payload) -> np.ndarray:
    """MNIST's and Fashion-MNIST's labels: an idx1-ubyte file, one class per image."""
    labels = parse_idx(file.data, file.path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{file.path}: expected an idx1-ubyte label file (one uint8 class per image), got "
                        f"{labels.dtype} of shape {labels.shape}")
    return labels


# QMNIST's extended labels (facebookresearch/qmnist README, sec. 2.2): an idx2-int file, one big-endian int32 row
# per image. Its generator (making_qmnist/xnist.lsh) writes column 0 as the NIST class code minus 30, so column 4
# is always column 0 + 30: checked, so that a table read with its columns misplaced cannot pass.
QMNIST_LABEL_COLUMNS = ("class", "NIST HSF series", "NIST writer id", "digit index for this writer",
                        "NIST class code", "global NIST digit index", "duplicate of", "unused")


def _qmnist_labels(file: Payload) -> np.ndarray:
    """QMNIST's extended labels: the class, column 0 of the idx2-int table (:data:`QMNIST_LABEL_COLUMNS`)."""
    table = parse_idx(file.data, file.path)
    columns = len(QMNIST_LABEL_COLUMNS)
    if table.dtype != np.int32 or table.ndim != 2 or table.shape[1] != columns:
        raise DataError(f"{file.path}: expected QMNIST's idx2-int extended labels (int32, {columns} columns per "
                        f"image), got {table.dtype} of shape {table.shape}")
    if not np.array_equal(table[:, 4], table[:, 0] + 30):
        row = int(np.flatnonzero(table[:, 4] != table[:, 0] + 30)[0])
        raise DataError(f"{file.path}: row {row} has class {table[row, 0]} but NIST class code {table[row, 4]} "
                        "(QMNIST's code is always the class + 30); the file is not QMNIST's extended labels")
    return table[:, 0]


def _idx_split(
    images_file: Payload, labels_file: Payload, info: DatasetInfo, read_labels: Callable[[Payload], np.ndarray]
) -> Split:
    images = parse_idx(images_file.data, images_file.path)
    if images.dtype != np.uint8 or images.shape[1:] != info.image_size:
        raise DataError(
            f"{images_file.path}: expected uint8 images of shape (N, {info.image_size[0]}, "
            f"{info.image_size[1]}), got {images.dtype} {images.shape}"
        )
    labels = read_labels(labels_file)
    if len(labels) != len(images):
        raise DataError(f"{labels_file.path}: expected {len(images)} labels for the images of {images_file.path}, "
                        f"got {len(labels)}")
    return _split(images[:, None], labels, info, labels_file.path)


def _split(images: np.ndarray, labels: np.ndarray | list[int], info: DatasetInfo, labels_path: Path) -> Split:
    label_tensor = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if len(label_tensor) and not (
        0 <= int(label_tensor.min()) and int(label_tensor.max()) < info.num_classes
    ):
        raise DataError(
            f"{labels_path}: labels must lie in 0..{info.num_classes - 1}, found "
            f"{int(label_tensor.min())}..{int(label_tensor.max())}"
        )
    return Split(torch.from_numpy(np.ascontiguousarray(images)), label_tensor)


def read_idx_splits(
    files: Sequence[Payload], info: DatasetInfo, read_labels: Callable[[Payload], np.ndarray] = _class_labels
) -> tuple[Split, Split]:
    """Read (train images, train labels, test images, test labels) IDX files into (train, test)."""
    train_images, train_labels, test_images, test_labels = files
    return (_idx_split(train_images, train_labels, info, read_labels),
            _idx_split(test_images, test_labels, info, read_labels))


def _entry(file: Payload, keys: tuple[bytes, ...]) -> dict[bytes, object]:
    entry = load_pickle(file.data, file.path)
    if not isinstance(entry, dict) or any(key not in entry for key in keys):
        raise DataError(f"{file.path}: expected a pickled dict with keys {keys}, got {type(entry).__name__}")
    return entry


def _cifar_split(files: Sequence[Payload], labels_key: bytes, info: DatasetInfo) -> Split:
    images, labels = [], []
    for file in files:
        entry = _entry(file, (b"data", labels_key))
        data = entry[b"data"]
        size = info.in_channels * info.image_size[0] * info.image_size[1]
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != size
        ):
            raise DataError(f"{file.path}: b'data' must be a uint8 array of shape (N, {size})")
        if len(entry[labels_key]) != len(data):
            raise DataError(f"{file.path}: {len(entry[labels_key])} labels for {len(data)} images")
        images.append(data.reshape(-1, info.in_channels, *info.image_size))  # rows hold R, G, B planes
        labels.extend(entry[labels_key])
    return _split(np.concatenate(images), labels, info, files[-1].path)


def read_cifar(
    files: Sequence[Payload], info: DatasetInfo, *, labels_key: bytes, names_key: bytes
) -> tuple[Split, Split]:
    """Read CIFAR pickles (train batches..., test batch, meta) into (train, test).

    The class names in the meta file must be ``info.classes``.
    """
    *train, test, meta = files
    names = tuple(name.decode() for name in _entry(meta, (names_key,))[names_key])
    if names != info.classes:
        raise DataError(f"{meta.path}: class names {names} differ from the published {info.classes}")
    return _cifar_split(train, labels_key, info), _cifar_split([test], labels_key, info)


def read_digits(files: Sequence[Payload], info: DatasetInfo) -> tuple[Split, Split]:
    """scikit-learn's 8x8 digits, values 0..16 scaled to 0..255; a fixed split by a permutation seeded
    with 0: its first 1438 examples train, the other 359 test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the 'digits' dataset comes with scikit-learn, which is not installed: pip install scikit-learn"
        ) from None
    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1).contiguous()
    data = Split(images, torch.from_numpy(bunch.target.astype(np.int64)))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    return data.subset(order[:1438].sort().values), data.subset(order[1438:].sort().values)


@DATASETS.register("mnist", help="MNIST handwritten digits: 28x28 grey, 60000 train / 10000 test")
def mnist() -> DatasetSpec:
    return DatasetSpec(MNIST_INFO, MNIST_FILES, read_idx_splits)


# QMNIST's test file holds 60,000 digits: the first 10,000 reconstruct MNIST's test set, one for one and in
# order; the other 50,000 are MNIST's lost test digits (QMNIST README, sec. 2.1; torchvision's what="test10k" /
# "test50k"). The whole file is the test split, as torchvision's QMNIST(train=False) and Gładzik's thesis (AGH
# Kraków 2019, sec. 4.2: "60,000 test images") use it; data.test_part picks a part.
QMNIST_TEST_PARTS = {"test10k": slice(0, 10_000), "test50k": slice(10_000, None)}


@DATASETS.register("qmnist", help="QMNIST, MNIST reconstructed: 28x28 grey, 60000 train / 60000 test "
                   "(test parts: test10k = MNIST's test set, test50k)")
def qmnist() -> DatasetSpec:
    read = functools.partial(read_idx_splits, read_labels=_qmnist_labels)
    return DatasetSpec(QMNIST_INFO, QMNIST_FILES, read, test_parts=QMNIST_TEST_PARTS)


@DATASETS.register("fashion-mnist", help="Fashion-MNIST clothing: 28x28 grey, 60000 train / 10000 test")
def fashion_mnist() -> DatasetSpec:
    return DatasetSpec(FASHION_MNIST_INFO, FASHION_MNIST_FILES, read_idx_splits)


@DATASETS.register("cifar10", help="CIFAR-10: 32x32 colour, 10 classes, 50000 train / 10000 test")
def cifar10() -> DatasetSpec:
    read = functools.partial(read_cifar, labels_key=b"labels", names_key=b"label_names")
    return DatasetSpec(CIFAR10_INFO, CIFAR10_FILES, read)


@DATASETS.register("cifar100", help="CIFAR-100: 32x32 colour, 100 fine classes, 50000 train / 10000 test")
def cifar100() -> DatasetSpec:
    read = functools.partial(read_cifar, labels_key=b"fine_labels", names_key=b"fine_label_names")
    return DatasetSpec(CIFAR100_INFO, CIFAR100_FILES, read)


@DATASETS.register("digits", help="scikit-learn's 8x8 digits: 1438 train / 359 test (fixed seeded split)")
def digits() -> DatasetSpec:
    return DatasetSpec(DIGITS_INFO, None, read_digits)
