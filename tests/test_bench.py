"""resdyn bench: the plain baselines (benchmarks/baselines.py) train the same models as resdyn, and --json writes
the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import baselines
from resdyn import bench, build_model
from resdyn.cli import main
from resdyn.metrics import model_metrics


def test_the_torchdiffeq_example_odenet_is_resdyns_odenet():
    """Same parameters in the same order, the same function, the same number of field evaluations."""
    torch.manual_seed(0)
    reference = baselines.reference_odenet(1, 10).double().eval()
    ours = build_model("odenet", 1, 10, **bench.model_options("odenet")).double().eval()
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


def settings() -> bench.Settings:
    return bench.Settings(batch_size=8, steps=1, warmup=1, device=torch.device("cpu"), workers=0, overrides=[])


def test_the_three_loops_train_the_same_model_with_the_same_optimiser():
    info, split = bench.bench_data("fashion-mnist", None, synthetic=True)
    loops = {kind: cls("resnet20", info, split, settings()) for kind, cls in bench.loop_classes().items()}
    models = {"resdyn": loops["resdyn"].parts.model, "plain": loops["plain"].model, "best": loops["best"].model}
    optimisers = {"resdyn": loops["resdyn"].parts.optimizer, "plain": loops["plain"].optimizer,
                  "best": loops["best"].optimizer}
    shapes = {kind: [p.shape for p in m.parameters()] for kind, m in models.items()}
    assert shapes["resdyn"] == shapes["plain"] == shapes["best"]
    keys = ("lr", "momentum", "nesterov", "weight_decay")
    groups = {kind: [{k: g[k] for k in keys} for g in o.param_groups] for kind, o in optimisers.items()}
    # resdyn keeps BatchNorm and biases out of the decay only when asked to; by default one group like the others.
    assert {tuple(g.items()) for gs in groups.values() for g in gs} == {
        (("lr", bench.LR), ("momentum", bench.MOMENTUM), ("nesterov", True), ("weight_decay", bench.WEIGHT_DECAY))}


def test_bench_json_writes_a_row_per_model_with_positive_ratios(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "--synthetic", "--models", "resnet20", "--batch-size", "8", "--steps", "1", "--warmup", "1",
            "--repeats", "2", "--device", "cpu", "--json", str(path)]
    assert main(argv) == 0
    result = json.loads(path.read_text())
    assert {"device", "torch", "commit", "command", "settings", "rows"} <= result.keys()
    assert result["device"].startswith("cpu") and result["command"] == "resdyn " + " ".join(argv)
    assert result["settings"]["repeats"] == 2 and result["settings"]["synthetic"] is True
    (row,) = result["rows"]
    assert row["model"] == "resnet20" and row["batch_size"] == 8
    for kind in ("resdyn", "plain", "best"):
        assert len(row["repeats"][kind]) == 2 and min(row["repeats"][kind]) > 0
        assert row["images_per_s"][kind] > 0
    for base in ("plain", "best"):
        assert row["ratio"][base] > 0
        low, high = row["ratio_range"][base]
        assert low <= row["ratio"][base] <= high
    assert row["loops"]["plain"] == "fp32, per-image DataLoader"
    out = capsys.readouterr().out
    assert "resdyn/(a)" in out and "resnet20" in out


@pytest.mark.parametrize("flags, message", [
    (["--models", "resnet21"], "resnet21"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--set", "train.precision=fp16"], "fp16"),
])
def test_bench_refuses_bad_options_before_measuring(flags, message, capsys):
    assert main(["bench", "--synthetic", "--device", "cpu", *flags]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("padding", [0, 2])
def test_the_per_image_pipeline_crops_within_its_padding(padding):
    from resdyn.data import Split
    images = torch.randint(1, 256, (64, 1, 6, 6), dtype=torch.uint8)
    data = baselines.PerImageData(Split(images, torch.zeros(64, dtype=torch.long)), 0.0, 1.0, flip=False,
                              padding=padding)
    torch.manual_seed(0)
    shifts = set()
    for i in range(64):
        x, _ = data[i]
        original = images[i, 0].float() / 255
        # a crop of the zero-padded image: find the offset at which it equals the original's overlap
        found = [(dy, dx) for dy in range(-padding, padding + 1) for dx in range(-padding, padding + 1)
                 if torch.equal(x[0], torch.nn.functional.pad(original, (padding,) * 4)[
                     padding + dy : padding + dy + 6, padding + dx : padding + dx + 6])]
        assert len(found) == 1
        shifts.add(found[0])
    assert max(max(abs(dy), abs(dx)) for dy, dx in shifts) == padding


def test_bench_says_where_the_baselines_are_when_they_cannot_be_imported(monkeypatch, capsys):
    """Installed from a wheel, without the repository's benchmarks/: one line saying how to run it."""
    monkeypatch.setattr(bench, "BASELINES", "benchmarks.no_such_module")
    monkeypatch.setattr(bench, "_baselines_beside_the_package", lambda: None)
    assert main(["bench", "--synthetic", "--models", "resnet20", "--batch-size", "8", "--steps", "1", "--warmup",
                 "1", "--repeats", "1", "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # refused before the device or the data are touched
    assert err.startswith("resdyn: error: resdyn bench compares against plain PyTorch loops") and err.count("\n") == 1
    assert "benchmarks/baselines.py" in err and "PYTHONPATH=." in err


def test_an_editable_install_finds_the_baselines_from_any_folder(monkeypatch):
    """``resdyn bench`` run as the installed command outside the checkout (benchmarks/ not importable): the
    checkout's benchmarks/baselines.py beside the package is loaded."""
    real = bench.importlib.import_module

    def without_benchmarks(name, *args):
        if name.startswith("benchmarks"):
            raise ModuleNotFoundError(f"No module named {name!r}", name="benchmarks")
        return real(name, *args)

    monkeypatch.setattr(bench.importlib, "import_module", without_benchmarks)
    monkeypatch.delitem(sys.modules, bench.BASELINES, raising=False)
    loops = bench.loop_classes()
    assert loops["plain"].__name__ == "PlainLoop" and loops["best"].__name__ == "BestLoop"
    assert Path(sys.modules[bench.BASELINES].__file__).name == "baselines.py"
