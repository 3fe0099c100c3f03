"""MD5 verification of published files, of the file as published or of its decompressed payload.

A gzip file can be recompressed without changing what it holds (Debian's ``dataset-fashion-mnist`` ships
Fashion-MNIST recompressed, so its .gz digests differ from the published ones). Where the digest of the
decompressed payload is known a file is accepted when either digest matches, and an uncompressed copy of a
.gz file can be checked too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from resdyn.data.errors import ChecksumError, DataError
from resdyn.data.formats import gunzip, is_gzip

Status = Literal["ok", "unverified", "mismatch", "damaged"]


def md5(data: bytes) -> str:
    """Hex MD5 digest of ``data``."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: Path) -> str:
    """Hex MD5 digest of the file at ``path``, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileSpec:
    """A published file and its digests.

    ``md5`` is the digest of the file as published (of the .gz for a gzipped file); ``payload_md5`` that of
    its decompressed contents, where known. Files published uncompressed have only ``md5``.
    """

    name: str
    md5: str
    payload_md5: str | None = None

    @property
    def compressed(self) -> bool:
        return self.name.endswith(".gz")

    @property
    def names(self) -> tuple[str, ...]:
        """File names accepted on disk: the published name and, for a .gz, the decompressed one."""
        return (self.name, self.name.removesuffix(".gz")) if self.compressed else (self.name,)


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one file: ``status`` is ``ok``, ``unverified`` (no digest to compare),
    ``mismatch`` or ``damaged`` (unreadable, or gzip data that does not decompress); ``expected`` and ``actual``
    describe the digests compared (for ``damaged``, ``actual`` is the error, which names the file)."""

    path: Path
    expected: str
    actual: str
    status: Status

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __str__(self) -> str:
        if self.status == "ok":
            return f"ok          {self.path}"
        if self.status == "unverified":
            return f"unverified  {self.path} (no published digest for the raw file; {self.actual})"
        if self.status == "damaged":
            return f"DAMAGED     {self.actual}"
        return f"MISMATCH    {self.path}: expected {self.expected}; got {self.actual}"


def check_bytes(spec: FileSpec, data: bytes, path: Path) -> tuple[FileCheck, bytes]:
    """Check the bytes ``data`` of the file at ``path`` against ``spec``; return the check and the payload.

    The payload is ``data`` decompressed if it is gzip data, so a caller parses what was hashed and never
    decompresses twice.
    """
    if not spec.compressed:
        actual = md5(data)
        status: Status = "ok" if actual == spec.md5 else "mismatch"
        return FileCheck(path, f"md5 {spec.md5}", f"md5 {actual}", status), data
    if is_gzip(data):
        payload = gunzip(data, path)
        container, contents = md5(data), md5(payload)
        expected = f"md5 {spec.md5} of the published .gz file"
        if spec.payload_md5:
            expected += f" or md5 {spec.payload_md5} of its decompressed contents"
        ok = container == spec.md5 or contents == spec.payload_md5
        actual = f"md5 {container} of the file, md5 {contents} of its decompressed contents"
        return FileCheck(path, expected, actual, "ok" if ok else "mismatch"), payload
    digest = md5(data)
    if spec.payload_md5 is None:
        return FileCheck(path, "no published digest", f"md5 {digest}", "unverified"), data
    status = "ok" if digest == spec.payload_md5 else "mismatch"
    expected = f"md5 {spec.payload_md5} of the decompressed {spec.name}"
    return FileCheck(path, expected, f"md5 {digest}", status), data


def read_checked(spec: FileSpec, path: Path) -> tuple[FileCheck, bytes]:
    """Read the file at ``path`` and check it against ``spec``; see :func:`check_bytes`."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    return check_bytes(spec, data, path)


def survey_file(spec: FileSpec, path: Path) -> tuple[FileCheck, bytes | None]:
    """Like :func:`read_checked`, but a file that cannot be read or decompressed is a ``damaged`` check (with
    no payload) instead of an error, so that every file of a dataset can be reported."""
    try:
        return read_checked(spec, path)
    except DataError as error:
        return FileCheck(path, "a readable file", str(error), "damaged"), None


def read_verified(spec: FileSpec, path: Path) -> bytes:
    """Read, check and return the payload of the file at ``path``; a mismatch raises ChecksumError."""
    check, payload = read_checked(spec, path)
    if check.status == "mismatch":
        raise ChecksumError(mismatch_message(check))
    return payload


def mismatch_message(check: FileCheck) -> str:
    """The message of a ChecksumError: which file, the digests expected and found, and what to do."""
    return (
        f"{check.path}: checksum mismatch: expected {check.expected}; got {check.actual}. The file is "
        f"damaged or is not the published one: delete it and download it again (or copy it again from where "
        f"you got it)."
    )
