"""``resdyn bench``: training images/s of resdyn's loop against two plain PyTorch loops, on the device present.

For each model (and batch size) three loops train the same model from the same seed, with the same optimiser
(SGD, Nesterov momentum 0.9, weight decay 5e-4, constant lr), on the same data:

* **resdyn**: resdyn's own training step, :func:`resdyn.train.loop.train_epoch` over parts built by
  :func:`resdyn.train.loop.build_parts` (the dataset resident on the device, batched augmentation there, the
  precision and layout ``train.precision = "auto"`` chooses); ``--set`` overrides its config.
* **plain** (a): the way common CIFAR ResNet repositories train, torchvision-style: a Dataset that pads,
  crops and flips one image at a time, a DataLoader (with worker processes and pinned memory on a GPU), fp32,
  NCHW. For the ODENet it is torchdiffeq's own example (``examples/odenet_mnist.py``): its model and loop.
* **best** (b): the best plain loop we know for the device: the data as one tensor on the device, cropped (one
  offset per batch, a lighter augmentation than resdyn's per image) and flipped a batch at a time, bf16 autocast
  and channels_last; on a GPU also ``torch.compile(mode="reduce-overhead")`` (CUDA graphs), except for the
  ODENet, whose adaptive solver takes a data-dependent number of steps that a graph cannot capture.

Each loop is built and warmed up once per model (``--warmup`` steps, compilation included), then timed for
``--steps`` steps ``--repeats`` times, the three loops taking turns in an order that rotates from repeat to
repeat, so that a machine's drift (heat, neighbours) falls on all of them; a row reports the median images/s
of each loop and the median of the per-repeat ratios ``resdyn / plain`` and ``resdyn / best``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchdiffeq import odeint

from resdyn.data import Augment, DatasetInfo, DeviceLoader, Split, load_dataset
from resdyn.device import Speed, choose_speed, configure_backends, describe_device, resolve_device
from resdyn.distributed import World
from resdyn.errors import ConfigError
from resdyn.nets import build_model
from resdyn.runs import TrainState
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import Placement, build_parts, train_epoch
from resdyn.train.progress import Progress
from resdyn.version import source_version

MODELS = ["resnet20", "resnet56", "lm-resnet56", "revnet38", "odenet"]
LOOPS = ("resdyn", "plain", "best")
LR, MOMENTUM, WEIGHT_DECAY, PADDING = 0.1, 0.9, 5e-4, 4


# -- data ------------------------------------------------------------------------------------------------------
def synthetic_split(images: int, info: DatasetInfo, seed: int = 0) -> Split:
    """Random uint8 images and labels of ``info``'s shape (for tests and machines without the data)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (images, info.in_channels, *info.image_size), generator=generator, dtype=torch.uint8)
    y = torch.randint(0, info.num_classes, (images,), generator=generator)
    return Split(x, y)


def bench_data(name: str, data_dir: str | None, synthetic: bool) -> tuple[DatasetInfo, Split]:
    """The training split the loops share: the dataset's, or random images of its shape with ``synthetic``."""
    if synthetic:
        from resdyn.data import DATASETS

        info = DATASETS.get(name)().info
        return info, synthetic_split(2048, info)
    dataset = load_dataset(name, data_dir)
    return dataset.info, dataset.train


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
TOL = 1e-3


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


def model_options(name: str) -> dict[str, Any]:
    """What every loop builds: the registered model, the ODENet at the example's tolerances."""
    return {"rtol": TOL, "atol": TOL} if name == "odenet" else {}


# -- the three loops -------------------------------------------------------------------------------------------
@dataclass
class Settings:
    batch_size: int
    steps: int
    warmup: int
    device: torch.device
    workers: int
    overrides: list[str]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY)


class Loop:
    """A training loop set up for one model: ``measure()`` trains ``steps`` steps and returns images/s."""

    description: str

    def measure(self) -> float:
        raise NotImplementedError


class ResdynLoop(Loop):
    """resdyn's own inner loop (``train_epoch``) over parts from ``build_parts``; each measurement is an epoch
    of exactly ``steps`` batches, the warm-up an epoch of ``warmup`` batches."""

    def __init__(self, name: str, info: DatasetInfo, split: Split, s: Settings) -> None:
        self.config = apply_overrides(Config(), [
            f"model.name={name}", f"train.batch_size={s.batch_size}", f"optim.lr={LR}", "optim.nesterov=true",
            f"optim.momentum={MOMENTUM}", f"optim.weight_decay={WEIGHT_DECAY}", "schedule.name=constant",
            f"data.crop_padding={PADDING}", f"data.flip={str(name != 'odenet').lower()}", "train.progress=off",
            *[f"model.options.{k}={v}" for k, v in model_options(name).items()], *s.overrides,
        ]).validate()
        tc = self.config.train
        self.placement = Placement(s.device, World(), choose_speed(s.device, tc.precision, tc.channels_last))
        self.speed: Speed = self.placement.speed
        self.device, self.info, self.split = s.device, info, split
        torch.manual_seed(0)
        model = build_model(name, info.in_channels, info.num_classes, **self.config.model.options)
        self.parts = build_parts(self.config, model, self.placement)
        self.state = TrainState()
        self.epoch = 0
        self.description = self.speed.describe() + (", compiled" if tc.compile else "")
        self._train(s.warmup)
        self.steps = s.steps

    def _train(self, steps: int) -> float:
        dc = self.config.data
        images = steps * self.config.train.batch_size
        index = torch.arange(images) % len(self.split.labels)
        loader = DeviceLoader(Split(self.split.images[index], self.split.labels[index]), self.info,
                              self.config.train.batch_size, device=self.device, shuffle=True,
                              augment=Augment(dc.crop_padding, dc.flip), seed=self.epoch,
                              channels_last=self.speed.channels_last)
        self.epoch += 1
        stats = train_epoch(self.config, self.parts, loader, self.state, self.epoch, Progress("off"))
        return stats.images / stats.time_s

    def measure(self) -> float:
        return self._train(self.steps)


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


LOOP_CLASSES: dict[str, Callable[..., Loop]] = {"resdyn": ResdynLoop, "plain": PlainLoop, "best": BestLoop}


# -- the table -------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One model at one batch size: each loop's images/s per repeat and median, and the ratios."""

    model: str
    batch_size: int
    images_per_s: dict[str, float]
    repeats: dict[str, list[float]]
    ratio: dict[str, float]
    ratio_range: dict[str, list[float]]
    loops: dict[str, str]


def bench_model(name: str, info: DatasetInfo, split: Split, s: Settings, repeats: int) -> Row:
    """Set up the three loops for ``name``, then measure each ``repeats`` times in a rotating order."""
    if len(split.labels) < s.batch_size:
        raise ConfigError(f"batch size {s.batch_size} is larger than the {len(split.labels)} training images")
    loops = {kind: LOOP_CLASSES[kind](name, info, split, s) for kind in LOOPS}
    measured: dict[str, list[float]] = {kind: [] for kind in LOOPS}
    for r in range(repeats):
        for kind in LOOPS[r % 3:] + LOOPS[: r % 3]:
            measured[kind].append(loops[kind].measure())
    ratios = {base: [a / b for a, b in zip(measured["resdyn"], measured[base], strict=True)]
              for base in ("plain", "best")}
    return Row(name, s.batch_size, {k: statistics.median(v) for k, v in measured.items()}, measured,
               {k: statistics.median(v) for k, v in ratios.items()},
               {k: [min(v), max(v)] for k, v in ratios.items()}, {k: loop.description for k, loop in loops.items()})


def format_rows(rows: list[Row]) -> str:
    from resdyn.analysis.tables import format_table

    body = [[r.model, r.batch_size, f"{r.images_per_s['resdyn']:.0f}", f"{r.images_per_s['plain']:.0f}",
             f"{r.images_per_s['best']:.0f}", f"{r.ratio['plain']:.2f}x", f"{r.ratio['best']:.2f}x"] for r in rows]
    return format_table(["model", "batch", "resdyn img/s", "plain (a)", "best (b)", "resdyn/(a)", "resdyn/(b)"],
                        body)


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="training images/s of resdyn against plain PyTorch loops on this device",
                       description=__doc__.splitlines()[0] + " See resdyn/bench.py for what each loop does.")
    b.add_argument("--models", default=",".join(MODELS), help=f"comma-separated (default {','.join(MODELS)})")
    b.add_argument("--batch-size", default="128", help="one or more, comma-separated, e.g. 128,512")
    b.add_argument("--steps", type=int, default=20, help="timed steps per measurement (default 20)")
    b.add_argument("--warmup", type=int, default=5, help="untimed steps before the first measurement (default 5)")
    b.add_argument("--repeats", type=int, default=3, help="measurements of each loop; the median is reported")
    b.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    b.add_argument("--data", default="fashion-mnist", help="dataset (default fashion-mnist)")
    b.add_argument("--data-dir", help="directory holding the dataset's files")
    b.add_argument("--synthetic", action="store_true", help="random images of the dataset's shape (no files)")
    b.add_argument("--workers", type=int, help="DataLoader workers of the plain loop (default: 8 on a GPU, 0 on "
                   "the CPU, where workers would take cores from the training itself)")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a key of resdyn's config, e.g. --set train.compile=true")
    b.add_argument("--json", metavar="PATH", help="also write the table, settings and machine as JSON")


def _positive_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{what} must be integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{what} must be at least 1, got {text!r}")
    return values


def check(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """The models and batch sizes of ``args``, with every option checked (no device or data needed)."""
    from resdyn.data import DATASETS
    from resdyn.nets import MODELS as REGISTERED

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--models names no model; e.g. {','.join(MODELS)}")
    for name in names:
        REGISTERED.get(name)  # an unknown name lists the valid ones
    DATASETS.get(args.data)
    batch_sizes = _positive_ints(args.batch_size, "--batch-size")
    for flag in ("steps", "warmup", "repeats"):
        _positive_ints(str(getattr(args, flag)), f"--{flag}")
    apply_overrides(Config(), args.set).validate()
    return names, batch_sizes


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """``resdyn bench``: measure, print the table, write ``--json``."""
    names, batch_sizes = check(args)
    device = configure_backends(resolve_device(args.device))  # as train() does, for every loop alike
    workers = args.workers if args.workers is not None else (8 if device.type == "cuda" else 0)
    info, split = bench_data(args.data, args.data_dir, args.synthetic)
    print(f"device {describe_device(device)}, torch {torch.__version__}, {args.steps} steps x {args.repeats} "
          f"repeats after {args.warmup} warm-up steps, {'synthetic ' if args.synthetic else ''}{args.data}",
          flush=True)
    rows = []
    for name in names:
        for batch_size in batch_sizes:
            s = Settings(batch_size, args.steps, args.warmup, device, workers, list(args.set))
            row = bench_model(name, info, split, s, args.repeats)
            rows.append(row)
            print(f"{name} batch {batch_size}: resdyn {row.ratio['plain']:.2f}x (a), {row.ratio['best']:.2f}x (b)",
                  flush=True)
    print("\n" + format_rows(rows))
    for kind in LOOPS:
        print(f"{kind}: " + "; ".join(dict.fromkeys(f"{r.model}: {r.loops[kind]}" for r in rows)))
    if args.json:
        command = "resdyn " + shlex.join(sys.argv[1:] if argv is None else argv)
        result = {
            "device": describe_device(device), "torch": torch.__version__, "commit": source_version(),
            "command": command, "threads": torch.get_num_threads(),
            "settings": {"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "workers": workers,
                         "data": args.data, "synthetic": args.synthetic, "set": list(args.set),
                         "optimizer": f"SGD lr {LR}, Nesterov momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}"},
            "rows": [asdict(r) for r in rows],
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
