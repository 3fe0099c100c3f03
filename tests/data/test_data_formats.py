"""The published formats: IDX, CIFAR pickles (read without running code) and tar archives (no escapes)."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from datafiles import CifarLike, idx_bytes, python2_pickle

from resdyn.data import DataError
from resdyn.data.formats import extract_tar, load_pickle, parse_idx


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("shape", [(7,), (3, 8), (2, 3, 4)])
def test_idx_round_trip_every_type_code(dtype: str, shape: tuple[int, ...]) -> None:
    array = (np.arange(np.prod(shape)).reshape(shape) - 5).astype(np.dtype(dtype).newbyteorder("="))
    parsed = parse_idx(idx_bytes(array), "x.idx")
    assert parsed.dtype == array.dtype and parsed.shape == shape
    np.testing.assert_array_equal(parsed, array)
    assert parsed.flags.writeable


def test_idx_header_is_big_endian() -> None:
    data = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + bytes([0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFE])
    np.testing.assert_array_equal(parse_idx(data, "x"), [256, -2])


@pytest.mark.parametrize("cut", [1, 100])
def test_truncated_idx_names_the_file(cut: int) -> None:
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-cut]
    with pytest.raises(DataError, match=r"some/train-images-idx3-ubyte: IDX payload is \d+ bytes.*truncated"):
        parse_idx(data, "some/train-images-idx3-ubyte")


def test_idx_with_trailing_bytes_or_bad_header_is_refused() -> None:
    with pytest.raises(DataError, match="IDX payload"):
        parse_idx(idx_bytes(np.zeros(3, np.uint8)) + b"\0", "f")
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x00", "f")  # gzip data handed over undecompressed
    with pytest.raises(DataError, match="header truncated"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]), "f")


def test_python2_cifar_pickle_loads_as_published() -> None:
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    blob = python2_pickle({b"data": data, b"labels": [3, 7], b"batch_label": b"training batch 1 of 5"})
    assert b"numpy.core.multiarray\n_reconstruct" in blob and b"_codecs" not in blob
    entry = load_pickle(blob, "data_batch_1")
    assert set(entry) == {b"data", b"labels", b"batch_label"}
    np.testing.assert_array_equal(entry[b"data"], data)
    assert entry[b"labels"] == [3, 7]


def test_python3_protocol2_pickle_also_loads() -> None:
    data = np.arange(12, dtype=np.uint8).reshape(3, 4)
    entry = load_pickle(pickle.dumps({b"data": data, b"labels": [1, 2, 3]}, protocol=2), "f")
    np.testing.assert_array_equal(entry[b"data"], data)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps({b"data": _Payload(marker)}, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_1: refusing to unpickle (posix|nt|os)\.system"):
        load_pickle(blob, "data_batch_1")
    assert not marker.exists()


def test_pickled_object_array_cannot_smuggle_a_call(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(np.array([_Payload(marker)], dtype=object), protocol=2)
    with pytest.raises(DataError, match="refusing to unpickle"):
        load_pickle(blob, "f")
    assert not marker.exists()


def test_garbage_pickle_names_the_file() -> None:
    with pytest.raises(DataError, match="test_batch: not a readable pickle"):
        load_pickle(b"\x80\x02}q\x00(", "test_batch")


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        good.size = 1
        tar.addfile(good, io.BytesIO(b"y"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("name", ["../escape", "cifar-10-batches-py/../../escape", "/tmp/escape"])
def test_tar_refuses_members_outside_the_folder(tmp_path: Path, name: str) -> None:
    archive = _tar_with(tmp_path, tarfile.TarInfo(name))
    destination = tmp_path / "out"
    with pytest.raises(DataError, match="refusing to extract"):
        extract_tar(archive, destination)
    assert not destination.exists() and not (tmp_path / "escape").exists()


def test_tar_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("cifar-10-batches-py/test_batch")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(DataError, match="only plain files"):
        extract_tar(_tar_with(tmp_path, link), tmp_path / "out")


def test_tar_extracts_the_published_layout(tmp_path: Path) -> None:
    cifar = CifarLike()
    archive = cifar.write_archive(tmp_path / "src", tmp_path / "dl")
    extract_tar(archive, tmp_path / "out")
    for name in ["data_batch_1", "data_batch_5", "test_batch", "batches.meta"]:
        extracted = tmp_path / "out" / "cifar-10-batches-py" / name
        assert extracted.read_bytes() == (tmp_path / "src" / "cifar-10-batches-py" / name).read_bytes()
    assert not list((tmp_path / "out").rglob("*.part"))
