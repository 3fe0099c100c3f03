"""Errors raised where data enters resdyn: files that are missing, malformed or not the published ones."""

from __future__ import annotations

from resdyn.errors import ResdynError


class DataError(ResdynError):
    """A data file or dataset that cannot be used; the message names the file and what to do."""


class ChecksumError(DataError):
    """A file whose digest matches none of the published digests."""


class DatasetNotFoundError(DataError):
    """No place holds a dataset's files; the message lists every place looked at and how to get them."""
