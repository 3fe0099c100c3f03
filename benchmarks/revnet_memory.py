"""Peak training memory of RevNet against ResNet of the same depth, and memory against depth.

On CUDA: peak allocated bytes of one training step (forward, backward, optimiser step) at batch 128, 32x32.
On the CPU there are no allocator statistics; ``--cpu-measure`` picks one of
  saved: the bytes of tensors autograd saves for backward after one forward pass, which is what a
         reversible stage avoids storing;
  rss:   the peak resident memory a training step adds to its process: each model runs in a fresh process,
         which builds the model, optimiser and batch, notes its max RSS, takes two training steps and notes
         its max RSS again; the difference is reported.

    PYTHONPATH=. python3 benchmarks/revnet_memory.py --out benchmarks/results/revnet_memory.json
    PYTHONPATH=. python3 benchmarks/revnet_memory.py --device cpu --cpu-measure rss --out rss.json

Prints one row per model and the ratio revnet / resnet at each depth pair.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource

import torch

from resdyn import build_model
from resdyn.analysis.profile import saved_tensor_bytes
from resdyn.device import describe_device

PAIRS = [("resnet32", "revnet38"), ("resnet110", "revnet110"), ("resnet164", "revnet164")]


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def peak_bytes(name: str, device: torch.device, batch: int, cpu_measure: str = "saved", **options: object) -> int:
    torch.manual_seed(0)
    model = build_model(name, **options).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if device.type != "cuda" and cpu_measure == "saved":
        return saved_tensor_bytes(model, x)
    before = max_rss_bytes()
    for _ in range(2):  # the second step runs with the optimiser state allocated
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device)
    return max_rss_bytes() - before


def _child(queue: multiprocessing.Queue, name: str, batch: int, options: dict) -> None:
    queue.put(peak_bytes(name, torch.device("cpu"), batch, "rss", **options))


def peak_bytes_isolated(name: str, batch: int, **options: object) -> int:
    """``peak_bytes`` with the RSS measure, in a fresh process so that no earlier model's peak is counted."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, name, batch, options))
    process.start()
    value = queue.get()
    process.join()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cpu-measure", choices=["saved", "rss"], default="saved")
    parser.add_argument("--out")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments, print the pairs, measure nothing")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.dry_run:
        print(f"would measure {', '.join(f'{a} vs {b}' for a, b in PAIRS)} at batch {args.batch} on {device}")
        return
    measure = ("cuda_max_allocated" if device.type == "cuda" else
               "autograd_saved_bytes" if args.cpu_measure == "saved" else "training_step_max_rss_increase")

    def peak(name: str, **options: object) -> int:
        if measure == "training_step_max_rss_increase":
            return peak_bytes_isolated(name, args.batch, **options)
        return peak_bytes(name, device, args.batch, args.cpu_measure, **options)

    rows = []
    for resnet, revnet in PAIRS:
        base = peak(resnet)
        rev = peak(revnet)
        plain = peak(revnet, memory_saving=False)
        rows.append({"resnet": resnet, "revnet": revnet, "resnet_bytes": base, "revnet_bytes": rev,
                     "revnet_no_saving_bytes": plain, "ratio_revnet_to_resnet": rev / base})
        print(f"{resnet:>10} {base / 2**20:9.1f} MiB   {revnet:>10} {rev / 2**20:9.1f} MiB "
              f"(without memory saving {plain / 2**20:9.1f} MiB)   ratio {rev / base:.3f}")
    result = {"device": describe_device(device), "torch": torch.__version__, "measure": measure,
              "batch": args.batch, "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
