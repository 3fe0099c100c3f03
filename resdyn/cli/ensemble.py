"""``resdyn ensemble RUN... [--out DIR] [--json FILE]``: the test score of the average softmax of several runs' final
models; ``--out`` keeps it as a folder that ``resdyn report`` shows as an "ensemble of seeds" section."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    e = sub.add_parser("ensemble", help="score the average softmax of several runs' final models on the test set",
                       description="Score an ensemble: every run's final model (the weights its summary scored) "
                       "predicts the test images of the first run's config, and the ensemble predicts the average "
                       "of their class probabilities. The runs must share the dataset, its test images and classes.")
    e.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (at least two)")
    e.add_argument("--device", default="cpu", help="where to score (default cpu)")
    e.add_argument("--data-dir", metavar="DIR", help="the dataset's folder, if not where the first run found it")
    e.add_argument("--out", metavar="DIR", help="keep the scores in DIR/ensemble.json, for resdyn report")
    e.add_argument("--json", metavar="FILE", help="also write the scores to FILE as JSON")
    return e


def run(args: argparse.Namespace) -> int:
    from resdyn.analysis.ensembles import write_ensemble
    from resdyn.analysis.tables import format_table
    from resdyn.atomic import atomic_write
    from resdyn.device import resolve_device
    from resdyn.train.ensemble import ensemble

    score = dataclasses.replace(ensemble(args.runs, resolve_device(args.device), args.data_dir),
                                command=args.command_line)
    rows = [[path, f"{100 * acc:.2f}"] for path, acc in zip(score.runs, score.member_acc, strict=True)]
    rows.append([f"ensemble of {len(score.runs)}", f"{100 * score.test_acc:.2f}"])
    print(format_table(["run", "test accuracy %"], rows))
    print(f"ensemble test loss {score.test_loss:.4f} over {score.test_images} test images")
    if args.json:
        text = json.dumps(dataclasses.asdict(score), indent=2) + "\n"
        atomic_write(Path(args.json), lambda f: f.write(text.encode()))
    if args.out:
        print(f"kept in {write_ensemble(args.out, score)}")
    return 0
