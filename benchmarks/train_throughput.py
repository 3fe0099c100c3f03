"""Training throughput of resdyn's loop against a plain PyTorch loop, same model, data and device, one process.

The plain loop is the tutorial shape: a Dataset that augments one image at a time, a DataLoader with worker
processes and pinned memory, fp32, NCHW. resdyn keeps the uint8 dataset on the device, augments whole
batches there, and (on CUDA) trains under bf16 autocast with channels_last. Both use the same optimiser
(SGD, Nesterov 0.9, weight decay 5e-4) and the same per-step schedule (one epoch of linear warm-up, then
cosine), so their test accuracies are comparable.

    PYTHONPATH=. python3 benchmarks/train_throughput.py --data-dir DIR --epochs 3 --out results.json
    PYTHONPATH=. python3 benchmarks/train_throughput.py --device cpu --limit 10000 --epochs 3   # on a CPU

Prints images/s for both and the ratio resdyn / plain (epochs after the first, which is warm-up when there
are several); test accuracy after the same number of epochs. With ``--repeats N`` both loops run N times,
alternating which goes first, and the median ratio is reported (a shared or thermally throttled machine
varies by several per cent from run to run). Peak memory is CUDA's allocator peak per loop
on a GPU; on the CPU it is the process's max RSS so far, which cannot be reset between the loops.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

from benchmarks.common import PerImageData, accuracy_on, steady_images_per_s, synchronize
from resdyn import build_model
from resdyn.data import Split, load_dataset, take
from resdyn.device import describe_device, peak_memory_bytes, resolve_device
from resdyn.runs import RunDir
from resdyn.train.config import Config, ScheduleConfig, apply_overrides
from resdyn.train.loop import train
from resdyn.train.optim import lr_at
from resdyn.train.progress import Progress

SCHEDULE = ScheduleConfig(name="cosine", warmup_epochs=1)


def plain_schedule(opt: torch.optim.Optimizer, lr: float, epochs: int,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """resdyn's warm-up + cosine schedule as a stock PyTorch scheduler, stepped once per batch."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_at(SCHEDULE, lr, epochs, step, steps_per_epoch) / lr)


def plain_loop(model_name: str, data, train_split: Split, test_split: Split, epochs: int, batch_size: int,
               lr: float, device: torch.device, workers: int) -> dict:
    torch.manual_seed(0)
    info = data.info
    model = build_model(model_name, info.in_channels, info.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps_per_epoch = (len(train_split) + batch_size - 1) // batch_size
    sched = plain_schedule(opt, lr, epochs, steps_per_epoch)
    mean, std = info.mean[0], info.std[0]
    pin = device.type == "cuda"
    loader = DataLoader(PerImageData(train_split, mean, std, train=True, flip=True), batch_size, shuffle=True,
                        num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    test = DataLoader(PerImageData(test_split, mean, std, train=False, flip=True), 1000, num_workers=workers,
                      pin_memory=pin)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(epochs):
        model.train()
        synchronize(device)
        t0 = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return {"images_per_s": steady_images_per_s(len(train_split), times), "epoch_times_s": times,
            "test_acc": accuracy_on(model, test, device), "peak_memory_bytes": peak_memory_bytes(device)[0]}


def resdyn_loop(model_name: str, data_dir: str | None, epochs: int, batch_size: int, lr: float,
                compile: bool, device: torch.device, limit: int | None) -> dict:
    config = apply_overrides(Config(), [
        f"model.name={model_name}", f"train.epochs={epochs}", f"train.batch_size={batch_size}", f"optim.lr={lr}",
        "optim.nesterov=true", "optim.weight_decay=5e-4", f"schedule.name={SCHEDULE.name}",
        f"schedule.warmup_epochs={SCHEDULE.warmup_epochs}", f"train.compile={str(compile).lower()}",
        f"train.device={device.type}",
    ] + ([f'data.dir="{data_dir}"'] if data_dir else [])
      + ([f"data.limit_train={limit}", f"data.limit_test={limit}"] if limit else []))
    with tempfile.TemporaryDirectory() as out:
        summary = train(config, out, progress=Progress("off"))
        metrics = RunDir(out).read_metrics()
    times = [m.epoch_time_s for m in metrics]
    return {"images_per_s": steady_images_per_s(summary.train_images, times), "epoch_times_s": times,
            "test_acc": summary.test_acc,
            "peak_memory_bytes": summary.peak_memory_bytes, "precision": summary.precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--data-dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--device", default="auto", help='"auto" (CUDA when there is a GPU), "cuda" or "cpu"')
    parser.add_argument("--workers", type=int, help="DataLoader workers of the plain loop (default 8 on CUDA, "
                        "0 on the CPU, where workers would take cores from the training itself)")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--limit", type=int, help="train and test on this many images only")
    parser.add_argument("--repeats", type=int, default=1, help="measure both loops this many times, alternating "
                        "which goes first; the ratio reported is the median")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_dataset("fashion-mnist", args.data_dir)
    train_split, test_split = take(data.train, args.limit, 0), take(data.test, args.limit, 0)
    workers = args.workers if args.workers is not None else (8 if device.type == "cuda" else 0)

    def run(name: str) -> dict:
        if name == "plain":
            return plain_loop(args.model, data, train_split, test_split, args.epochs, args.batch_size, args.lr,
                              device, workers)
        return resdyn_loop(args.model, args.data_dir, args.epochs, args.batch_size, args.lr, args.compile, device,
                           args.limit)

    print(f"device {describe_device(device)}, {args.model}, batch {args.batch_size}, {args.epochs} epochs on "
          f"{len(train_split)} images, {args.repeats} repeat(s)")
    repeats = []
    for i in range(args.repeats):
        # Alternate which loop goes first, so that a machine's drift (heat, neighbours) falls on both.
        order = ("plain", "resdyn") if i % 2 == 0 else ("resdyn", "plain")
        pair = {name: run(name) for name in order}
        pair["ratio"] = pair["resdyn"]["images_per_s"] / pair["plain"]["images_per_s"]
        repeats.append(pair)
        for name in ("plain", "resdyn"):
            r = pair[name]
            print(f"{name:>7}: {r['images_per_s']:9.0f} images/s  test acc {r['test_acc']:.4f}  "
                  f"peak {r['peak_memory_bytes'] / 2**20:.0f} MiB")
        print(f"  ratio resdyn / plain: {pair['ratio']:.3f}x")
    ratios = [pair["ratio"] for pair in repeats]
    result = {"device": describe_device(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "args": vars(args), "repeats": repeats, "ratio": statistics.median(ratios),
              "ratio_min": min(ratios), "ratio_max": max(ratios)}
    print(f"ratio resdyn / plain: median {result['ratio']:.3f}x (min {min(ratios):.3f}, max {max(ratios):.3f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
