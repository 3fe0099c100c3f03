"""Time one training step (bf16 autocast + channels_last, as resdyn trains on a bf16-native CPU) under variants
that might make it cheaper: the optimiser's implementation, flushing denormals, the batch size, the depth.
Variants take turns, ``--repeats`` times, and each reports its median time per step and per image, its
time per image as a ratio to the first variant's, and the time of its optimiser's step alone.

    PYTHONPATH=. python3 benchmarks/cpu_step_options.py --group sgd --model resnet20
    PYTHONPATH=. python3 benchmarks/cpu_step_options.py --group batch
    PYTHONPATH=. python3 benchmarks/cpu_step_options.py --group depth
    PYTHONPATH=. python3 benchmarks/cpu_step_options.py --group size     # progressive resizing's image sizes
    PYTHONPATH=. python3 benchmarks/cpu_step_options.py --group denormal --weights RUN_FOLDER

Real Fashion-MNIST images (Debian's dataset-fashion-mnist) when present, else Gaussian noise. ``--weights`` starts
from a trained run's weights (denormals appear in trained networks, hardly at initialisation).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from resdyn import build_model
from resdyn.data.loader import resize_batch
from resdyn.device import describe_device


@dataclass(frozen=True)
class Variant:
    label: str
    model: str = "resnet20"
    options: dict[str, Any] = field(default_factory=dict)
    batch: int = 128
    sgd: dict[str, Any] = field(default_factory=dict)
    flush_denormal: bool = False
    #: the images' side (the data are 28x28; other sizes are resized as progressive resizing does)
    size: int = 28


def groups(model: str) -> dict[str, list[Variant]]:
    return {
        "sgd": [Variant("SGD (default, for-loop)", model), Variant("SGD foreach=True", model, sgd={"foreach": True}),
                Variant("SGD fused=True", model, sgd={"fused": True})],
        "denormal": [Variant("denormals kept", model), Variant("torch.set_flush_denormal(True)", model,
                                                               flush_denormal=True)],
        "batch": [Variant(f"batch {b}", model, batch=b) for b in (128, 96, 192, 256)],
        "depth": [Variant(f"resnet depth {d}", "resnet", {"depth": d}) for d in (20, 26, 32)],
        "size": [Variant(f"{s}x{s} images", model, size=s) for s in (28, 16, 20, 22, 24)],
    }


def images(n: int) -> torch.Tensor:
    try:
        from resdyn.data import load_dataset

        split = load_dataset("fashion-mnist").train
        x = split.images[:n].float() / 255
        return (x - x.mean()) / x.std()
    except Exception:  # noqa: BLE001 -- no dataset here: the step's cost does not depend on the pixels
        return torch.randn(n, 1, 28, 28)


class Step:
    def __init__(self, v: Variant, data: torch.Tensor, weights: dict[str, torch.Tensor] | None) -> None:
        torch.manual_seed(0)
        self.v = v
        model = build_model(v.model, 1, 10, **v.options)
        if weights is not None:
            model.load_state_dict(weights)
        self.model = model.to(memory_format=torch.channels_last).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9, nesterov=True,
                                         weight_decay=5e-4, **v.sgd)
        self.data, self.labels, self.i = data, torch.randint(0, 10, (len(data),)), 0

    def __call__(self, steps: int) -> float:
        torch.set_flush_denormal(self.v.flush_denormal)
        t0 = time.perf_counter()
        for _ in range(steps):
            start = (self.i * self.v.batch) % (len(self.data) - self.v.batch)
            self.i += 1
            x = resize_batch(self.data[start : start + self.v.batch], self.v.size)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(self.model(x).float(), self.labels[start : start + self.v.batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        elapsed = (time.perf_counter() - t0) / steps
        torch.set_flush_denormal(False)
        return elapsed

    def optimizer_step(self, steps: int = 50) -> float:
        """The optimiser's step alone (on the last step's gradients), in seconds."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.optimizer.step()
        return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", choices=("sgd", "denormal", "batch", "depth", "size"), required=True)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--weights", help="a run folder whose checkpoint's weights to start from")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = None
    if args.weights:
        from resdyn.runs import RunDir

        weights = RunDir(args.weights).load_checkpoint(map_location="cpu").model
    data = images(4096)
    steps = [Step(v, data, weights) for v in groups(args.model)[args.group]]
    for step in steps:
        step(2)  # warm-up
    times: list[list[float]] = [[] for _ in steps]
    alone: list[list[float]] = [[] for _ in steps]
    for r in range(args.repeats):
        order = steps[r % len(steps):] + steps[: r % len(steps)]  # the order rotates from repeat to repeat
        for step in order:
            times[steps.index(step)].append(step(args.steps))
            alone[steps.index(step)].append(step.optimizer_step())
    base = statistics.median(times[0]) / steps[0].v.batch  # per image
    rows = []
    for step, t, a in zip(steps, times, alone, strict=True):
        ms = statistics.median(t) * 1e3
        optimizer_ms = statistics.median(a) * 1e3
        ratio = statistics.median(t) / step.v.batch / base
        rows.append({**asdict(step.v), "ms_per_step": ms, "us_per_image": ms * 1e3 / step.v.batch,
                     "time_per_image_ratio_to_first": ratio, "optimizer_step_alone_ms": optimizer_ms,
                     "repeats_ms": [x * 1e3 for x in t]})
        print(f"{step.v.label:>34}: {ms:7.1f} ms/step  {ms * 1e3 / step.v.batch:6.0f} us/image  "
              f"{ratio:.3f}x the first's time per image  (optimizer.step alone {optimizer_ms:.2f} ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"group": args.group, "device": describe_device(torch.device("cpu")),
                       "threads": args.threads, "torch": torch.__version__, "weights": args.weights,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
