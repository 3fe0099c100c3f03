"""The one error family for what a user can cause and fix: a bad config or option, an unknown name, a damaged
data file, a run folder that cannot be used, a run that diverged.

The command line prints a :class:`ResdynError` as one line and exits 1; every other exception is a bug in
resdyn and keeps its traceback. Raise these where input enters (config, options, files), never for a broken
internal invariant.
"""

from __future__ import annotations


class ResdynError(Exception):
    """Base of every error a user can act on; the message says what was wrong, what was expected, what to do."""


class ConfigError(ResdynError, ValueError):
    """A config value, model option or flag that does not fit; the message says what was expected.

    Also a ``ValueError``, so library callers that catch bad values as ``ValueError`` keep working.
    """


class UnsafeFileError(ResdynError, OSError):
    """A file resdyn was about to write is a symbolic link, a hard link to another file, or not a regular file
    (a FIFO, a device, a folder): writing would follow it to somewhere else, so the write is refused."""
