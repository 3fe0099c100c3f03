"""Peak training memory of RevNet against ResNet of the same depth, and memory against depth.

On CUDA: peak allocated bytes of one training step (forward, backward, optimiser step) at batch 128, 32x32.
On the CPU (no allocator statistics): the bytes of tensors autograd saves for backward, which is what a
reversible stage avoids storing.

    PYTHONPATH=. python3 benchmarks/revnet_memory.py --out benchmarks/results/revnet_memory.json

Prints one row per model and the ratio revnet / resnet at each depth pair.
"""

from __future__ import annotations

import argparse
import json

import torch

from resdyn import build_model
from resdyn.analysis.profile import saved_tensor_bytes
from resdyn.train.loop import describe_device

PAIRS = [("resnet32", "revnet38"), ("resnet110", "revnet110"), ("resnet164", "revnet164")]


def peak_bytes(name: str, device: torch.device, batch: int, **options: object) -> int:
    torch.manual_seed(0)
    model = build_model(name, **options).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if device.type != "cuda":
        return saved_tensor_bytes(model, x)
    for _ in range(2):  # the second step runs with the optimiser state allocated
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    device = torch.device(args.device)
    measure = "cuda_max_allocated" if device.type == "cuda" else "autograd_saved_bytes"
    rows = []
    for resnet, revnet in PAIRS:
        base = peak_bytes(resnet, device, args.batch)
        rev = peak_bytes(revnet, device, args.batch)
        plain = peak_bytes(revnet, device, args.batch, memory_saving=False)
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
