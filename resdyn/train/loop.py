"""The training loop: a few named phases around one visible loop over epochs and steps.

``train(config, out)`` is::

    data = load_data(...)                     # the splits, resident on the device
    parts = build_parts(...)                  # model, optimiser, weight averages, precision
    state = start_or_resume(...)              # a fresh TrainState, or the checkpoint's
    for epoch in ...:
        stats = train_epoch(...)              # the inner loop over the batches
        record = evaluate_epoch(...)          # test (and validation) scores, the model's own reports
        ... early stopping, checkpoint ...
    summary = finish(...)                     # the final weights' scores, summary.json

It writes the run folder as it goes (see ``resdyn.runs``): config first, then after every epoch a metrics line
and an atomic checkpoint, and the summary at the end, holding the folder's lock throughout.
``train(..., resume=True)`` continues from the checkpoint; on the CPU the result is bit-identical to a run
that was never stopped, because everything random is either derived from (seed, epoch) or restored from the
checkpoint.

Under ``torchrun`` every process runs this same code (see ``resdyn.distributed``): each trains on its part of
every global batch (``train.batch_size`` images), gradients are averaged by DistributedDataParallel, metrics
are summed over the processes, and only rank 0 touches the run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from resdyn import version as provenance
from resdyn.analysis.profile import mult_adds
from resdyn.data import Augment, DatasetInfo, DeviceLoader, Resize, Split, load_dataset, split_validation, take
from resdyn.device import (
    Speed,
    choose_speed,
    configure_backends,
    describe_device,
    peak_memory_bytes,
    reset_peak_memory,
    resolve_device,
)
from resdyn.distributed import World, join_world, sync_batchnorm
from resdyn.errors import ConfigError, ResdynError
from resdyn.metrics import extra_loss, model_metrics
from resdyn.nets import build_model
from resdyn.runs import Checkpoint, EpochRecord, Resume, RunDir, RunError, Summary, TrainState, model_depth
from resdyn.schemes import scheme_name
from resdyn.tensorboard import TensorBoardLog
from resdyn.train.config import Config, dump_config
from resdyn.train.optim import build_optimizer, lr_at, penalised_weights, weight_penalty
from resdyn.train.progress import Progress

EpochHook = Callable[[int, EpochRecord], None]


class NonFiniteLossError(ResdynError, RuntimeError):
    """The loss became NaN or infinite; the run stops and its last checkpoint (if any) is left as it was."""

    def __init__(self, step: int, epoch: int, batch: int, run: Path, checkpointed: bool) -> None:
        self.step, self.epoch, self.batch = step, epoch, batch
        if checkpointed:
            where = (f"{run / RunDir.CHECKPOINT} still holds the last good epoch. Try a lower optim.lr, "
                     "schedule.warmup_epochs, or train.grad_clip, then `resdyn train --resume` with --set overrides.")
        else:
            where = ("no epoch had finished, so there is no checkpoint to resume. Try a lower optim.lr, "
                     f"schedule.warmup_epochs, or train.grad_clip, and start again with --out {run} --overwrite.")
        super().__init__(f"non-finite loss at step {step} (epoch {epoch}, batch {batch}); the run stopped and {where}")


# -- data -------------------------------------------------------------------------------------------------
@dataclass
class Data:
    """The splits of a run, on the device: training (shuffled, augmented), test, and validation if held out;
    ``info.image_size`` is the size of the images the model sees (after any resize and crop)."""

    info: DatasetInfo
    train: DeviceLoader
    test: DeviceLoader
    val: DeviceLoader | None


def load_data(config: Config, device: torch.device, channels_last: bool) -> Data:
    """Load the dataset, hold out the validation split, apply the limits, and put every split on the device.

    Training images are resized to ``data.resize`` and then augmented (padded, cropped to ``data.crop`` at a random
    offset, flipped); evaluation's are resized and centre-cropped, or resized straight to the crop size
    (``data.eval_crop``), so both reach the model at the same size. Without ``data.augment`` training sees
    evaluation's images.
    """
    dc, tc = config.data, config.train
    dataset = load_dataset(dc.name, dc.dir, download=dc.download, test_part=dc.test_part)
    train_split: Split = dataset.train
    val_split: Split | None = None
    if dc.val_fraction > 0:
        train_split, val_split = split_validation(train_split, dc.val_fraction, tc.seed)
    train_split = take(train_split, dc.limit_train, tc.seed)
    test_split = take(dataset.test, dc.limit_test, tc.seed)
    if dc.crop is not None and dc.eval_crop == "resize":
        eval_resize = Resize(dc.crop)
    else:
        eval_resize = Resize(dc.resize, centre_crop=dc.crop)
    if dc.augment:
        augment, train_resize = Augment(dc.crop_padding, dc.flip, dc.crop), Resize(dc.resize)
    else:
        augment, train_resize = None, eval_resize
    train_loader = DeviceLoader(train_split, dataset.info, tc.batch_size, device=device, shuffle=True,
                                augment=augment, resize=train_resize, seed=tc.seed, channels_last=channels_last)

    def eval_loader(split: Split) -> DeviceLoader:
        return DeviceLoader(split, dataset.info, tc.eval_batch_size, device=device, resize=eval_resize,
                            channels_last=channels_last)

    test_loader = eval_loader(test_split)
    info = dataclasses.replace(dataset.info, image_size=test_loader.image_size)
    return Data(info, train_loader, test_loader, eval_loader(val_split) if val_split is not None else None)


def shard(loader: DeviceLoader, world: World, train: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """This process's part of each of the loader's (global) batches, with the global batch's size.

    Every process draws the same global batch (the order and augmentation depend only on seed and epoch) and
    keeps its rank's slice, so the union over ranks is exactly what one process would train on. A last training
    batch too small to give every process an image is dropped (DistributedDataParallel needs every process to
    take every step); evaluation keeps every image.
    """
    for x, y in loader:
        n = len(y)
        if world.size > 1:
            if train and n < world.size:
                continue
            x, y = x.tensor_split(world.size)[world.rank], y.tensor_split(world.size)[world.rank]
        yield x, y, n


def train_steps(loader: DeviceLoader, world: World) -> int:
    """Steps in a training epoch: the loader's batches less a last one :func:`shard` drops."""
    last = len(loader.labels) - (len(loader) - 1) * loader.batch_size
    return len(loader) - (1 if world.size > 1 and last < world.size else 0)


# -- model and optimiser ----------------------------------------------------------------------------------
@dataclass
class Parts:
    """What trains: the model, the callable that runs it (compiled and/or data-parallel), the optimiser, the
    weight averages, the loss, and the precision and memory layout."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    ema: AveragedModel | None
    swa: AveragedModel | None
    penalised: list[nn.Parameter]
    criterion: nn.Module
    speed: Speed

    @property
    def bf16(self) -> bool:
        return self.speed.bf16

    def autocast(self, device: torch.device) -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()


def build_parts(config: Config, info: DatasetInfo, device: torch.device, speed: Speed, world: World) -> Parts:
    """Build the model from the registry, its optimiser and weight averages (consuming the seeded RNG in a fixed
    order, which exact resume relies on), in ``speed``'s memory layout."""
    tc = config.train
    model = build_model(config.model.name, info.in_channels, info.num_classes, **config.model.options)
    if tc.sync_bn:
        model = sync_batchnorm(model)
    model = model.to(device)
    if speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.optim)
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
        if tc.ema_decay is not None else None
    )
    swa = AveragedModel(model) if tc.swa_start is not None else None
    forward: nn.Module = model
    if world.size > 1:
        # Unused parameters are expected: stochastic depth and drop-path skip branches on some steps.
        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=True)
    if tc.compile:
        mode = tc.compile_mode if tc.compile_mode != "auto" else (
            "reduce-overhead" if device.type == "cuda" else "default")
        forward = torch.compile(forward, mode=mode)
    criterion = nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
    return Parts(model, forward, optimizer, ema, swa, penalised_weights(model), criterion, speed)


# -- start or resume --------------------------------------------------------------------------------------
def _on_main(world: World, action: Callable[[], Any]) -> Any:
    """Run ``action`` on rank 0 and give every process its result; an error there is raised everywhere (rather
    than leaving the other processes waiting for rank 0)."""
    result, error = None, None
    if world.is_main:
        try:
            result = action()
        except ResdynError as e:
            error = e
    if world.size == 1:
        if error is not None:
            raise error
        return result
    result, message = world.broadcast((result, None if error is None else str(error)))
    if error is not None:
        raise error
    if message is not None:
        raise RunError(f"rank 0: {message}")
    return result


def start_or_resume(run: RunDir, config: Config, parts: Parts, device: torch.device, world: World, *,
                    checkpoint: Checkpoint | None, overwrite: bool, overrides: list[tuple[str, Any]],
                    command: str | None, progress: Progress) -> TrainState:
    """A new run (config.toml written), or the ``checkpoint``'s state restored into ``parts`` (the resume and
    its overrides recorded in the folder); rank 0 writes the folder."""
    version = provenance.loaded_version()
    if checkpoint is None:
        _on_main(world, lambda: run.create(dump_config(config), overwrite=overwrite))
        return TrainState(versions=[version], world_size=world.size)

    def reopen() -> None:
        run.reopen(checkpoint.state.epoch)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        run.add_resume(Resume(checkpoint.state.epoch, command, [list(o) for o in overrides], config.to_dict(),
                              started))

    _on_main(world, reopen)
    parts.model.load_state_dict(checkpoint.model)
    parts.optimizer.load_state_dict(checkpoint.optimizer)
    if parts.ema is not None:
        parts.ema.load_state_dict(checkpoint.ema)
    if parts.swa is not None:
        parts.swa.load_state_dict(checkpoint.swa)
    state = checkpoint.state
    if state.world_size == world.size:
        _set_rng_state(checkpoint.rng, device, world)
    else:
        # The data order depends only on (seed, epoch), so the run goes on as it would have; only the model's own
        # random draws (stochastic depth, noise) differ from an uninterrupted run, as they would anyway.
        torch.manual_seed(_rank_seed(config.train.seed, world.rank, state.epoch))
        progress.message(f"resuming with {world.size} process(es) a run last trained with {state.world_size}")
    state.versions = state.versions if state.versions[-1] == version else [*state.versions, version]
    state.world_size = world.size
    progress.message(f"resuming {run.path} after epoch {state.epoch}")
    return state


def _rank_seed(seed: int, rank: int, epoch: int) -> int:
    return (seed * 1_000_003 + rank) * 1_000_003 + epoch


def _rng_state(device: torch.device, world: World) -> dict[str, torch.Tensor]:
    """Every process's generator states: ``torch`` and ``cuda`` for rank 0, ``torch:R`` and ``cuda:R`` for rank R."""
    own = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        own["cuda"] = torch.cuda.get_rng_state(device)
    merged: dict[str, torch.Tensor] = {}
    for rank, states in enumerate(world.gather(own)):
        merged.update({key if rank == 0 else f"{key}:{rank}": value for key, value in states.items()})
    return merged


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device, world: World) -> None:
    suffix = "" if world.rank == 0 else f":{world.rank}"
    torch.set_rng_state(state[f"torch{suffix}"])
    if device.type == "cuda" and f"cuda{suffix}" in state:
        torch.cuda.set_rng_state(state[f"cuda{suffix}"], device)


# -- one epoch --------------------------------------------------------------------------------------------
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


def train_epoch(config: Config, parts: Parts, loader: DeviceLoader, state: TrainState, epoch: int,
                device: torch.device, world: World, run: RunDir, progress: Progress,
                board: TensorBoardLog | None = None) -> EpochStats:
    """One pass over the training set; advances ``state.step`` and ``state.train_time_s``; logs each step's lr
    to ``board`` when there is one."""
    tc = config.train
    model, optimizer = parts.model, parts.optimizer
    steps_per_epoch = train_steps(loader, world)
    # On a GPU each .item() stalls the pipeline, so the loss is looked at every few steps; the check still
    # names the first bad step, because that step is recorded on the device.
    check_every = 1 if device.type == "cpu" else 25
    in_swa = parts.swa is not None and epoch >= tc.swa_start
    model.train()
    loader.set_epoch(epoch)
    progressive = config.data.progressive()
    size = progressive.size(epoch, loader.image_size[0]) if progressive is not None else None
    loader.set_size(size)
    progress.start(f"epoch {epoch}/{tc.epochs}", steps_per_epoch)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    first_bad = torch.full((), -1, device=device, dtype=torch.long)
    seen = 0
    lr = 0.0
    epoch_start_step = state.step
    t0 = time.perf_counter()
    for batch, (x, y, global_batch) in enumerate(shard(loader, world, train=True)):
        lr = tc.swa_lr if in_swa and tc.swa_lr is not None else lr_at(
            config.schedule, config.optim.lr, tc.epochs, state.step, steps_per_epoch
        )
        _set_lr(optimizer, lr)
        try:
            with parts.autocast(device):
                logits = parts.forward(x)
                loss = parts.criterion(logits.float(), y)
        except RuntimeError as e:
            if size is None or batch > 0:
                raise
            raise ConfigError(f"{config.model.name} failed on the {size}x{size} training images of progressive "
                              f"resizing in epoch {epoch} (data.progressive_min_size = "
                              f"{config.data.progressive_min_size}; raise it): {e}") from e
        # DistributedDataParallel averages the processes' gradients; weighting each process's mean loss by its
        # share of the global batch makes that average the gradient of the global batch's mean loss.
        total = loss * (len(y) * world.size / global_batch) if world.size > 1 else loss
        for term in (weight_penalty(parts.penalised, config.optim.l1, config.optim.l2), extra_loss(model)):
            if term is not None:
                total = total + term
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if tc.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        if parts.ema is not None:
            parts.ema.update_parameters(model)

        detached = total.detach()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached), state.step, first_bad)
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        state.step += 1
        if board is not None:
            board.step(state.step, lr)
        if state.step % check_every == 0 or batch == steps_per_epoch - 1:
            bad = _first_bad_step(first_bad, world)
            if bad >= 0:
                raise NonFiniteLossError(bad, epoch, bad - epoch_start_step + 1, run.path,
                                         checkpointed=state.epoch > 0)
            progress.update(batch + 1, detached.item())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    epoch_time = time.perf_counter() - t0
    loader.set_size(None)  # what evaluates (and recomputes BatchNorm statistics) on it sees the full size
    state.train_time_s += epoch_time
    if world.size > 1:
        world.sum_(loss_sum)
        world.sum_(correct)
        seen = int(world.sum_(torch.tensor(seen)).item())
    if in_swa:
        parts.swa.update_parameters(model)
    return EpochStats(loss_sum.item() / seen, correct.item() / seen, seen, lr, epoch_time, size)


def _first_bad_step(first_bad: torch.Tensor, world: World) -> int:
    """The first step (over every process) whose loss was not finite, or -1."""
    if world.size == 1:
        return int(first_bad.item())
    never = torch.iinfo(torch.long).max
    earliest = int(world.min_(torch.where(first_bad < 0, never, first_bad).cpu()).item())
    return -1 if earliest == never else earliest


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


# -- evaluation -------------------------------------------------------------------------------------------
def predict(model: nn.Module, x: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """Log-probabilities of the classes of ``x`` (float32); with ``flip`` (test-time augmentation), the log of
    the mean of the softmax of each image and of its horizontal mirror image."""
    log_p = torch.log_softmax(model(x).float(), dim=1)
    if not flip:
        return log_p
    log_p_flipped = torch.log_softmax(model(x.flip(3)).float(), dim=1)
    return torch.logaddexp(log_p, log_p_flipped) - math.log(2)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, autocast: Callable[[], Any],
             world: World | None = None, flip: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``loader`` of :func:`predict` (each process scores its part of every
    batch, and the sums are added up); one host sync at the end."""
    world = world or World()
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    count = 0
    for x, y, _ in shard(loader, world, train=False):
        if len(y) == 0:
            continue
        with autocast():
            log_p = predict(model, x, flip)
        loss_sum += nn.functional.nll_loss(log_p, y, reduction="sum")
        correct += (log_p.argmax(1) == y).sum()
        count += len(y)
    if world.size > 1:
        world.sum_(loss_sum)
        world.sum_(correct)
        count = int(world.sum_(torch.tensor(count)).item())
    return loss_sum.item() / count, correct.item() / count


#: training images over which an EMA's BatchNorm statistics are recomputed before it is scored, unless
#: train.recompute_bn says otherwise (about 3 s for ResNet-20 in bf16 on two CPU cores)
EMA_BN_IMAGES = 10_000


def recompute_batchnorm(model: nn.Module, loader: DeviceLoader, autocast: Callable[[], Any], images: int,
                        world: World | None = None) -> int:
    """Replace ``model``'s BatchNorm running statistics by their plain average over the first ``images`` training
    images (whole batches; all of the loader's if it has fewer), passed as they come (the loader's current order
    and augmentation); returns how many images were used (0: the model has no BatchNorm).

    The running statistics are an exponential average over the last steps, taken while the weights still moved:
    they lag behind weights that were still moving when training stopped (a schedule cut short, a best-validation
    epoch), and they belong to no weights at all for an average of weights (EMA, SWA). (At the end of a one-cycle
    run, whose lr ends near zero, recomputing them changed Fashion-MNIST scores only by noise.) Only the
    BatchNorm layers run in training mode, everything else as in evaluation (no dropped blocks, no shake-shake
    noise), under the evaluation's ``autocast``, so the statistics are those of the network that is scored. In a
    data-parallel run each process averages over its part of each batch and the averages are averaged.
    """
    world = world or World()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.eval()
    for m in norms:
        m.train()
    seen = 0
    try:
        with torch.no_grad():
            for x, _, n in shard(loader, world, train=False):
                if seen >= images:
                    break
                if len(x):
                    with autocast():
                        model(x)
                seen += n
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    if world.size > 1:
        for m in norms:
            for buffer in (m.running_mean, m.running_var):
                world.sum_(buffer).div_(world.size)
    return seen


def evaluate_epoch(config: Config, parts: Parts, data: Data, stats: EpochStats, epoch: int, step: int,
                   device: torch.device, world: World) -> EpochRecord:
    """The epoch's record: the scored weights (the EMA's when there is one, with its BatchNorm statistics
    recomputed first) on test and validation data (with ``train.tta_flip``, each image's prediction averaged with
    its mirror image's), and what the model reports about itself."""
    scored = parts.ema.module if parts.ema is not None else parts.model
    autocast = functools.partial(parts.autocast, device)
    t1 = time.perf_counter()
    tc = config.train
    flip = tc.tta_flip
    test_loss = test_acc = val_loss = val_acc = None
    if epoch % tc.eval_every == 0 or epoch == tc.epochs:
        # An EMA's averaged running statistics are not the statistics of its averaged weights (scored with them,
        # the EMA of a ResNet-20 after a one-cycle run reached 25% where its raw weights had 94%): recomputed
        # before every score. With train.recompute_bn the last epoch's weights get theirs recomputed too, so that
        # this record, the checkpoint and the summary all hold the final statistics.
        if parts.ema is not None or (tc.recompute_bn is not None and epoch == tc.epochs):
            recompute_batchnorm(scored, data.train, autocast, tc.recompute_bn or EMA_BN_IMAGES, world)
        test_loss, test_acc = evaluate(scored, data.test, autocast, world, flip)
        if data.val is not None:
            val_loss, val_acc = evaluate(scored, data.val, autocast, world, flip)
    return EpochRecord(
        epoch=epoch, step=step, lr=stats.lr, train_loss=stats.train_loss, train_acc=stats.train_acc,
        test_loss=test_loss, test_acc=test_acc, val_loss=val_loss, val_acc=val_acc, tta="flip" if flip else None,
        train_image_size=stats.image_size,
        # Reporting may reset a module's counters (an ODE block's NFE), so read it once and keep the result.
        model=world.mean_metrics(model_metrics(parts.model)),
        epoch_time_s=stats.time_s, eval_time_s=time.perf_counter() - t1, images_per_s=stats.images / stats.time_s,
    )


# -- the run ----------------------------------------------------------------------------------------------
def train(
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_epoch_end: EpochHook | None = None,
    progress: Progress | None = None,
    command: str | None = None,
    overrides: list[tuple[str, Any]] | None = None,
) -> Summary:
    """Train ``config`` into the run folder ``out`` and return the summary (also written to summary.json).

    ``on_epoch_end(epoch, record)`` is called after each epoch's checkpoint is safely on disk. ``overrides``
    (dotted key, value) are what this resume changed in the stored config; they are recorded in the folder.
    """
    config.validate()
    run = RunDir(out)
    tc = config.train
    device = resolve_device(tc.device)
    world = join_world(device.type)
    device = configure_backends(device, world.local_rank)
    progress = progress or Progress(tc.progress)
    if not world.is_main:
        progress = Progress("off")
    torch.manual_seed(tc.seed)
    memory_reset = reset_peak_memory(device)

    with ExitStack() as holding:
        if world.is_main:
            took_over = holding.enter_context(run.lock())
            if took_over:
                progress.message(f"took over the lock of {run.path} left by a training that is gone ({took_over})")
        # Read (and check) the checkpoint before the data, so that a damaged one is named at once.
        checkpoint = _on_main(world, lambda: run.load_checkpoint(map_location="cpu")) if resume else None
        speed = choose_speed(device, tc.precision, tc.channels_last)
        data = load_data(config, device, speed.channels_last)
        parts = build_parts(config, data.info, device, speed, world)
        if world.size > 1:
            # Every process built the same initial weights; the model's own random draws must differ by rank.
            torch.manual_seed(_rank_seed(tc.seed, world.rank, 0))
        state = start_or_resume(run, config, parts, device, world, checkpoint=checkpoint, overwrite=overwrite,
                                overrides=overrides or [], command=command, progress=progress)

        board = None
        if tc.tensorboard and world.is_main:
            board = holding.enter_context(TensorBoardLog(run.path, steps_done=state.step))
        stopped_early = False
        last: EpochRecord | None = None
        for epoch in range(state.epoch + 1, tc.epochs + 1):
            stats = train_epoch(config, parts, data.train, state, epoch, device, world, run, progress, board)
            last = evaluate_epoch(config, parts, data, stats, epoch, state.step, device, world)
            state.epoch = epoch
            if last.test_acc is not None:
                state.best_test_acc = max(state.best_test_acc, last.test_acc)
            if tc.early_stop_patience is not None:
                stopped_early = state.early_stop.update(getattr(last, tc.early_stop_metric), epoch,
                                                        tc.early_stop_metric == "val_acc", tc.early_stop_patience)
            save_epoch(run, config, parts, state, last, device, world)
            if board is not None:
                board.epoch(last.to_json())
            progress.end(_epoch_line(last))
            if on_epoch_end is not None:
                on_epoch_end(epoch, last)
            if stopped_early:
                progress.message(f"early stop: {tc.early_stop_metric} has not improved for "
                                 f"{tc.early_stop_patience} epochs (best at epoch {state.early_stop.best_epoch})")
                break
        return finish(run, config, parts, data, state, last, stopped_early, device, world, command, memory_reset)


def save_epoch(run: RunDir, config: Config, parts: Parts, state: TrainState, record: EpochRecord,
               device: torch.device, world: World) -> None:
    """The epoch's metrics line, best.pt when validation improved, then the checkpoint (rank 0 writes)."""
    scored = parts.ema.module if parts.ema is not None else parts.model
    rng = _rng_state(device, world)
    if not world.is_main:
        return
    if config.train.early_stop_patience is not None and state.early_stop.best_epoch == state.epoch:
        run.save_best(scored.state_dict(), state.epoch)
    # Metrics first, then the checkpoint: a kill in between leaves a metrics line that resume drops.
    run.append_metrics(record)
    run.save_checkpoint(Checkpoint(
        copy.deepcopy(state), parts.model.state_dict(), parts.optimizer.state_dict(),
        parts.ema.state_dict() if parts.ema is not None else None,
        parts.swa.state_dict() if parts.swa is not None else None, rng, config.to_dict(),
    ))
    run.mark_resume_applied()


def finish(run: RunDir, config: Config, parts: Parts, data: Data, state: TrainState, last: EpochRecord | None,
           stopped_early: bool, device: torch.device, world: World, command: str | None,
           memory_reset: bool = False) -> Summary:
    """Choose the final weights (EMA, SWA, or the best validation epoch's), score them, write the summary."""
    tc = config.train
    model = parts.model
    autocast = functools.partial(parts.autocast, device)
    final, final_kind = (parts.ema.module, "ema") if parts.ema is not None else (model, "last")
    # evaluate_epoch recomputed the statistics of the last epoch's weights; other final weights need it here.
    bn_due = tc.recompute_bn is not None and state.epoch < tc.epochs
    if parts.swa is not None and state.epoch >= tc.swa_start:
        # The average of several weights has no running statistics of its own: always over all training images.
        recompute_batchnorm(parts.swa.module, data.train, autocast, len(data.train.labels), world)
        final, final_kind, bn_due = parts.swa.module, "swa", False
    if tc.early_stop_patience is not None:
        best = _on_main(world, lambda: run.load_best(map_location="cpu") if run.file(RunDir.BEST).exists() else None)
        if best is not None:
            model.load_state_dict(best[0])
            final, final_kind = model, f"best_val_epoch_{best[1]}"
            bn_due = tc.recompute_bn is not None
    if bn_due:
        recompute_batchnorm(final, data.train, autocast, tc.recompute_bn, world)
    if final_kind in ("ema", "last") and not bn_due and last is not None and last.test_acc is not None:
        # The last epoch scored these very weights already (a run resumed after its last epoch has no record).
        test_loss, test_acc = last.test_loss, last.test_acc
    else:
        test_loss, test_acc = evaluate(final, data.test, autocast, world, tc.tta_flip)
    final_metrics = world.mean_metrics(model_metrics(final))
    if not world.is_main:
        return world.broadcast(None)

    metrics = run.read_metrics()
    info = data.info
    peak, peak_kind = peak_memory_bytes(device, since_reset=memory_reset)
    summary = Summary(
        model=config.model.name, model_options=config.model.options, data=config.data.name,
        params=sum(p.numel() for p in model.parameters()), epochs=state.epoch, steps=state.step,
        train_images=len(data.train.labels), test_images=len(data.test.labels),
        test_acc=test_acc, test_loss=test_loss, test_error=1 - test_acc,
        best_test_acc=max(state.best_test_acc, test_acc), final_weights=final_kind, stopped_early=stopped_early,
        train_time_s=state.train_time_s,
        train_time_per_epoch_s=state.train_time_s / max(len(metrics), 1),
        # Over the scored epochs only: with train.eval_every the others took no evaluation time.
        eval_time_per_epoch_s=_mean([m.eval_time_s for m in metrics
                                     if m.test_acc is not None or m.val_acc is not None]),
        images_per_s=_mean([m.images_per_s for m in metrics]),
        peak_memory_bytes=peak, peak_memory_kind=peak_kind,
        checkpoint_bytes=run.file(RunDir.CHECKPOINT).stat().st_size if run.has_checkpoint() else None,
        device=describe_device(device), precision=parts.speed.describe(), tta="flip" if tc.tta_flip else None,
        seed=tc.seed, torch=torch.__version__, commit=state.versions[0], commits=state.versions,
        command=command,
        # On a copy: counting runs a forward pass, which must not touch the final model's counters.
        mult_adds_per_image=mult_adds(copy.deepcopy(final), (info.in_channels, *info.image_size)),
        depth=model_depth(config.model.name, config.model.options), world_size=world.size,
        scheme=scheme_name(model),
        # The last epoch's training-time statistics (e.g. NFE), then what the final model reports now.
        model_metrics={**(last.model if last is not None else {}), **final_metrics},
    )
    run.write_summary(summary)
    run.mark_resume_applied()
    return world.broadcast(summary)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _epoch_line(r: EpochRecord) -> str:
    parts = [f"train loss {r.train_loss:.4f} acc {r.train_acc:.4f}"]
    if r.val_acc is not None:
        parts.append(f"val acc {r.val_acc:.4f}")
    if r.test_acc is not None:
        parts.append(f"test loss {r.test_loss:.4f} acc {r.test_acc:.4f}")
    parts.append(f"lr {r.lr:.3g}  {r.epoch_time_s:.1f}s  {r.images_per_s:.0f} img/s")
    return " | ".join(parts)


__all__ = ["NonFiniteLossError", "evaluate", "recompute_batchnorm", "train"]
