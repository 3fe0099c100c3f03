"""The training loop: one visible loop over epochs and steps, with small helpers around it.

``train(config, out)`` writes the run folder as it goes (see ``resdyn.runs``): config first, then after every
epoch a metrics line and an atomic checkpoint, and the summary at the end. ``train(..., resume=True)``
continues from the checkpoint; on the CPU the result is bit-identical to a run that was never stopped,
because everything random is either derived from (seed, epoch) or restored from the checkpoint.
"""

from __future__ import annotations

import platform
import resource
import subprocess
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from resdyn.data import Augment, DeviceLoader, Split, load_dataset, split_validation, take
from resdyn.errors import ResdynError
from resdyn.metrics import extra_loss, model_metrics
from resdyn.nets import build_model
from resdyn.runs import RunDir, RunError
from resdyn.train.config import Config, dump_config
from resdyn.train.optim import build_optimizer, lr_at, penalised_weights, weight_penalty
from resdyn.train.progress import Progress

CHECKPOINT_FORMAT = 1
EpochHook = Callable[[int, dict[str, Any]], None]


class NonFiniteLossError(ResdynError, RuntimeError):
    """The loss became NaN or infinite; the run stops and its last checkpoint is left as it was."""

    def __init__(self, step: int, epoch: int, batch: int, run: Path) -> None:
        self.step, self.epoch, self.batch = step, epoch, batch
        super().__init__(
            f"non-finite loss at step {step} (epoch {epoch}, batch {batch}); the run stopped and "
            f"{run / RunDir.CHECKPOINT} still holds the last good epoch. Try a lower optim.lr, "
            "schedule.warmup_epochs, or train.grad_clip, then `resdyn train --resume` with --set overrides."
        )


def resolve_device(name: str) -> torch.device:
    """"auto" means CUDA when there is a GPU, else the CPU; an unavailable device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but this machine has no CUDA GPU; use --device cpu")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_memory_bytes(device: torch.device) -> tuple[int, str]:
    """Peak memory and what it measures: CUDA's allocator peak on a GPU, the process's max RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"


PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def source_version(root: Path = PACKAGE_ROOT) -> str | None:
    """The git commit of the checkout at ``root`` (by default the one this resdyn runs from), with a ``-dirty``
    suffix when tracked files differ from it; ``None`` when ``root`` is not the top of a git checkout, e.g. for
    a copy of resdyn installed into site-packages, which must not report the commit of a repository around it."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=root)
        if out.returncode != 0:
            raise OSError(out.stderr)
        return out.stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return None
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


# The code this process runs is the code it imported, so its version is read once, at import: a run started
# later in a long-lived process (a `resdyn compare` suite) must not report a commit made after the import.
LOADED_VERSION = source_version()


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, autocast: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``loader``; one host sync at the end."""
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)
    correct = torch.zeros((), device=loader.device, dtype=torch.long)
    count = 0
    for x, y in loader:
        with autocast():
            logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        count += len(y)
    return loss_sum.item() / count, correct.item() / count


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_epoch_end: EpochHook | None = None,
    progress: Progress | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out`` and return the summary (also written to summary.json).

    ``on_epoch_end(epoch, record)`` is called after each epoch's checkpoint is safely on disk.
    """
    config.validate()
    run = RunDir(out)
    tc = config.train
    device = resolve_device(tc.device)
    progress = progress or Progress(tc.progress)
    torch.manual_seed(tc.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)

    # -- data ------------------------------------------------------------------------------------------
    dc = config.data
    dataset = load_dataset(dc.name, dc.dir, download=dc.download)
    info = dataset.info
    train_split: Split = dataset.train
    val_split: Split | None = None
    if dc.val_fraction > 0:
        train_split, val_split = split_validation(train_split, dc.val_fraction, tc.seed)
    train_split = take(train_split, dc.limit_train, tc.seed)
    test_split = take(dataset.test, dc.limit_test, tc.seed)
    channels_last = tc.channels_last if tc.channels_last is not None else device.type == "cuda"
    augment = Augment(crop_padding=dc.crop_padding, flip=dc.flip) if dc.augment else None
    train_loader = DeviceLoader(
        train_split, info, tc.batch_size, device=device, shuffle=True, augment=augment, seed=tc.seed,
        channels_last=channels_last,
    )

    def eval_loader(split: Split) -> DeviceLoader:
        return DeviceLoader(split, info, tc.eval_batch_size, device=device, channels_last=channels_last)

    test_loader = eval_loader(test_split)
    val_loader = eval_loader(val_split) if val_split is not None else None

    # -- model and optimiser ---------------------------------------------------------------------------
    model = build_model(config.model.name, info.in_channels, info.num_classes, **config.model.options).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = build_optimizer(model, config.optim)
    penalised = penalised_weights(model)
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
        if tc.ema_decay is not None else None
    )
    swa = AveragedModel(model) if tc.swa_start is not None else None
    forward = torch.compile(model) if tc.compile else model
    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and device.type == "cuda")

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    criterion = nn.CrossEntropyLoss(label_smoothing=config.train.label_smoothing)
    steps_per_epoch = len(train_loader)

    # -- start or resume -------------------------------------------------------------------------------
    start_epoch, step, train_time = 0, 0, 0.0
    best: dict[str, Any] = {"test_acc": -1.0, "val": None, "val_epoch": 0, "bad_epochs": 0}
    # The code that trained the run: the version that started it, then each different one that resumed it.
    versions = [LOADED_VERSION]
    if resume:
        state = run.load_checkpoint(map_location=device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{run.file(RunDir.CHECKPOINT)} has format {state.get('format')}, expected "
                           f"{CHECKPOINT_FORMAT}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if swa is not None:
            swa.load_state_dict(state["swa"])
        start_epoch, step, train_time, best = state["epoch"], state["step"], state["train_time_s"], state["best"]
        _set_rng_state(state["rng"], device)
        before = state.get("versions") or [None]
        versions = before if before[-1] == versions[0] else [*before, versions[0]]
        run.reopen(start_epoch, dump_config(config))
        progress.message(f"resuming {run.path} after epoch {start_epoch}")
    else:
        run.create(dump_config(config), overwrite=overwrite)

    # -- the loop --------------------------------------------------------------------------------------
    # On a GPU each .item() stalls the pipeline, so the loss is looked at every few steps; the check still
    # names the first bad step, because that step is recorded on the device.
    check_every = 1 if device.type == "cpu" else 25
    stopped_early = False
    epoch = start_epoch
    reported: dict[str, Any] = {}
    for epoch in range(start_epoch + 1, tc.epochs + 1):
        model.train()
        train_loader.set_epoch(epoch)
        progress.start(f"epoch {epoch}/{tc.epochs}", steps_per_epoch)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        first_bad = torch.full((), -1, device=device, dtype=torch.long)
        seen = 0
        in_swa = swa is not None and epoch >= tc.swa_start
        epoch_start_step = step
        t0 = time.perf_counter()
        for batch, (x, y) in enumerate(train_loader):
            lr = tc.swa_lr if in_swa and tc.swa_lr is not None else lr_at(
                config.schedule, config.optim.lr, tc.epochs, step, steps_per_epoch
            )
            _set_lr(optimizer, lr)
            with autocast():
                logits = forward(x)
                loss = criterion(logits.float(), y)
            total = loss
            for term in (weight_penalty(penalised, config.optim.l1, config.optim.l2), extra_loss(model)):
                if term is not None:
                    total = total + term
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if tc.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)

            detached = total.detach()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached), step, first_bad)
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            step += 1
            if step % check_every == 0 or batch == steps_per_epoch - 1:
                bad = int(first_bad.item())
                if bad >= 0:
                    raise NonFiniteLossError(bad, epoch, bad - epoch_start_step + 1, run.path)
                progress.update(batch + 1, detached.item())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time

        if in_swa:
            swa.update_parameters(model)
        scored = ema.module if ema is not None else model

        t1 = time.perf_counter()
        test_loss, test_acc = evaluate(scored, test_loader, autocast)
        record: dict[str, Any] = {
            "epoch": epoch, "step": step, "lr": lr,
            "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
            "test_loss": test_loss, "test_acc": test_acc,
        }
        if val_loader is not None:
            record["val_loss"], record["val_acc"] = evaluate(scored, val_loader, autocast)
        # Reporting may reset a module's counters (an ODE block's NFE), so read it once and keep the result.
        reported = model_metrics(model)
        record.update(reported)
        record["epoch_time_s"] = epoch_time
        record["eval_time_s"] = time.perf_counter() - t1
        record["images_per_s"] = seen / epoch_time
        best["test_acc"] = max(best["test_acc"], test_acc)

        if tc.early_stop_patience is not None:
            stopped_early = _early_stop_update(best, record, epoch, tc.early_stop_metric, tc.early_stop_patience)
            if best["val_epoch"] == epoch:
                run.save_checkpoint({"model": scored.state_dict(), "epoch": epoch}, RunDir.BEST)

        # Metrics first, then the checkpoint: a kill in between leaves a metrics line that resume drops.
        run.append_metrics(record)
        run.save_checkpoint({
            "format": CHECKPOINT_FORMAT, "epoch": epoch, "step": step, "train_time_s": train_time,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "swa": swa.state_dict() if swa is not None else None,
            "best": best, "rng": _rng_state(device), "config": config.to_dict(), "versions": versions,
        })
        progress.end(_epoch_line(record))
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)
        if stopped_early:
            progress.message(f"early stop: {tc.early_stop_metric} has not improved for "
                             f"{tc.early_stop_patience} epochs (best at epoch {best['val_epoch']})")
            break

    # -- the final model -------------------------------------------------------------------------------
    final, final_kind = (ema.module, "ema") if ema is not None else (model, "last")
    if swa is not None and epoch >= tc.swa_start:
        torch.optim.swa_utils.update_bn(_images_only(train_loader), swa, device=device)
        final, final_kind = swa.module, "swa"
    if tc.early_stop_patience is not None and run.file(RunDir.BEST).exists():
        model.load_state_dict(run.load_checkpoint(RunDir.BEST, map_location=device)["model"])
        final, final_kind = model, f"best_val_epoch_{best['val_epoch']}"
    test_loss, test_acc = evaluate(final, test_loader, autocast)

    peak, peak_kind = peak_memory_bytes(device)
    metrics = run.read_metrics()
    summary = {
        "model": config.model.name, "model_options": config.model.options, "data": config.data.name,
        "params": n_params, "epochs": epoch, "steps": step,
        "train_images": len(train_split), "test_images": len(test_split),
        "test_acc": test_acc, "test_loss": test_loss, "test_error": 1 - test_acc,
        "best_test_acc": max(best["test_acc"], test_acc), "final_weights": final_kind,
        "stopped_early": stopped_early,
        "train_time_s": train_time,
        "train_time_per_epoch_s": train_time / max(len(metrics), 1),
        "eval_time_per_epoch_s": sum(m["eval_time_s"] for m in metrics) / max(len(metrics), 1),
        "images_per_s": (sum(m["images_per_s"] for m in metrics) / len(metrics)) if metrics else None,
        "peak_memory_bytes": peak, "peak_memory_kind": peak_kind,
        "checkpoint_bytes": run.file(RunDir.CHECKPOINT).stat().st_size if run.has_checkpoint() else None,
        "device": describe_device(device), "precision": "bf16" if use_bf16 else "fp32",
        "seed": tc.seed, "torch": torch.__version__, "commit": versions[0], "commits": versions,
        "command": command,
        # The last epoch's training-time statistics (e.g. NFE), then what the final model reports now.
        **reported, **model_metrics(final),
    }
    run.write_summary(summary)
    return summary


def _early_stop_update(best: dict[str, Any], record: dict[str, Any], epoch: int, metric: str, patience: int) -> bool:
    """Track the best validation score; True once it has not improved for ``patience`` epochs."""
    value = record[metric]
    better = best["val"] is None or (value > best["val"] if metric == "val_acc" else value < best["val"])
    if better:
        best["val"], best["val_epoch"], best["bad_epochs"] = value, epoch, 0
    else:
        best["bad_epochs"] += 1
    return best["bad_epochs"] >= patience


def _images_only(loader: DeviceLoader) -> Any:
    return (x for x, _ in loader)


def _epoch_line(r: dict[str, Any]) -> str:
    parts = [f"train loss {r['train_loss']:.4f} acc {r['train_acc']:.4f}"]
    if "val_acc" in r:
        parts.append(f"val acc {r['val_acc']:.4f}")
    parts.append(f"test loss {r['test_loss']:.4f} acc {r['test_acc']:.4f}")
    parts.append(f"lr {r['lr']:.3g}  {r['epoch_time_s']:.1f}s  {r['images_per_s']:.0f} img/s")
    return " | ".join(parts)


__all__ = ["NonFiniteLossError", "evaluate", "resolve_device", "train"]
