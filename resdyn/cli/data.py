"""``resdyn data list | where | verify``: the registered datasets, where their files are read from, checksums."""

from __future__ import annotations

import argparse
from collections import Counter

from resdyn.analysis.tables import format_table
from resdyn.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    d = sub.add_parser("data", help="list datasets, show where their files are, verify checksums")
    d.add_argument("action", choices=["list", "where", "verify"])
    d.add_argument("name", nargs="?", help="dataset name (all for list)")
    d.add_argument("--data-dir", help="directory to look in first")
    return d


def run(args: argparse.Namespace) -> int:
    from resdyn.data import DATASETS, locate, verify

    if args.action == "list":
        print(format_table(["dataset", "description"], [[n, DATASETS.help(n)] for n in DATASETS.names()]))
        return 0
    if args.name is None:
        raise ConfigError(f"`resdyn data {args.action}` needs a dataset name; valid: {', '.join(DATASETS.names())}")
    if args.action == "where":
        for path in locate(args.name, args.data_dir):
            print(path)
        return 0
    checks = verify(args.name, args.data_dir)
    if not checks:
        print(f"{args.name}: no files to verify (its data comes with a Python package)")
        return 0
    for check in checks:
        print(check)
    counts = Counter(c.status for c in checks)
    print(f"\n{args.name}: {len(checks)} files, " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    if counts["mismatch"] or counts["damaged"]:
        print("A damaged or different file is not the published one: delete it and get it again (`resdyn data "
              f"where {args.name}` shows where the files are read from).")
    return 0 if all(c.ok for c in checks) else 1
