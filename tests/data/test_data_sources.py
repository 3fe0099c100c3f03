"""Where files are found (in order), what a failed search says, local archives, and verified downloads."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from datafiles import CifarLike, MnistLike

from resdyn.data import ChecksumError, DatasetNotFoundError, load_dataset, locate
from resdyn.data.sources import user_cache_dir

MNIST_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def mnist_copies(tmp_path: Path, use_files: Callable, *folders: Path) -> None:
    """The same MNIST-format files in each folder (recompressed differently, so only payloads match)."""
    data = MnistLike()
    use_files("MNIST_FILES", data.write(tmp_path / "reference"))
    for level, folder in enumerate(folders, start=1):
        data.write(folder, level=level)


def test_user_cache_follows_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert user_cache_dir() == tmp_path / "xdg-cache" / "resdyn"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "resdyn"


def test_explicit_dir_beats_environment_beats_cache_beats_system(
    tmp_path: Path, use_files: Callable, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    explicit, env, system = tmp_path / "explicit", tmp_path / "env", tmp_path / "system"
    mnist_copies(tmp_path, use_files, explicit / "mnist", env, isolated / "mnist", system)
    use_files("MNIST_FILES", tmp_path / "reference", system_dirs=(system,))
    monkeypatch.setenv("RESDYN_DATA", str(env))
    assert locate("mnist", explicit)[0] == explicit / "mnist" / "train-images-idx3-ubyte.gz"
    assert locate("mnist")[0] == env / "train-images-idx3-ubyte.gz"
    monkeypatch.delenv("RESDYN_DATA")
    assert locate("mnist")[0] == isolated / "mnist" / "train-images-idx3-ubyte.gz"
    for path in (isolated / "mnist").iterdir():
        path.unlink()
    assert locate("mnist")[0] == system / "train-images-idx3-ubyte.gz"
    assert len(load_dataset("mnist", download=False).train) == 12


def test_a_place_missing_one_file_is_skipped(tmp_path: Path, use_files: Callable, isolated: Path) -> None:
    explicit = tmp_path / "explicit"
    mnist_copies(tmp_path, use_files, explicit, isolated)
    (explicit / "t10k-labels-idx1-ubyte.gz").unlink()
    assert locate("mnist", explicit) == [isolated / f"{name}.gz" for name in MNIST_NAMES]


def test_decompressed_files_are_accepted(tmp_path: Path, use_files: Callable) -> None:
    data = MnistLike()
    folder = data.write(tmp_path / "raw", gz=False)
    use_files("MNIST_FILES", folder)
    assert locate("mnist", folder) == [folder / name for name in MNIST_NAMES]
    assert len(load_dataset("mnist", folder, download=False).test) == 5


def test_not_found_lists_every_place_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_files: Callable, isolated: Path
) -> None:
    monkeypatch.setenv("RESDYN_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("mnist", tmp_path / "explicit", download=False)
    message = str(error.value)
    for place in [tmp_path / "explicit" / "mnist", tmp_path / "explicit", tmp_path / "env" / "mnist",
                  tmp_path / "env", isolated / "mnist", isolated]:  # fmt: skip
        assert f"{place} (not found)" in message
    assert "train-images-idx3-ubyte.gz" in message and "download=False" in message
    assert "--data-dir DIR or set RESDYN_DATA=DIR" in message


def test_not_found_lists_the_urls_tried_with_their_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("mnist")
    message = str(error.value)
    assert "--data-dir: not set" in message and "$RESDYN_DATA: not set" in message
    for url in ["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz"]:  # fmt: skip
        assert f"download: {url}: network disabled in tests" in message


def test_fashion_mnist_not_found_suggests_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from resdyn.data import catalog

    absent = tmp_path / "usr-share-datasets-fashion-mnist"
    monkeypatch.setattr(
        catalog, "FASHION_MNIST_FILES", replace(catalog.FASHION_MNIST_FILES, system_dirs=(absent,))
    )
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("fashion-mnist", download=False)
    assert f"system: {absent} (not found)" in str(error.value)
    assert "apt-get install dataset-fashion-mnist" in str(error.value)


def test_partial_folder_is_reported_with_the_missing_files(tmp_path: Path, use_files: Callable) -> None:
    folder = MnistLike().write(tmp_path / "d")
    use_files("MNIST_FILES", folder)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing \['train-labels-idx1-ubyte.gz'\]"):
        locate("mnist", folder)


def test_download_tries_mirrors_verifies_and_writes_into_the_cache(
    tmp_path: Path, use_files: Callable, isolated: Path
) -> None:
    server = MnistLike().write(tmp_path / "server")
    mirrors = ((tmp_path / "empty-mirror").as_uri() + "/", server.as_uri() + "/")
    use_files("MNIST_FILES", server, mirrors=mirrors)
    dataset = load_dataset("mnist")
    assert len(dataset.train) == 12
    assert sorted(p.name for p in (isolated / "mnist").iterdir()) == sorted(f"{n}.gz" for n in MNIST_NAMES)
    for name in MNIST_NAMES:
        assert (isolated / "mnist" / f"{name}.gz").read_bytes() == (server / f"{name}.gz").read_bytes()
    assert locate("mnist")[0] == isolated / "mnist" / "train-images-idx3-ubyte.gz"  # no second download


def test_bad_download_is_rejected_and_leaves_no_file(
    tmp_path: Path, use_files: Callable, isolated: Path
) -> None:
    server = MnistLike().write(tmp_path / "server")
    use_files("MNIST_FILES", server, mirrors=(server.as_uri() + "/",))
    damaged = server / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(gzip.compress(gzip.decompress(damaged.read_bytes())[:-1] + b"\xff"))
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz: checksum mismatch"):
        load_dataset("mnist")
    assert list((isolated / "mnist").iterdir()) == []


def test_local_cifar_archive_is_verified_and_extracted_into_the_cache(
    tmp_path: Path, use_files: Callable, isolated: Path
) -> None:
    cifar = CifarLike()
    archive = cifar.write_archive(tmp_path / "src", tmp_path / "data")
    use_files("CIFAR10_FILES", tmp_path / "src" / cifar.folder, archive=archive)
    paths = locate("cifar10", tmp_path / "data")
    assert paths[0] == isolated / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    dataset = load_dataset("cifar10", tmp_path / "data", download=False)
    assert len(dataset.train) == 15 and len(dataset.test) == 4


def test_local_cifar_archive_with_a_wrong_digest_is_refused(tmp_path: Path, use_files: Callable) -> None:
    cifar = CifarLike(num_classes=100)
    archive = cifar.write_archive(tmp_path / "src", tmp_path / "data" / "cifar100")
    use_files("CIFAR100_FILES", tmp_path / "src" / cifar.folder)  # the real archive digest
    with pytest.raises(ChecksumError, match=f"{archive}: checksum mismatch: expected md5 eb9058c3"):
        load_dataset("cifar100", tmp_path / "data", download=False)


def test_cifar_download_extracts_the_archive(tmp_path: Path, use_files: Callable, isolated: Path) -> None:
    cifar = CifarLike(num_classes=100)
    archive = cifar.write_archive(tmp_path / "src", tmp_path / "server")
    use_files("CIFAR100_FILES", tmp_path / "src" / cifar.folder, archive=archive,
              mirrors=((tmp_path / "server").as_uri() + "/",))  # fmt: skip
    dataset = load_dataset("cifar100")
    assert len(dataset.train) == 3 and dataset.info.classes[1] == "aquarium_fish"
    assert (isolated / "cifar100" / "cifar-100-python.tar.gz").is_file()
    assert (isolated / "cifar100" / "cifar-100-python" / "meta").is_file()
