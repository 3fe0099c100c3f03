"""How well an ODE block's tolerance controls its gradient, by the field's activation: ReLU (Chen et al. 2018's, and
Gładzik 2019's) against smooth ones. For that ODENet's field (``TimeConvField``, 64 channels on a 6x6 state, at
initialisation) in float64, the gradient of a fixed linear loss of ``z(1)`` with respect to the field's parameters,
by the adjoint method and by backprop through dopri5 at ``rtol = atol``, against backprop at a tight reference
tolerance.

    PYTHONPATH=. python3 benchmarks/ode_activation_gradients.py \\
        --out benchmarks/results/ode_activation_gradients_cpu.json

Prints one row per (activation, rtol): the relative error ``|g - g_ref| / |g_ref|`` of each method (mean and max over
the seeds) and the adjoint's backward NFE. ``tests/schemes/test_ode_activation.py`` runs the same measurement in
miniature.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from resdyn.fields import ACTIVATIONS, TimeConvField
from resdyn.schemes.ode import ODEBlock, Solver
from resdyn.train.loop import describe_device


def field_gradient(activation: str, solver: Solver, channels: int, size: int, batch: int,
                   seed: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The gradient of ``<w, z(1)>`` with respect to the parameters of a float64 ``TimeConvField`` (drawn with
    ``seed``, as are ``z(0)`` and ``w``), flattened, and the block's NFE metrics."""
    torch.manual_seed(seed)
    field = TimeConvField(channels, ACTIVATIONS[activation]).double()
    z0, w = torch.randn(2, batch, channels, size, size, dtype=torch.float64)
    block = ODEBlock(field, solver)
    gradient = torch.autograd.grad((block(z0) * w).sum(), list(field.parameters()))
    return torch.cat([g.flatten() for g in gradient]), block.metrics()


def relative_error(g: torch.Tensor, reference: torch.Tensor) -> float:
    return float((g - reference).norm() / reference.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", default="relu,softplus,tanh,silu")
    parser.add_argument("--rtols", default="1e-4,1e-6")
    parser.add_argument("--reference-tol", type=float, default=1e-10)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)  # many small operations: a second thread only adds contention
    shape = (args.channels, args.size, args.batch)
    rows = []
    for activation in args.activations.split(","):
        references = [field_gradient(activation, Solver(rtol=args.reference_tol, atol=args.reference_tol,
                                                        max_steps=None), *shape, seed)[0]
                      for seed in range(args.seeds)]
        for rtol in (float(r) for r in args.rtols.split(",")):
            start = time.perf_counter()
            errors: dict[str, list[float]] = {"adjoint": [], "backprop": []}
            nfe_backward = []
            for seed, reference in enumerate(references):
                for method in errors:
                    solver = Solver(rtol=rtol, atol=rtol, adjoint=method == "adjoint", max_steps=None)
                    gradient, metrics = field_gradient(activation, solver, *shape, seed)
                    errors[method].append(relative_error(gradient, reference))
                    if method == "adjoint":
                        nfe_backward.append(metrics["nfe_backward_mean"])
            row = {"activation": activation, "rtol": rtol, "seconds": time.perf_counter() - start,
                   "adjoint_nfe_backward_mean": statistics.fmean(nfe_backward)}
            for method, values in errors.items():
                row[f"{method}_error_mean"] = statistics.fmean(values)
                row[f"{method}_error_max"] = max(values)
            rows.append(row)
            print(f"{activation:8} rtol {rtol:.0e}: adjoint error {row['adjoint_error_mean']:.2e} (max "
                  f"{row['adjoint_error_max']:.2e}, backward NFE {row['adjoint_nfe_backward_mean']:.0f}), backprop "
                  f"{row['backprop_error_mean']:.2e} (max {row['backprop_error_max']:.2e})", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"channels": args.channels, "size": args.size, "batch": args.batch, "seeds": args.seeds,
                  "reference_tol": args.reference_tol, "device": describe_device(torch.device("cpu")), "rows": rows}
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
