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

The plain loops (a) and (b), and the torchdiffeq example's ODENet, are not part of the library: they live in the
repository's ``benchmarks/baselines.py``, which a checkout imports with its root on the path
(``PYTHONPATH=.``, as ``python -m resdyn`` from the root and the tests have); see :func:`loop_classes`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from resdyn.data import Augment, DatasetInfo, DeviceLoader, Split, load_dataset
from resdyn.device import Speed, choose_speed
from resdyn.distributed import World
from resdyn.errors import ConfigError
from resdyn.nets import build_model
from resdyn.runs import TrainState
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import Placement, build_parts, train_epoch
from resdyn.train.parts import Job
from resdyn.train.progress import Progress

MODELS = ["resnet20", "resnet56", "lm-resnet56", "revnet38", "odenet"]
LOOPS = ("resdyn", "plain", "best")
LR, MOMENTUM, WEIGHT_DECAY, PADDING = 0.1, 0.9, 5e-4, 4
#: the ODENet's solver tolerances, torchdiffeq's example's (examples/odenet_mnist.py), in every loop
TOL = 1e-3
#: where the plain loops live: the repository's benchmarks/ folder, not the installed package
BASELINES = "benchmarks.baselines"


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
        stats = train_epoch(self.config, self.parts, loader, self.state, self.epoch, Job(None, Progress("off")))
        return stats.images / stats.time_s

    def measure(self) -> float:
        return self._train(self.steps)


def loop_classes() -> dict[str, Callable[..., Loop]]:
    """The three loops by name: resdyn's, and the plain ones of ``benchmarks/baselines.py`` (imported here, so
    that the library never loads them; a ConfigError says how to get them where they cannot be imported)."""
    try:
        baselines = importlib.import_module(BASELINES)
    except ModuleNotFoundError as e:
        if e.name not in ("benchmarks", BASELINES):
            raise
        baselines = _baselines_beside_the_package()
    if baselines is None:
        raise ConfigError("resdyn bench compares against plain PyTorch loops kept in the repository's "
                          "benchmarks/baselines.py, which is not installed with the package: run it from a checkout "
                          "of resdyn with the checkout on the path, e.g. `cd resdyn && PYTHONPATH=. python -m "
                          "resdyn bench ...`")
    return {"resdyn": ResdynLoop, "plain": baselines.PlainLoop, "best": baselines.BestLoop}


def _baselines_beside_the_package() -> ModuleType | None:
    """``benchmarks/baselines.py`` of the checkout this package was installed from in place (``pip install -e``),
    so that the ``resdyn`` command finds it from any folder; None for a package installed from a wheel."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(BASELINES, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[BASELINES] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


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
    classes = loop_classes()
    loops = {kind: classes[kind](name, info, split, s) for kind in LOOPS}
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


def _positive_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{what} must be integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{what} must be at least 1, got {text!r}")
    return values


def check(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """The models and batch sizes of ``args``, with every option checked and the baselines found (no device or
    data needed)."""
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
    loop_classes()
    return names, batch_sizes
