"""Score a finished run's final weights as trained and with their BatchNorm statistics recomputed
(:func:`resdyn.train.loop.recompute_batchnorm`, what ``train.recompute_bn = N`` does at the end of a run) over
each of the given numbers of training images, taken from the last epoch's training stream.

    PYTHONPATH=. python3 benchmarks/recompute_bn.py RUN_FOLDER 20000 60000 [--json out.json]

It tells whether a recipe's final running statistics lag behind its weights (a gain) or not (noise-sized
differences). The run's own precision and layout (from the summary's ``precision``) and test-time flip are used.
The weights are the checkpoint's last ones (an EMA's when the run kept one).
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

import torch

from resdyn import build_model
from resdyn.runs import RunDir
from resdyn.train.config import Config
from resdyn.train.loop import evaluate, load_data, recompute_batchnorm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished run folder")
    parser.add_argument("images", type=int, nargs="+", help="training images to recompute the statistics over")
    parser.add_argument("--json", help="write the scores here")
    args = parser.parse_args()

    run = RunDir(args.run)
    checkpoint = run.load_checkpoint(map_location="cpu")
    config = Config.from_dict(checkpoint.config)
    summary = json.loads(run.file("summary.json").read_text())
    bf16 = summary["precision"].startswith("bf16")
    channels_last = "channels_last" in summary["precision"].split("(")[0]
    data = load_data(config, torch.device("cpu"), channels_last=channels_last)
    info = data.info
    model = build_model(config.model.name, info.in_channels, info.num_classes, **config.model.options)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    weights = checkpoint.model
    if checkpoint.ema is not None:
        weights = {k.removeprefix("module."): v for k, v in checkpoint.ema.items() if k.startswith("module.")}

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    flip = config.train.tta_flip
    model.load_state_dict(weights)
    loss, acc = evaluate(model, data.test, autocast, flip=flip)
    rows = [{"statistics": "as trained", "test_loss": loss, "test_acc": acc}]
    for n in args.images:
        model.load_state_dict(weights)
        data.train.set_epoch(config.train.epochs)
        used = recompute_batchnorm(model, data.train, autocast, n)
        loss, acc = evaluate(model, data.test, autocast, flip=flip)
        rows.append({"statistics": f"recomputed over {used} images", "test_loss": loss, "test_acc": acc})
    for row in rows:
        print(f"{row['statistics']:>34}: test accuracy {row['test_acc']:.4f}, loss {row['test_loss']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": args.run, "model": config.model.name, "seed": config.train.seed,
                       "precision": summary["precision"], "tta_flip": flip, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
