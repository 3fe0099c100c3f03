"""Images per second of the streaming pipeline's CPU work at ImageNet sizes: decoding JPEGs of 500 x 375 (the
typical ILSVRC-2012 image) and augmenting them to 224 x 224, per process, and the StreamingLoader's whole batches.

    PYTHONPATH=. python3 benchmarks/imagenet_pipeline.py [--images 256] [--repeats 3] [--workers 0 2] [--json out.json]

Writes the JPEGs it reads (smooth random colour fields, quality 90, into a temporary folder). The per-process
figures are one core's: with N workers a loader decodes at most about N times as fast, on N free cores. Medians of
``--repeats`` passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resdyn.data.folder import image_folder
from resdyn.data.images import EvalTransform, TrainTransform, decode, to_uint8
from resdyn.data.streaming import StreamingLoader


def write_jpegs(root: Path, images: int, classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    for i in range(images):
        coarse = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((500, 375), Image.Resampling.BICUBIC)
        for split in ("train", "val"):
            folder = root / split / f"class{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{i:05d}.jpg", "JPEG", quality=90)


def median_rate(work, count: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), args.images)
        dataset = image_folder(tmp)
        paths = [dataset.train.path(i) for i in range(len(dataset.train))]
        train, evaluation = TrainTransform(), EvalTransform()
        generators = [torch.Generator().manual_seed(i) for i in range(len(paths))]
        n = len(paths)
        rates = {
            "decode": median_rate(lambda: [decode(p) for p in paths], n, args.repeats),
            "decode + train (RandomResizedCrop 224, flip)": median_rate(
                lambda: [to_uint8(train(decode(p), g)) for p, g in zip(paths, generators, strict=True)], n,
                args.repeats),
            "decode + eval (resize 256, centre crop 224)": median_rate(
                lambda: [to_uint8(evaluation(decode(p))) for p in paths], n, args.repeats),
        }
        for workers in args.workers:
            loader = StreamingLoader(dataset.train, dataset.info, 32, transform=train, shuffle=True,
                                     num_workers=workers)
            list(loader)  # start the persistent workers
            rates[f"StreamingLoader, train, {workers} workers, batches of 32"] = median_rate(
                lambda loader=loader: list(loader), n, args.repeats)
    for what, rate in rates.items():
        print(f"{rate:8.1f} images/s  {what}")
    if args.json:
        Path(args.json).write_text(json.dumps({"images": args.images, "rates": rates}, indent=1) + "\n")


if __name__ == "__main__":
    main()
