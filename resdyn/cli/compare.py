"""``resdyn compare -c SUITE``: run a suite of experiments (skipping finished runs, resuming interrupted ones),
then write its report."""

from __future__ import annotations

import argparse
import sys

from resdyn.analysis.tables import format_table
from resdyn.cli.report import show_report
from resdyn.recipes import find_recipe


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    c = sub.add_parser("compare", help="run a suite of experiments (skipping finished runs, resuming interrupted "
                       "ones), then write its report", description="Run the experiments of a suite file "
                       "(models x variants x seeds over one recipe) into its out folder, then write "
                       "out/report/report.html and report.md. See resdyn/compare.py and `resdyn recipes`.")
    c.add_argument("-c", "--config", required=True, metavar="SUITE",
                   help="suite file (a recipe plus [suite]), or the name of a shipped suite (see `resdyn recipes`)")
    c.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key in every experiment, e.g. --set train.epochs=2")
    c.add_argument("--out", help="folder for the run folders and the report (default: the suite's out)")
    c.add_argument("--dry-run", action="store_true", help="list the experiments and what would be done; train nothing")
    c.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                   help="train each run data-parallel on N processes (torchrun; one per GPU)")
    return c


def run(args: argparse.Namespace) -> int:
    from resdyn.compare import load_suite, plan, report_suite, run_suite

    suite = load_suite(find_recipe(args.config), args.set, args.out)
    if args.dry_run:
        rows = [[e.name, state, str(e.path)] for e, state in plan(suite)]
        print(format_table(["experiment", "action", "run folder"], rows))
        return 0
    command = args.command_line
    try:
        outcomes = run_suite(suite, command=command, nproc_per_node=args.nproc_per_node)
    except KeyboardInterrupt:
        print(f"resdyn: interrupted; run `{command}` again to resume where it stopped", file=sys.stderr)
        return 130
    report, html_path, md_path = report_suite(suite, outcomes)
    show_report(report, html_path, md_path)
    failed = [o.experiment.name for o in outcomes if o.action == "failed"]
    if failed:
        print(f"resdyn: {len(failed)} experiment(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or not report.runs else 0
