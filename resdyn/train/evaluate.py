"""Scoring: log-probabilities with optional test-time flip, mean loss and accuracy over a split, BatchNorm
statistics recomputed for the weights that are scored, and an epoch's record."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from resdyn.data import DeviceLoader
from resdyn.distributed import World
from resdyn.metrics import model_metrics
from resdyn.runs import EpochRecord
from resdyn.train.config import Config
from resdyn.train.data import Data, shard
from resdyn.train.parts import EpochStats, Parts

#: training images over which an EMA's BatchNorm statistics are recomputed before it is scored, unless
#: train.recompute_bn says otherwise (about 3 s for ResNet-20 in bf16 on two CPU cores)
EMA_BN_IMAGES = 10_000


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


def evaluate_epoch(config: Config, parts: Parts, data: Data, stats: EpochStats, epoch: int,
                   step: int) -> EpochRecord:
    """The epoch's record: the scored weights (the EMA's when there is one, with its BatchNorm statistics
    recomputed first) on test and validation data (with ``train.tta_flip``, each image's prediction averaged with
    its mirror image's), and what the model reports about itself."""
    scored, world = parts.scored, parts.world
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
            recompute_batchnorm(scored, data.train, parts.autocast, tc.recompute_bn or EMA_BN_IMAGES, world)
        test_loss, test_acc = evaluate(scored, data.test, parts.autocast, world, flip)
        if data.val is not None:
            val_loss, val_acc = evaluate(scored, data.val, parts.autocast, world, flip)
    return EpochRecord(
        epoch=epoch, step=step, lr=stats.lr, train_loss=stats.train_loss, train_acc=stats.train_acc,
        test_loss=test_loss, test_acc=test_acc, val_loss=val_loss, val_acc=val_acc, tta="flip" if flip else None,
        train_image_size=stats.image_size,
        # Reporting may reset a module's counters (an ODE block's NFE), so read it once and keep the result.
        model=world.mean_metrics(model_metrics(parts.model)),
        epoch_time_s=stats.time_s, eval_time_s=time.perf_counter() - t1, images_per_s=stats.images / stats.time_s,
    )
