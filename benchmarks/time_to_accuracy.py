"""Time to accuracy from process start: ``resdyn train -c RECIPE`` against a plain fp32 PyTorch loop running the
same recipe, each in a fresh process, on the same device, one after the other.

    PYTHONPATH=. python3 benchmarks/time_to_accuracy.py --recipe fashion-mnist-fast --seeds 0,1,2 \
        --baseline-seeds 0 --target 0.94 --out benchmarks/results/time_to_accuracy_cpu/result.json

The clock of each run starts before its interpreter is launched and stops when the process exits, so it counts
Python's start-up, imports, data loading, the evaluations the recipe asks for (resdyn's, every ``train.eval_every``
epochs; the plain loop evaluates once, at the end) and writing the run folder. The plain loop is the tutorial shape:
a Dataset that pads, crops and flips one image at a time on the CPU, a DataLoader, fp32, NCHW; it takes from the
recipe the model (built by resdyn, so both train the same network from the same seed), optimiser, per-step
learning-rate schedule, progressive resizing, label smoothing, weight EMA, BatchNorm statistics recomputed for an
EMA or with ``train.recompute_bn`` (by torch's ``update_bn``), and test-time flip, so the two differ in the loop
only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plain_worker(args: argparse.Namespace) -> None:
    """Train the recipe with a plain PyTorch loop in this process and print one JSON line: test accuracy."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
    from torch.utils.data import DataLoader

    from benchmarks.baselines import PerImageData
    from resdyn import build_model
    from resdyn.data import load_dataset, take
    from resdyn.recipes import find_recipe
    from resdyn.train.config import load_config
    from resdyn.train.loop import EMA_BN_IMAGES
    from resdyn.train.optim import lr_at

    config = load_config(find_recipe(args.recipe))
    tc, oc, dc = config.train, config.optim, config.data
    if oc.name != "sgd":
        raise SystemExit(f"the plain loop implements SGD only; the recipe uses {oc.name}")
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    data = load_dataset(dc.name, args.data_dir)
    info = data.info
    # the same seeded subsets as resdyn's load_data (no validation split: the plain loop does not hold one out)
    train_split, test_split = take(data.train, dc.limit_train, args.seed), take(data.test, dc.limit_test, args.seed)
    model = build_model(config.model.name, info.in_channels, info.num_classes, **config.model.options).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=oc.lr, momentum=oc.momentum, nesterov=oc.nesterov,
                          weight_decay=oc.weight_decay)
    if not dc.augment or dc.resize or dc.crop:
        raise SystemExit("the plain loop implements padded crops (and flips) only")
    train_set = PerImageData(train_split, info.mean[0], info.std[0], flip=dc.flip, padding=dc.crop_padding)
    loader = DataLoader(train_set, tc.batch_size, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    steps_per_epoch = len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_at(config.schedule, oc.lr, tc.epochs, step, steps_per_epoch) / oc.lr)
    criterion = nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
           if tc.ema_decay is not None else None)
    progressive, full = dc.progressive(), info.image_size[0]
    for epoch in range(1, tc.epochs + 1):
        model.train()
        size = progressive.size(epoch, full) if progressive is not None else full
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if size != full:  # progressive resizing, as resdyn's loader does it (bilinear, antialiased)
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            loss = criterion(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
    scored = ema.module if ema is not None else model
    # As resdyn does: an EMA's BatchNorm statistics, and with train.recompute_bn the final weights', are
    # recomputed before scoring (here the plain-PyTorch way, torch's update_bn over the training loader).
    bn_images = tc.recompute_bn or (EMA_BN_IMAGES if ema is not None else None)
    if bn_images:
        batches = itertools.islice(loader, math.ceil(bn_images / tc.batch_size))
        update_bn((x.to(device) for x, _ in batches), scored)
    scored.eval()
    mean, std = info.mean[0], info.std[0]
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test_split.labels), 1000):
            x = ((test_split.images[start : start + 1000].float() / 255 - mean) / std).to(device)
            y = test_split.labels[start : start + 1000]
            p = scored(x).softmax(1)
            if tc.tta_flip:
                p = p + scored(x.flip(3)).softmax(1)
            correct += (p.argmax(1).cpu() == y).sum().item()
    print(json.dumps({"test_acc": correct / len(test_split.labels)}))


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def run_resdyn(args: argparse.Namespace, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "resdyn", "train", "-c", args.recipe, "--out", out, "--device", args.device,
               "--set", f"train.seed={seed}", "--set", "train.progress=off"]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        wall, _ = timed(cmd)
        summary = json.loads((Path(out) / "summary.json").read_text())
    return {"loop": "resdyn", "seed": seed, "wall_s": wall, "test_acc": summary["test_acc"],
            "precision": summary.get("precision"), "commit": summary.get("commit")}


def run_plain(args: argparse.Namespace, seed: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-worker", "--recipe", args.recipe, "--seed",
           str(seed), "--device", args.device, "--workers", str(args.workers)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    wall, stdout = timed(cmd)
    return {"loop": "plain", "seed": seed, "wall_s": wall, **json.loads(stdout.strip().splitlines()[-1]),
            "precision": "fp32"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fashion-mnist-fast")
    parser.add_argument("--seeds", default="0,1,2", help="resdyn's seeds, comma-separated")
    parser.add_argument("--baseline-seeds", default="0",
                        help="the plain loop's seeds (each run of it takes about twice resdyn's time on a CPU)")
    parser.add_argument("--target", type=float, default=0.94, help="test accuracy to reach")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir")
    parser.add_argument("--workers", type=int, default=0, help="the plain loop's DataLoader workers")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--plain-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_worker:
        plain_worker(args)
        return
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else []
    baseline = [int(s) for s in args.baseline_seeds.split(",")] if args.baseline_seeds else []
    runs = []
    # Interleave: a machine's drift over the benchmark falls on both loops.
    for i, seed in enumerate(sorted(set(seeds) | set(baseline))):
        order = [run_plain, run_resdyn] if i % 2 else [run_resdyn, run_plain]
        for run in order:
            if seed in (seeds if run is run_resdyn else baseline):
                r = run(args, seed)
                r["reached"] = r["test_acc"] >= args.target
                runs.append(r)
                print(f"{r['loop']:>6} seed {seed}: {r['test_acc']:.4f} test accuracy in {r['wall_s']:.0f} s "
                      f"({'reached' if r['reached'] else 'missed'} {args.target:.1%})", flush=True)
    result = {"recipe": args.recipe, "target": args.target, "device": args.device, "runs": runs}
    for loop in ("resdyn", "plain"):
        mine = [r for r in runs if r["loop"] == loop]
        if mine:
            result[loop] = {"median_wall_s": statistics.median(r["wall_s"] for r in mine),
                            "median_test_acc": statistics.median(r["test_acc"] for r in mine),
                            "seeds": len(mine)}
    if "plain" in result and "resdyn" in result:
        result["ratio"] = result["plain"]["median_wall_s"] / result["resdyn"]["median_wall_s"]
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
