"""What code is running: the package's version and, for a git checkout, its commit.

``resdyn --version`` prints both, and a run's summary records the commit (``source_version``), so a result
can be traced to the code that produced it.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

__version__ = "0.1.0"

#: The folder holding the resdyn package: the top of a checkout, or site-packages for an installed copy.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def source_version(root: Path = PACKAGE_ROOT) -> str | None:
    """The git commit of the checkout at ``root`` (by default the one this resdyn runs from), with a ``-dirty``
    suffix when tracked files differ from it; ``None`` when ``root`` is not the top of a git checkout, e.g. for
    a copy of resdyn installed into site-packages, which must not report the commit of a repository around it."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=root)
        if out.returncode != 0:
            raise OSError(out.stderr)
        return out.stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return None
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


@functools.cache
def loaded_version() -> str | None:
    """The version of the code this process runs, read once, when a training first asks (git does not run at
    import): a run started later in a long-lived process (a `resdyn compare` suite) must not report a commit
    made after that."""
    return source_version()


def version_text() -> str:
    """``resdyn --version``: the version, the commit (or that there is none), where the package is, torch."""
    import torch

    commit = source_version()
    source = f"commit {commit}" if commit else "installed, not a git checkout"
    return (f"resdyn {__version__} ({source}) from {PACKAGE_ROOT / 'resdyn'}\n"
            f"torch {torch.__version__}, python {platform.python_version()}")
