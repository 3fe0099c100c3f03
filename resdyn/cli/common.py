"""What every subcommand shares: the command line it records, argument types."""

from __future__ import annotations

import argparse
import shlex
import sys


def command_line(argv: list[str] | None) -> str:
    """The command as a user would type it again (``resdyn train --model resnet20 ...``), recorded in summaries,
    resumes, bench and mean-field results: ``argv``, or this process's arguments when it is None."""
    return "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (channels, classes, pixels)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
