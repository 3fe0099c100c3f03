"""Typed run configuration: dataclasses with defaults, loaded from TOML, overridden with ``section.key=value``.

Unknown sections and keys are rejected with the valid ones listed; values are checked against the field
types. The resolved config is written into every run folder and checkpoint, so a run can be reproduced
from its folder alone.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from resdyn.atomic import parse_toml, read_text
from resdyn.data.loader import Progressive
from resdyn.errors import ConfigError
from resdyn.typed import build_table


@dataclass
class ModelConfig:
    name: str = "resnet20"
    #: keyword options of the model builder, e.g. ``{preact = true, shortcut_option = "B"}``
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    name: str = "fashion-mnist"
    #: directory holding the dataset's published files (else $RESDYN_DATA, the cache, OS locations, download)
    dir: str | None = None
    download: bool = True
    #: training augmentation: random crops (crop_padding, crop) and flips; off, training sees evaluation's images
    augment: bool = True
    crop_padding: int = 4
    flip: bool = True
    #: resize every image to resize x resize first (bilinear, antialiased), e.g. 32 (Gładzik 2019 upscales 28 -> 32)
    resize: int | None = None
    #: the size the model sees: a random crop x crop in training (after resize and padding), and per eval_crop
    #: in evaluation (None: no crop, the resized image's size)
    crop: int | None = None
    #: evaluation's way to crop x crop: "centre" cuts the middle of the resized image; "resize" resizes the
    #: whole image to crop x crop (Gładzik 2019, sec. 4.4)
    eval_crop: Literal["centre", "resize"] = "centre"
    #: progressive resizing (as FFCV): training batches are resized to progressive_min_size pixels up to epoch
    #: progressive_start, then to sizes growing linearly (in multiples of progressive_step) to the evaluation
    #: size, reached at epoch progressive_end; None: off. Cheaper early epochs, full-size last ones
    progressive_min_size: int | None = None
    progressive_start: int = 0
    progressive_end: int | None = None
    progressive_step: int = 4
    #: a published part of the test split instead of all of it (qmnist: "test10k" = MNIST's test set, "test50k")
    test_part: str | None = None
    #: fraction of the training set held out for validation (early stopping watches it)
    val_fraction: float = 0.0
    limit_train: int | None = None
    limit_test: int | None = None
    #: std of Gaussian noise added to every training input, in the units the model sees (after normalisation: 1 is
    #: one standard deviation of the pixels); never in evaluation
    input_noise: float = 0.0

    def progressive(self) -> Progressive | None:
        """The progressive-resizing schedule these fields describe, None when it is off."""
        if self.progressive_min_size is None:
            return None
        if self.progressive_end is None:
            raise ConfigError("data.progressive_min_size needs data.progressive_end, the epoch from which "
                              "training sees full-size images")
        return Progressive(self.progressive_min_size, self.progressive_start, self.progressive_end,
                           self.progressive_step)


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    #: decoupled for AdamW, coupled (added to the gradient) for the others, as torch.optim defines them
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    #: RMSProp smoothing constant
    alpha: float = 0.99
    #: explicit penalties added to the loss: l1 * sum|w| + l2/2 * sum w^2 over weights (not BN, not biases)
    l1: float = 0.0
    l2: float = 0.0
    #: std of Gaussian noise added to the weights (those of l1/l2) for each training step's forward and backward
    #: pass, the clean weights restored exactly before the update; never in evaluation
    weight_noise: float = 0.0


@dataclass
class ScheduleConfig:
    name: str = "cosine"
    #: linear warm-up from 0 over this many epochs (fractional allowed), then the schedule
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    gamma: float = 0.1
    #: step: decay every step_size epochs; multistep: decay at these epochs
    step_size: float = 30.0
    milestones: list[float] = field(default_factory=list)
    #: polynomial decay exponent
    power: float = 1.0
    #: one-cycle: fraction of the run spent rising, initial lr = lr/div_factor, final = lr/final_div_factor
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    #: cyclic (triangular): one full cycle min_lr -> lr -> min_lr every cycle_epochs
    cycle_epochs: float = 4.0


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    label_smoothing: float = 0.0
    #: "torch": eps/k on every class, the true one too (torch's and Szegedy et al. 2016's); "lecture": eps/(k-1) on
    #: each wrong class and 1 - eps on the true one (Fuentes-Pineda's lecture, 2023), torch's with eps * k/(k-1)
    label_smoothing_convention: Literal["torch", "lecture"] = "torch"
    grad_clip: float | None = None
    #: exponential moving average of the weights, evaluated instead of the raw weights when set (its BatchNorm
    #: statistics recomputed before every score, over train.recompute_bn training images or 10,000)
    ema_decay: float | None = None
    #: stochastic weight averaging from this epoch on (BN statistics recomputed at the end)
    swa_start: int | None = None
    swa_lr: float | None = None
    #: Polyak-Ruppert averaging: from the first step of this epoch, the equal-weight mean of the weights after every
    #: step, kept and scored as SWA's (its BatchNorm statistics recomputed at the end); not with swa_start
    polyak_start: int | None = None
    #: stop when the validation metric has not improved for this many epochs (needs data.val_fraction > 0)
    early_stop_patience: int | None = None
    early_stop_metric: Literal["val_acc", "val_loss"] = "val_acc"
    #: "auto" = bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX, Arm BF16), else fp32;
    #: the summary's precision says what was chosen and why
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    #: None = on CUDA, and on the CPU when training in bf16
    channels_last: bool | None = None
    #: test-time augmentation: score the mean of the softmax of each test image and its horizontal flip
    tta_flip: bool = False
    #: after the last epoch, replace the scored weights' BatchNorm running statistics (an exponential average
    #: that lags behind weights still moving at the end) by their average over this many training images (None =
    #: keep them)
    recompute_bn: int | None = None
    #: score the test (and validation) data after every this many epochs and after the last one; the epochs
    #: between have no test scores in metrics.jsonl (a fixed-length run spends the time on training instead)
    eval_every: int = 1
    #: torch.compile the model's forward (and so its backward)
    compile: bool = False
    #: torch.compile's mode when compile is on: "auto" = "reduce-overhead" on CUDA (CUDA graphs: a small network
    #: at batch 128 is bound by kernel launches there) and "default" elsewhere
    compile_mode: Literal["auto", "default", "reduce-overhead", "max-autotune"] = "auto"
    seed: int = 0
    device: str = "auto"
    #: data-parallel runs (torchrun): synchronise BatchNorm statistics over all processes' images
    sync_bn: bool = False
    #: also write TensorBoard event files into the run folder (pip install 'resdyn[tensorboard]')
    tensorboard: bool = False
    #: progress: "auto" (a bar on a terminal, plain lines otherwise), "bar", "lines", "off"
    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    #: record, every grad_stats_every steps from the first, each layer's (or block's) gradient norms and activation
    #: RMS into gradstats.jsonl (and TensorBoard): vanishing and exploding gradients (resdyn.train.gradstats)
    grad_stats: bool = False
    grad_stats_every: int = 50
    #: signals on which a training with a run folder finishes its step, writes a checkpoint of it and exits
    #: (resdyn.train.preempt): a cluster's warning (SLURM's --signal, SIGUSR1 here) and kill (SIGTERM), and
    #: Ctrl-C (SIGINT; a second one stops at once); [] leaves every signal's default
    stop_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGUSR1", "SIGINT"])


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: free-form facts about the experiment, kept for reports: e.g. paper_test_error, source
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict; ``None`` values are left out (TOML has no null, and None is every such default)."""
        return _drop_none(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Build a config from nested dicts, rejecting unknown keys and ill-typed values."""
        try:
            return build_table(cls, data, "")
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def _check_ranges(self) -> None:
        """Values torch would refuse only once the data has loaded (or never, and train on nonsense)."""
        o, t = self.optim, self.train
        nonnegative = {"optim.weight_decay": o.weight_decay, "optim.momentum": o.momentum, "optim.eps": o.eps,
                       "optim.l1": o.l1, "optim.l2": o.l2, "optim.weight_noise": o.weight_noise,
                       "data.input_noise": self.data.input_noise, "schedule.warmup_epochs": self.schedule.warmup_epochs,
                       "schedule.min_lr": self.schedule.min_lr}
        if t.grad_clip is not None:
            nonnegative["train.grad_clip"] = t.grad_clip
        if t.swa_lr is not None:
            nonnegative["train.swa_lr"] = t.swa_lr
        for key, value in nonnegative.items():
            if value < 0:
                raise ConfigError(f"{key} must be >= 0, got {value}")
        if not 0 <= t.label_smoothing < 1:
            raise ConfigError(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
        if not 0 <= t.seed < 2**63:
            raise ConfigError(f"train.seed must be in [0, 2**63), torch's seed range; got {t.seed}")
        catchable = sorted(s.name for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP))
        unknown = [name for name in t.stop_signals if name not in catchable]
        if unknown:
            raise ConfigError(f"train.stop_signals: {', '.join(map(repr, unknown))} is not a signal a process can "
                              f"catch here; valid: {', '.join(catchable)}")

    def validate(self) -> Config:
        """Cross-field checks that the types alone cannot express; returns self."""
        if self.train.early_stop_patience is not None and self.data.val_fraction <= 0:
            raise ConfigError("train.early_stop_patience needs a validation split: set data.val_fraction > 0")
        if not 0 <= self.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.data.val_fraction}")
        if self.train.eval_every > 1 and self.train.early_stop_patience is not None:
            raise ConfigError("train.early_stop_patience counts epochs of validation scores: it needs "
                              f"train.eval_every = 1, got {self.train.eval_every}")
        for name in ("epochs", "batch_size", "eval_batch_size", "eval_every", "grad_stats_every"):
            if getattr(self.train, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self.train, name)}")
        if self.train.polyak_start is not None:
            if self.train.swa_start is not None:
                raise ConfigError("train.polyak_start and train.swa_start both average the weights (every step from "
                                  "one, every epoch from the other): set only one")
            if self.train.polyak_start < 1:
                raise ConfigError(f"train.polyak_start is the epoch whose first step starts the average (>= 1), got "
                                  f"{self.train.polyak_start}")
        if self.train.grad_stats and self.train.compile:
            raise ConfigError("train.grad_stats watches each layer's output through forward hooks, which "
                              "train.compile would trace into the compiled graph: set one of them to false")
        if self.train.recompute_bn is not None and self.train.recompute_bn < 1:
            raise ConfigError(f"train.recompute_bn must be at least 1 image (leave it out to keep the running "
                              f"statistics), got {self.train.recompute_bn}")
        if self.train.ema_decay is not None and not 0 < self.train.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in (0, 1), got {self.train.ema_decay}")
        for name in ("resize", "crop"):
            size = getattr(self.data, name)
            if size is not None and size < 1:
                raise ConfigError(f"data.{name} must be at least 1 pixel (leave it out for none), got {size}")
        if self.data.progressive() is not None:  # builds the schedule, which checks its own fields
            if self.data.progressive_end > self.train.epochs:
                raise ConfigError(f"data.progressive_end ({self.data.progressive_end}) is after the last epoch "
                                  f"({self.train.epochs}): the model would never train on the images it is scored on")
        for name in ("limit_train", "limit_test"):
            limit = getattr(self.data, name)
            if limit is not None and limit < 1:
                raise ConfigError(f"data.{name} must be at least 1 image (leave it out for the whole split), "
                                  f"got {limit}")
        for key, value in _floats(self.to_dict()):
            if not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}")
        if self.optim.lr < 0:
            raise ConfigError(f"optim.lr must be >= 0, got {self.optim.lr}")
        self._check_ranges()
        if self.data.dir is not None and not Path(self.data.dir).is_dir():
            raise ConfigError(f"data.dir (--data-dir) {self.data.dir} is not a folder; give the folder that holds the "
                              f"{self.data.name} files, or leave it out to search resdyn's usual places")
        if self.train.tensorboard:
            from resdyn.tensorboard import require_tensorboard

            require_tensorboard()  # before any work, not after the first epoch
        return self


def _floats(table: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """Every float of a nested table (lists included), with its dotted key."""
    found = []
    for key, value in table.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, dict):
                found += _floats(v, f"{prefix}{key}.")
            elif isinstance(v, float):
                found.append((f"{prefix}{key}", v))
    return found


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def load_config(path: str | Path) -> Config:
    """Read a TOML config; a missing file or bad TOML is an error naming the file."""
    path = Path(path)
    try:
        text = read_text(path, ConfigError)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    return Config.from_dict(parse_toml(text, path, ConfigError), source=str(path))


def dump_config(config: Config) -> str:
    """The config as TOML text (the inverse of :func:`load_config`)."""
    return tomli_w.dumps(config.to_dict())


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax where it parses (``0.1``, ``true``, ``[80, 120]``), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``section.key=value`` texts as (dotted key, value) pairs, each value parsed by :func:`parse_value`."""
    pairs = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. optim.lr=0.05)")
        pairs.append((key.strip(), parse_value(text.strip())))
    return pairs


def set_values(config: Config, values: list[tuple[str, Any]], source: str = "--set") -> Config:
    """Return a copy of ``config`` with each (dotted key, value) assigned as given, types checked; a value is
    never re-read as text, so a flag's string (a path with a backslash) stays exactly that string."""
    data = dataclasses.asdict(config)
    for key, value in values:
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            if i >= 2 and part not in node:
                node[part] = {}  # inside a free-form table such as model.options: make nested tables
            if part not in node or not isinstance(node[part], dict):
                where = ".".join(parts[:i]) or "config"
                valid = ", ".join(k for k, v in node.items() if isinstance(v, dict))
                raise ConfigError(f"override {key}={value!r}: {where} has no section {part!r}; valid: {valid}")
            node = node[part]
        node[parts[-1]] = value
    return Config.from_dict(data, source=source)


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Return a copy of ``config`` with ``section.key=value`` (or ``model.options.key=value``) applied."""
    return set_values(config, parse_overrides(overrides))
