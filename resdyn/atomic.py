"""Safe file writes in folders a user may share or tamper with.

``atomic_write``: a reader, or a process killed mid-write, sees the old file or the new one, never half.
``open_own``: a file opened in place (a lock, an appended log) without following a link: a symbolic link, a hard
link to another file, or anything but a regular file at that name is refused, naming it, so that a planted
``lock -> ~/thesis.tex`` can never make a training truncate someone's file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from resdyn.errors import UnsafeFileError


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
            raise UnsafeFileError(f"{path} is a symbolic link; resdyn does not write through links: remove it "
                                  f"(it points to {os.readlink(path)!r})") from None
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
        raise UnsafeFileError(f"{path} is a symbolic link; resdyn does not write through links: remove it "
                              f"(it points to {os.readlink(path)!r})")
    _check_own(path, st, hard_links_ok=True)


def _check_own(path: Path, st: os.stat_result, hard_links_ok: bool = False) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file"
        raise UnsafeFileError(f"{path} is not a regular file ({kind}); remove it")
    if st.st_nlink > 1 and not hard_links_ok:
        raise UnsafeFileError(f"{path} is a hard link shared with {st.st_nlink - 1} other name(s); resdyn does not "
                              "write through links: remove it")


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask
