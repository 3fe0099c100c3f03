"""``resdyn meanfield curves | map``: the mean-field theory against random networks, and trainability maps.

    resdyn meanfield curves --net frn --activation tanh --depth 30 --sigma-w2 1 --sigma-v2 1 --sigma-a2 0.25 --out DIR
    resdyn meanfield map --net frn --activation tanh --axis sigma_w2 --values 0.1:3:12 --depths 2,4,8,16 --out DIR
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from resdyn.errors import ConfigError
from resdyn.meanfield.theory import ACTIVATIONS, NETS


def _floats(text: str) -> list[float]:
    """``"a,b,c"`` or ``"lo:hi:n"`` (n evenly spaced values from lo to hi)."""
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            if int(n) < 1:
                raise ValueError
            return [round(float(v), 6) for v in np.linspace(float(lo), float(hi), int(n))]
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{text!r} is not a list of numbers: give a,b,c or lo:hi:n (n >= 1 values)") from None


def _finite_values(text: str) -> list[float]:
    """``--values``: as :func:`_floats`, every value finite."""
    values = _floats(text)
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--values {text!r} holds a non-finite number; give finite axis values")
    return values


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse NaN, infinite and out-of-range numeric flags, one line naming the flag, before anything runs."""

    def require(flag: str, ok: bool, expected: str) -> None:
        if not ok:
            raise ConfigError(f"{flag} must be {expected}, got {getattr(args, flag[2:].replace('-', '_'))}")

    for flag in ("--sigma-w2", "--sigma-v2", "--sigma-a2", "--sigma-b2"):
        value = getattr(args, flag[2:].replace("-", "_"))
        require(flag, 0 <= value < math.inf, "a finite variance >= 0")
    if args.alpha is not None:
        require("--alpha", math.isfinite(args.alpha), "a finite exponent (> 1/2)")
    if args.meanfield_command == "curves":
        require("--p0", 0 < args.p0 < math.inf, "a finite <x_i^2> > 0")
        require("--e0", -1 <= args.e0 <= 1, "a cosine in [-1, 1]")
    else:
        require("--lr", 0 < args.lr < math.inf, "a finite learning rate > 0")
        require("--momentum", 0 <= args.momentum < 1, "in [0, 1)")


def _ints(text: str) -> list[int]:
    values = _floats(text)
    if any(v != round(v) for v in values) and ":" not in text:
        raise ConfigError(f"depths must be whole numbers, got {text!r}")
    return sorted({int(round(v)) for v in values})


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``meanfield`` with its ``curves`` and ``map`` subcommands to ``resdyn``'s subparsers; return it."""
    parser = subparsers.add_parser("meanfield", help="mean-field theory of residual nets: curves and trainability maps",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="meanfield_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--net", choices=NETS, default="frn", help="full (frn) or reduced (rrn) residual net")
        p.add_argument("--activation", choices=ACTIVATIONS, default="tanh")
        p.add_argument("--alpha", type=float, help="exponent of alpha-relu (only with --activation alpha-relu)")
        p.add_argument("--sigma-w2", type=float, default=1.0, help="variance of W (times 1/width)")
        p.add_argument("--sigma-v2", type=float, default=1.0, help="variance of V (times 1/width); FRN only")
        p.add_argument("--sigma-a2", type=float, default=0.0, help="variance of the bias a; FRN only")
        p.add_argument("--sigma-b2", type=float, default=0.0, help="variance of the bias b")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", required=True, metavar="DIR")

    c = sub.add_parser("curves", help="theory and simulated random nets layer by layer: curves.json, curves.png")
    common(c)
    c.add_argument("--depth", type=int, default=30)
    c.add_argument("--width", type=int, default=1000, help="width of the simulated nets")
    c.add_argument("--samples", type=int, default=8, help="independent simulated nets (0: theory only)")
    c.add_argument("--p0", type=float, default=1.0, help="the inputs' <x_i^2>")
    c.add_argument("--e0", type=float, default=0.5, help="the inputs' cosine")

    m = sub.add_parser("map", help="train a grid of nets over (axis, depth) on a dataset: map.json, map.png")
    common(m)
    m.add_argument("--axis", choices=["sigma_w2", "alpha", "rho2"], default="sigma_w2",
                   help="what varies along x (rho2: sigma_a2/sigma_v2 with sigma_v2/(1+rho2) held at --sigma-v2)")
    m.add_argument("--values", default="0.1:3:12", help="axis values: a,b,c or lo:hi:n")
    m.add_argument("--depths", default="2,4,6,8,12,16,24,32,40,48,64,96", help="depths: a,b,c or lo:hi:n")
    m.add_argument("--width", type=int, default=64)
    m.add_argument("--data", default="fashion-mnist")
    m.add_argument("--limit-train", type=int, default=3000, help="train on a seeded subset of N images (0: all)")
    m.add_argument("--limit-test", type=int, default=2000, help="test on a seeded subset of N images (0: all)")
    m.add_argument("--epochs", type=int, default=1)
    m.add_argument("--batch-size", type=int, default=50)
    m.add_argument("--lr", type=float, default=0.005)
    m.add_argument("--momentum", type=float, default=0.9)
    m.add_argument("--device", default="cpu")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``resdyn meanfield curves`` or ``map`` from parsed ``args``; ``args.command_line`` is recorded as the
    command."""
    from resdyn.meanfield.folders import write_curves, write_map

    command = args.command_line
    check_numbers(args)
    if args.alpha is not None and args.activation != "alpha-relu":
        raise ConfigError("--alpha is the exponent of alpha-relu; drop it or pass --activation alpha-relu")
    if args.meanfield_command == "curves":
        from resdyn.meanfield.curves import curves

        data = curves(args.net, args.activation, args.depth, width=args.width, samples=args.samples,
                      seed=args.seed, sigma_w2=args.sigma_w2, sigma_v2=args.sigma_v2, sigma_a2=args.sigma_a2,
                      sigma_b2=args.sigma_b2, alpha=args.alpha, p0=args.p0, e0=args.e0)
        for note in (data.get("theory_note"), data.get("simulation_note")):
            if note is not None:
                print(f"resdyn: warning: {note}", file=sys.stderr)
        paths = write_curves(args.out, data | {"command": command})
        print(f"log R = {data['theory']['log_R']:.4g} (theory)"
              + (f", {data['simulation']['log_R']['mean']:.4g} ± {data['simulation']['log_R']['std']:.2g} "
                 f"(simulation)" if "simulation" in data else ""))
    else:
        from resdyn.meanfield.sweep import MapSettings, trainability_map

        settings = MapSettings(
            net=args.net, activation=args.activation, axis=args.axis, values=_finite_values(args.values),
            depths=_ints(args.depths), width=args.width, sigma_w2=args.sigma_w2, sigma_v2=args.sigma_v2,
            sigma_a2=args.sigma_a2, sigma_b2=args.sigma_b2, alpha=0.8 if args.alpha is None else args.alpha,
            data=args.data, limit_train=args.limit_train or None, limit_test=args.limit_test or None,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, seed=args.seed,
            device=args.device)
        result = trainability_map(settings, log=lambda line: print(line, file=sys.stderr))
        if "note" in result.theory:
            print(f"resdyn: warning: {result.theory['note']}", file=sys.stderr)
        paths = write_map(args.out, result.to_dict() | {"command": command})
        print(f"{len(settings.depths)} x {len(settings.values)} grid trained in {result.wall_time_s:.0f} s")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
