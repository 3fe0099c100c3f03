"""The Markdown summary of a benchmarks/gpu.sh results folder: the machine, each step's exit code and time, and
the figures that the GPU targets name.

    PYTHONPATH=. python3 benchmarks/gpu_summary.py benchmarks/results/gpu-DATE > benchmarks/results/gpu-DATE/summary.md
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def summary(out: Path) -> str:
    lines = [f"# GPU results: {out.name}", "", "```", (out / "machine.txt").read_text().strip()
             if (out / "machine.txt").exists() else "(no machine.txt)", "```", ""]
    steps = {}
    if (out / "steps.tsv").exists():
        with open(out / "steps.tsv") as f:
            steps = {row["step"]: row for row in csv.DictReader(f, delimiter="\t")}
    lines += ["| step | exit | wall s | budget s |", "| --- | --- | --- | --- |"]
    lines += [f"| {s['step']} | {s['exit']} | {s['wall_s']} | {s['budget_s']} |" for s in steps.values()]
    lines.append("")

    for name in ("bench_cuda_b128.json", "bench_cuda_b512.json"):
        bench = _json(out / name)
        if bench is None:
            continue
        header = "| model | batch | resdyn img/s | (a) plain | (b) best | resdyn/(a) | resdyn/(b) |"
        lines += [f"## `{bench['command']}`", "", header, "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in bench["rows"]:
            ips = r["images_per_s"]
            lines.append(f"| {r['model']} | {r['batch_size']} | {ips['resdyn']:.0f} | {ips['plain']:.0f} | "
                         f"{ips['best']:.0f} | {r['ratio']['plain']:.2f}x | {r['ratio']['best']:.2f}x |")
        lines.append("")

    for run, what in (("fast", "time to 94% (fashion-mnist-fast)"), ("resnet20", "ResNet-20 recipe")):
        s = _json(out / run / "summary.json")
        if s is not None:
            wall = steps.get(run, {}).get("wall_s", "?")
            lines.append(f"- {what}: test accuracy {100 * s['test_acc']:.2f}% after {s['epochs']} epochs, "
                         f"{wall} s from process start ({s['train_time_s']:.1f} s training), {s['precision']}")

    revnet = _json(out / "revnet_memory_cuda.json")
    if revnet is not None:
        for r in revnet["rows"]:
            lines.append(f"- {r['revnet']} {r['revnet_bytes'] / 2**20:.0f} MiB vs {r['resnet']} "
                         f"{r['resnet_bytes'] / 2**20:.0f} MiB peak CUDA memory ({r['ratio_revnet_to_resnet']:.2f}x)")

    accs: dict[str, list[float]] = {}
    for path in sorted((out / "r56-vs-lm").glob("*/summary.json")):
        s = json.loads(path.read_text())
        accs.setdefault(s["model"], []).append(100 * s["test_acc"])
    for model, values in accs.items():
        spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        lines.append(f"- {model}: {statistics.fmean(values):.2f}{spread}% over {len(values)} seeds (3 epochs)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])), end="")
