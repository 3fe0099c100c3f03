"""``resdyn train``: train a model into a run folder, or resume one; print its epochs and summary."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from resdyn.analysis.tables import format_table, human_bytes
from resdyn.recipes import find_recipe, is_suite
from resdyn.runs import RunDir
from resdyn.train.config import Config, ConfigError, load_config, parse_overrides, set_values

# Flags of `resdyn train` that are shorthands for config keys.
TRAIN_FLAGS = {
    "model": "model.name",
    "data": "data.name",
    "data_dir": "data.dir",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "device": "train.device",
    "seed": "train.seed",
    "limit_train": "data.limit_train",
    "limit_test": "data.limit_test",
    "progress": "train.progress",
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train a model into a run folder (or resume one)")
    t.add_argument("-c", "--config", metavar="FILE|RECIPE",
                   help="TOML config file, or the name of a shipped recipe (see `resdyn recipes`)")
    t.add_argument("--model", help="model name (see `resdyn models`)")
    t.add_argument("--data", help="dataset name (see `resdyn data list`)")
    t.add_argument("--data-dir", help="directory holding the dataset's files")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    t.add_argument("--seed", type=int)
    t.add_argument("--limit-train", type=int, help="train on the first N of a seeded permutation")
    t.add_argument("--limit-test", type=int, help="test on the first N of a seeded permutation")
    t.add_argument("--progress", choices=["auto", "bar", "lines", "off"])
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key, e.g. --set optim.name=adamw --set schedule.milestones=[80,120]")
    t.add_argument("--out", help="run folder (default runs/MODEL-DATA-seedN)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a run")
    t.add_argument("--resume-if-present", action="store_true",
                   help="start --out, or resume it when it holds a checkpoint of this same experiment (what a "
                        "requeued or restarted job runs again); a finished run is left as it is")
    t.add_argument("--requeue", action="store_true",
                   help="under SLURM, after a stop signal wrote its checkpoint, requeue this job "
                        "(scontrol requeue $SLURM_JOB_ID); run the job with --resume-if-present")
    # resdyn compare trains each run in a child process: the command to record is the suite's, not the child's.
    t.add_argument("--record-command", help=argparse.SUPPRESS)
    return t


def resolve_train_config(args: argparse.Namespace) -> tuple[Config, list[tuple[str, Any]]]:
    """Config from (in order of precedence) --set, the shorthand flags, -c FILE or the run folder, defaults; and
    what the flags and --set changed, as (dotted key, value). A resume starts from the config the run was
    started with and applies, in order, the overrides of its earlier resumes that trained."""
    if args.resume:
        run = RunDir(args.resume)
        config = Config.from_dict(run.read_config(), source=str(run.file(RunDir.CONFIG)))
        for resume in run.read_resumes():
            if resume.applied:
                config = set_values(config, [(k, v) for k, v in resume.overrides],
                                    source=f"{run.file(RunDir.RESUMES)} ({resume.command})")
    elif args.config:
        path = find_recipe(args.config)
        if is_suite(path):
            raise ConfigError(f"{args.config} is a suite (it has a [suite] table), not a single run: run it with "
                              f"`resdyn compare -c {args.config}`")
        config = load_config(path)
    else:
        config = Config()
    # Flag values are assigned as they are, never re-read as TOML text: a path stays exactly that path.
    changes = [(key, getattr(args, flag)) for flag, key in TRAIN_FLAGS.items() if getattr(args, flag) is not None]
    changes += parse_overrides(args.set)
    return set_values(config, changes), changes


def run(args: argparse.Namespace) -> int:
    from resdyn.train.loop import train
    from resdyn.train.preempt import EXIT_PREEMPTED, Preempted
    from resdyn.train.resume import folder_state

    if args.resume and args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise ConfigError(f"--resume continues the run in its own folder ({args.resume}), so --out {args.out} would "
                          f"not be used; to fork the run, copy its folder (`cp -r {args.resume} {args.out}`) and "
                          f"resume the copy")
    if args.resume and args.resume_if_present:
        raise ConfigError("--resume continues a run with changes; --resume-if-present starts or resumes one "
                          "experiment as the command gives it: give one of them")
    config, changes = resolve_train_config(args)
    config.validate()
    out = args.resume or args.out or f"runs/{config.model.name}-{config.data.name}-seed{config.train.seed}"
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder: a run folder holds several files; choose another "
                          "--out")
    resume = bool(args.resume)
    if args.resume_if_present:
        state = folder_state(RunDir(out), config)
        if state == "done":
            print(f"resdyn: {out} holds this experiment, finished: nothing to train", file=sys.stderr)
            print(run_table(RunDir(out)))
            return 0
        resume = state == "resume"
    try:
        train(config, out, resume=resume, overwrite=args.overwrite or (args.resume_if_present and not resume),
              command=args.record_command or args.command_line,
              overrides=changes if args.resume else None)
    except Preempted as e:
        print(f"resdyn: {e}", file=sys.stderr)
        if args.requeue and e.signal_name != "SIGINT":
            print(f"resdyn: {requeue()}", file=sys.stderr)
        return 130 if e.signal_name == "SIGINT" else EXIT_PREEMPTED
    except KeyboardInterrupt:
        print(f"resdyn: interrupted; {_how_to_continue(RunDir(out))}", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process prints
        print(run_table(RunDir(out)))
        print(f"\nresults in {out}/ (config.toml, metrics.jsonl, checkpoint.pt, summary.json)")
    return 0


def requeue() -> str:
    """Put this SLURM job back in the queue (``scontrol requeue $SLURM_JOB_ID``); what happened, in words."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return "--requeue: not a SLURM job (no SLURM_JOB_ID), so nothing was requeued"
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"--requeue: scontrol requeue {job} failed ({e}); requeue the job by hand"
    if done.returncode != 0:
        return f"--requeue: scontrol requeue {job} failed: {done.stderr.strip() or done.returncode}"
    return f"requeued SLURM job {job}; it will resume from the checkpoint (with --resume-if-present)"


def _how_to_continue(run: RunDir) -> str:
    """What to type after an interrupted training, by what its folder holds."""
    if run.has_checkpoint():
        return f"continue it with `resdyn train --resume {run.path}`"
    return (f"no epoch had finished, so {run.path} holds nothing to resume: run the same command again with "
            "--overwrite")


def run_table(run: RunDir) -> str:
    """The epochs of a run and its summary, as terminal tables."""
    metrics = run.read_metrics()
    rows = [[m.epoch, m.lr, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.epoch_time_s, m.images_per_s]
            for m in metrics]
    epochs = format_table(["epoch", "lr", "train loss", "train acc", "test loss", "test acc", "time s", "img/s"],
                          rows)
    s = run.read_summary()
    if s is None:
        return epochs
    processes = f", {s.world_size} processes" if s.world_size and s.world_size > 1 else ""
    facts = [
        ("model", f"{s.model} ({s.params:,} parameters)"),
        ("data", f"{s.data} ({s.train_images:,} train / {s.test_images:,} test images)"),
        ("test accuracy", f"{s.test_acc:.4f} (error {100 * (1 - s.test_acc):.2f}%, weights: {s.final_weights}"
                          f"{', flip TTA' if s.tta == 'flip' else ''})"),
        ("best test accuracy", f"{s.best_test_acc:.4f}"),
        ("test loss", f"{s.test_loss:.4f}"),
        ("train time", f"{s.train_time_s:.1f} s ({s.train_time_per_epoch_s:.1f} s/epoch)"),
        ("peak memory", f"{human_bytes(s.peak_memory_bytes)} ({s.peak_memory_kind})"),
        ("device", f"{s.device}, {s.precision}{processes}"),
    ]
    width = max(len(k) for k, _ in facts)
    return epochs + "\n\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts)
