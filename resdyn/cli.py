"""Command line: ``resdyn train | models | data | recipes | compare | report | bench`` (also ``python -m resdyn``).

Strings become objects here and nowhere else: names go through the registries, flags become config
overrides, and the library below sees only typed config and objects.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resdyn import bench
from resdyn.analysis.tables import format_table, human_bytes
from resdyn.errors import ResdynError
from resdyn.meanfield import cli as meanfield_cli
from resdyn.recipes import find_recipe, is_suite
from resdyn.runs import RunDir
from resdyn.train.config import Config, ConfigError, load_config, parse_overrides, set_values

if TYPE_CHECKING:
    from resdyn.analysis.profile import SolveCost
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

    t = sub.add_parser("train", help="train a model into a run folder (or resume one)")
    t.add_argument("-c", "--config", metavar="FILE|RECIPE",
                   help="TOML config file, or the name of a shipped recipe (see `resdyn recipes`)")
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
    m.add_argument("--options", metavar="NAME", help="list the options of the model NAME with their defaults")
    m.add_argument("--seed-figures", action="store_true",
                   help="each shipped recipe's model against the parameters and Mult-Adds its paper row quotes")

    d = sub.add_parser("data", help="list datasets, show where their files are, verify checksums")
    d.add_argument("action", choices=["list", "where", "verify"])
    d.add_argument("name", nargs="?", help="dataset name (all for list)")
    d.add_argument("--data-dir", help="directory to look in first")

    rc = sub.add_parser("recipes", help="list the shipped recipes and suites with their papers' numbers, or show one",
                        description="List the recipes and suites that ship with resdyn, or print one (to copy and "
                        "edit). `-c NAME` in train and compare reads the shipped recipe NAME where no file of that "
                        "path exists.")
    rc.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    rc.add_argument("name", nargs="?", help="recipe name, for show (e.g. cifar10/lm-resnet56)")

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

    r = sub.add_parser("report", help="tables and plots comparing run folders, as report.html and report.md")
    r.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (a folder of run folders, such as a suite's out, stands for all of them)")
    r.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, report.md and the PNGs")
    r.add_argument("--title", default="resdyn comparison")
    meanfield_cli.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args, argv)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "recipes":
            return cmd_recipes(args)
        if args.command == "compare":
            return cmd_compare(args, argv)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "meanfield":
            return meanfield_cli.run(args, argv)
        if args.command == "bench":
            return bench.run(args, argv)
        return cmd_data(args)
    except ResdynError as e:
        print(f"resdyn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("resdyn: interrupted; a run can be continued with `resdyn train --resume DIR`", file=sys.stderr)
        return 130


def resolve_train_config(args: argparse.Namespace) -> tuple[Config, list[tuple[str, Any]]]:
    """Config from (in order of precedence) --set, the shorthand flags, -c FILE or the run folder, defaults; and
    what the flags and --set changed, as (dotted key, value). A resume starts from the config the run was
    started with and applies, in order, the overrides of its earlier resumes that trained."""
    if args.resume:
        run = RunDir(args.resume)
        config = Config.from_dict(run.read_config(), source=str(run.file(RunDir.CONFIG)))
        for resume in run.read_resumes():
            if resume.applied:
                config = set_values(config, [(k, v) for k, v in resume.overrides],
                                    source=f"{run.file(RunDir.RESUMES)} ({resume.command})")
    elif args.config:
        path = find_recipe(args.config)
        if is_suite(path):
            raise ConfigError(f"{args.config} is a suite (it has a [suite] table), not a single run: run it with "
                              f"`resdyn compare -c {args.config}`")
        config = load_config(path)
    else:
        config = Config()
    # Flag values are assigned as they are, never re-read as TOML text: a path stays exactly that path.
    changes = [(key, getattr(args, flag)) for flag, key in TRAIN_FLAGS.items() if getattr(args, flag) is not None]
    changes += parse_overrides(args.set)
    return set_values(config, changes), changes


def cmd_train(args: argparse.Namespace, argv: list[str] | None) -> int:
    from resdyn.train.loop import train

    config, changes = resolve_train_config(args)
    config.validate()
    out = args.resume or args.out or f"runs/{config.model.name}-{config.data.name}-seed{config.train.seed}"
    command = "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)
    train(config, out, resume=bool(args.resume), overwrite=args.overwrite, command=command,
                    overrides=changes if args.resume else None)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process prints
        print(run_table(RunDir(out)))
        print(f"\nresults in {out}/ (config.toml, metrics.jsonl, checkpoint.pt, summary.json)")
    return 0


def run_table(run: RunDir) -> str:
    """The epochs of a run and its summary, as terminal tables."""
    metrics = run.read_metrics()
    rows = [[m.epoch, m.lr, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.epoch_time_s, m.images_per_s]
            for m in metrics]
    epochs = format_table(["epoch", "lr", "train loss", "train acc", "test loss", "test acc", "time s", "img/s"],
                          rows)
    s = run.read_summary()
    if s is None:
        return epochs
    processes = f", {s.world_size} processes" if s.world_size and s.world_size > 1 else ""
    facts = [
        ("model", f"{s.model} ({s.params:,} parameters)"),
        ("data", f"{s.data} ({s.train_images:,} train / {s.test_images:,} test images)"),
        ("test accuracy", f"{s.test_acc:.4f} (error {100 * (1 - s.test_acc):.2f}%, weights: {s.final_weights}"
                          f"{', flip TTA' if s.tta == 'flip' else ''})"),
        ("best test accuracy", f"{s.best_test_acc:.4f}"),
        ("test loss", f"{s.test_loss:.4f}"),
        ("train time", f"{s.train_time_s:.1f} s ({s.train_time_per_epoch_s:.1f} s/epoch)"),
        ("peak memory", f"{human_bytes(s.peak_memory_bytes)} ({s.peak_memory_kind})"),
        ("device", f"{s.device}, {s.precision}{processes}"),
    ]
    width = max(len(k) for k, _ in facts)
    return epochs + "\n\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts)


#: the seed of the initial weights ``resdyn models`` counts on
MODELS_TABLE_SEED = 0


def cmd_models(args: argparse.Namespace) -> int:
    import torch

    from resdyn.analysis.profile import adaptive_solve_cost, count_parameters, mult_adds
    from resdyn.nets import MODELS, build_model, model_options
    from resdyn.nets.base import required

    if args.options is not None:
        return print_model_options(args.options)
    if args.seed_figures:
        return print_seed_figures()
    rows, notes = [], []
    for name in MODELS.names():
        if any(required(option) for option in model_options(name)):
            continue  # a family that needs e.g. depth=N; its named members are listed
        # Seeded: an adaptive solver's step count (so an ODENet's Mult-Adds) depends on the initial weights, and
        # the table must read the same from run to run.
        with torch.random.fork_rng():
            torch.manual_seed(MODELS_TABLE_SEED)
            model = build_model(name, args.in_channels, args.num_classes)
        row = [name, count_parameters(model)]
        if not args.no_mult_adds:
            shape = (args.in_channels, args.image_size, args.image_size)
            macs = mult_adds(model, shape)
            solve = adaptive_solve_cost(model, shape)
            mark = "" if solve is None else "*"
            row += [f"{macs / 1e6:.1f} M{mark}", f"{macs * 128 / 1e9:.2f} G{mark}"]
            if solve is not None:
                notes.append(solve_note(name, solve))
        rows.append(row + [MODELS.help(name)])
    headers = ["model", "params"] + ([] if args.no_mult_adds else ["Mult-Adds/image", "per batch of 128"])
    print(format_table(headers + ["description"], rows))
    for note in notes:
        print(f"\n{note}")
    print(f"\n(input {args.in_channels}x{args.image_size}x{args.image_size}, {args.num_classes} classes; "
          "the families resnet, lm-resnet, resnext29, revnet, fractalnet build any valid depth or size: "
          "`resdyn models --options NAME` lists a model's options)")
    return 0


def solve_note(name: str, solve: SolveCost) -> str:
    """The footnote of a model whose Mult-Adds depend on its input: what the count measured, and how to scale it."""
    return (f"* {name}: counted on one solve ({solve.solver}) of a zero input with the initial weights "
            f"of seed {MODELS_TABLE_SEED}: "
            f"{solve.nfe} field evaluations (NFE) of {solve.per_evaluation / 1e6:.2f} M Mult-Adds each, plus "
            f"{solve.fixed / 1e6:.1f} M outside the solve. An adaptive solver chooses its NFE for each input and "
            f"each set of weights, so a trained model's Mult-Adds per image are {solve.fixed / 1e6:.1f} M + NFE x "
            f"{solve.per_evaluation / 1e6:.2f} M with the NFE its run measures (nfe_eval_mean in metrics.jsonl).")


def print_seed_figures() -> int:
    """``resdyn models --seed-figures``: every recipe quoting a parameter count, its model's figures beside it."""
    from resdyn.analysis.figures import check_recipe
    from resdyn.recipes import is_suite, recipe_names, recipe_path

    rows, notes = [], []
    for name in recipe_names():
        check = None if is_suite(recipe_path(name)) else check_recipe(name)
        if check is None:
            continue
        if check.documented_difference is None:
            status = "reproduced" if check.params_ok else "DIFFERS"
        else:
            if check.note not in notes:
                notes.append(check.note)
            mark = notes.index(check.note) + 1
            status = f"differs [{mark}]" if check.params_ok else "DIFFERS from the documented difference"
        if not check.mult_adds_ok:
            status += "; Mult-Adds DIFFER"
        rounded_match = check.documented_difference is None and check.paper_params.tolerance
        shown = "-" if rounded_match else f"{check.difference:+,}"
        macs = "-" if check.mult_adds is None else f"{check.mult_adds / 1e9:.3f}G"
        paper_macs = "-" if check.paper_mult_adds is None else check.paper_mult_adds.text
        rows.append([name, f"{check.params:,}", check.paper_params.text, shown, macs, paper_macs, status])
    print(format_table(["recipe", "params", "seed", "params - seed", "Mult-Adds/128", "seed", "check"], rows))
    print("\n".join(f"[{i}] {note}." for i, note in enumerate(notes, 1)))
    print("\n(the seed figures are each recipe's [meta]; a rounded one such as 0.27M matches within half its last "
          "digit. Parameters count every learned tensor, LM's k_n included, one per step that uses it; Mult-Adds "
          "per batch of 128 images count the convolutions and the classifier)")
    return 0 if all(row[-1] == "reproduced" or row[-1].startswith("differs [") for row in rows) else 1


def print_model_options(name: str) -> int:
    """``resdyn models --options NAME``: each option of the model, its type, default and description."""
    import dataclasses

    from resdyn.nets import MODELS, model_family, model_options
    from resdyn.nets.base import required
    from resdyn.nets.cifar import OWN_BODIES
    from resdyn.noise import NOISES
    from resdyn.schemes import SCHEMES
    from resdyn.typed import field_docs

    family, fixed = model_family(name)
    docs = field_docs(family.options)
    rows = []
    for option in model_options(name):
        if required(option):
            default = "(required)"
        else:
            default = option.default if option.default_factory is dataclasses.MISSING else option.default_factory()
        kind = option.type if isinstance(option.type, str) else getattr(option.type, "__name__", str(option.type))
        rows.append([option.name, kind, repr(default), docs.get(option.name, "")])
    print(f"{name}: {MODELS.help(name)}")
    if fixed:
        print(f"(the family {MODELS.get(name).family!r} with {', '.join(f'{k}={v!r}' for k, v in fixed.items())})")
    print(format_table(["option", "type", "default", "description"], rows))
    accepted = {o.name for o in model_options(name)}
    if "scheme_options" in accepted:
        schemes = [fixed["scheme"]] if "scheme" in fixed else [n for n in SCHEMES.names() if n not in OWN_BODIES]
        shown = [f"{n}: {_defaults(SCHEMES.get(n).Options) or '(none)'}" for n in schemes]
        print("\nscheme_options of " + "; ".join(shown))
    if "noise_options" in accepted:
        print("noise_options of " + "; ".join(f"{n}: {_defaults(NOISES.get(n))}" for n in NOISES.names()))
    print("\nset them in a recipe's [model.options] or with --set model.options.KEY=VALUE "
          "(nested: --set model.options.noise_options.survival_last=0.8)")
    return 0


def _defaults(options: type) -> str:
    import dataclasses

    return ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(options))


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


def cmd_recipes(args: argparse.Namespace) -> int:
    from resdyn.compare import load_suite
    from resdyn.recipes import is_suite, recipe_names, recipe_path

    if args.action == "show":
        if args.name is None:
            raise ConfigError(f"`resdyn recipes show` needs a recipe name; shipped: {', '.join(recipe_names())}")
        print(recipe_path(args.name).read_text(), end="")
        return 0
    if args.name is not None:
        raise ConfigError(f"`resdyn recipes` takes no name; to print one: `resdyn recipes show {args.name}`")
    recipes, suites = [], []
    for name in recipe_names():
        path = recipe_path(name)
        if is_suite(path):
            experiments = load_suite(path).experiments
            labels = list(dict.fromkeys(e.label for e in experiments))
            data = ", ".join(sorted({e.config.data.name for e in experiments}))
            seeds = len({e.config.train.seed for e in experiments})
            epochs = "/".join(str(n) for n in sorted({e.config.train.epochs for e in experiments}))
            rows = textwrap.shorten(", ".join(labels), 40, placeholder=f" ... ({len(labels)})", break_on_hyphens=False)
            suites.append([name, rows, data, seeds, epochs, len(experiments)])
        else:
            config = load_config(path)
            error = config.meta.get("paper_test_error")
            recipes.append([name, config.model.name, config.data.name, config.train.epochs,
                            "-" if error is None else f"{error:.2f}", config.meta.get("source", "-")])
    print(format_table(["recipe", "model", "data", "epochs", "paper error %", "paper"], recipes))
    print("\n" + format_table(["suite", "rows", "data", "seeds", "epochs", "runs"], suites))
    print("\n`resdyn train -c RECIPE` trains a recipe, `resdyn compare -c SUITE` runs a suite (both take --set "
          "overrides);\n`resdyn recipes show NAME > my.toml` prints one to copy and edit.")
    return 0


def cmd_compare(args: argparse.Namespace, argv: list[str] | None) -> int:
    from resdyn.compare import load_suite, plan, report_suite, run_suite

    suite = load_suite(find_recipe(args.config), args.set, args.out)
    if args.dry_run:
        rows = [[e.name, state, str(e.path)] for e, state in plan(suite)]
        print(format_table(["experiment", "action", "run folder"], rows))
        return 0
    command = "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        outcomes = run_suite(suite, command=command, nproc_per_node=args.nproc_per_node)
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
    if not report.runs and not report.meanfield:
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
