"""Short real runs for the report tests: ResNet-8 on digits with two seeds, and one LM-ResNet-14 with a paper
number in its [meta], two epochs each (seconds in all). Each trains in a process of its own, as `resdyn train`
and `resdyn compare` train, so that every peak memory is the run's own."""

import subprocess
import sys
from pathlib import Path

import pytest

SMALL = [
    "data.name=digits", "data.crop_padding=1", "data.flip=false", "train.batch_size=32",
    "train.eval_batch_size=512", "train.device=cpu", "schedule.name=multistep", "schedule.milestones=[1]",
    "optim.lr=0.1", "train.epochs=2",
]
RUNS = {
    "resnet8-seed0": ["model.name=resnet", "model.options.depth=8", "train.seed=0"],
    "resnet8-seed1": ["model.name=resnet", "model.options.depth=8", "train.seed=1"],
    "lm14-seed0": ["model.name=lm-resnet", "model.options.depth=14", "meta.paper_test_error=4.5",
                   'meta.source="a made-up paper"'],
}


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory) -> dict[str, Path]:
    """Run folder of each of RUNS, by name."""
    root = tmp_path_factory.mktemp("runs")
    for name, overrides in RUNS.items():
        sets = [arg for override in SMALL + overrides for arg in ("--set", override)]
        subprocess.run([sys.executable, "-m", "resdyn", "train", *sets, "--progress", "off", "--out",
                        str(root / name)], check=True, capture_output=True)
    return {name: root / name for name in RUNS}
