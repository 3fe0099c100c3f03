"""``resdyn compare -c SUITE``: run a suite of experiments (skipping finished runs, resuming interrupted ones),
then write its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resdyn.analysis.tables import format_table
from resdyn.cli.common import positive_int
from resdyn.cli.report import show_report
from resdyn.errors import ConfigError
from resdyn.executors import EXECUTORS, Executor
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
    c.add_argument("--status", action="store_true",
                   help="list each run's state (done, running, failed with its error, interrupted, submitted, not "
                        "started); train nothing")
    where = c.add_argument_group("where the runs train (each in a process of its own)")
    where.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: one after another here (default); pool: several at once here (--gpus or "
                            "--workers); slurm: one SLURM job per run through submitit (pip install "
                            "'resdyn[cluster]'); submitit-local: the same jobs as local processes (to test a setup)")
    where.add_argument("--gpus", metavar="0,1,...", help="pool: one run per GPU at a time (CUDA_VISIBLE_DEVICES)")
    where.add_argument("--workers", type=positive_int, metavar="N",
                       help="pool without GPUs: N runs at once, the CPU cores shared out between them")
    where.add_argument("--partition", help="slurm: the partition")
    where.add_argument("--time", default="4:00:00", metavar="H:MM:SS", help="slurm: each job's time limit")
    where.add_argument("--gpus-per-run", type=int, default=0, metavar="G",
                       help="slurm: GPUs (and processes, data-parallel) per node for each run")
    where.add_argument("--nodes-per-run", type=positive_int, default=1, metavar="N", help="slurm: nodes per run")
    where.add_argument("--cpus-per-run", type=positive_int, metavar="C", help="slurm: CPU cores per process")
    return c


def make_executor(args: argparse.Namespace, out: Path) -> Executor:
    """The executor the flags ask for, its settings checked."""
    from resdyn.executors import Local, Pool, Slurm

    if args.executor == "local":
        return Local()
    if args.executor == "pool":
        if bool(args.gpus) == bool(args.workers):
            raise ConfigError("--executor pool needs --gpus 0,1,... (one run per GPU) or --workers N (CPU), one of "
                              "them")
        gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else []
        return Pool.for_gpus(gpus) if gpus else Pool.for_cpus(args.workers)
    hours, minutes, seconds = _clock(args.time)
    parameters: dict[str, object] = {"timeout_min": max(1, hours * 60 + minutes + (seconds > 0)),
                                     "nodes": args.nodes_per_run, "name": "resdyn"}
    if args.gpus_per_run:
        parameters.update(gpus_per_node=args.gpus_per_run, tasks_per_node=args.gpus_per_run)
    if args.cpus_per_run:
        parameters["cpus_per_task"] = args.cpus_per_run
    if args.partition:
        parameters["slurm_partition"] = args.partition
    folder = out / ".submitit"
    folder.mkdir(parents=True, exist_ok=True)
    return Slurm(folder, "slurm" if args.executor == "slurm" else "local", parameters)


def _clock(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 3 and min(parts) >= 0:
            return parts[0], parts[1], parts[2]
    except ValueError:
        pass
    raise ConfigError(f"--time must be H:MM:SS, got {text!r}")


def run(args: argparse.Namespace) -> int:
    from resdyn.compare import load_suite, plan, report_suite, run_suite

    suite = load_suite(find_recipe(args.config), args.set, args.out)
    if args.status:
        from resdyn.compare import suite_status

        print(format_table(["experiment", "state", "run folder"],
                           [[e.name, state, str(e.path)] for e, state in suite_status(suite)]))
        return 0
    if args.dry_run:
        rows = [[e.name, state, str(e.path)] for e, state in plan(suite)]
        print(format_table(["experiment", "action", "run folder"], rows))
        return 0
    command = args.command_line
    try:
        outcomes = run_suite(suite, command=command, nproc_per_node=args.nproc_per_node,
                             executor=make_executor(args, suite.out))
    except KeyboardInterrupt:
        print(f"resdyn: interrupted; run `{command}` again to resume where it stopped", file=sys.stderr)
        return 130
    report, html_path, md_path = report_suite(suite)
    show_report(report, html_path, md_path)
    failed = [o.experiment.name for o in outcomes if o.action == "failed"]
    if failed:
        print(f"resdyn: {len(failed)} experiment(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or not report.runs else 0
