"""``resdyn bench``: measure resdyn's training loop against plain PyTorch loops, print the table, write ``--json``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from resdyn import bench
from resdyn.bench import LOOPS, LR, MODELS, MOMENTUM, WEIGHT_DECAY


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    b = sub.add_parser("bench", help="training images/s of resdyn against plain PyTorch loops on this device",
                       description=bench.__doc__.splitlines()[0] + " See resdyn/bench.py for what each loop does.")
    b.add_argument("--models", default=",".join(MODELS), help=f"comma-separated (default {','.join(MODELS)})")
    b.add_argument("--batch-size", default="128", help="one or more, comma-separated, e.g. 128,512")
    b.add_argument("--steps", type=int, default=20, help="timed steps per measurement (default 20)")
    b.add_argument("--warmup", type=int, default=5, help="untimed steps before the first measurement (default 5)")
    b.add_argument("--repeats", type=int, default=3, help="measurements of each loop; the median is reported")
    b.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    b.add_argument("--data", default="fashion-mnist", help="dataset (default fashion-mnist)")
    b.add_argument("--data-dir", help="directory holding the dataset's files")
    b.add_argument("--synthetic", action="store_true", help="random images of the dataset's shape (no files)")
    b.add_argument("--workers", type=int, help="DataLoader workers of the plain loop (default: 8 on a GPU, 0 on "
                   "the CPU, where workers would take cores from the training itself)")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a key of resdyn's config, e.g. --set train.compile=true")
    b.add_argument("--json", metavar="PATH", help="also write the table, settings and machine as JSON")
    return b


def run(args: argparse.Namespace) -> int:
    """Measure, print the table, write ``--json``."""
    import torch

    from resdyn.device import configure_backends, describe_device, resolve_device
    from resdyn.version import source_version

    names, batch_sizes = bench.check(args)
    device = configure_backends(resolve_device(args.device))  # as train() does, for every loop alike
    workers = args.workers if args.workers is not None else (8 if device.type == "cuda" else 0)
    info, split = bench.bench_data(args.data, args.data_dir, args.synthetic)
    print(f"device {describe_device(device)}, torch {torch.__version__}, {args.steps} steps x {args.repeats} "
          f"repeats after {args.warmup} warm-up steps, {'synthetic ' if args.synthetic else ''}{args.data}",
          flush=True)
    rows = []
    for name in names:
        for batch_size in batch_sizes:
            s = bench.Settings(batch_size, args.steps, args.warmup, device, workers, list(args.set))
            row = bench.bench_model(name, info, split, s, args.repeats)
            rows.append(row)
            print(f"{name} batch {batch_size}: resdyn {row.ratio['plain']:.2f}x (a), {row.ratio['best']:.2f}x (b)",
                  flush=True)
    print("\n" + bench.format_rows(rows))
    for kind in LOOPS:
        print(f"{kind}: " + "; ".join(dict.fromkeys(f"{r.model}: {r.loops[kind]}" for r in rows)))
    if args.json:
        result = {
            "device": describe_device(device), "torch": torch.__version__, "commit": source_version(),
            "command": args.command_line, "threads": torch.get_num_threads(),
            "settings": {"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "workers": workers,
                         "data": args.data, "synthetic": args.synthetic, "set": list(args.set),
                         "optimizer": f"SGD lr {LR}, Nesterov momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}"},
            "rows": [asdict(r) for r in rows],
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
