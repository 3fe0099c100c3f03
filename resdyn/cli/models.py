"""``resdyn models``: the registered models with their parameters and Mult-Adds, one model's options
(``--options NAME``), or each shipped recipe's model against its paper's figures (``--paper-figures``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from resdyn.analysis.tables import format_table
from resdyn.cli.common import positive_int
from resdyn.errors import ConfigError

if TYPE_CHECKING:
    from resdyn.analysis.profile import SolveCost


class DeprecatedFlag(argparse.Action):
    """A flag kept under its old name: it sets its new one's value and says, in one line on stderr, to use that."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, *_: object) -> None:
        print(f"resdyn: {'/'.join(self.option_strings)} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    m = sub.add_parser("models", help="list the models with parameters and Mult-Adds")
    m.add_argument("--in-channels", type=positive_int, default=3)
    m.add_argument("--num-classes", type=positive_int, default=10)
    m.add_argument("--image-size", type=positive_int, default=32)
    m.add_argument("--no-mult-adds", action="store_true", help="skip the (slower) Mult-Adds count")
    m.add_argument("--options", metavar="NAME", help="list the options of the model NAME with their defaults")
    m.add_argument("--paper-figures", action="store_true",
                   help="each shipped recipe's model against the parameters and Mult-Adds its paper row quotes")
    m.add_argument("--seed-figures", action=DeprecatedFlag, dest="paper_figures", new="--paper-figures", default=False,
                   help=argparse.SUPPRESS)
    return m


#: the seed of the initial weights ``resdyn models`` counts on
MODELS_TABLE_SEED = 0


def run(args: argparse.Namespace) -> int:
    import torch

    from resdyn.analysis.profile import adaptive_solve_cost, count_parameters, mult_adds
    from resdyn.nets import MODELS, build_model, model_options
    from resdyn.nets.base import required

    if args.options is not None:
        return print_model_options(args.options)
    if args.paper_figures:
        return print_paper_figures()
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
            try:
                macs = mult_adds(model, shape)
                solve = adaptive_solve_cost(model, shape)
            except RuntimeError as e:  # an image too small for the model's downsampling
                raise ConfigError(f"{name} cannot run on a {args.image_size}x{args.image_size} image ({e}); "
                                  "use a larger --image-size, or --no-mult-adds") from None
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
          "the families resnet, imagenet-resnet, resnext29, revnet, fractalnet, mlp build any valid depth or size: "
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


def print_paper_figures() -> int:
    """``resdyn models --paper-figures``: every recipe quoting a parameter count, its model's figures beside it."""
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
    print(format_table(["recipe", "params", "paper", "params - paper", "Mult-Adds/128", "paper", "check"], rows))
    print("\n".join(f"[{i}] {note}." for i, note in enumerate(notes, 1)))
    print("\n(the paper figures are each recipe's [meta]; a rounded one such as 0.27M matches within half its last "
          "digit. Parameters count every learned tensor, LM's k_n included, one per step that uses it; Mult-Adds "
          "per batch of 128 images count the convolutions and the classifier)")
    return 0 if all(row[-1] == "reproduced" or row[-1].startswith("differs [") for row in rows) else 1


def print_model_options(name: str) -> int:
    """``resdyn models --options NAME``: each option of the model, its type, default and description."""
    import dataclasses

    from resdyn.nets import MODELS, model_family, model_options
    from resdyn.nets.base import required
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
        schemes = [fixed["scheme"]] if "scheme" in fixed else SCHEMES.names()
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
