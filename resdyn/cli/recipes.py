"""``resdyn recipes [list] | show NAME``: the shipped recipes and suites with their papers' numbers, or one."""

from __future__ import annotations

import argparse
import textwrap

from resdyn.analysis.report.tables import paper_train_error
from resdyn.analysis.tables import format_table
from resdyn.errors import ConfigError
from resdyn.train.config import load_config


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    rc = sub.add_parser("recipes", help="list the shipped recipes and suites with their papers' numbers, or show one",
                        description="List the recipes and suites that ship with resdyn, or print one (to copy and "
                        "edit). `-c NAME` in train and compare reads the shipped recipe NAME where no file of that "
                        "path exists.")
    rc.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    rc.add_argument("name", nargs="?", help="recipe name, for show (e.g. cifar10/lm-resnet56)")
    return rc


def run(args: argparse.Namespace) -> int:
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
            train_error = paper_train_error(config.meta)
            shown = f"{error:.2f}" if error is not None else f"{train_error} (train)" if train_error else "-"
            recipes.append([name, config.model.name, config.data.name, config.train.epochs, shown,
                            config.meta.get("source", "-")])
    print(format_table(["recipe", "model", "data", "epochs", "paper error %", "paper"], recipes))
    print("\n" + format_table(["suite", "rows", "data", "seeds", "epochs", "runs"], suites))
    print("\n`resdyn train -c RECIPE` trains a recipe, `resdyn compare -c SUITE` runs a suite (both take --set "
          "overrides);\n`resdyn recipes show NAME > my.toml` prints one to copy and edit.")
    return 0
