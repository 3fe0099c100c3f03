"""``resdyn report RUN_DIR... --out DIR``: tables and plots comparing run folders, as report.html and report.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resdyn.analysis.report import Report


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    r = sub.add_parser("report", help="tables and plots comparing run folders, as report.html and report.md")
    r.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (a folder of run folders, such as a suite's out, stands for all of them)")
    r.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, report.md and the PNGs")
    r.add_argument("--title", default="resdyn comparison")
    return r


def run(args: argparse.Namespace) -> int:
    from resdyn.analysis.report import build_report, write_report

    report = build_report(args.runs, title=args.title)
    if not report.runs and not report.extra:
        for s in report.skipped:
            print(f"resdyn: skipped {s.path}: {s.reason}", file=sys.stderr)
        print("resdyn: error: none of the folders holds a readable finished run; no report written", file=sys.stderr)
        return 1
    show_report(report, *write_report(report, args.out))
    return 0


def show_report(report: Report, html_path: Path, md_path: Path) -> None:
    """The tables on stdout; every skipped folder, with why, and every run counted once, on stderr."""
    from resdyn.analysis.report import duplicate_lines, terminal_text

    print(terminal_text(report))
    for s in report.skipped:
        print(f"resdyn: skipped {s.path}: {s.reason}", file=sys.stderr)
    for line in duplicate_lines(report):
        print(f"resdyn: {line}", file=sys.stderr)
    print(f"\nreport: {html_path} (self-contained) and {md_path}")
