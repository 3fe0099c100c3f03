"""Safe file reads and writes in folders a user may share or tamper with.

``read_text``: a file's text, only from a regular file (a FIFO named ``metrics.jsonl`` would block a reader
forever) and only as UTF-8, with one clear error naming the file otherwise; ``parse_toml`` and ``parse_json``
turn a file nested too deep for Python's recursion into that error too.

``atomic_write``: a reader, or a process killed mid-write, sees the old file or the new one, never half.
``open_own``: a file opened in place (a lock, an appended log) without following a link: a symbolic link, a hard
link to another file, or anything but a regular file at that name is refused, naming it, so that a planted
``lock -> ~/thesis.tex`` can never make a training truncate someone's file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from resdyn.errors import UnsafeFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file in ``path``'s folder, fsync it, then rename it over ``path``.

    The new file gets the permissions ``open`` would give it (0o666 less the umask), not the 0o600 of a
    temporary file, so that collaborators can read a run's results where the umask lets them. On any failure
    the temporary file is removed and ``path`` is left as it was.
    """
    refuse_link(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None:  # a failed write of an open file names no file: name the one it was for
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_own(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT | O_NOFOLLOW, 0o666)`` that returns a descriptor only of a regular file
    with one link (this name); anything else is an :class:`UnsafeFileError` naming the path."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _symlink_refused(path) from None
        if e.errno == errno.ENXIO:  # a FIFO with no reader
            raise UnsafeFileError(f"{path} is not a regular file (a FIFO); remove it") from None
        raise
    try:
        _check_own(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    os.set_blocking(fd, True)
    return fd


def refuse_link(path: Path) -> None:
    """Refuse ``path`` if it is a symbolic link or exists as anything but a regular file. A rename over a link
    would not write through it, but whoever made the link meant something by it: say so rather than replace it
    silently. A hard link is fine here: the rename gives this name a new file and leaves the other name's
    content as it was (a run folder copied with ``cp -al`` stays independent)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _symlink_refused(path)
    _check_own(path, st, hard_links_ok=True)


def _symlink_refused(path: Path) -> UnsafeFileError:
    return UnsafeFileError(f"{path} is a symbolic link; resdyn does not write through links: remove it "
                           f"(it points to {os.readlink(path)!r})")


def _check_own(path: Path, st: os.stat_result, hard_links_ok: bool = False) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(f"{path} is not a regular file ({_kind(st)}); remove it")
    if st.st_nlink > 1 and not hard_links_ok:
        raise UnsafeFileError(f"{path} is a hard link shared with {st.st_nlink - 1} other name(s); resdyn does not "
                              "write through links: remove it")


def read_text(path: Path, error: type[Exception]) -> str:
    """The UTF-8 text of the regular file ``path``; a FIFO, a device or a folder there, or bytes that are not UTF-8,
    raise ``error`` naming the file (a missing file raises FileNotFoundError, for the caller to word)."""
    # O_NONBLOCK: a FIFO opens at once, to be refused below
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path} is not a regular file ({_kind(st)}); resdyn reads only regular files")
        os.set_blocking(f.fileno(), True)
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def parse_toml(text: str, path: Path | str, error: type[Exception]) -> dict:
    """``tomllib.loads`` whose failures, bad TOML or nesting deeper than Python's recursion, are ``error``
    naming ``path``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path} is not valid TOML: {e}") from None
    except RecursionError:
        raise error(f"{path} is nested too deeply to read (arrays or tables within each other hundreds deep)") from None


def parse_json(text: str, path: Path | str, error: type[Exception]) -> object:
    """``json.loads`` whose failures, bad JSON or nesting deeper than Python's recursion, are ``error`` naming
    ``path``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path} is corrupt: {e}") from None
    except RecursionError:
        raise error(f"{path} is nested too deeply to read") from None


def _kind(st: os.stat_result) -> str:
    return "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file"


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask
