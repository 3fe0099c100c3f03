"""Ensembles of runs (G. Fuentes-Pineda's lecture, 2023, lists ensembles among the regularisers; dropout is their
cheap approximation): the test score of the average of several runs' predicted class probabilities.

Each run's final model (``load_run``: the weights its summary scored, float32, evaluation mode) scores the same
test images, those of the first run's config (its dataset, test part, resize and crop, and its ``data.limit_test``
subset); runs whose configs describe other test images or other classes are refused. A single crop: no test-time
flip, whatever the runs used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from resdyn.analysis.ensembles import EnsembleScore
from resdyn.data import load_dataset
from resdyn.runs import RunError
from resdyn.train.config import Config
from resdyn.train.data import prepare_data
from resdyn.train.fit import load_run

#: the config keys that decide which test images a run is scored on, and how they are shown to the model
TEST_DATA = ("data.name", "data.test_part", "data.limit_test", "data.resize", "data.crop", "data.eval_crop")


def ensemble(paths: Sequence[str | Path], device: str | torch.device = "cpu", data_dir: str | None = None,
             batch_size: int = 1000) -> EnsembleScore:
    """Score the average softmax of the final models of the runs in ``paths`` on their shared test data
    (``data_dir``: where the dataset's files are, if not where the first run found them)."""
    if len(paths) < 2:
        raise RunError(f"an ensemble needs at least two runs, got {len(paths)}")
    loaded = [load_run(path, device=device) for path in paths]
    first = loaded[0].config
    for path, run in zip(paths[1:], loaded[1:], strict=True):
        _check_same_test_data(first, run.config, Path(paths[0]), Path(path))
    dc = first.data
    dataset = load_dataset(dc.name, data_dir or dc.dir, download=dc.download, test_part=dc.test_part)
    config = Config(data=dc, train=dataclasses.replace(first.train, eval_batch_size=batch_size))
    test = prepare_data(dataset, config, torch.device(device), channels_last=False).test
    log_likelihood = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros(len(loaded) + 1, dtype=torch.long)
    with torch.no_grad():
        for x, y in test:
            probs = torch.stack([run.model(x).float().softmax(1) for run in loaded])
            mean = probs.mean(0)
            log_likelihood += mean[torch.arange(len(y)), y].log().double().sum().cpu()
            correct += torch.cat([(probs.argmax(2) == y).sum(1), (mean.argmax(1) == y).sum()[None]]).cpu()
    n = len(test.labels)
    return EnsembleScore([str(p) for p in paths], n, correct[-1].item() / n, -log_likelihood.item() / n,
                         [c / n for c in correct[:-1].tolist()], label=first.meta.get("label") or first.model.name)


def _check_same_test_data(a: Config, b: Config, path_a: Path, path_b: Path) -> None:
    differences = []
    for key in TEST_DATA:
        section, name = key.split(".")
        va, vb = getattr(getattr(a, section), name), getattr(getattr(b, section), name)
        if va != vb:
            differences.append(f"{key} {va!r} in {path_a}, {vb!r} in {path_b}")
    if differences:
        raise RunError(f"the runs of an ensemble must be scored on the same test images and classes: "
                       f"{'; '.join(differences)}")
