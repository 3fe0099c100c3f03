"""ODENet training throughput: resdyn's loop against a plain torchdiffeq loop, same data and device, one process.

Both train seed 004's ODENet (208,266 parameters) on Fashion-MNIST: batch 128, dopri5 at rtol = atol = 1e-3 over
[0, 1], SGD with momentum 0.9 at a constant lr 0.1, pad-4 random crops; once with backprop through the solver
and once with the adjoint method.

The plain loop is shaped like torchdiffeq's ``examples/odenet_mnist.py``: its ``ODEfunc`` (ConcatConv2d, an
``nfe`` counter) in an ``ODEBlock`` calling ``odeint`` or ``odeint_adjoint``, a Dataset that crops one image at a
time, a DataLoader with workers, fp32, NCHW; NFE read off the counter around ``loss.backward()`` as the example
does. That counter counts calls of f, so with backprop its backward NFE is 0, where resdyn counts the VJPs the
backward pass takes (see ``ODEBlock.metrics``); with the adjoint both count the adjoint solve's evaluations.
resdyn: ``build_model("odenet")`` and ``resdyn.train.loop.train`` -- the dataset on the device, batch-wise
augmentation, the field under bf16 autocast with a float32 solver state, channels_last (on CUDA).

    PYTHONPATH=. python3 benchmarks/odenet_throughput.py --epochs 2 --out results.json
    PYTHONPATH=. python3 benchmarks/odenet_throughput.py --device cpu --limit 256 --epochs 1   # smoke test

Prints images/s, mean forward and backward NFE and peak memory for each loop and gradient method, and the ratios
resdyn / plain. Peak memory is CUDA's allocator peak per run on a GPU; on the CPU it is the process's max RSS so
far, which cannot be reset between runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchdiffeq import odeint, odeint_adjoint

from benchmarks.common import PerImageData, accuracy_on, steady_images_per_s, synchronize
from resdyn.data import Split, load_dataset, take
from resdyn.device import describe_device, peak_memory_bytes, resolve_device
from resdyn.runs import RunDir
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import train
from resdyn.train.progress import Progress

TOL = 1e-3


# -- the reference model, as torchdiffeq's examples/odenet_mnist.py writes it ------------------------------------


def norm(dim: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, dim), dim)


class ConcatConv2d(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self._layer = nn.Conv2d(dim_in + 1, dim_out, 3, 1, 1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tt = torch.ones_like(x[:, :1, :, :]) * t
        return self._layer(torch.cat([tt, x], 1))


class ODEfunc(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = norm(dim), ConcatConv2d(dim, dim)
        self.norm2, self.conv2 = norm(dim), ConcatConv2d(dim, dim)
        self.norm3 = norm(dim)
        self.relu = nn.ReLU(inplace=True)
        self.nfe = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self.conv1(t, self.relu(self.norm1(x)))
        out = self.conv2(t, self.relu(self.norm2(out)))
        return self.norm3(out)


class ODEBlock(nn.Module):
    def __init__(self, odefunc: ODEfunc, adjoint: bool) -> None:
        super().__init__()
        self.odefunc = odefunc
        self.solve = odeint_adjoint if adjoint else odeint
        self.integration_time = torch.tensor([0.0, 1.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.integration_time.type_as(x)
        return self.solve(self.odefunc, x, t, rtol=TOL, atol=TOL)[1]


def reference_odenet(in_channels: int, num_classes: int, adjoint: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, 1), norm(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 4, 2, 1), norm(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 4, 2, 1),
        ODEBlock(ODEfunc(64), adjoint),
        norm(64), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, num_classes),
    )


def plain_loop(data: Any, train_split: Split, test_split: Split, adjoint: bool, epochs: int, batch_size: int,
               lr: float, device: torch.device, workers: int) -> dict[str, Any]:
    torch.manual_seed(0)
    info = data.info
    model = reference_odenet(info.in_channels, info.num_classes, adjoint).to(device)
    odefunc = model[7].odefunc
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    mean, std = info.mean[0], info.std[0]
    # The example's RandomCrop(28, padding=4), no flips.
    loader = DataLoader(PerImageData(train_split, mean, std, train=True, flip=False), batch_size, shuffle=True,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                        drop_last=True)
    test = DataLoader(PerImageData(test_split, mean, std, train=False, flip=False), 1000, num_workers=workers)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, nfe_forward, nfe_backward, seen = [], [], [], 0
    for _ in range(epochs):
        model.train()
        synchronize(device)
        t0 = time.perf_counter()
        seen = 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = nn.functional.cross_entropy(model(x), y)
            nfe_forward.append(odefunc.nfe)
            odefunc.nfe = 0
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            nfe_backward.append(odefunc.nfe)
            odefunc.nfe = 0
            seen += len(y)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "images_per_s": steady_images_per_s(seen, times), "epoch_times_s": times,
        "nfe_forward_mean": statistics.fmean(nfe_forward), "nfe_backward_mean": statistics.fmean(nfe_backward),
        "test_acc": accuracy_on(model, test, device), "peak_memory_bytes": peak_memory_bytes(device)[0],
    }


def resdyn_loop(data_dir: str | None, adjoint: bool, epochs: int, batch_size: int, lr: float,
                device: torch.device, limit: int | None) -> dict[str, Any]:
    config = apply_overrides(Config(), [
        "model.name=odenet", f"model.options.adjoint={str(adjoint).lower()}", f"model.options.rtol={TOL}",
        f"model.options.atol={TOL}", f"train.epochs={epochs}", f"train.batch_size={batch_size}", f"optim.lr={lr}",
        "optim.momentum=0.9", "optim.weight_decay=0", "schedule.name=constant", "data.crop_padding=4",
        "data.flip=false", f"train.device={device}",
    ] + ([f'data.dir="{data_dir}"'] if data_dir else [])
      + ([f"data.limit_train={limit}", f"data.limit_test={limit}"] if limit else []))
    with tempfile.TemporaryDirectory() as out:
        summary = train(config, out, progress=Progress("off"))
        metrics = RunDir(out).read_metrics()
    times = [m.epoch_time_s for m in metrics]
    return {
        "params": summary.params,
        "images_per_s": steady_images_per_s(summary.train_images, times), "epoch_times_s": times,
        "nfe_forward_mean": statistics.fmean(m.model["nfe_forward_mean"] for m in metrics),
        "nfe_backward_mean": statistics.fmean(m.model["nfe_backward_mean"] for m in metrics),
        "test_acc": summary.test_acc, "peak_memory_bytes": summary.peak_memory_bytes,
        "precision": summary.precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--device", default="auto", help='"auto" (CUDA when there is a GPU), "cuda" or "cpu"')
    parser.add_argument("--epochs", type=int, default=2, help="the first epoch is warm-up when there are several")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, help="train and test on this many images only (a smoke test)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_dataset("fashion-mnist", args.data_dir)
    train_split, test_split = take(data.train, args.limit, 0), take(data.test, args.limit, 0)
    workers = args.workers if device.type == "cuda" else 0

    result: dict[str, Any] = {"device": describe_device(device), "torch": torch.__version__, "args": vars(args)}
    for gradient, adjoint in (("backprop", False), ("adjoint", True)):
        plain = plain_loop(data, train_split, test_split, adjoint, args.epochs, args.batch_size, args.lr, device,
                           workers)
        ours = resdyn_loop(args.data_dir, adjoint, args.epochs, args.batch_size, args.lr, device, args.limit)
        result[gradient] = {"plain": plain, "resdyn": ours, "ratio": ours["images_per_s"] / plain["images_per_s"]}

    print(f"device {result['device']}, seed 004 ODENet, dopri5 tol {TOL:g}, batch {args.batch_size}, "
          f"{args.epochs} epochs on {len(train_split)} images")
    for gradient in ("backprop", "adjoint"):
        for name in ("plain", "resdyn"):
            r = result[gradient][name]
            print(f"{gradient:>8} {name:>6}: {r['images_per_s']:8.0f} images/s  "
                  f"NFE forward {r['nfe_forward_mean']:5.1f} backward {r['nfe_backward_mean']:5.1f}  "
                  f"test acc {r['test_acc']:.4f}  peak {r['peak_memory_bytes'] / 2**20:.0f} MiB")
        print(f"{gradient:>8} ratio resdyn / plain: {result[gradient]['ratio']:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
