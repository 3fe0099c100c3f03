"""The run folder: the one reader and writer of a run's files, and the types of what they hold.

    config.toml     the config the run was started with (never rewritten by a resume)
    resumes.jsonl   one :class:`Resume` per ``--resume``: its command, its overrides and the config it trained
    metrics.jsonl   one :class:`EpochRecord` per finished epoch
    gradstats.jsonl one :class:`GradStatsRecord` per recorded step (only with ``train.grad_stats``)
    checkpoint.pt   a :class:`Checkpoint`: everything needed to resume, replaced atomically after every epoch
    best.pt         model weights at the best validation score (only with early stopping)
    summary.json    a :class:`Summary`, written when the run finishes
    lock            held (``flock``) by the training that writes the folder, with its pid and host inside

Training writes these and reporting reads them; neither imports the other, and both see only the types below.
Checkpoints are loaded with ``weights_only=True``, so a checkpoint file can never run code.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import io
import json
import math
import os
import re
import socket
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from resdyn.atomic import atomic_write, open_own, parse_json, parse_toml, read_text
from resdyn.errors import ConfigError, ResdynError
from resdyn.typed import build_table

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass


class RunError(ResdynError, RuntimeError):
    """A run folder that cannot be used as asked (missing, already taken, unreadable)."""


# -- the types of a run's files -----------------------------------------------------------------------------
@dataclass
class EarlyStopState:
    """The best validation score so far, the epoch it was reached, and the epochs since without improvement."""

    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int, higher_is_better: bool, patience: int) -> bool:
        """Take this epoch's score; True once it has not improved for ``patience`` epochs."""
        better = self.best is None or (value > self.best if higher_is_better else value < self.best)
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= patience


@dataclass
class TrainState:
    """Where a training stands after ``epoch`` finished epochs (the counters a checkpoint holds beside the
    weights): steps taken, training time, the best test accuracy seen, early stopping, and the code versions
    that trained it (the one that started it, then each different one that resumed it)."""

    #: fields added to checkpoint format 2 since it began (an older checkpoint lacks them)
    ADDED: ClassVar[tuple[str, ...]] = ("peak_memory_bytes", "peak_memory_kind", "epoch_batches", "epoch_loss_sum",
                                        "epoch_correct", "epoch_seen", "epoch_time_s")

    epoch: int = 0
    step: int = 0
    train_time_s: float = 0.0
    best_test_acc: float = -1.0
    early_stop: EarlyStopState = field(default_factory=EarlyStopState)
    versions: list[str | None] = field(default_factory=list)
    #: processes that trained the last epoch (a data-parallel run's world size)
    world_size: int = 1
    #: the highest peak memory of the processes that trained it so far, and its kind (``device.peak_memory_bytes``):
    #: a resume that only evaluates keeps the training's peak
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None

    #: inside epoch ``epoch + 1``, where a signal stopped the training (:mod:`resdyn.train.preempt`): the batches
    #: done and their running sums (all 0 at an epoch's end, where every other checkpoint is written)
    epoch_batches: int = 0
    epoch_loss_sum: float = 0.0
    epoch_correct: int = 0
    epoch_seen: int = 0
    epoch_time_s: float = 0.0

    def end_partial_epoch(self) -> None:
        """The epoch is complete: no partial epoch to resume."""
        self.epoch_batches, self.epoch_loss_sum, self.epoch_correct, self.epoch_seen = 0, 0.0, 0, 0
        self.epoch_time_s = 0.0

    def note_peak_memory(self, peak: int, kind: str) -> None:
        """Keep ``peak`` (of ``kind``) when it is above the peak so far."""
        if self.peak_memory_bytes is None or peak > self.peak_memory_bytes:
            self.peak_memory_bytes, self.peak_memory_kind = peak, kind


@dataclass
class Checkpoint:
    """Everything a resume needs: the state, the weights and optimiser, the weight averages, the RNG and the
    resolved config (a plain table, so that the checkpoint stays loadable with ``weights_only=True``)."""

    FORMAT: ClassVar[int] = 2

    state: TrainState
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    ema: dict[str, Any] | None
    swa: dict[str, Any] | None
    rng: dict[str, torch.Tensor]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        state = dataclasses.asdict(self.state)  # numbers and lists only: cheap to copy
        return {"format": self.FORMAT, **state, "model": self.model, "optimizer": self.optimizer,
                "ema": self.ema, "swa": self.swa, "rng": self.rng, "config": self.config}

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """From what ``torch.load`` returned. A KeyError or TypeError means the file is not a checkpoint of this
        format."""
        if data.get("format") == cls.FORMAT:
            early = EarlyStopState(**data["early_stop"])
            names = [f.name for f in dataclasses.fields(TrainState) if f.name != "early_stop"]
            # Fields added since format 2 began are absent from older checkpoints: they take their defaults.
            required = {f.name for f in dataclasses.fields(TrainState) if f.name not in TrainState.ADDED}
            state = TrainState(early_stop=early, **{name: data[name] for name in names
                                                    if name in required or name in data})
        else:
            raise KeyError("format")
        return cls(state, data["model"], data["optimizer"], data["ema"], data["swa"], data["rng"], data["config"])


@dataclass
class EpochRecord:
    """One line of metrics.jsonl: what an epoch did. ``model`` holds what the model reports (an ODE block's NFE,
    LM-ResNet's k_n), written beside the fixed keys; ``val_*`` only with a validation split."""

    epoch: int
    step: int
    lr: float
    train_loss: float
    train_acc: float
    epoch_time_s: float
    eval_time_s: float
    images_per_s: float
    #: None on the epochs that ``train.eval_every`` skips
    test_loss: float | None = None
    test_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    #: test-time augmentation of the test and validation scores: "flip" (train.tta_flip), or None
    tta: str | None = None
    #: the size (pixels, square) of this epoch's training images under progressive resizing, else None
    train_image_size: int | None = None
    model: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        fixed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        return {**{k: v for k, v in fixed.items() if v is not None}, **self.model}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> EpochRecord:
        return _typed(cls, data, where, extra="model")


@dataclass
class GradStatsRecord:
    """One line of gradstats.jsonl: a training step's gradient statistics (``train.grad_stats``), one value per
    unit of the network in network order (``layers``, see :mod:`resdyn.train.gradstats`): the norm of the loss's
    gradient with respect to the unit's weights (every parameter not named ``bias``) and to its biases (None for a
    unit without any), and the RMS of the unit's output, all measured on the step's batch before the update."""

    epoch: int
    step: int
    layers: list[str]
    weight_grad_norm: list[float]
    bias_grad_norm: list[float | None]
    #: None where the unit's module gave no tensor
    activation_rms: list[float | None]

    @property
    def grad_norm(self) -> list[float]:
        """The norm of each unit's whole gradient (weights and biases together)."""
        return [math.hypot(w, b or 0.0) for w, b in zip(self.weight_grad_norm, self.bias_grad_norm, strict=True)]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> GradStatsRecord:
        record = _typed(cls, data, where)
        lengths = {len(getattr(record, f.name)) for f in dataclasses.fields(cls) if f.name not in ("epoch", "step")}
        if len(lengths) > 1:
            raise RunError(f"{where} is corrupt: its lists have different lengths ({sorted(lengths)})")
        return record


@dataclass
class Summary:
    """summary.json: a finished run. Fields after ``command`` are optional: a summary.json without them reads
    them as unknown (None). ``model_metrics`` (the last epoch's model reports, then the final
    model's) are written beside the fixed keys."""

    model: str
    data: str
    params: int
    test_acc: float
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    steps: int | None = None
    train_images: int | None = None
    test_images: int | None = None
    test_loss: float | None = None
    test_error: float | None = None
    best_test_acc: float | None = None
    final_weights: str | None = None
    stopped_early: bool | None = None
    train_time_s: float | None = None
    train_time_per_epoch_s: float | None = None
    eval_time_per_epoch_s: float | None = None
    images_per_s: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    checkpoint_bytes: int | None = None
    device: str | None = None
    precision: str | None = None
    seed: int | None = None
    torch: str | None = None
    commit: str | None = None
    commits: list[str | None] | None = None
    command: str | None = None
    #: multiply-accumulates of one forward pass of the final model on one image
    mult_adds_per_image: int | None = None
    #: the model's depth as its name or options state it (None for a model without one, e.g. an ODENet)
    depth: int | None = None
    #: processes that trained it data-parallel (1: one process)
    world_size: int | None = None
    #: the registered name of the scheme that moves the state (``resdyn.schemes.SCHEMES``), e.g. "lm", "rk4"
    scheme: str | None = None
    #: test-time augmentation of the test scores: "flip" (train.tta_flip: the mean of the softmax of each image
    #: and of its mirror image), or None
    tta: str | None = None
    #: with train.grad_stats: the gradient norm of the first unit (the stem) over the last (the head), at the
    #: first recorded step and at the last (gradstats.jsonl); below 1 the first layers learn slower
    grad_norm_ratio_start: float | None = None
    grad_norm_ratio_end: float | None = None
    model_metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        fixed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model_metrics"}
        return {**fixed, **self.model_metrics}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Summary:
        return _typed(cls, data, where, extra="model_metrics")


@dataclass
class Resume:
    """One ``--resume`` of the run: from which epoch, the command, the overrides it added (dotted key and
    value), the whole config it trained with, and whether it finished an epoch (only then do its overrides
    describe the weights, and carry over to later resumes)."""

    from_epoch: int
    command: str | None
    overrides: list[list[Any]]
    config: dict[str, Any]
    started: str
    applied: bool = False


@dataclass
class Failure:
    """Why the last attempt at the run failed, as the process that launched it saw it (``resdyn compare``): the
    error's last line, when, and the command; removed when the run starts or resumes again."""

    error: str
    time: str
    command: str | None = None


def _typed(cls: type, data: Mapping[str, Any], where: str, extra: str | None = None) -> Any:
    """``cls`` from a JSON object, types checked; keys beyond the fields go into the free-form table ``extra``."""
    if not isinstance(data, Mapping):
        raise RunError(f"{where} is corrupt: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    known = {k: v for k, v in data.items() if k in names and k != extra}
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in known]
    if missing:
        raise RunError(f"{where} is corrupt: it lacks {', '.join(missing)}")
    try:
        rest = {extra: {k: v for k, v in data.items() if k not in names}} if extra else {}
        record = build_table(cls, {**known, **rest} if extra else dict(data), "")
    except ConfigError as e:
        raise RunError(f"{where} is corrupt: {e}") from None
    _check_ranges(record, where)
    return record


def _check_ranges(record: Any, where: str) -> None:
    """Numbers a record cannot hold: an accuracy outside [0, 1], a negative or non-finite count, time or size (a
    hand-edited ``test_acc = 7.5`` would show as 750%)."""
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if f.name.endswith("_acc") and not 0 <= value <= 1:
            raise RunError(f"{where} is corrupt: {f.name} = {value} is not an accuracy in [0, 1]")
        if f.name.endswith(("_s", "_bytes", "images", "epochs", "steps", "params")) and not 0 <= value < math.inf:
            raise RunError(f"{where} is corrupt: {f.name} = {value} is not a count, time or size (>= 0)")


def model_depth(model: str, options: Mapping[str, Any]) -> int | None:
    """The ``depth`` option, else the first number in the model's name (``lm-resnet56`` -> 56), else None."""
    depth = options.get("depth")
    if isinstance(depth, int) and not isinstance(depth, bool):
        return depth
    match = re.match(r"[a-z_-]*?(\d+)", model)
    return int(match.group(1)) if match else None


# -- the folder ---------------------------------------------------------------------------------------------
class RunDir:
    """A run's folder on disk."""

    CONFIG = "config.toml"
    RESUMES = "resumes.jsonl"
    METRICS = "metrics.jsonl"
    GRADSTATS = "gradstats.jsonl"
    CHECKPOINT = "checkpoint.pt"
    BEST = "best.pt"
    SUMMARY = "summary.json"
    FAILURE = "failure.json"
    LOCK = "lock"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # -- the lock -------------------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[str | None]:
        """Hold the folder for one training; a second one is refused with the holder's pid and host.

        An ``flock`` is released by the kernel when its process dies however it dies, so a lock file left by a
        killed training is simply taken over; the context yields who held it then ("pid N on host"), else None.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.file(self.LOCK)
        while True:
            fd = open_own(path, os.O_RDWR)  # never through a link: a planted lock -> ~/file is refused
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "a process that left no name"
                os.close(fd)
                raise RunError(f"{self.path} is in use by another training ({holder}); wait for it to finish, "
                               "or train into another --out") from None
            # The holder before us may have removed the file as we opened it: lock the file that is there now.
            try:
                same = os.lstat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            previous = os.pread(fd, 4096, 0).decode(errors="replace").strip() or None
            now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {now}\n".encode(), 0)
            yield previous
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)

    def holder(self) -> str | None:
        """Who is training in this folder now ("pid N on host, since ..."), or None when no training holds its
        lock (a lock file left by a dead process holds nothing: the kernel dropped its flock)."""
        try:
            fd = os.open(self.file(self.LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 4096, 0).decode(errors="replace").strip() or "a process that left no name"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    # -- creating -------------------------------------------------------------------------------------
    def create(self, config_toml: str, overwrite: bool = False) -> None:
        """Start a new run here: refuse a folder that already holds one unless ``overwrite``."""
        if self.has_checkpoint() or self.file(self.METRICS).exists():
            if not overwrite and not self.has_checkpoint():
                raise RunError(f"{self.path} holds the records of a run but no {self.CHECKPOINT}, so it cannot be "
                               "resumed: pass --overwrite to start again there, or choose another --out")
            if not overwrite:
                raise RunError(
                    f"{self.path} already holds a run; continue it with `resdyn train --resume {self.path}`, "
                    "choose another --out, or pass --overwrite to start again"
                )
        for name in (self.METRICS, self.GRADSTATS, self.CHECKPOINT, self.BEST, self.SUMMARY, self.RESUMES,
                     self.FAILURE):
            self.file(name).unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.file(self.CONFIG), lambda f: f.write(config_toml.encode()))

    def reopen(self, epochs: int, steps: int | None = None) -> None:
        """Continue a run after ``epochs`` finished epochs and ``steps`` steps (more than those epochs' when it
        stopped inside the next): drop later metrics, the gradient statistics of the steps not taken (of later
        epochs when ``steps`` is None), and the (now stale) summary."""
        self.truncate_metrics(epochs)
        if self.file(self.GRADSTATS).exists():
            kept = [dataclasses.asdict(r) for r in self.read_gradstats()
                    if (r.step < steps if steps is not None else r.epoch <= epochs)]
            self._write_jsonl(self.GRADSTATS, kept)
        self.file(self.SUMMARY).unlink(missing_ok=True)
        self.file(self.FAILURE).unlink(missing_ok=True)

    def read_config(self) -> dict[str, Any]:
        """The config the run was started with (config.toml), as a table."""
        path = self.file(self.CONFIG)
        try:
            text = read_text(path, RunError)
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run folder: {self.CONFIG} is missing") from None
        return parse_toml(text, path, RunError)

    def current_config(self) -> dict[str, Any]:
        """The config the weights were last trained with: the last resume's that finished an epoch, else the
        config the run was started with."""
        applied = [r for r in self.read_resumes() if r.applied]
        return applied[-1].config if applied else self.read_config()

    # -- resumes --------------------------------------------------------------------------------------
    def read_resumes(self) -> list[Resume]:
        return [_typed(Resume, r, f"{self.file(self.RESUMES)} line {i}")
                for i, r in enumerate(self._read_jsonl(self.RESUMES), 1)]

    def add_resume(self, resume: Resume) -> None:
        self._write_jsonl(self.RESUMES, [*map(dataclasses.asdict, self.read_resumes()), dataclasses.asdict(resume)])

    def mark_resume_applied(self) -> None:
        """The last resume has finished an epoch: its overrides now describe the weights."""
        resumes = self.read_resumes()
        if resumes and not resumes[-1].applied:
            resumes[-1].applied = True
            self._write_jsonl(self.RESUMES, [dataclasses.asdict(r) for r in resumes])

    # -- metrics --------------------------------------------------------------------------------------
    def append_metrics(self, record: EpochRecord) -> None:
        with os.fdopen(open_own(self.file(self.METRICS), os.O_WRONLY | os.O_APPEND), "a") as f:
            f.write(json.dumps(record.to_json()) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[EpochRecord]:
        """Every complete line; a torn last line (the run was killed while writing it) is ignored."""
        where = self.file(self.METRICS)
        return [EpochRecord.from_json(r, f"{where} line {i}") for i, r in enumerate(self._read_jsonl(self.METRICS), 1)]

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the records of epochs 1..``epochs``: those a resumed run has not redone."""
        self._write_jsonl(self.METRICS, [r.to_json() for r in self.read_metrics() if r.epoch <= epochs])

    # -- gradient statistics ----------------------------------------------------------------------------
    def append_gradstats(self, records: Iterable[GradStatsRecord]) -> None:
        """Add an epoch's gradient statistics (before its checkpoint, as its metrics line)."""
        with os.fdopen(open_own(self.file(self.GRADSTATS), os.O_WRONLY | os.O_APPEND), "a") as f:
            f.write("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())

    def read_gradstats(self) -> list[GradStatsRecord]:
        """Every complete line of gradstats.jsonl (none when the run did not record them)."""
        where = self.file(self.GRADSTATS)
        return [GradStatsRecord.from_json(r, f"{where} line {i}")
                for i, r in enumerate(self._read_jsonl(self.GRADSTATS), 1)]

    def _read_jsonl(self, name: str) -> list[Any]:
        path = self.file(name)
        if not path.exists():
            return []
        records = []
        lines = read_text(path, RunError).splitlines(keepends=True)
        for i, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except RecursionError:
                raise RunError(f"{path} line {i + 1} is nested too deeply to read") from None
            except json.JSONDecodeError:
                if i == len(lines) - 1 and not line.endswith("\n"):
                    break
                raise RunError(f"{path} line {i + 1} is not valid JSON") from None
        return records

    def _write_jsonl(self, name: str, rows: list[Any]) -> None:
        text = "".join(json.dumps(r) + "\n" for r in rows)
        atomic_write(self.file(name), lambda f: f.write(text.encode()))

    # -- checkpoints ----------------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.file(self.CHECKPOINT).exists()

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        _save_tensors(self.file(self.CHECKPOINT), checkpoint.to_dict())

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> Checkpoint:
        """The checkpoint, loaded with ``weights_only=True`` (tensors and plain containers only, no code)."""
        data = self._load(self.CHECKPOINT, map_location)
        try:
            return Checkpoint.from_dict(data)
        except (KeyError, TypeError, AttributeError):
            raise self._damaged(self.CHECKPOINT, "it is not a resdyn checkpoint") from None

    def save_best(self, weights: dict[str, torch.Tensor], epoch: int) -> None:
        _save_tensors(self.file(self.BEST), {"model": weights, "epoch": epoch})

    def load_best(self, map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], int]:
        """The weights at the best validation score and their epoch."""
        data = self._load(self.BEST, map_location)
        try:
            return data["model"], data["epoch"]
        except (KeyError, TypeError):
            raise self._damaged(self.BEST, "it holds no weights") from None

    def _load(self, name: str, map_location: str | torch.device) -> Any:
        path = self.file(name)
        if not path.exists():
            if self.file(self.METRICS).exists() or self.file(self.CONFIG).exists():
                raise RunError(f"no {name} in {self.path}: no epoch of its run was saved, so there is nothing to "
                               f"resume; start it again with `resdyn train -c {self.file(self.CONFIG)} --out "
                               f"{self.path} --overwrite`")
            raise RunError(f"no {name} in {self.path}: nothing to resume (start the run without --resume)")
        if path.stat().st_size == 0:
            raise self._damaged(name, "it is empty")
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception:  # noqa: BLE001 - any unpickling failure means the file is unusable
            # torch's own message advises weights_only=False, i.e. running the file's code: never repeat it.
            raise self._damaged(name, "it is not a checkpoint torch can read safely") from None

    def _damaged(self, name: str, why: str) -> RunError:
        return RunError(f"cannot load {self.file(name)}: the file is damaged ({why}). Restore a copy of it, or "
                        f"start the run again with `resdyn train --out {self.path} --overwrite`")

    # -- a failed attempt -----------------------------------------------------------------------------
    def write_failure(self, failure: Failure) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dataclasses.asdict(failure), indent=2) + "\n"
        atomic_write(self.file(self.FAILURE), lambda f: f.write(text.encode()))

    def read_failure(self) -> Failure | None:
        """Why the last attempt failed, or None (no attempt failed, or the run went on since)."""
        path = self.file(self.FAILURE)
        if not path.exists():
            return None
        return _typed(Failure, parse_json(read_text(path, RunError), path, RunError), str(path))

    # -- summary --------------------------------------------------------------------------------------
    def write_summary(self, summary: Summary) -> None:
        text = json.dumps(summary.to_json(), indent=2) + "\n"
        atomic_write(self.file(self.SUMMARY), lambda f: f.write(text.encode()))

    def read_summary(self) -> Summary | None:
        path = self.file(self.SUMMARY)
        if not path.exists():
            return None
        return Summary.from_json(parse_json(read_text(path, RunError), path, RunError), str(path))



def _save_tensors(path: Path, data: dict[str, Any]) -> None:
    """``torch.save(data)`` to ``path`` atomically. Serialised in memory first: torch's zip writer turns a failed
    write (a full disk) into a RuntimeError that names neither the file nor the cause; one plain write of the
    bytes fails with the OSError that does."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


# -- many runs at once, for a notebook ----------------------------------------------------------------------
class MissingPackageError(ResdynError, ImportError):
    """An optional package that a function needs is not installed; the message says how to install it."""


def load_runs(paths: Iterable[str | Path]) -> tuple[Any, Any]:
    """Run folders as two pandas DataFrames: one row per run (``run``, the folder; ``finished``; then the summary's
    fields, empty for an unfinished run) and one row per (run, epoch) (``run``, then the epoch's record, the
    model's reports as columns). Needs pandas (``pip install 'resdyn[notebook]'``)."""
    try:
        import pandas as pd
    except ImportError as e:
        raise MissingPackageError(f"load_runs needs pandas ({e}): pip install 'resdyn[notebook]' "
                                  "(or pip install pandas)") from None
    runs, epochs = [], []
    for path in paths:
        run = RunDir(path)
        run.read_config()  # a folder that is not a run is named here
        summary = run.read_summary()
        runs.append({"run": str(path), "finished": summary is not None, **(summary.to_json() if summary else {})})
        epochs += [{"run": str(path), **record.to_json()} for record in run.read_metrics()]
    return pd.DataFrame(runs), pd.DataFrame(epochs)
