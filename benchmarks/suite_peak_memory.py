"""Peak memory of a `resdyn compare` suite's runs against the same runs trained alone (issue 29, item 2).

A 4-run suite (ResNet-8 on Fashion-MNIST, one optimiser per run, the hostile-input audit's setup) is run with
`resdyn compare`; then each of its runs is trained alone with `resdyn train` on the suite's own config. Prints
each run's peak memory in the suite and alone, and their ratio; the check is that every ratio is within 5%.

    .venv/bin/python benchmarks/suite_peak_memory.py --data-dir data/fashion-mnist --out /tmp/suite-memory
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from resdyn.compare import load_suite
from resdyn.runs import RunDir
from resdyn.train.config import dump_config

SUITE = """
[suite]
name = "peak-memory"
models = ["resnet"]
set = ["model.options.depth=8", "data.name=\\"fashion-mnist\\"", "data.limit_train=256", "data.limit_test=128",
       "train.epochs=1", "train.progress=\\"off\\"", "train.device=\\"cpu\\""]

[[suite.variants]]
name = "sgd"
set = ["optim.name=sgd"]

[[suite.variants]]
name = "adam"
set = ["optim.name=adam", "optim.lr=0.001"]

[[suite.variants]]
name = "adamw"
set = ["optim.name=adamw", "optim.lr=0.001"]

[[suite.variants]]
name = "rmsprop"
set = ["optim.name=rmsprop", "optim.lr=0.001"]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding Fashion-MNIST's files (else resdyn's search order)")
    parser.add_argument("--out", default="/tmp/suite-peak-memory")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    suite_file = out / "suite.toml"
    suite_file.write_text(textwrap.dedent(SUITE))
    sets = [f"data.dir={Path(args.data_dir).resolve()}"] if args.data_dir else []
    subprocess.run([sys.executable, "-m", "resdyn", "compare", "-c", str(suite_file), "--out", str(out / "suite"),
                    *[a for s in sets for a in ("--set", s)]], check=True, stdout=subprocess.DEVNULL)
    print(f"{'run':<22}{'in the suite (MiB)':>20}{'alone (MiB)':>14}{'ratio':>8}  kind")
    worst = 0.0
    for experiment in load_suite(suite_file, sets, out=out / "suite").experiments:
        config = out / f"{experiment.name}.toml"
        config.write_text(dump_config(experiment.config))
        alone = out / "alone" / experiment.name
        subprocess.run([sys.executable, "-m", "resdyn", "train", "-c", str(config), "--out", str(alone)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        in_suite = RunDir(experiment.path).read_summary()
        by_itself = RunDir(alone).read_summary()
        ratio = in_suite.peak_memory_bytes / by_itself.peak_memory_bytes
        worst = max(worst, abs(ratio - 1))
        print(f"{experiment.name:<22}{in_suite.peak_memory_bytes / 2**20:>20.1f}"
              f"{by_itself.peak_memory_bytes / 2**20:>14.1f}{ratio:>8.3f}  {in_suite.peak_memory_kind}")
    print(f"largest difference: {100 * worst:.1f}% (target: under 5%)")
    return 0 if worst < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
