"""How well gradient independence holds at finite width: log R of random nets by exact backpropagation (the
forward's own W, V) and with independent backward weights (the theory's assumption), against the theory.

    PYTHONPATH=. python3 benchmarks/meanfield_gradient_independence.py \\
        --out benchmarks/results/meanfield-gradient-independence/result.json

Prints one row per (case, width): the mean ± standard error of log R over the nets, for both backward rules, the
theory's log R, and the simulated s^L beside the theory's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from resdyn.meanfield import simulate, theory
from resdyn.train.loop import describe_device

#: (name, net, activation, sigmas): zero-mean states (FRN tanh, FRN ReLU) and a growing mean (RRN ReLU)
CASES = [
    ("frn-tanh", "frn", "tanh", {"sigma_w2": 1.0, "sigma_v2": 1.0, "sigma_a2": 0.25, "sigma_b2": 0.1}),
    ("frn-relu", "frn", "relu", {"sigma_w2": 0.5, "sigma_v2": 1.0, "sigma_a2": 0.5, "sigma_b2": 0.5}),
    ("rrn-relu", "rrn", "relu", {"sigma_w2": 0.5, "sigma_b2": 0.1}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--widths", default="125,250,500,1000")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for name, net, activation, sigmas in CASES:
        predicted = theory(net, activation, args.depth, **sigmas)
        for width in (int(w) for w in args.widths.split(",")):
            start = time.perf_counter()
            runs = {rule: simulate(net, activation, args.depth, width=width, samples=args.samples, seed=1,
                                   backward=rule, **sigmas) for rule in ("same", "independent")}
            row = {"case": name, "width": width, "theory_log_R": float(predicted.log_R),
                   "theory_s_L": float(predicted.s[-1]), "seconds": time.perf_counter() - start}
            for rule, sim in runs.items():
                row[f"{rule}_log_R"] = float(sim.log_R.mean())
                row[f"{rule}_log_R_sem"] = float(sim.log_R.std() / np.sqrt(args.samples))
            row["s_L"] = float(runs["same"].s[:, -1].mean())
            row["s_L_sem"] = float(runs["same"].s[:, -1].std() / np.sqrt(args.samples))
            rows.append(row)
            print(f"{name:9} width {width:5}: log R exact backprop {row['same_log_R']:.3f} ± "
                  f"{row['same_log_R_sem']:.3f}, independent {row['independent_log_R']:.3f} ± "
                  f"{row['independent_log_R_sem']:.3f}, theory {row['theory_log_R']:.3f}; s^L {row['s_L']:.4g} ± "
                  f"{row['s_L_sem']:.2g}, theory {row['theory_s_L']:.4g}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"depth": args.depth, "samples": args.samples, "device": describe_device(torch.device("cpu")),
                  "rows": rows}
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
