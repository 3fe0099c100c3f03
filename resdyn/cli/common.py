"""What every subcommand shares: the command line it records."""

from __future__ import annotations

import shlex
import sys


def command_line(argv: list[str] | None) -> str:
    """The command as a user would type it again (``resdyn train --model resnet20 ...``), recorded in summaries,
    resumes, bench and mean-field results: ``argv``, or this process's arguments when it is None."""
    return "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)
