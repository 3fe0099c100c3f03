"""Score a finished run's final weights as trained and with their BatchNorm statistics recomputed
(:func:`resdyn.train.evaluate.recompute_batchnorm`, what ``train.recompute_bn = N`` does at the end of a run) over
each of the given numbers of training images, taken from the last epoch's training stream.

    PYTHONPATH=. python3 benchmarks/recompute_bn.py RUN_FOLDER 20000 60000 [--json out.json]

It tells whether a recipe's final running statistics lag behind its weights (a gain) or not (noise-sized
differences). The run comes back through :func:`resdyn.load_run` (its final weights: the EMA's when the run kept
one); it is scored in the precision and layout its config resolves to on this machine (the run's own, on the
machine that trained it), with its test-time flip.
"""

from __future__ import annotations

import argparse
import json

import torch

from resdyn import load_run
from resdyn.device import choose_speed
from resdyn.distributed import World
from resdyn.train.data import load_data
from resdyn.train.evaluate import evaluate, recompute_batchnorm
from resdyn.train.parts import Placement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished run folder")
    parser.add_argument("images", type=int, nargs="+", help="training images to recompute the statistics over")
    parser.add_argument("--json", help="write the scores here")
    args = parser.parse_args()

    loaded = load_run(args.run)
    config, model = loaded.config, loaded.model
    device = torch.device("cpu")
    placement = Placement(device, World(), choose_speed(device, config.train.precision, config.train.channels_last))
    if placement.speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    data = load_data(config, device, channels_last=placement.speed.channels_last)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    flip = config.train.tta_flip
    loss, acc = evaluate(model, data.test, placement.autocast, flip=flip)
    rows = [{"statistics": "as trained", "test_loss": loss, "test_acc": acc}]
    for n in args.images:
        model.load_state_dict(weights)
        data.train.set_epoch(config.train.epochs)
        used = recompute_batchnorm(model, data.train, placement.autocast, n)
        loss, acc = evaluate(model, data.test, placement.autocast, flip=flip)
        rows.append({"statistics": f"recomputed over {used} images", "test_loss": loss, "test_acc": acc})
    for row in rows:
        print(f"{row['statistics']:>34}: test accuracy {row['test_acc']:.4f}, loss {row['test_loss']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": args.run, "model": config.model.name, "seed": config.train.seed,
                       "precision": placement.speed.describe(), "tta_flip": flip, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
