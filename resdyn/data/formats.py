"""Readers for the published file formats: IDX (MNIST family), CIFAR python pickles, gzip and tar archives.

Every reader takes the file's bytes and the path they came from, so that an error can name the file.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from resdyn.atomic import atomic_write
from resdyn.data.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes (LeCun's format description); multi-byte types are big-endian in the file.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_REDOWNLOAD = "delete it and download it again (or copy it again from where you got it)"


def is_gzip(data: bytes) -> bool:
    """Whether ``data`` starts with the gzip magic number."""
    return data[:2] == GZIP_MAGIC


def gunzip(data: bytes, path: str | Path) -> bytes:
    """Decompress gzip ``data`` read from ``path``; a damaged stream raises DataError naming the file."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: cannot decompress gzip data ({error}); the file is damaged: {_REDOWNLOAD}"
        ) from None


def parse_idx(data: bytes, path: str | Path) -> np.ndarray:
    """Parse an uncompressed IDX file: magic ``0, 0, type, ndim``, ``ndim`` big-endian uint32 sizes, payload.

    Returns a writable array in native byte order with the header's shape. A header that does not match
    the payload's size (a truncated or padded file) raises DataError naming the file.
    """
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file: {len(data)} bytes, fewer than the 4-byte magic number")
    zero1, zero2, code, ndim = data[:4]
    if zero1 != 0 or zero2 != 0 or code not in IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path}: not an IDX file: magic number {data[:4].hex()} should be 0000TTDD with type TT in "
            f"{', '.join(f'{c:02x}' for c in IDX_DTYPES)} and DD >= 1 dimensions"
        )
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DataError(
            f"{path}: IDX header truncated: {ndim} dimensions need {offset} bytes, file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - offset
    if actual != expected:
        raise DataError(
            f"{path}: IDX payload is {actual} bytes but its header (shape {shape}, {dtype.name}) says "
            f"{expected}; the file is truncated or corrupt: {_REDOWNLOAD}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native-order copy: writable and owned


def _reconstruct_function() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2 (and 1.26's forward alias)
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # numpy < 1.26
    return _reconstruct


def _latin1_encode(text: str, encoding: str) -> bytes:
    # Python 3 writes a bytes object at pickle protocol 2 as _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"bytes encoded as {encoding!r}, expected latin1")
    return text.encode("latin-1")


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain Python containers and nothing else.

    ``pickle.load`` imports and calls whatever a file names; these files come from the network, so only
    the globals needed to rebuild an ndarray are allowed and any other name is refused before it is
    imported.
    """

    def __init__(self, file: io.BufferedIOBase, path: str | Path) -> None:
        super().__init__(file, encoding="bytes")  # the CIFAR files were written by Python 2
        self.path = path
        reconstruct = _reconstruct_function()
        self.allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _latin1_encode,
        }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.path}: refusing to unpickle {module}.{name}: a CIFAR file holds only numpy arrays, "
                f"lists and strings; this file is not the published one: {_REDOWNLOAD}"
            ) from None


def load_pickle(data: bytes, path: str | Path) -> Any:
    """Unpickle ``data`` read from ``path``, allowing only numpy arrays and plain containers.

    Equivalent to ``pickle.load(f, encoding="bytes")`` on the published CIFAR files, but never imports or
    calls anything else; a malformed or hostile file raises DataError naming the file.
    """
    try:
        return _ArrayUnpickler(io.BytesIO(data), path).load()
    except DataError:
        raise
    except Exception as error:  # a malformed pickle can fail in any of the unpickler's opcodes
        raise DataError(
            f"{path}: not a readable pickle ({type(error).__name__}: {error}): {_REDOWNLOAD}"
        ) from None


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(
            f"{archive}: refusing to extract {member.name!r}: it points outside the extraction folder"
        )
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"{archive}: refusing to extract {member.name!r}: only plain files and folders are expected"
        )


def extract_tar(archive: Path, destination: Path) -> None:
    """Extract the plain files and folders of a (gzipped) tar archive under ``destination``.

    Every member is checked before anything is written: an absolute path, a ``..`` component, a link or a
    device raises DataError and leaves ``destination`` untouched. Each file is written to a temporary name
    and renamed, so an interrupted extraction leaves no partial file under a published name.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            for member in members:
                target = destination.joinpath(*PurePosixPath(member.name).parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a stream
                atomic_write(target, lambda out, src=source: shutil.copyfileobj(src, out))
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataError(f"{archive}: cannot read the tar archive ({error}): {_REDOWNLOAD}") from None
