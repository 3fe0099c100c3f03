"""Where a dataset's files are found, in order, and how they are downloaded when they are not.

Places, each used only if it holds every file of the dataset: the ``data_dir`` argument (``--data-dir``),
``$RESDYN_DATA``, the user cache (``$XDG_CACHE_HOME/resdyn`` or ``~/.cache/resdyn``), folders where an
operating-system package installs the dataset; then, if allowed, a verified download into the user cache.
Within a place ``D`` the files are looked for in ``D/<dataset>/`` and ``D/`` (and in the archive's folder
under each, for CIFAR), as published (``file.gz``) or decompressed (``file``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from resdyn.data.checksums import FileCheck, FileSpec, md5_file, mismatch_message, read_checked
from resdyn.data.errors import ChecksumError, DataError, DatasetNotFoundError
from resdyn.data.formats import extract_tar

DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Archive:
    """A published archive holding a dataset's files under ``folder``, e.g. ``cifar-10-batches-py``."""

    name: str
    md5: str
    folder: str


@dataclass(frozen=True)
class Published:
    """A dataset's files as published: their digests, the mirrors that serve them and where to find them.

    ``files`` are fetched one by one from ``mirrors`` unless ``archive`` is set, in which case the archive
    is fetched and extracted. ``system_dirs`` are where an operating-system package installs the files;
    ``how_to_get`` ends the message of a DatasetNotFoundError.
    """

    files: tuple[FileSpec, ...]
    mirrors: tuple[str, ...]
    archive: Archive | None = None
    system_dirs: tuple[Path, ...] = ()
    how_to_get: str = ""


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/resdyn``, or ``~/.cache/resdyn`` when that variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "resdyn"


def places(name: str, published: Published, data_dir: str | Path | None) -> list[tuple[str, Path | None]]:
    """The places searched for dataset ``name``, in order, as ``(label, folder)``; ``None``: not set."""
    found: list[tuple[str, Path | None]] = [
        ("--data-dir", Path(data_dir).expanduser() if data_dir is not None else None),
        (
            "$RESDYN_DATA",
            Path(os.environ["RESDYN_DATA"]).expanduser() if os.environ.get("RESDYN_DATA") else None,
        ),
        ("user cache", user_cache_dir()),
    ]
    found += [("system", d) for d in published.system_dirs]
    return found


def _folders(root: Path, name: str, archive: Archive | None) -> list[Path]:
    folders = [root / name, root]
    if archive is not None:
        folders = [root / name / archive.folder, root / archive.folder, *folders]
    return list(dict.fromkeys(folders))


def _present(folder: Path, spec: FileSpec) -> Path | None:
    for file_name in spec.names:
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def _in_folder(folder: Path, files: tuple[FileSpec, ...]) -> tuple[list[Path], list[str]]:
    paths, missing = [], []
    for spec in files:
        path = _present(folder, spec)
        if path is None:
            missing.append(spec.name)
        else:
            paths.append(path)
    return paths, missing


def find(name: str, published: Published, data_dir: str | Path | None, download: bool) -> list[Path]:
    """The paths of dataset ``name``'s files, in the order of ``published.files``.

    Searches the places in order and uses the first that holds every file. A local copy of the published
    archive is verified and extracted into the user cache. With ``download`` the missing files are then
    downloaded into the user cache. Raises DatasetNotFoundError listing every place and URL tried.
    """
    looked: list[str] = []
    for label, root in places(name, published, data_dir):
        if root is None:
            looked.append(f"{label}: not set")
            continue
        for folder in _folders(root, name, published.archive):
            paths, missing = _in_folder(folder, published.files)
            if not missing:
                return paths
            archive = folder / published.archive.name if published.archive else None
            if archive is not None and archive.is_file():
                return _extracted(name, published, archive)
            detail = "not found" if not folder.is_dir() else "no files" if not paths else f"missing {missing}"
            looked.append(f"{label}: {folder} ({detail})")
    failures: list[str] = []
    if download:
        paths = _download(name, published, failures)
        if paths is not None:
            return paths
    else:
        failures.append("download: not tried (download=False)")
    raise DatasetNotFoundError(_not_found_message(name, published, looked, failures))


def _not_found_message(name: str, published: Published, looked: list[str], failures: list[str]) -> str:
    files = ", ".join(spec.name for spec in published.files)
    if published.archive is not None:
        files = f"{published.archive.name}, or its folder {published.archive.folder}/ with {files}"
    lines = [f"dataset {name!r} not found: looked for {files}", "places looked at, in order:"]
    lines += [f"  {line}" for line in looked]
    lines += [f"  {line}" for line in failures]
    how = f"{published.how_to_get}; or " if published.how_to_get else ""
    lines.append(
        f"To get it: {how}put the published files in a folder DIR (or DIR/{name}/) and pass --data-dir DIR "
        f"or set RESDYN_DATA=DIR."
    )
    return "\n".join(lines)


def _check_archive(archive: Archive, path: Path) -> FileCheck:
    actual = md5_file(path)
    status = "ok" if actual == archive.md5 else "mismatch"
    return FileCheck(path, f"md5 {archive.md5}", f"md5 {actual}", status)


def _extracted(name: str, published: Published, archive_path: Path) -> list[Path]:
    """The dataset's files extracted from a verified local archive into the user cache."""
    archive = published.archive
    assert archive is not None
    destination = user_cache_dir() / name
    folder = destination / archive.folder
    paths, missing = _in_folder(folder, published.files)
    if not missing:
        return paths
    check = _check_archive(archive, archive_path)
    if check.status != "ok":
        raise ChecksumError(mismatch_message(check))
    destination.mkdir(parents=True, exist_ok=True)
    extract_tar(archive_path, destination)
    paths, missing = _in_folder(folder, published.files)
    if missing:
        raise DatasetNotFoundError(f"{archive_path}: the archive has no {missing} under {archive.folder}/")
    return paths


def fetch(url: str, destination: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Copy the resource at ``url`` into the file ``destination``. Tests replace this function."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def download_file(
    file_name: str,
    mirrors: tuple[str, ...],
    folder: Path,
    check: Callable[[Path], FileCheck],
    failures: list[str],
) -> Path | None:
    """Download ``file_name`` from the first mirror that serves it intact into ``folder``; return its path.

    Each attempt is written to a temporary file, checked with ``check``, and only then renamed to
    ``file_name``, so a failed or corrupt download leaves nothing behind. Failures are appended to
    ``failures``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for mirror in mirrors:
        url = mirror + file_name
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{file_name}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            fetch(url, tmp)
            result = check(tmp)
            if result.status != "ok":
                failures.append(
                    f"download: {url}: checksum mismatch: expected {result.expected}; got {result.actual}"
                )
                continue
            os.replace(tmp, folder / file_name)
            return folder / file_name
        except OSError as error:  # URLError, HTTPError, timeouts and disk errors are all OSErrors
            failures.append(f"download: {url}: {error}")
        except DataError as error:  # e.g. an HTML error page served in place of a .gz file
            failures.append(f"download: {url}: {error}")
        finally:
            tmp.unlink(missing_ok=True)
    return None


def _download(name: str, published: Published, failures: list[str]) -> list[Path] | None:
    folder = user_cache_dir() / name
    archive = published.archive
    if archive is not None:
        path = download_file(
            archive.name, published.mirrors, folder, lambda p: _check_archive(archive, p), failures
        )
        return None if path is None else _extracted(name, published, path)
    paths = []
    for spec in published.files:
        path = _present(folder, spec) or download_file(
            spec.name, published.mirrors, folder, lambda p, spec=spec: read_checked(spec, p)[0], failures
        )
        if path is None:
            return None
        paths.append(path)
    return paths
