"""`resdyn --version` and the commit it reports: the package's version and the checkout's HEAD (-dirty)."""

from __future__ import annotations

import subprocess

import pytest

import resdyn
from resdyn.cli import main
from resdyn.version import PACKAGE_ROOT, __version__, source_version


def git(folder, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


def test_source_version_is_head_dirty_when_changed_and_none_below_the_top(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "f.py").write_text("x = 1\n")
    git(tmp_path, "add", "f.py")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert source_version(tmp_path) == head
    (tmp_path / "untracked.py").write_text("")
    assert source_version(tmp_path) == head  # untracked files are not the code that ran
    (tmp_path / "f.py").write_text("x = 2\n")
    assert source_version(tmp_path) == f"{head}-dirty"
    (tmp_path / "site-packages").mkdir()  # an installed copy inside some repository is not that repository
    assert source_version(tmp_path / "site-packages") is None


def test_version_flag_prints_version_commit_and_location(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    first, second = capsys.readouterr().out.splitlines()
    commit = source_version()
    source = f"commit {commit}" if commit else "installed, not a git checkout"
    assert first == f"resdyn {__version__} ({source}) from {PACKAGE_ROOT / 'resdyn'}"
    assert second.startswith("torch ") and resdyn.__version__ == __version__
