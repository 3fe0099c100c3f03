"""Command line: ``resdyn train | models | data | recipes | compare | report | ensemble | bench`` (also
``python -m resdyn``).

``resdyn meanfield`` is its own package's command (:mod:`resdyn.meanfield.cli`), registered here like the others.

Strings become objects here and nowhere else: names go through the registries, flags become config
overrides, and the library below sees only typed config and objects.

A subcommand is a module with ``add_parser(subparsers) -> ArgumentParser`` and ``run(args) -> int``, listed in
``COMMANDS``; ``build_parser`` binds each parser to its module's ``run`` (``set_defaults``), so a command runs
its own code and nothing can fall through to another's. ``args.command_line`` is the command as typed, for
the records a command writes.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from types import ModuleType

from resdyn.cli import bench, compare, data, ensemble, models, recipes, report, train
from resdyn.cli.common import command_line
from resdyn.cli.train import resolve_train_config
from resdyn.errors import ResdynError
from resdyn.meanfield import cli as meanfield

#: the subcommands, in the order ``resdyn --help`` lists them
COMMANDS: tuple[ModuleType, ...] = (train, models, data, recipes, compare, report, ensemble, meanfield, bench)


class VersionAction(argparse.Action):
    """``--version``: like argparse's own, but the text (which runs git) is made only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from resdyn.version import version_text

        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resdyn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=VersionAction, help="print the version (and commit) and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub).set_defaults(run=module.run)
    return parser


#: what to do about the filesystem errors a user meets, by errno
OS_ADVICE = {
    errno.ENOSPC: "free some space (or choose another --out) and resume",
    errno.EDQUOT: "free some of your quota (or choose another --out) and resume",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
    errno.EROFS: "that file system is read-only: choose another --out",
    errno.EACCES: "choose a folder you may write to (--out)",
    errno.EPERM: "choose a folder you may write to (--out)",
    errno.ENAMETOOLONG: "choose a shorter --out or name",
}


def describe_os_error(e: OSError) -> str:
    """A filesystem error as one line: the path, the system's words for the cause, and what to do."""
    where = f"{e.filename}: " if e.filename else ""
    advice = OS_ADVICE.get(e.errno)
    return f"{where}{e.strerror or e}" + (f"; {advice}" if advice else "") + " (RESDYN_TRACEBACK=1 for the traceback)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = command_line(argv)
    try:
        return args.run(args)
    except ResdynError as e:
        print(f"resdyn: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if os.environ.get("RESDYN_TRACEBACK"):
            raise
        print(f"resdyn: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("resdyn: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "build_parser", "command_line", "main", "resolve_train_config"]
