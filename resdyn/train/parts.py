"""What the phases of a training share: where it computes (:class:`Placement`), what trains (:class:`Parts`),
how it is run and recorded (:class:`Job`), and what an epoch of training measured (:class:`EpochStats`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from resdyn.device import MemoryMark, Speed, choose_speed, configure_backends, resolve_device
from resdyn.distributed import World, join_world, sync_batchnorm
from resdyn.runs import Checkpoint, EpochRecord, GradStatsRecord, RunDir
from resdyn.train.config import Config, TrainConfig
from resdyn.train.gradstats import GradStats
from resdyn.train.optim import build_optimizer, penalised_weights
from resdyn.train.perturb import WeightNoise, smoothed_loss
from resdyn.train.preempt import StopRequest
from resdyn.train.progress import Progress

EpochHook = Callable[[int, EpochRecord], None]


@dataclass(frozen=True)
class Placement:
    """Where a training computes: this process's device, the processes it trains with, and the precision and
    memory layout (``speed``)."""

    device: torch.device
    world: World
    speed: Speed

    def autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast on the device when the run computes in bf16, else nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.speed.bf16 else nullcontext()


def place(tc: TrainConfig) -> Placement:
    """Resolve ``train.device`` (joining torchrun's processes when there are any), set the backends up for it,
    and choose the precision and memory layout."""
    device = resolve_device(tc.device)
    world = join_world(device.type)
    device = configure_backends(device, world.local_rank)
    return Placement(device, world, choose_speed(device, tc.precision, tc.channels_last))


@dataclass
class Parts:
    """What trains: the model, the callable that runs it (compiled and/or data-parallel), the optimiser, the
    weight averages and the loss, and where all of it computes."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    ema: AveragedModel | None
    swa: AveragedModel | None
    penalised: list[nn.Parameter]
    criterion: nn.Module
    placement: Placement
    #: the gradient statistics' hooks on the model (train.grad_stats), else None
    grad_stats: GradStats | None = None
    #: the noise on the weights for each training step (optim.weight_noise), else None
    weight_noise: WeightNoise | None = None

    @property
    def device(self) -> torch.device:
        return self.placement.device

    @property
    def world(self) -> World:
        return self.placement.world

    @property
    def speed(self) -> Speed:
        return self.placement.speed

    def autocast(self) -> AbstractContextManager[Any]:
        return self.placement.autocast()

    @property
    def scored(self) -> nn.Module:
        """The weights an epoch is scored with: the EMA's when there is one."""
        return self.ema.module if self.ema is not None else self.model


def build_parts(config: Config, model: nn.Module, placement: Placement) -> Parts:
    """Put ``model`` on the device in the placement's memory layout and build its optimiser and weight averages
    (consuming the seeded RNG in a fixed order, which exact resume relies on)."""
    tc = config.train
    device = placement.device
    if tc.sync_bn:
        model = sync_batchnorm(model)
    model = model.to(device)
    if placement.speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.optim)
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
        if tc.ema_decay is not None else None
    )
    # Polyak's average of every step keeps SWA's equal-weight running mean, only updated every step.
    swa = AveragedModel(model) if tc.swa_start is not None or tc.polyak_start is not None else None
    forward: nn.Module = model
    if placement.world.size > 1:
        # Unused parameters are expected: stochastic depth and drop-path skip branches on some steps.
        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=True)
    if tc.compile:
        mode = tc.compile_mode if tc.compile_mode != "auto" else (
            "reduce-overhead" if device.type == "cuda" else "default")
        forward = torch.compile(forward, mode=mode)
    criterion = smoothed_loss(tc)
    grad_stats = GradStats(model, tc.grad_stats_every) if tc.grad_stats else None
    penalised = penalised_weights(model)
    weight_noise = WeightNoise(penalised, config.optim.weight_noise) if config.optim.weight_noise else None
    return Parts(model, forward, optimizer, ema, swa, penalised, criterion, placement, grad_stats, weight_noise)


@dataclass
class Job:
    """How a training is run and what it keeps besides its weights: the run folder (None: nothing is written),
    the checkpoint it resumes, and the epoch records (and, without a folder, the best validation weights)."""

    run: RunDir | None
    progress: Progress
    checkpoint: Checkpoint | None = None
    overwrite: bool = False
    #: (dotted key, value) that this resume changed in the stored config; recorded in the folder
    overrides: list[tuple[str, Any]] = field(default_factory=list)
    command: str | None = None
    on_epoch_end: EpochHook | None = None
    #: where the peak-memory measurement started (None: not measured from the start)
    memory: MemoryMark | None = None
    #: the stop signals' request while a training with a folder runs (resdyn.train.preempt), else None
    stop: StopRequest | None = None
    records: list[EpochRecord] = field(default_factory=list)
    #: the gradient statistics recorded so far (train.grad_stats)
    grad_stats: list[GradStatsRecord] = field(default_factory=list)
    #: the best validation epoch's weights and its number, kept here when there is no run folder
    best: tuple[dict[str, torch.Tensor], int] | None = None


@dataclass
class EpochStats:
    """What the inner loop measured: mean training loss and accuracy over every process's images, the last lr."""

    train_loss: float
    train_acc: float
    images: int
    lr: float
    time_s: float
    #: the training images' size under progressive resizing (data.progressive_min_size), else None
    image_size: int | None = None
    #: the epoch's gradient statistics (train.grad_stats)
    grad_stats: list[GradStatsRecord] = field(default_factory=list)
