"""Small files in the exact published formats.

The writers produce what the originals are: IDX files (gzipped or not), QMNIST's idx2 int32 labels, CIFAR
pickles as Python 2 wrote them (protocol 2, byte-string keys, ``numpy.core.multiarray._reconstruct``) and
their tar.gz archives. ``digests_of`` gives a file table the digests of such files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from resdyn.data import catalog
from resdyn.data.checksums import FileSpec
from resdyn.data.formats import _reconstruct_function
from resdyn.data.sources import Published

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file holding ``array``."""
    code = IDX_CODES[array.dtype.kind + str(array.dtype.itemsize)]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_idx(folder: Path, name: str, array: np.ndarray, gz: bool = True, level: int = 9) -> Path:
    """Write ``array`` as ``folder/name`` (``name`` without .gz); gzipped as ``name.gz`` if ``gz``."""
    data = idx_bytes(array)
    if gz:
        return write(folder / f"{name}.gz", gzip.compress(data, compresslevel=level, mtime=0))
    return write(folder / name, data)


class MnistLike:
    """Random images and labels for an MNIST-format dataset, and where they were written."""

    def __init__(self, n_train: int = 12, n_test: int = 5, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.train_images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        self.train_labels = rng.integers(0, 10, n_train).astype(np.uint8)
        self.test_images = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        self.test_labels = rng.integers(0, 10, n_test).astype(np.uint8)

    def write(self, folder: Path, gz: bool = True, level: int = 9) -> Path:
        """Write the four files under their MNIST (and Fashion-MNIST) names."""
        write_idx(folder, "train-images-idx3-ubyte", self.train_images, gz, level)
        write_idx(folder, "train-labels-idx1-ubyte", self.train_labels, gz, level)
        write_idx(folder, "t10k-images-idx3-ubyte", self.test_images, gz, level)
        write_idx(folder, "t10k-labels-idx1-ubyte", self.test_labels, gz, level)
        return folder

    def write_qmnist(self, folder: Path, gz: bool = True) -> Path:
        """Write the four files under QMNIST's names, labels as its (N, 8) int32 extended labels."""
        for split, images, labels in (("train", self.train_images, self.train_labels),
                                      ("test", self.test_images, self.test_labels)):  # fmt: skip
            write_idx(folder, f"qmnist-{split}-images-idx3-ubyte", images, gz)
            write_idx(folder, f"qmnist-{split}-labels-idx2-int", qmnist_labels(labels), gz)
        return folder


def qmnist_labels(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """QMNIST's extended labels of ``labels``, each row as the QMNIST README (sec. 2.2) and its generator
    (making_qmnist/xnist.lsh) have it: class, NIST HSF series (0, 1 or 4), writer id (0-610 for series 0-1,
    2100-2599 for series 4), digit index for this writer (0-149), NIST class code (class + 30), global NIST
    digit index (0-281769), duplicate (0), unused (0)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    series = rng.choice([0, 1, 4], n)
    writer = np.where(series == 4, rng.integers(2100, 2600, n), rng.integers(0, 611, n))
    classes = labels.astype(np.int32)
    columns = [classes, series, writer, rng.integers(0, 150, n), classes + 30, rng.integers(0, 281770, n),
               np.zeros(n), np.zeros(n)]  # fmt: skip
    return np.stack(columns, axis=1).astype(np.int32)


class _Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 ``str`` (BINSTRING) and arrays with numpy 1's global name, like the CIFAR
    files; Python 3 at protocol 2 would write bytes through ``_codecs.encode`` instead."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj: object, name: str | None = None) -> None:
        if obj is _reconstruct_function():
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def python2_pickle(obj: object) -> bytes:
    out = io.BytesIO()
    _Python2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


class CifarLike:
    """Random CIFAR-10 or CIFAR-100 batches in the published pickle format."""

    def __init__(self, num_classes: int = 10, per_batch: int = 3, n_test: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.num_classes = num_classes
        n_train = per_batch * (5 if num_classes == 10 else 1)
        self.per_batch = per_batch
        self.train_images = rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8)
        self.train_labels = rng.integers(0, num_classes, n_train)
        self.test_images = rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8)
        self.test_labels = rng.integers(0, num_classes, n_test)
        self.folder = "cifar-10-batches-py" if num_classes == 10 else "cifar-100-python"
        self.archive = "cifar-10-python.tar.gz" if num_classes == 10 else "cifar-100-python.tar.gz"

    def _batch(self, images: np.ndarray, labels: np.ndarray) -> bytes:
        key = b"labels" if self.num_classes == 10 else b"fine_labels"
        rows = images.reshape(len(images), -1)  # R plane, G plane, B plane: the published row layout
        entry = {b"batch_label": b"batch", key: [int(v) for v in labels], b"data": rows,
                 b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}  # fmt: skip
        if self.num_classes == 100:
            entry[b"coarse_labels"] = [int(v) // 5 for v in labels]
        return python2_pickle(entry)

    def write(self, root: Path) -> Path:
        """Write the published files under ``root/<folder>/``; return that folder."""
        folder = root / self.folder
        if self.num_classes == 10:
            for i in range(5):
                part = slice(i * self.per_batch, (i + 1) * self.per_batch)
                batch = self._batch(self.train_images[part], self.train_labels[part])
                write(folder / f"data_batch_{i + 1}", batch)
            write(folder / "test_batch", self._batch(self.test_images, self.test_labels))
            names = [name.encode() for name in catalog.CIFAR10_INFO.classes]
            write(folder / "batches.meta", python2_pickle({b"label_names": names, b"num_cases_per_batch": 3}))
        else:
            write(folder / "train", self._batch(self.train_images, self.train_labels))
            write(folder / "test", self._batch(self.test_images, self.test_labels))
            names = [name.encode() for name in catalog.CIFAR100_INFO.classes]
            write(folder / "meta", python2_pickle({b"fine_label_names": names, b"coarse_label_names": []}))
        return folder

    def write_archive(self, root: Path, into: Path) -> Path:
        """Write the files under ``root`` and pack them as the published tar.gz in ``into``."""
        folder = self.write(root)
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(into / self.archive, "w:gz") as tar:
            tar.add(folder, arcname=self.folder)
        return into / self.archive


def digests_of(published: Published, folder: Path, archive: Path | None = None) -> Published:
    """``published`` with the digests of the files in ``folder`` (and of ``archive``) in place of the real
    ones: container and payload digests of a .gz file, the payload digest of an uncompressed one."""
    files = []
    for spec in published.files:
        path = next((folder / n for n in spec.names if (folder / n).is_file()), None)
        if path is None:
            files.append(spec)
        elif spec.compressed and path.name == spec.name:
            data = path.read_bytes()
            files.append(FileSpec(spec.name, md5(data), md5(gzip.decompress(data))))
        elif spec.compressed:
            files.append(FileSpec(spec.name, spec.md5, md5(path.read_bytes())))
        else:
            files.append(FileSpec(spec.name, md5(path.read_bytes())))
    result = replace(published, files=tuple(files))
    if archive is not None:
        assert published.archive is not None
        result = replace(result, archive=replace(published.archive, md5=md5(archive.read_bytes())))
    return result
