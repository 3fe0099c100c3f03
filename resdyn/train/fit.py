"""A model object in, a trained model out: :func:`fit` (the core that ``train`` wraps, for a model built in Python)
and :func:`load_run` (a run folder's model back, in evaluation mode)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from resdyn.data import Dataset, Split
from resdyn.device import reset_peak_memory
from resdyn.errors import ConfigError
from resdyn.registry import UnknownNameError
from resdyn.runs import RunDir, RunError, Summary
from resdyn.train.config import Config, ModelConfig
from resdyn.train.data import TensorPair, as_dataset, prepare_data
from resdyn.train.loop import Result, run_training
from resdyn.train.parts import Job, place
from resdyn.train.progress import Progress
from resdyn.train.resume import holding

#: what fit trains on: a Dataset (with its test split), a Split, or a pair of tensors (images, labels)
TrainData = Dataset | Split | TensorPair


def fit(model: nn.Module, train_data: TrainData, test_data: Split | TensorPair | None = None,
        config: Config | None = None, out: str | Path | None = None) -> Result:
    """Train ``model`` (any ``nn.Module`` that maps an image batch to class logits, e.g. a ``Network`` with a
    Scheme of your own) on ``train_data`` and score it on ``test_data``, as ``resdyn train`` would.

    The data: a pair of tensors ``(images, labels)`` (images ``(N, C, H, W)``, uint8 or floats in [0, 1]; integer
    labels), a :class:`resdyn.data.Split`, or a :class:`resdyn.data.Dataset` with ``test_data=None``; a DataLoader
    is not accepted (pass its tensors). ``config`` (defaults if None) says how to train: the data section's
    augmentation, limits and validation split, optimiser, schedule, epochs, device and precision. Its model
    section is only recorded: left at its default, ``fit`` records the model's class (``python:module.Class``),
    which tells :func:`load_run` to ask for an instance. ``out``: None trains without writing anything; a folder
    gets the run folder ``resdyn train`` writes (config.toml, metrics.jsonl, checkpoint.pt, summary.json),
    which :func:`load_run`, :func:`resdyn.load_runs` and ``resdyn report`` read.

    Returns the final weights (in evaluation mode, on the training device; the EMA's or SWA's when the config
    keeps one), the summary and every epoch's record.
    """
    dataset = as_dataset(train_data, test_data)
    config = _described(config or Config(), model, dataset)
    config.validate()
    tc = config.train
    if out is None and tc.tensorboard:
        raise ConfigError("train.tensorboard writes into the run folder: give fit an out= folder, or leave it off")
    placement = place(tc)
    progress = Progress(tc.progress) if placement.world.is_main else Progress("off")
    torch.manual_seed(tc.seed)
    memory = reset_peak_memory(placement.device)
    run = RunDir(out) if out is not None else None
    with holding(run, placement.world, progress):
        data = prepare_data(dataset, config, placement.device, placement.speed.channels_last)
        job = Job(run, progress, memory=memory, overwrite=False)
        return run_training(config, model, data, placement, job)


def _described(config: Config, model: nn.Module, dataset: Dataset) -> Config:
    """``config`` naming the data it trains on, and the model when its model section was left at the default."""
    described = dataclasses.replace(config, data=dataclasses.replace(config.data, name=dataset.info.name))
    if config.model == ModelConfig():
        kind = type(model)
        described.model = ModelConfig(f"python:{kind.__module__}.{kind.__qualname__}")
    return described


@dataclass
class LoadedRun:
    """A run folder's model (in evaluation mode), its config and its summary (None: the run has not finished)."""

    model: nn.Module
    config: Config
    summary: Summary | None


def load_run(path: str | Path, weights: Literal["final", "best", "ema"] = "final", *,
             model: nn.Module | None = None, device: str | torch.device = "cpu") -> LoadedRun:
    """The model of the run folder ``path``, rebuilt from its config through the model registry (or ``model``, an
    instance to load the weights into: what a model fitted in Python needs), with ``weights``, float32 on
    ``device``, in evaluation mode. Weights load with ``weights_only=True``.

    ``weights``: "final" are those the summary scored (the EMA's, SWA's or Polyak's, the best validation epoch's, or
    the last: ``Summary.final_weights``; an unfinished run's last); "best" the best validation epoch's (best.pt, early
    stopping only); "ema" the exponential average's. SWA's and a best-validation epoch's statistics recomputed at
    the end of the run (``train.recompute_bn``, SWA) are not stored: those load as saved.
    """
    run = RunDir(path)
    config = Config.from_dict(run.current_config(), str(run.file(RunDir.CONFIG)))
    summary = run.read_summary()
    if model is None:
        model = _rebuild(run, config, summary)
    state = _weights(run, weights, summary)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise RunError(f"the {weights} weights of {run.path} do not fit the model given ({e}); pass model= an "
                       f"instance of the model the run trained") from None
    return LoadedRun(model.to(device=device, dtype=torch.float32, memory_format=torch.contiguous_format).eval(),
                     config, summary)


def _rebuild(run: RunDir, config: Config, summary: Summary | None) -> nn.Module:
    """The run's model built from its config through the registry; a name the registry lacks, or a scheme other
    than the one the summary recorded, means a model fitted from a Python object."""
    from resdyn.nets import build_model
    from resdyn.schemes import scheme_name

    name = config.model.name
    hint = "pass load_run(..., model=) an instance of the model it trained, to load the weights into"
    try:
        model = build_model(name, *_channels_and_classes(run, config), **config.model.options)
    except UnknownNameError:
        raise RunError(f"{run.path} trained the model {name!r}, which is not a registered model (a model fitted "
                       f"from a Python object): {hint}") from None
    if summary is not None and summary.scheme != scheme_name(model):
        raise RunError(f"{run.path} trained a model whose scheme is {summary.scheme!r}, but {name!r} rebuilt from "
                       f"its config has {scheme_name(model)!r} (a model fitted from a Python object): {hint}")
    return model


def _channels_and_classes(run: RunDir, config: Config) -> tuple[int, int]:
    """The input channels and classes of the run's data: a registered dataset's, else read off the stored
    weights (the first convolution's input channels, the last layer's outputs)."""
    from resdyn.data import DATASETS

    if config.data.name in DATASETS:
        info = DATASETS.get(config.data.name)().info
        return info.in_channels, info.num_classes
    tensors = [t for t in run.load_checkpoint(map_location="cpu").model.values() if t.is_floating_point()]
    first = next(t for t in tensors if t.dim() == 4)
    last = next(t for t in reversed(tensors) if t.dim() in (1, 2))
    return first.shape[1], last.shape[0]


def _weights(run: RunDir, weights: str, summary: Summary | None) -> dict[str, torch.Tensor]:
    """The state dict of the run's ``weights`` ("final", "best", "ema"), loaded with ``weights_only=True``."""
    if weights not in ("final", "best", "ema"):
        raise ConfigError(f"unknown weights {weights!r}; valid: final, best, ema")
    kind = weights
    if weights == "final":
        kind = summary.final_weights if summary is not None and summary.final_weights else "last"
    if kind == "best" or kind.startswith("best_val_epoch_"):
        if not run.file(RunDir.BEST).exists():
            raise RunError(f"{run.path} kept no best validation weights ({RunDir.BEST}): only a run with "
                           "train.early_stop_patience does; ask for weights='final' or 'ema'")
        return run.load_best(map_location="cpu")[0]
    checkpoint = run.load_checkpoint(map_location="cpu")
    if kind in ("ema", "swa", "polyak"):
        average = checkpoint.ema if kind == "ema" else checkpoint.swa  # Polyak's average is kept as SWA's
        if average is None:
            raise RunError(f"{run.path} kept no {kind.upper()} weights (train.ema_decay was not set); ask for "
                           "weights='final'")
        return {k.removeprefix("module."): v for k, v in average.items() if k.startswith("module.")}
    return checkpoint.model
