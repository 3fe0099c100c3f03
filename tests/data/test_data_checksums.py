"""Verification: the published digest, the payload digest of a recompressed .gz, useful mismatch errors."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from datafiles import CifarLike, MnistLike, idx_bytes, md5, write

from resdyn.data import ChecksumError, catalog, load_dataset, verify
from resdyn.data.checksums import FileSpec, check_bytes, read_verified

PAYLOAD = idx_bytes(np.arange(100, dtype=np.uint8))
PUBLISHED = gzip.compress(PAYLOAD, compresslevel=9, mtime=0)
SPEC = FileSpec("x-idx1-ubyte.gz", md5(PUBLISHED), md5(PAYLOAD))


def test_published_gz_is_ok_and_returns_the_payload() -> None:
    check, payload = check_bytes(SPEC, PUBLISHED, Path("x-idx1-ubyte.gz"))
    assert check.ok and payload == PAYLOAD


def test_recompressed_gz_is_accepted_by_its_payload_digest() -> None:
    # Debian's dataset-fashion-mnist: same contents, other compression, so another .gz digest.
    recompressed = gzip.compress(PAYLOAD, compresslevel=1, mtime=12345)
    assert md5(recompressed) != SPEC.md5
    check, payload = check_bytes(SPEC, recompressed, Path("x-idx1-ubyte.gz"))
    assert check.status == "ok" and payload == PAYLOAD


def test_recompressed_gz_without_a_payload_digest_is_a_mismatch() -> None:
    recompressed = gzip.compress(PAYLOAD, compresslevel=1, mtime=12345)
    check, _ = check_bytes(FileSpec(SPEC.name, SPEC.md5), recompressed, Path("f"))
    assert check.status == "mismatch"


def test_uncompressed_copy_is_checked_by_the_payload_digest() -> None:
    assert check_bytes(SPEC, PAYLOAD, Path("x-idx1-ubyte"))[0].status == "ok"
    assert check_bytes(SPEC, PAYLOAD[:-1] + b"\x01", Path("x-idx1-ubyte"))[0].status == "mismatch"


def test_uncompressed_copy_without_a_payload_digest_is_unverified() -> None:
    check, payload = check_bytes(FileSpec(SPEC.name, SPEC.md5), PAYLOAD, Path("x-idx1-ubyte"))
    assert check.status == "unverified" and not check.ok and payload == PAYLOAD
    assert "unverified" in str(check) and "no published digest for the raw file" in str(check)


def test_mismatch_error_names_file_expected_actual_and_remedy(tmp_path: Path) -> None:
    path = write(tmp_path / "x-idx1-ubyte.gz", gzip.compress(PAYLOAD[:-1] + b"\x07"))
    with pytest.raises(ChecksumError) as error:
        read_verified(SPEC, path)
    message = str(error.value)
    assert str(path) in message and SPEC.md5 in message and SPEC.payload_md5 in message
    assert md5(path.read_bytes()) in message and "delete it and download it again" in message


def test_corrupt_file_under_the_real_name_fails_the_real_digests(tmp_path: Path) -> None:
    folder = MnistLike().write(tmp_path / "mnist")  # random images: not MNIST
    with pytest.raises(ChecksumError) as error:
        load_dataset("mnist", tmp_path, download=False)
    message = str(error.value)
    path = folder / "train-images-idx3-ubyte.gz"
    assert message.startswith(f"{path}: checksum mismatch")
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message and "6bbc9ace898e44ae57da46a324031adb" in message
    assert md5(path.read_bytes()) in message


def test_corrupt_cifar_pickle_fails_the_real_digest(tmp_path: Path) -> None:
    folder = CifarLike().write(tmp_path)
    with pytest.raises(
        ChecksumError, match=f"{folder / 'data_batch_1'}: checksum mismatch: expected md5 c99caf"
    ):
        load_dataset("cifar10", tmp_path, download=False)


def test_verify_reports_every_file(tmp_path: Path, use_files: Callable) -> None:
    folder = MnistLike().write(tmp_path)
    use_files("MNIST_FILES", folder)
    checks = verify("mnist", tmp_path)
    assert [c.path.name for c in checks] == [s.name for s in catalog.MNIST_FILES.files]
    assert all(c.ok for c in checks)
    write(folder / "t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(np.ones(5, np.uint8))))
    checks = verify("mnist", tmp_path)
    assert [c.status for c in checks] == ["ok", "ok", "ok", "mismatch"]
    assert "MISMATCH" in str(checks[3]) and str(folder / "t10k-labels-idx1-ubyte.gz") in str(checks[3])


def test_verify_of_a_dataset_without_files_is_empty() -> None:
    assert verify("digits") == []


def test_verify_lists_every_file_past_a_damaged_gzip(tmp_path: Path, use_files: Callable) -> None:
    folder = MnistLike().write(tmp_path)
    use_files("MNIST_FILES", folder)
    train_images = folder / "train-images-idx3-ubyte.gz"
    write(train_images, train_images.read_bytes()[:-20])  # truncated: the gzip stream has no end
    write(folder / "t10k-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(np.ones(5, np.uint8))))
    checks = verify("mnist", tmp_path)
    assert [c.status for c in checks] == ["damaged", "ok", "ok", "mismatch"]
    assert str(checks[0]).startswith(f"DAMAGED     {train_images}: cannot decompress gzip data")
    assert "delete it and download it again" in str(checks[0])


def test_data_verify_prints_every_file_and_fails(tmp_path: Path, use_files: Callable, capsys) -> None:
    from resdyn.cli import main

    folder = MnistLike().write(tmp_path)
    use_files("MNIST_FILES", folder)
    write(folder / "train-labels-idx1-ubyte.gz", b"\x1f\x8b" + b"\x00" * 30)  # gzip magic, then garbage
    assert main(["data", "verify", "mnist", "--data-dir", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["ok", "DAMAGED", "ok", "ok"]
    assert [line.split()[-1] for line in lines[:4:2]] == [str(folder / f) for f in (
        "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")]
    assert lines[5] == "mnist: 4 files, 3 ok, 1 damaged"
