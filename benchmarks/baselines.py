"""The plain PyTorch baselines ``resdyn bench`` measures resdyn's loop against (see resdyn/bench.py for the three
loops and how they are timed): kept out of the installed package, since they are reference code, not library.

* **PlainLoop** (a): a per-image Dataset (:class:`PerImageData`: pad, crop and flip one image at a time, as
  torchvision's transforms do) in a DataLoader, fp32, NCHW; for the ODENet, torchdiffeq's own example
  (``examples/odenet_mnist.py``): its model (:func:`reference_odenet`) and loop.
* **BestLoop** (b): the data as one tensor on the device, cropped and flipped a batch at a time, bf16 autocast,
  channels_last, and on a GPU ``torch.compile(mode="reduce-overhead")``.

Both train the registered models with the optimiser and constants of :mod:`resdyn.bench` (tests/test_bench.py
checks that the three loops train the same model with the same optimiser). Imported as ``benchmarks.baselines``
with the repository's root on the path (``PYTHONPATH=.``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchdiffeq import odeint

from resdyn.bench import LR, MOMENTUM, PADDING, TOL, WEIGHT_DECAY, Loop, Settings, model_options
from resdyn.data import DatasetInfo, Split
from resdyn.nets import build_model


# -- data ------------------------------------------------------------------------------------------------------
class PerImageData(TorchDataset):
    """The tutorial pipeline: each image padded by ``padding`` (4 unless told) and randomly cropped back, flipped
    horizontally with probability 1/2 when ``flip``, and normalised, on the CPU, one at a time, as torchvision's
    transforms do."""

    def __init__(self, split: Split, mean: float, std: float, flip: bool, padding: int = PADDING) -> None:
        self.split, self.mean, self.std, self.flip, self.padding = split, mean, std, flip, padding

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.split.images[i].float() / 255
        size = x.shape[-1]
        x = nn.functional.pad(x, (self.padding,) * 4)
        dy, dx = torch.randint(0, 2 * self.padding + 1, (2,)).tolist()
        x = x[:, dy : dy + size, dx : dx + size]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(2)
        return (x - self.mean) / self.std, self.split.labels[i]


def forever(loader: DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


# -- the torchdiffeq example's ODENet (examples/odenet_mnist.py), for the plain loop ---------------------------
def _norm(dim: int) -> nn.GroupNorm:
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
        self.norm1, self.conv1 = _norm(dim), ConcatConv2d(dim, dim)
        self.norm2, self.conv2 = _norm(dim), ConcatConv2d(dim, dim)
        self.norm3 = _norm(dim)
        self.relu = nn.ReLU(inplace=True)
        self.nfe = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self.conv1(t, self.relu(self.norm1(x)))
        out = self.conv2(t, self.relu(self.norm2(out)))
        return self.norm3(out)


class ODEBlock(nn.Module):
    def __init__(self, odefunc: ODEfunc) -> None:
        super().__init__()
        self.odefunc = odefunc
        self.integration_time = torch.tensor([0.0, 1.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.integration_time.type_as(x)
        return odeint(self.odefunc, x, t, rtol=TOL, atol=TOL)[1]


def reference_odenet(in_channels: int, num_classes: int) -> nn.Sequential:
    """torchdiffeq's example ODENet; ``build_model("odenet")`` is the same function with the same parameters
    (tests/test_bench.py)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, 1), _norm(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 4, 2, 1), _norm(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 4, 2, 1),
        ODEBlock(ODEfunc(64)),
        _norm(64), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, num_classes),
    )


# -- the two plain loops ---------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY)


class PlainLoop(Loop):
    """(a) per-image transforms in a DataLoader, fp32, NCHW; the torchdiffeq example's model for the ODENet."""

    description = "fp32, per-image DataLoader"

    def __init__(self, name: str, info: DatasetInfo, split: Split, s: Settings) -> None:
        torch.manual_seed(0)
        self.device, self.steps = s.device, s.steps
        model = (reference_odenet(info.in_channels, info.num_classes) if name == "odenet"
                 else build_model(name, info.in_channels, info.num_classes))
        self.model = model.to(s.device).train()
        self.optimizer = _sgd(self.model)
        data = PerImageData(split, info.mean[0], info.std[0], flip=name != "odenet")
        self.batches = forever(DataLoader(data, s.batch_size, shuffle=True, drop_last=True, num_workers=s.workers,
                                          pin_memory=s.device.type == "cuda", persistent_workers=s.workers > 0))
        self._train(s.warmup)

    def _train(self, steps: int) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        images = 0
        for _ in range(steps):
            x, y = next(self.batches)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss = nn.functional.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            images += len(y)
        _sync(self.device)
        return images / (time.perf_counter() - t0)

    def measure(self) -> float:
        return self._train(self.steps)


class BestLoop(PlainLoop):
    """(b) the data as one normalised tensor on the device, cropped and flipped a batch at a time, bf16 autocast,
    channels_last; on a GPU also ``torch.compile(mode="reduce-overhead")`` (not for the ODENet)."""

    def __init__(self, name: str, info: DatasetInfo, split: Split, s: Settings) -> None:
        torch.manual_seed(0)
        self.device, self.steps, self.batch_size = s.device, s.steps, s.batch_size
        self.flip = name != "odenet"
        self.model = build_model(name, info.in_channels, info.num_classes, **model_options(name)).to(s.device)
        self.model = self.model.to(memory_format=torch.channels_last).train()
        self.optimizer = _sgd(self.model)
        self.compiled = s.device.type == "cuda" and name != "odenet"
        self.forward = torch.compile(self.model, mode="reduce-overhead") if self.compiled else self.model
        self.description = "bf16, channels_last, data on the device" + (", compiled" if self.compiled else "")
        mean = torch.tensor(info.mean, device=s.device).view(1, -1, 1, 1)
        std = torch.tensor(info.std, device=s.device).view(1, -1, 1, 1)
        padded = nn.functional.pad(split.images.to(s.device), (PADDING,) * 4)  # black borders, as torchvision pads
        self.images = (padded.float() / 255 - mean) / std
        self.labels = split.labels.to(s.device)
        self.size = split.images.shape[-1]
        self.order = torch.empty(0, dtype=torch.long, device=s.device)
        try:
            self._train(s.warmup)  # compiles, when compiled
        except Exception as e:  # noqa: BLE001 -- a model torch.compile cannot take is measured eagerly, and said so
            if not self.compiled:
                raise
            self.compiled, self.forward = False, self.model
            self.description += f" (compile failed: {type(e).__name__}: {str(e)[:200]}; measured eagerly)"
            self._train(s.warmup)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.order) < self.batch_size:
            self.order = torch.randperm(len(self.labels), device=self.device)
        index, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        # One random crop offset per batch, a flip per image: cheap on any device.
        dy, dx = torch.randint(0, 2 * PADDING + 1, (2,)).tolist()
        x = self.images[index, :, dy : dy + self.size, dx : dx + self.size]
        if self.flip:
            flip = torch.rand(len(index), device=self.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.contiguous(memory_format=torch.channels_last), self.labels[index]

    def _train(self, steps: int) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = self._batch()
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(self.forward(x).float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        _sync(self.device)
        return steps * self.batch_size / (time.perf_counter() - t0)
