"""The training loop: a few named phases around one visible loop over epochs and steps.

``train(config, out)`` builds the model from the registry, loads the data, and runs the same core as
``resdyn.fit(model, ...)``, :func:`run_training`::

    parts = build_parts(config, model, placement)   # the model on the device, optimiser, weight averages
    state = start_or_resume(config, parts, job)     # a fresh TrainState, or the checkpoint's
    for epoch in ...:
        stats = train_epoch(...)                    # the inner loop over the batches
        record = evaluate_epoch(...)                # test (and validation) scores, the model's own reports
        ... early stopping, save_epoch ...          # metrics line, checkpoint
    final = choose_final(...)                       # EMA, SWA, best validation epoch, or the last weights
    summary = summarise(...)                        # summary.json

The phases live beside it: ``parts.py`` (Placement, Parts, Job), ``data.py``, ``evaluate.py``, ``resume.py``,
``finish.py``. With a folder it writes the run folder as it goes (see ``resdyn.runs``): config first, then after
every epoch a metrics line and an atomic checkpoint, and the summary at the end, holding the folder's lock
throughout. ``train(..., resume=True)`` continues from the checkpoint; on the CPU the result is bit-identical to a
run that was never stopped, because everything random is either derived from (seed, epoch) or restored from the
checkpoint.

Under ``torchrun`` every process runs this same code (see ``resdyn.distributed``): each trains on its part of
every global batch (``train.batch_size`` images), gradients are averaged by DistributedDataParallel, metrics
are summed over the processes, and only rank 0 touches the run folder.
"""

from __future__ import annotations

import copy
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from torch import nn

from resdyn.data import DeviceLoader
from resdyn.data.loader import resize_batch
from resdyn.device import describe_device, reset_peak_memory
from resdyn.distributed import World
from resdyn.errors import ConfigError, ResdynError
from resdyn.metrics import extra_loss
from resdyn.nets import build_model
from resdyn.runs import EpochRecord, RunDir, Summary, TrainState
from resdyn.tensorboard import TensorBoardLog
from resdyn.train.config import Config
from resdyn.train.data import Data, load_data, shard, train_steps
from resdyn.train.evaluate import EMA_BN_IMAGES, evaluate, evaluate_epoch, predict, recompute_batchnorm
from resdyn.train.finish import choose_final, summarise
from resdyn.train.optim import lr_at, weight_penalty
from resdyn.train.parts import EpochHook, EpochStats, Job, Parts, Placement, build_parts, place
from resdyn.train.perturb import input_noise
from resdyn.train.preempt import Preempted, catching
from resdyn.train.progress import Progress
from resdyn.train.resume import check_same_run, holding, on_main, rank_seed, save_epoch, save_partial, start_or_resume

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11


class NonFiniteLossError(ResdynError, RuntimeError):
    """The loss became NaN or infinite; the run stops and its last checkpoint (if any) is left as it was.
    ``advice`` (what to do, worded by whoever knows the run folder) follows the plain facts."""

    def __init__(self, step: int, epoch: int, batch: int, advice: str | None = None) -> None:
        self.step, self.epoch, self.batch, self.advice = step, epoch, batch, advice
        facts = f"non-finite loss at step {step} (epoch {epoch}, batch {batch})"
        super().__init__(facts if advice is None else f"{facts}; {advice}")

    def advised(self, advice: str) -> NonFiniteLossError:
        """The same error with ``advice`` added."""
        return NonFiniteLossError(self.step, self.epoch, self.batch, advice)


def _advice(run: RunDir | None, checkpointed: bool) -> str:
    """What to do after a non-finite loss, for a run into ``run`` (None: a training without a folder)."""
    lower = "Try a lower optim.lr, schedule.warmup_epochs, or train.grad_clip"
    if run is None:
        return f"the training stopped. {lower}, and train again."
    if checkpointed:
        return (f"the run stopped and {run.path / RunDir.CHECKPOINT} still holds the last good epoch. {lower}, then "
                "`resdyn train --resume` with --set overrides.")
    return (f"the run stopped and no epoch had finished, so there is no checkpoint to resume. {lower}, and start "
            f"again with --out {run.path} --overwrite.")


@dataclass
class Result:
    """What a training gives back: the final weights (in evaluation mode, on the training device), the summary,
    every epoch's record, and the run folder (None when nothing was written)."""

    model: nn.Module
    summary: Summary
    epochs: list[EpochRecord]
    folder: Path | None


# -- one epoch --------------------------------------------------------------------------------------------
def check_size(config: Config, parts: Parts, loader: DeviceLoader, size: int, epoch: int) -> None:
    """Refuse, before the epoch, a progressive-resizing size too small for the model: one of ``loader``'s images
    at ``size`` x ``size`` through a copy of the model in evaluation mode (no statistic, counter or random draw of
    the model that trains moves)."""
    probe = copy.deepcopy(parts.model).eval()
    x = resize_batch(loader.images[:1].float(), size)
    try:
        with torch.random.fork_rng(devices=[parts.device] if parts.device.type == "cuda" else []), \
                torch.no_grad(), parts.autocast():
            probe(x)
    except RuntimeError as e:
        raise ConfigError(f"{config.model.name} failed on the {size}x{size} training images of progressive resizing "
                          f"in epoch {epoch} (data.progressive_min_size = {config.data.progressive_min_size}; "
                          f"raise it): {e}") from e


def train_epoch(config: Config, parts: Parts, loader: DeviceLoader, state: TrainState, epoch: int, job: Job,
                board: TensorBoardLog | None = None) -> EpochStats:
    """One pass over the training set (from batch ``state.epoch_batches`` on, where a signal stopped the last
    one inside this epoch); advances ``state.step`` and ``state.train_time_s``; logs each step's lr to ``board``
    when there is one. A non-finite loss raises :class:`NonFiniteLossError` (without advice); a stop signal
    (``job.stop``) a checkpoint of the step reached and :class:`Preempted`."""
    tc, progress = config.train, job.progress
    model, optimizer, device, world = parts.model, parts.optimizer, parts.device, parts.world
    steps_per_epoch = train_steps(loader, world)
    # On a GPU each .item() stalls the pipeline, so the loss is looked at every few steps; the check still
    # names the first bad step, because that step is recorded on the device.
    check_every = 1 if device.type == "cpu" else 25
    in_swa = tc.swa_start is not None and epoch >= tc.swa_start
    in_polyak = tc.polyak_start is not None and epoch >= tc.polyak_start
    grad_stats, weight_noise = parts.grad_stats, parts.weight_noise
    loader.set_epoch(epoch)
    progressive = config.data.progressive()
    size = progressive.size(epoch, loader.image_size[0]) if progressive is not None else None
    if size is not None and size != loader.image_size[0]:
        check_size(config, parts, loader, size, epoch)
    loader.set_size(size)
    model.train()
    progress.start(f"epoch {epoch}/{tc.epochs}", steps_per_epoch)
    # Resumed inside this epoch: go on from its batch with the sums so far (kept whole on rank 0, which sums them
    # over the processes when it stopped).
    start = state.epoch_batches
    ours = world.is_main
    loss_sum = torch.tensor(state.epoch_loss_sum if ours else 0.0, device=device)
    correct = torch.tensor(state.epoch_correct if ours else 0, device=device, dtype=torch.long)
    first_bad = torch.full((), -1, device=device, dtype=torch.long)
    seen = state.epoch_seen if ours else 0
    lr = 0.0
    epoch_start_step = state.step - start
    t0 = time.perf_counter() - state.epoch_time_s
    for batch, (x, y, global_batch) in enumerate(shard(loader, world, train=True, start=start), start):
        lr = tc.swa_lr if in_swa and tc.swa_lr is not None else lr_at(
            config.schedule, config.optim.lr, tc.epochs, state.step, steps_per_epoch
        )
        _set_lr(optimizer, lr)
        if grad_stats is not None:
            grad_stats.watch(state.step)
        if weight_noise is not None:
            weight_noise.add()  # the gradient is taken at the noisy weights
        with parts.autocast():
            logits = parts.forward(input_noise(x, config.data.input_noise))
            loss = parts.criterion(logits.float(), y)
        # DistributedDataParallel averages the processes' gradients; weighting each process's mean loss by its
        # share of the global batch makes that average the gradient of the global batch's mean loss.
        total = loss * (len(y) * world.size / global_batch) if world.size > 1 else loss
        for term in (weight_penalty(parts.penalised, config.optim.l1, config.optim.l2), extra_loss(model)):
            if term is not None:
                total = total + term
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if weight_noise is not None:
            weight_noise.remove()  # the clean weights back, bit for bit, before the update
        if grad_stats is not None:
            grad_stats.record(epoch)  # the gradient as backprop gives it, before clipping
        if tc.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        if parts.ema is not None:
            parts.ema.update_parameters(model)
        if in_polyak:
            parts.swa.update_parameters(model)  # every step's weights, equally (Polyak and Juditsky 1992)

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
                raise NonFiniteLossError(bad, epoch, bad - epoch_start_step + 1)
            progress.update(batch + 1, detached.item())
            stop = job.stop.agreed(world, device) if job.stop is not None else None
            if stop is not None and batch < steps_per_epoch - 1:
                _stop_inside_epoch(config, parts, state, job, (batch + 1, loss_sum, correct, seen, t0))
                raise Preempted(stop, state.step, epoch, batch + 1, str(job.run.path if job.run else ""))
    state.end_partial_epoch()
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
    return EpochStats(loss_sum.item() / seen, correct.item() / seen, seen, lr, epoch_time, size,
                      grad_stats.take() if grad_stats is not None else [])


def _stop_inside_epoch(config: Config, parts: Parts, state: TrainState, job: Job,
                       progress: tuple[int, torch.Tensor, torch.Tensor, int, float]) -> None:
    """Keep the step reached inside an epoch: ``progress`` = (batches done, loss sum, correct, images seen, the
    epoch's start time) into ``state``, summed over the processes onto rank 0, then the checkpoint."""
    batches, loss_sum, correct, seen, t0 = progress
    world = parts.world
    if parts.device.type == "cuda":
        torch.cuda.synchronize(parts.device)
    if world.size > 1:
        world.sum_(loss_sum)
        world.sum_(correct)
        seen = int(world.sum_(torch.tensor(seen, device=parts.device)).item())
    state.epoch_batches, state.epoch_loss_sum, state.epoch_correct = batches, loss_sum.item(), int(correct.item())
    state.epoch_seen, state.epoch_time_s = seen, time.perf_counter() - t0
    save_partial(config, parts, state, job, parts.grad_stats.take() if parts.grad_stats is not None else [])


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


# -- the run ----------------------------------------------------------------------------------------------
def run_training(config: Config, model: nn.Module, data: Data, placement: Placement, job: Job) -> Result:
    """Train ``model`` on ``data`` as ``config`` says, keeping what ``job`` says; the core of :func:`train` and
    ``resdyn.fit``. The caller has seeded the RNG, built the model and holds the run folder's lock."""
    tc, world, progress = config.train, placement.world, job.progress
    parts = build_parts(config, model, placement)
    if world.size > 1:
        # Every process built the same initial weights; the model's own random draws must differ by rank.
        torch.manual_seed(rank_seed(tc.seed, world.rank, 0))
    state = start_or_resume(config, parts, job)

    with ExitStack() as holding_board:
        board = None
        if tc.tensorboard and world.is_main and job.run is not None:
            board = holding_board.enter_context(TensorBoardLog(job.run.path, steps_done=state.step))
        if job.run is not None and tc.stop_signals:
            job.stop = holding_board.enter_context(catching(tuple(tc.stop_signals)))
        stopped_early = False
        last: EpochRecord | None = None
        for epoch in range(state.epoch + 1, tc.epochs + 1):
            try:
                stats = train_epoch(config, parts, data.train, state, epoch, job, board)
            except NonFiniteLossError as e:
                raise e.advised(_advice(job.run, checkpointed=state.epoch > 0)) from None
            last = evaluate_epoch(config, parts, data, stats, epoch, state.step)
            state.epoch = epoch
            if last.test_acc is not None:
                state.best_test_acc = max(state.best_test_acc, last.test_acc)
            if tc.early_stop_patience is not None:
                stopped_early = state.early_stop.update(getattr(last, tc.early_stop_metric), epoch,
                                                        tc.early_stop_metric == "val_acc", tc.early_stop_patience)
            save_epoch(config, parts, state, last, job, stats.grad_stats)
            if board is not None:
                board.epoch(last.to_json())
                board.grad_stats(stats.grad_stats)
            progress.end(_epoch_line(last))
            if job.on_epoch_end is not None:
                job.on_epoch_end(epoch, last)
            stop = job.stop.agreed(world, parts.device) if job.stop is not None else None
            if stop is not None and epoch < tc.epochs and not stopped_early:
                raise Preempted(stop, state.step, epoch, train_steps(data.train, world), str(job.run.path))
            if stopped_early:
                progress.message(f"early stop: {tc.early_stop_metric} has not improved for "
                                 f"{tc.early_stop_patience} epochs (best at epoch {state.early_stop.best_epoch})")
                break
    final = choose_final(config, parts, data, state, last, job)
    summary = summarise(config, parts, data, state, final, stopped_early, job)
    return Result(final.model.eval(), summary, list(job.records), job.run.path if job.run is not None else None)


class TrainOptions(TypedDict, total=False):
    """:func:`train`'s options besides ``resume`` (the fields of :class:`~resdyn.train.parts.Job` a caller sets)."""

    #: start again in a folder that holds a run
    overwrite: bool
    #: ``on_epoch_end(epoch, record)``, called after each epoch's checkpoint is safely on disk
    on_epoch_end: EpochHook | None
    #: where progress goes (default: ``train.progress``'s mode on stderr)
    progress: Progress | None
    #: the command line, recorded in the summary and in a resume's record
    command: str | None
    #: (dotted key, value) that this resume changed in the stored config, recorded in the folder
    overrides: list[tuple[str, Any]] | None


def train(config: Config, out: str | Path, *, resume: bool = False, **options: Unpack[TrainOptions]) -> Summary:
    """Train ``config`` into the run folder ``out`` and return the summary (also written to summary.json);
    ``resume`` continues the run in ``out`` from its checkpoint. ``options``: see :class:`TrainOptions`."""
    unknown = sorted(set(options) - set(TrainOptions.__annotations__))
    if unknown:
        raise TypeError(f"train() got unexpected keyword argument(s) {', '.join(unknown)}; valid: resume, "
                        f"{', '.join(TrainOptions.__annotations__)}")
    config.validate()
    run = RunDir(out)
    tc = config.train
    placement = place(tc)
    world = placement.world
    progress = options.get("progress") or Progress(tc.progress)
    if not world.is_main:
        progress = Progress("off")
    torch.manual_seed(tc.seed)
    memory = reset_peak_memory(placement.device)
    with holding(run, world, progress):
        # Read (and check) the checkpoint before the data, so that a damaged one is named at once.
        checkpoint = on_main(world, lambda: run.load_checkpoint(map_location="cpu")) if resume else None
        if checkpoint is not None:
            check_same_run(checkpoint.config, config, run)
        data = load_data(config, placement.device, placement.speed.channels_last)
        model = build_model(config.model.name, data.info.in_channels, data.info.num_classes, **config.model.options)
        job = Job(run, progress, checkpoint, options.get("overwrite", False), options.get("overrides") or [],
                  options.get("command"), options.get("on_epoch_end"), memory)
        return run_training(config, model, data, placement, job).summary


def _epoch_line(r: EpochRecord) -> str:
    parts = [f"train loss {r.train_loss:.4f} acc {r.train_acc:.4f}"]
    if r.val_acc is not None:
        parts.append(f"val acc {r.val_acc:.4f}")
    if r.test_acc is not None:
        parts.append(f"test loss {r.test_loss:.4f} acc {r.test_acc:.4f}")
    parts.append(f"lr {r.lr:.3g}  {r.epoch_time_s:.1f}s  {r.images_per_s:.0f} img/s")
    return " | ".join(parts)


__all__ = [
    # the loop's own
    "NonFiniteLossError", "Result", "TrainOptions", "check_size", "run_training", "train", "train_epoch",
    # the phases it runs, importable from here as before the split
    "EMA_BN_IMAGES", "Data", "EpochStats", "Parts", "Placement", "build_parts", "describe_device", "evaluate",
    "evaluate_epoch", "load_data", "place", "predict", "recompute_batchnorm", "shard",
]
