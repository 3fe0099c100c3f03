"""The benchmarks compare like with like: their plain baselines are the models and schedules resdyn trains."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from resdyn import build_model
from resdyn.metrics import model_metrics
from resdyn.train.optim import lr_at

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("adjoint", [False, True])
def test_the_torchdiffeq_example_odenet_is_resdyns_odenet(adjoint: bool) -> None:
    """Same parameters in the same order, the same function, the same number of field evaluations."""
    bench = load("odenet_throughput")
    torch.manual_seed(0)
    reference = bench.reference_odenet(1, 10, adjoint).double().eval()
    ours = build_model("odenet", 1, 10, rtol=bench.TOL, atol=bench.TOL, adjoint=adjoint).double().eval()
    theirs, mine = list(reference.parameters()), list(ours.parameters())
    assert [p.shape for p in theirs] == [p.shape for p in mine]
    assert sum(p.numel() for p in mine) == 208_266
    with torch.no_grad():
        for a, b in zip(theirs, mine, strict=True):
            b.copy_(a)
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert model_metrics(ours)["nfe_eval_mean"] == reference[7].odefunc.nfe > 0


def test_the_plain_training_loop_follows_resdyns_schedule() -> None:
    bench = load("train_throughput")
    steps_per_epoch, epochs, lr = 7, 3, 0.1
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = bench.plain_schedule(opt, lr, epochs, steps_per_epoch)
    seen = []
    for _ in range(epochs * steps_per_epoch):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([lr_at(bench.SCHEDULE, lr, epochs, s, steps_per_epoch)
                                  for s in range(epochs * steps_per_epoch)])
    warmup, rest = seen[:steps_per_epoch], seen[steps_per_epoch:]
    assert warmup[0] < lr / steps_per_epoch and warmup == sorted(warmup)  # one epoch of linear warm-up
    assert rest == sorted(rest, reverse=True) and rest[-1] < 0.01 * lr  # then cosine to (nearly) zero
