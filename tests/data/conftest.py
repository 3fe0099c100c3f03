"""Fixtures for the data tests: an environment that never touches the user's data or the network, and
file tables that expect the small files the tests write (see ``datafiles.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from datafiles import digests_of

from resdyn.data import catalog, sources
from resdyn.data.sources import Published


@pytest.fixture
def use_files(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Published]:
    """``use_files("MNIST_FILES", folder, **fields)``: make dataset tables in ``catalog`` expect the files in
    ``folder`` (and ``archive=``), with other fields of the table (``mirrors``, ``system_dirs``) replaced."""

    def substitute(table: str, folder: Path, archive: Path | None = None, **fields: object) -> Published:
        published = replace(digests_of(getattr(catalog, table), folder, archive), **fields)
        monkeypatch.setattr(catalog, table, published)
        return published

    return substitute


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home and user cache, no ``$RESDYN_DATA``, no network: return the user cache folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("RESDYN_DATA", raising=False)

    real_fetch = sources.fetch

    def local_only(url: str, destination: Path, timeout: float = 1.0) -> None:
        if not url.startswith("file:"):
            raise OSError(f"network disabled in tests: {url}")
        real_fetch(url, destination, timeout)

    monkeypatch.setattr(sources, "fetch", local_only)
    return tmp_path / "xdg-cache" / "resdyn"
