"""The end of a training: choose the final weights (EMA, SWA, the best validation epoch's, or the last) and score
them, then write the summary."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from resdyn.analysis.profile import mult_adds
from resdyn.device import describe_device, peak_memory_bytes
from resdyn.metrics import model_metrics
from resdyn.runs import EpochRecord, RunDir, Summary, TrainState, model_depth
from resdyn.schemes import scheme_name
from resdyn.train.config import Config
from resdyn.train.data import Data
from resdyn.train.evaluate import evaluate, recompute_batchnorm
from resdyn.train.gradstats import first_to_last
from resdyn.train.parts import Job, Parts
from resdyn.train.resume import on_main


@dataclass
class Final:
    """The final weights, what they are (``Summary.final_weights``), their test scores, and the model's reports
    (the last epoch's training-time ones, then what the final model reports now)."""

    model: nn.Module
    kind: str
    test_loss: float
    test_acc: float
    metrics: dict[str, Any]


def choose_final(config: Config, parts: Parts, data: Data, state: TrainState, last: EpochRecord | None,
                 job: Job) -> Final:
    """The final weights (the EMA's, SWA's or Polyak's, or the best validation epoch's, else the last), their BatchNorm
    statistics recomputed where due, scored (unless the last epoch scored these very weights already)."""
    tc = config.train
    model, world = parts.model, parts.world
    final, kind = (parts.ema.module, "ema") if parts.ema is not None else (model, "last")
    # evaluate_epoch recomputed the statistics of the last epoch's weights; other final weights need it here.
    bn_due = tc.recompute_bn is not None and state.epoch < tc.epochs
    start, average = (tc.swa_start, "swa") if tc.swa_start is not None else (tc.polyak_start, "polyak")
    if parts.swa is not None and state.epoch >= start:
        # The average of several weights has no running statistics of its own: always over all training images.
        recompute_batchnorm(parts.swa.module, data.train, parts.autocast, len(data.train.labels), world)
        final, kind, bn_due = parts.swa.module, average, False
    if tc.early_stop_patience is not None:
        best = job.best if job.run is None else on_main(
            world, lambda: job.run.load_best(map_location="cpu") if job.run.file(RunDir.BEST).exists() else None)
        if best is not None:
            model.load_state_dict(best[0])
            final, kind = model, f"best_val_epoch_{best[1]}"
            bn_due = tc.recompute_bn is not None
    if bn_due:
        recompute_batchnorm(final, data.train, parts.autocast, tc.recompute_bn, world)
    if kind in ("ema", "last") and not bn_due and last is not None and last.test_acc is not None:
        # The last epoch scored these very weights already (a run resumed after its last epoch has no record).
        test_loss, test_acc = last.test_loss, last.test_acc
    else:
        test_loss, test_acc = evaluate(final, data.test, parts.autocast, world, tc.tta_flip)
    metrics = {**(last.model if last is not None else {}), **world.mean_metrics(model_metrics(final))}
    return Final(final, kind, test_loss, test_acc, metrics)


def summarise(config: Config, parts: Parts, data: Data, state: TrainState, final: Final, stopped_early: bool,
              job: Job) -> Summary:
    """The run's summary, written to summary.json when there is a folder (rank 0 builds it; every process gets
    it)."""
    world = parts.world
    if not world.is_main:
        return world.broadcast(None)
    tc, info, model, run, records = config.train, data.info, parts.model, job.run, job.records
    # The highest of this process's peak and those of the processes that trained the run before a resume.
    state.note_peak_memory(*peak_memory_bytes(parts.device, job.memory))
    peak, peak_kind = state.peak_memory_bytes, state.peak_memory_kind
    summary = Summary(
        model=config.model.name, model_options=config.model.options, data=config.data.name,
        params=sum(p.numel() for p in model.parameters()), epochs=state.epoch, steps=state.step,
        train_images=len(data.train.labels), test_images=len(data.test.labels),
        test_acc=final.test_acc, test_loss=final.test_loss, test_error=1 - final.test_acc,
        best_test_acc=max(state.best_test_acc, final.test_acc), final_weights=final.kind,
        stopped_early=stopped_early, train_time_s=state.train_time_s,
        # By the checkpoint's count: metrics.jsonl may have lost lines (train_time_s covers every epoch).
        train_time_per_epoch_s=state.train_time_s / max(state.epoch, 1),
        # Over the scored epochs only: with train.eval_every the others took no evaluation time.
        eval_time_per_epoch_s=_mean([m.eval_time_s for m in records
                                     if m.test_acc is not None or m.val_acc is not None]),
        images_per_s=_mean([m.images_per_s for m in records]),
        peak_memory_bytes=peak, peak_memory_kind=peak_kind,
        checkpoint_bytes=(run.file(RunDir.CHECKPOINT).stat().st_size
                          if run is not None and run.has_checkpoint() else None),
        device=describe_device(parts.device), precision=parts.speed.describe(),
        tta="flip" if tc.tta_flip else None, seed=tc.seed, torch=torch.__version__, commit=state.versions[0],
        commits=state.versions, command=job.command,
        # On a copy: counting runs a forward pass, which must not touch the final model's counters.
        mult_adds_per_image=mult_adds(copy.deepcopy(final.model), (info.in_channels, *info.image_size)),
        depth=model_depth(config.model.name, config.model.options), world_size=world.size,
        scheme=scheme_name(model), model_metrics=final.metrics,
        grad_norm_ratio_start=first_to_last(job.grad_stats[0]) if job.grad_stats else None,
        grad_norm_ratio_end=first_to_last(job.grad_stats[-1]) if job.grad_stats else None,
    )
    if run is not None:
        run.write_summary(summary)
        run.mark_resume_applied()
    return world.broadcast(summary)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
