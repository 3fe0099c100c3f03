"""The cost of ``train.grad_stats``: resdyn's own inner loop (``train_epoch``, through ``resdyn.bench.ResdynLoop``)
with and without gradient statistics at an interval (default: the config's default, ``train.grad_stats_every``),
measured interleaved: each repeat times one epoch of ``--steps`` steps of each loop, the two in alternating order,
from the same initial weights. Prints each loop's median time per step and the median of the repeats' ratios
(with / without), the figure the README quotes. On a busy machine the ratio's spread is wider than the cost, so it
also times what a recorded step adds, alone (the gradient norms, the output RMS and the transfer to the host:
``record`` then ``take``, median of 200), and states it as a share of ``every`` steps without statistics.

    PYTHONPATH=. python3 benchmarks/gradstats_overhead.py                      # mlp and resnet20, synthetic data
    PYTHONPATH=. python3 benchmarks/gradstats_overhead.py --models mlp --every 1 --json out.json

``--steps`` should be a multiple of the interval, so that every epoch records the same number of steps (and
brings them to the host once, as an epoch of training does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from resdyn.bench import ResdynLoop, Settings, bench_data
from resdyn.device import describe_device, resolve_device
from resdyn.train.config import TrainConfig


def measure(model: str, every: int, steps: int, repeats: int, batch: int, device: torch.device) -> dict:
    info, split = bench_data("fashion-mnist", None, synthetic=True)
    base = Settings(batch, steps, warmup=min(steps, 20), device=device, workers=0, overrides=["train.precision=fp32"])
    on = Settings(**{**vars(base), "overrides": [*base.overrides, "train.grad_stats=true",
                                                  f"train.grad_stats_every={every}"]})
    loops = {"without": ResdynLoop(model, info, split, base), "with": ResdynLoop(model, info, split, on)}
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    for r in range(repeats):
        for kind in ("without", "with") if r % 2 == 0 else ("with", "without"):
            seconds[kind].append(batch * steps / loops[kind].measure() / steps)  # images/s -> s per step
    ratios = [w / wo for w, wo in zip(seconds["with"], seconds["without"], strict=True)]
    record_s = record_cost(loops["with"])
    return {"record_s": record_s, "record_share": record_s / (every * statistics.median(seconds["without"])),
            "model": model, "every": every, "steps": steps, "batch": batch, "repeats": repeats,
            "device": describe_device(device), "step_s": {k: statistics.median(v) for k, v in seconds.items()},
            "ratio": statistics.median(ratios), "ratios": ratios}


def record_cost(loop: ResdynLoop, repeats: int = 200) -> float:
    """The median time of a recorded step's own work, after a forward and backward pass with the hooks on."""
    stats, parts = loop.parts.grad_stats, loop.parts
    x = torch.randn(loop.config.train.batch_size, loop.info.in_channels, *loop.info.image_size, device=loop.device)
    y = torch.zeros(len(x), dtype=torch.long, device=loop.device)
    times = []
    for _ in range(repeats):
        stats.watch(0)
        parts.criterion(parts.forward(x), y).backward()
        start = time.perf_counter()
        stats.record(1)
        stats.take()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "resnet20"])
    parser.add_argument("--every", type=int, default=TrainConfig.grad_stats_every)
    parser.add_argument("--steps", type=int, default=TrainConfig.grad_stats_every)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = [measure(m, args.every, args.steps, args.repeats, args.batch, device) for m in args.models]
    for row in rows:
        print(f"{row['model']:10s} every {row['every']:4d}: {row['step_s']['without'] * 1e3:8.2f} ms/step without, "
              f"{row['step_s']['with'] * 1e3:8.2f} ms/step with grad_stats, ratio {row['ratio']:.3f} "
              f"(repeats {min(row['ratios']):.3f}..{max(row['ratios']):.3f}; {row['device']}); a recorded step adds "
              f"{row['record_s'] * 1e3:.3f} ms, {100 * row['record_share']:.2f}% of {row['every']} steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
