"""Command line: ``resdyn train | models | data | compare | report`` (also ``python -m resdyn``).

Strings become objects here and nowhere else: names go through the registries, flags become config
overrides, and the library below sees only typed config and objects.
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from resdyn.analysis.tables import format_table, human_bytes
from resdyn.errors import ResdynError
from resdyn.meanfield import cli as meanfield_cli
from resdyn.runs import RunDir
from resdyn.train.config import Config, ConfigError, apply_overrides, load_config

if TYPE_CHECKING:
    from resdyn.analysis.report import Report

# Flags of `resdyn train` that are shorthands for config keys.
TRAIN_FLAGS = {
    "model": "model.name",
    "data": "data.name",
    "data_dir": "data.dir",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "device": "train.device",
    "seed": "train.seed",
    "limit_train": "data.limit_train",
    "limit_test": "data.limit_test",
    "progress": "train.progress",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resdyn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model into a run folder (or resume one)")
    t.add_argument("-c", "--config", help="TOML config or recipe file")
    t.add_argument("--model", help="model name (see `resdyn models`)")
    t.add_argument("--data", help="dataset name (see `resdyn data list`)")
    t.add_argument("--data-dir", help="directory holding the dataset's files")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    t.add_argument("--seed", type=int)
    t.add_argument("--limit-train", type=int, help="train on the first N of a seeded permutation")
    t.add_argument("--limit-test", type=int, help="test on the first N of a seeded permutation")
    t.add_argument("--progress", choices=["auto", "bar", "lines", "off"])
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key, e.g. --set optim.name=adamw --set schedule.milestones=[80,120]")
    t.add_argument("--out", help="run folder (default runs/MODEL-DATA-seedN)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a run")

    m = sub.add_parser("models", help="list the models with parameters and Mult-Adds")
    m.add_argument("--in-channels", type=int, default=3)
    m.add_argument("--num-classes", type=int, default=10)
    m.add_argument("--image-size", type=int, default=32)
    m.add_argument("--no-mult-adds", action="store_true", help="skip the (slower) Mult-Adds count")

    d = sub.add_parser("data", help="list datasets, show where their files are, verify checksums")
    d.add_argument("action", choices=["list", "where", "verify"])
    d.add_argument("name", nargs="?", help="dataset name (all for list)")
    d.add_argument("--data-dir", help="directory to look in first")

    c = sub.add_parser("compare", help="run a suite of experiments (skipping finished runs, resuming interrupted "
                       "ones), then write its report", description="Run the experiments of a suite file "
                       "(models x variants x seeds over one recipe) into its out folder, then write "
                       "out/report/report.html and report.md. See resdyn/compare.py and recipes/suites/.")
    c.add_argument("-c", "--config", required=True, metavar="SUITE.toml", help="suite file: a recipe plus [suite]")
    c.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key in every experiment, e.g. --set train.epochs=2")
    c.add_argument("--out", help="folder for the run folders and the report (default: the suite's out)")
    c.add_argument("--dry-run", action="store_true", help="list the experiments and what would be done; train nothing")

    r = sub.add_parser("report", help="tables and plots comparing run folders, as report.html and report.md")
    r.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (a folder of run folders, such as a suite's out, stands for all of them)")
    r.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, report.md and the PNGs")
    r.add_argument("--title", default="resdyn comparison")
    meanfield_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args, argv)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "compare":
            return cmd_compare(args, argv)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "meanfield":
            return meanfield_cli.run(args, argv)
        return cmd_data(args)
    except ResdynError as e:
        print(f"resdyn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("resdyn: interrupted; a run can be continued with `resdyn train --resume DIR`", file=sys.stderr)
        return 130


def resolve_train_config(args: argparse.Namespace) -> Config:
    """Config from (in order of precedence) --set, the shorthand flags, -c FILE or the run folder, defaults."""
    if args.resume:
        config = Config.from_dict(RunDir(args.resume).read_config(), source=str(Path(args.resume) / "config.toml"))
    elif args.config:
        config = load_config(args.config)
    else:
        config = Config()
    flags = [f"{key}={_toml(getattr(args, flag))}" for flag, key in TRAIN_FLAGS.items()
             if getattr(args, flag) is not None]
    return apply_overrides(config, flags + args.set)


def _toml(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def cmd_train(args: argparse.Namespace, argv: list[str] | None) -> int:
    from resdyn.train.loop import train

    config = resolve_train_config(args).validate()
    out = args.resume or args.out or f"runs/{config.model.name}-{config.data.name}-seed{config.train.seed}"
    command = "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)
    train(config, out, resume=bool(args.resume), overwrite=args.overwrite, command=command)
    print(run_table(RunDir(out)))
    print(f"\nresults in {out}/ (config.toml, metrics.jsonl, checkpoint.pt, summary.json)")
    return 0


def run_table(run: RunDir) -> str:
    """The epochs of a run and its summary, as terminal tables."""
    metrics = run.read_metrics()
    rows = [[m["epoch"], m["lr"], m["train_loss"], m["train_acc"], m["test_loss"], m["test_acc"],
             m["epoch_time_s"], m["images_per_s"]] for m in metrics]
    epochs = format_table(["epoch", "lr", "train loss", "train acc", "test loss", "test acc", "time s", "img/s"],
                          rows)
    s = run.read_summary()
    if s is None:
        return epochs
    facts = [
        ("model", f"{s['model']} ({s['params']:,} parameters)"),
        ("data", f"{s['data']} ({s['train_images']:,} train / {s['test_images']:,} test images)"),
        ("test accuracy", f"{s['test_acc']:.4f} (error {100 * s['test_error']:.2f}%, weights: {s['final_weights']})"),
        ("best test accuracy", f"{s['best_test_acc']:.4f}"),
        ("test loss", f"{s['test_loss']:.4f}"),
        ("train time", f"{s['train_time_s']:.1f} s ({s['train_time_per_epoch_s']:.1f} s/epoch)"),
        ("peak memory", f"{human_bytes(s['peak_memory_bytes'])} ({s['peak_memory_kind']})"),
        ("device", f"{s['device']}, {s['precision']}"),
    ]
    width = max(len(k) for k, _ in facts)
    return epochs + "\n\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts)


def cmd_models(args: argparse.Namespace) -> int:
    from resdyn.analysis.profile import count_parameters, mult_adds
    from resdyn.nets import MODELS, build_model

    rows = []
    for name in MODELS.names():
        depth = inspect.signature(MODELS.get(name)).parameters.get("depth")
        if depth is not None and depth.default is inspect.Parameter.empty:
            continue  # a family entry that needs depth=N; its named depths are listed
        model = build_model(name, args.in_channels, args.num_classes)
        row = [name, count_parameters(model)]
        if not args.no_mult_adds:
            macs = mult_adds(model, (args.in_channels, args.image_size, args.image_size))
            row += [f"{macs / 1e6:.1f} M", f"{macs * 128 / 1e9:.2f} G"]
        rows.append(row + [MODELS.help(name)])
    headers = ["model", "params"] + ([] if args.no_mult_adds else ["Mult-Adds/image", "per batch of 128"])
    print(format_table(headers + ["description"], rows))
    print(f"\n(input {args.in_channels}x{args.image_size}x{args.image_size}, {args.num_classes} classes; "
          "`resnet` and `lm-resnet` with depth=N build any valid depth)")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
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
    print(format_table(["file", "status", "expected", "actual"],
                       [[str(c.path), c.status, c.expected, c.actual] for c in checks]))
    return 0 if all(c.ok for c in checks) else 1


def cmd_compare(args: argparse.Namespace, argv: list[str] | None) -> int:
    from resdyn.compare import load_suite, plan, report_suite, run_suite

    suite = load_suite(args.config, args.set, args.out)
    if args.dry_run:
        rows = [[e.name, state, str(e.path)] for e, state in plan(suite)]
        print(format_table(["experiment", "action", "run folder"], rows))
        return 0
    command = "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        outcomes = run_suite(suite, command=command)
    except KeyboardInterrupt:
        print(f"resdyn: interrupted; run `{command}` again to resume where it stopped", file=sys.stderr)
        return 130
    report, html_path, md_path = report_suite(suite)
    show_report(report, html_path, md_path)
    failed = [o.experiment.name for o in outcomes if o.action == "failed"]
    if failed:
        print(f"resdyn: {len(failed)} experiment(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or not report.runs else 0


def cmd_report(args: argparse.Namespace) -> int:
    from resdyn.analysis.report import build_report, write_report

    report = build_report(args.runs, title=args.title)
    if not report.runs:
        for s in report.skipped:
            print(f"resdyn: skipped {s.path}: {s.reason}", file=sys.stderr)
        print("resdyn: error: none of the folders holds a readable finished run; no report written", file=sys.stderr)
        return 1
    show_report(report, *write_report(report, args.out))
    return 0


def show_report(report: Report, html_path: Path, md_path: Path) -> None:
    """The tables on stdout; every skipped folder, with why, on stderr."""
    from resdyn.analysis.report import terminal_text

    print(terminal_text(report))
    for s in report.skipped:
        print(f"resdyn: skipped {s.path}: {s.reason}", file=sys.stderr)
    print(f"\nreport: {html_path} (self-contained) and {md_path}")
