"""Trainability maps: test accuracy of trained FRNs / RRNs over (an initialisation axis, depth), with the theory on top.

The grid's points of one depth have the same shapes, so they train together as one batched model:
``torch.func.stack_module_state`` stacks the parameters of the networks that ``resdyn.nets.meanfield`` builds,
and ``vmap(functional_call)`` runs them on the same mini-batches. Each network's loss depends only on its own
parameters and SGD acts elementwise, so this is exactly training each network alone on the same data order
(``tests/meanfield/test_sweep.py`` checks the gradients and a step against a single network's). A network whose
loss turns non-finite is recorded as diverged; its loss is masked so that the others train on.

Axes (the paper's figures): ``sigma_w2``; ``alpha`` (α-ReLU); ``rho2`` (tanh FRN: ``ρ² = σ_a²/σ_v²`` with
``σ_v² / (1 + ρ²)`` held at the given ``sigma_v2``, so that the leading term of the gradient growth stays put).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from resdyn.data import DatasetInfo, DeviceLoader, load_dataset, take
from resdyn.device import resolve_device
from resdyn.errors import ConfigError
from resdyn.meanfield.theory import theory
from resdyn.nets import build_model

AXES = ("sigma_w2", "alpha", "rho2")
#: the theory quantity drawn over the map by default: the gradient explosion decides tanh nets, the
#: expressivity s^L (and the overflow of p^L with it) ReLU and α-ReLU nets (Yang & Schoenholz, sec. 5)
CONTOURS = {"tanh": "log_R", "relu": "s", "alpha-relu": "s"}


@dataclass(frozen=True)
class MapSettings:
    """One trainability map: the nets, the grid and the training of every grid point."""

    net: str = "frn"
    activation: str = "tanh"
    axis: str = "sigma_w2"
    values: list[float] = field(default_factory=lambda: [round(v, 4) for v in np.linspace(0.1, 3.0, 12)])
    depths: list[int] = field(default_factory=lambda: [2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192])
    width: int = 64
    sigma_w2: float = 1.0
    sigma_v2: float = 1.0
    sigma_a2: float = 0.25
    sigma_b2: float = 0.0
    alpha: float = 0.8
    data: str = "fashion-mnist"
    limit_train: int | None = 5000
    limit_test: int | None = 2000
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.net not in ("frn", "rrn"):
            raise ConfigError(f"unknown net {self.net!r}; valid: frn, rrn")
        if self.axis not in AXES:
            raise ConfigError(f"unknown axis {self.axis!r}; valid: {', '.join(AXES)}")
        if self.axis == "alpha" and self.activation != "alpha-relu":
            raise ConfigError("the alpha axis needs --activation alpha-relu")
        if self.axis == "rho2" and self.net != "frn":
            raise ConfigError("the rho2 axis (sigma_a2 / sigma_v2) needs an FRN: an RRN has no V or a")
        if not self.values or not self.depths or min(self.depths) < 1:
            raise ConfigError(f"need at least one axis value and depths >= 1, got {self.values}, {self.depths}")
        if self.epochs < 1 or self.batch_size < 1 or self.width < 1:
            raise ConfigError("epochs, batch_size and width must be at least 1")
        if not all(math.isfinite(v) for v in self.values):
            raise ConfigError(f"the axis values must be finite, got {self.values}")
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"lr must be a finite learning rate > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        resolve_device(self.device)  # an unknown or absent device is refused before any data loads

    def sigmas(self, value: float | np.ndarray) -> dict[str, Any]:
        """The network's σ's and α at axis value ``value`` (scalar or array)."""
        options: dict[str, Any] = {"sigma_w2": self.sigma_w2, "sigma_b2": self.sigma_b2}
        if self.net == "frn":
            options |= {"sigma_v2": self.sigma_v2, "sigma_a2": self.sigma_a2}
        if self.axis == "rho2":
            options |= {"sigma_v2": self.sigma_v2 * (1 + value), "sigma_a2": value * self.sigma_v2 * (1 + value)}
        else:
            options[self.axis] = value
        if self.activation == "alpha-relu" and self.axis != "alpha":
            options["alpha"] = self.alpha
        return options


def build_grid_model(settings: MapSettings, value: float, depth: int, info: DatasetInfo) -> nn.Module:
    """The network of one grid point for images described by ``info``, from ``resdyn.nets.meanfield`` (the same
    models ``resdyn train`` runs)."""
    options = settings.sigmas(value)
    options.setdefault("alpha", settings.alpha)
    return build_model(settings.net, info.in_channels, info.num_classes, width=settings.width, depth=depth,
                       activation=settings.activation, image_size=info.image_size[0], **options)


class StackedModels:
    """Models of one architecture trained as one: their parameters stacked on a leading axis."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.params, self.buffers = stack_module_state(list(models))
        self.base = copy.deepcopy(models[0]).to("meta")

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (params, buffers), (x,))

        self._forward = torch.func.vmap(one, in_dims=(0, 0, None))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every model, ``(models, batch, classes)``."""
        return self._forward(self.params, self.buffers, x)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's mean cross-entropy on the batch, ``(models,)``."""
        logits = self(x)
        return F.cross_entropy(logits.flatten(0, 1), y.repeat(logits.shape[0]), reduction="none").view(
            logits.shape[0], -1).mean(1)


@dataclass
class MapResult:
    """Per grid point (rows: depths, columns: axis values) test accuracy, final training loss, divergence."""

    settings: MapSettings
    accuracy: list[list[float]]
    train_loss: list[list[float]]
    diverged: list[list[bool]]
    wall_time_s: float
    theory: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings), "accuracy": self.accuracy, "train_loss": self.train_loss,
                "diverged": self.diverged, "wall_time_s": self.wall_time_s, "theory": self.theory}


def train_stacked(stacked: StackedModels, loader: DeviceLoader, epochs: int, lr: float,
                  momentum: float) -> torch.Tensor:
    """SGD on every stacked model; returns each model's mean training loss over its last epoch (inf if it
    diverged)."""
    optimizer = torch.optim.SGD(list(stacked.params.values()), lr=lr, momentum=momentum)
    count = next(iter(stacked.params.values())).shape[0]
    diverged = torch.zeros(count, dtype=torch.bool)
    last = torch.zeros(count)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        total, batches = torch.zeros(count), 0
        for x, y in loader:
            losses = stacked.losses(x, y)
            bad = ~torch.isfinite(losses.detach())
            diverged |= bad.cpu()
            optimizer.zero_grad(set_to_none=True)
            torch.where(bad, torch.zeros_like(losses), losses).sum().backward()
            for p in stacked.params.values():  # a diverged model must not feed NaN into the momentum buffers
                p.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
            optimizer.step()
            total += losses.detach().cpu().nan_to_num(nan=math.inf)
            batches += 1
        last = total / batches
    return torch.where(diverged, torch.full_like(last, math.inf), last)


@torch.no_grad()
def accuracy(stacked: StackedModels, loader: DeviceLoader) -> torch.Tensor:
    """Test accuracy of every stacked model (a model with non-finite logits scores 0 on those images)."""
    correct, n = 0, 0
    for x, y in loader:
        logits = stacked(x)
        correct = correct + ((logits.argmax(-1) == y) & torch.isfinite(logits).all(-1)).sum(1).cpu()
        n += len(y)
    return correct / n


def theory_grid(settings: MapSettings, points: int = 60) -> dict[str, Any]:
    """The theory's contour quantity (``CONTOURS``) at every depth up to the deepest, on ``points`` axis values."""
    lo, hi = min(settings.values), max(settings.values)
    values = np.linspace(lo, hi, points)
    quantity = CONTOURS[settings.activation]
    depth = max(settings.depths)
    result = theory(settings.net, settings.activation, depth, correlations=quantity != "log_R",
                    **settings.sigmas(values))
    if quantity == "log_R":
        # log R of a net of depth L is Σ_{k <= L} of the per-layer log growth
        grid = result.log_chi[0] - result.log_chi
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            grid = np.log10(result.s)
    out = {"quantity": quantity if quantity == "log_R" else "log10_s", "values": values.tolist(),
           "depths": list(range(depth + 1)), "grid": grid.tolist()}
    bad = ~np.isfinite(grid)
    if bad.any():
        first = int(np.argmax(bad.any(1)))
        out["note"] = (f"the theory's {out['quantity']} is not finite (float64 overflow) at {int(bad.sum())} of "
                       f"{bad.size} grid points, from depth {first}; those are null in map.json")
    return out


def trainability_map(settings: MapSettings, log: Callable[[str], None] = print) -> MapResult:
    """Train every grid point (one batched model per depth) and measure its test accuracy."""
    predicted = theory_grid(settings)  # first: it checks the settings against the theory before any training
    device = resolve_device(settings.device)
    dataset = load_dataset(settings.data)
    train_split = take(dataset.train, settings.limit_train, settings.seed)
    test_split = take(dataset.test, settings.limit_test, settings.seed)
    train_loader = DeviceLoader(train_split, dataset.info, settings.batch_size, device=device, shuffle=True,
                                seed=settings.seed)
    test_loader = DeviceLoader(test_split, dataset.info, 1000, device=device)
    start = time.perf_counter()
    acc, loss, diverged = [], [], []
    for depth in settings.depths:
        models = []
        for i, value in enumerate(settings.values):
            torch.manual_seed(settings.seed * 100_003 + i)  # each grid point its own draw, the same at every depth
            models.append(build_grid_model(settings, float(value), depth, dataset.info).to(device))
        stacked = StackedModels(models)
        final = train_stacked(stacked, train_loader, settings.epochs, settings.lr, settings.momentum)
        acc.append(accuracy(stacked, test_loader).tolist())
        loss.append(final.tolist())
        diverged.append([not math.isfinite(v) for v in final.tolist()])
        log(f"depth {depth}: test accuracy " + " ".join(f"{a:.3f}" for a in acc[-1]) +
            f" ({time.perf_counter() - start:.0f} s)")
    wall = time.perf_counter() - start
    return MapResult(settings, acc, loss, diverged, wall, predicted)

