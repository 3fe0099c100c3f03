"""The notebook's way in: a model object with a scheme of its own is fitted on tensors, read back from its run
folder with the same scores, and run folders become DataFrames; the README's example runs as written."""

import os
import re
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch

import resdyn
from resdyn.data import DeviceLoader, load_dataset
from resdyn.errors import ConfigError
from resdyn.nets import build_model
from resdyn.nets.cifar import ResNetOptions, resnet
from resdyn.runs import RunDir, RunError
from resdyn.schemes import Scheme
from resdyn.train.data import as_dataset
from resdyn.train.evaluate import evaluate

pytest.importorskip("sklearn")  # the digits
pd = pytest.importorskip("pandas")


class Relaxed(Scheme):
    """``x_{n+1} = x_n + f_n(x_n) / 2``: forward Euler with half the step (order 1)."""

    order = 1

    def step(self, n, x, carry):
        return x + self.field(n)(x) / 2, None

    @classmethod
    def characteristic(cls, z, **coefficients):
        return np.stack([np.ones_like(z), -(1 + z / 2)], axis=-1)


def network(seed=0):
    torch.manual_seed(seed)
    return resnet(ResNetOptions(depth=8), in_channels=1, num_classes=10, scheme=Relaxed)


@pytest.fixture(scope="module")
def digits():
    dataset = load_dataset("digits")
    return ((dataset.train.images[:512], dataset.train.labels[:512]),
            (dataset.test.images[:256], dataset.test.labels[:256]))


def config(**train):
    return resdyn.Config(data=resdyn.DataConfig(crop_padding=1, flip=False),
                         train=resdyn.TrainConfig(**{"epochs": 1, "batch_size": 32, "device": "cpu",
                                                     "precision": "fp32", "progress": "off", **train}))


def test_a_custom_scheme_fitted_on_tensors_loads_back_with_the_same_scores(tmp_path, digits):
    train, test = digits
    result = resdyn.fit(network(), train, test, config(), out=tmp_path / "run")
    assert isinstance(result.model.body, Relaxed) and not result.model.training
    assert [r.epoch for r in result.epochs] == [1] and result.folder == tmp_path / "run"
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.pt", "config.toml", "metrics.jsonl", "summary.json"]
    run = RunDir(tmp_path / "run")
    assert run.read_summary() == result.summary and run.read_metrics() == result.epochs
    assert result.summary.model == "python:resdyn.nets.base.Network" and result.summary.data == "tensors"
    assert result.summary.test_images == 256 and result.summary.scheme is None  # not a registered scheme

    with pytest.raises(RunError, match=r"not a registered model .* pass load_run\(\.\.\., model=\)"):
        resdyn.load_run(tmp_path / "run")
    loaded = resdyn.load_run(tmp_path / "run", model=network(seed=1))
    assert isinstance(loaded.model.body, Relaxed) and not loaded.model.training
    assert loaded.summary == result.summary and loaded.config.train.epochs == 1
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), result.model(x))
    info = as_dataset(train, test).info
    loader = DeviceLoader(as_dataset(train, test).test, info, batch_size=100)
    loss, acc = evaluate(loaded.model, loader, nullcontext)
    assert acc == result.summary.test_acc and loss == pytest.approx(result.summary.test_loss, rel=1e-6)
    assert acc > 0.3  # it learns: chance is 0.1


def test_fit_without_a_folder_writes_nothing_and_floats_are_pixels(tmp_path, digits, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (images, labels), test = digits
    as_uint8 = resdyn.fit(network(), (images, labels), test, config())
    as_float = resdyn.fit(network(), (images.float() / 255, labels), test, config())
    assert os.listdir(tmp_path) == [] and as_uint8.folder is None
    assert as_uint8.summary.checkpoint_bytes is None and len(as_uint8.epochs) == 1
    assert as_float.summary.test_acc == as_uint8.summary.test_acc
    with pytest.raises(ConfigError, match=r"float images must be pixel intensities in \[0, 1\]"):
        resdyn.fit(network(), (images.float(), labels), test, config())
    with pytest.raises(ConfigError, match="a DataLoader is not accepted"):
        resdyn.fit(network(), torch.utils.data.DataLoader(list(zip(images, labels, strict=True))), test, config())


def test_early_stopping_without_a_folder_keeps_the_best_weights_in_memory(digits):
    # With lr 0 only the BatchNorm statistics move, so the validation accuracy soon stops improving.
    stopping = config(epochs=6, early_stop_patience=1)
    stopping.data.val_fraction = 0.25
    stopping.optim.lr = 0.0
    result = resdyn.fit(network(), *digits, stopping)
    best = max(result.epochs, key=lambda r: r.val_acc).epoch
    assert result.summary.stopped_early and result.summary.final_weights == f"best_val_epoch_{best}"


def test_a_registered_model_is_rebuilt_from_its_config(tmp_path, digits):
    chosen = config()
    chosen.model = resdyn.ModelConfig("resnet", {"depth": 8})
    torch.manual_seed(0)
    result = resdyn.fit(build_model("resnet", 1, 10, depth=8), *digits, chosen, out=tmp_path / "run")
    assert result.summary.model == "resnet" and result.summary.scheme == "euler"
    loaded = resdyn.load_run(tmp_path / "run")
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), result.model(x))
    with pytest.raises(RunError, match="kept no EMA weights"):
        resdyn.load_run(tmp_path / "run", weights="ema")
    with pytest.raises(RunError, match="kept no best validation weights"):
        resdyn.load_run(tmp_path / "run", weights="best")


def test_load_runs_gives_a_row_per_run_and_a_row_per_epoch(tmp_path, digits):
    summaries = []
    for seed in range(3):
        result = resdyn.fit(network(seed), *digits, config(seed=seed, epochs=1 + seed % 2), out=tmp_path / f"{seed}")
        summaries.append(result.summary)
    paths = [tmp_path / f"{seed}" for seed in range(3)]
    runs, epochs = resdyn.load_runs(paths)
    assert len(runs) == 3 and list(runs["run"]) == [str(p) for p in paths] and runs["finished"].all()
    assert set(summaries[0].to_json()) <= set(runs.columns)
    for row, summary in zip(runs.to_dict("records"), summaries, strict=True):
        expected = summary.to_json()
        for key, value in expected.items():
            assert row[key] == value or (value is None and pd.isna(row[key])), key
    expected = [(str(paths[0]), 1), (str(paths[1]), 1), (str(paths[1]), 2), (str(paths[2]), 1)]
    assert list(zip(epochs["run"], epochs["epoch"], strict=True)) == expected
    assert list(epochs["train_loss"]) == [r.train_loss for p in paths for r in RunDir(p).read_metrics()]


def test_load_runs_without_pandas_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'resdyn\[notebook\]'"):
        resdyn.load_runs([tmp_path])


def test_the_readme_example_runs(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (From Python)", "exec"), {"__name__": "readme"})
    assert RunDir(tmp_path / "runs/half-step").read_summary().epochs == 1


def test_every_export_of_resdyn_resolves_to_what_it_names():
    from resdyn.train import config as config_module

    assert [name for name in resdyn.__all__ if getattr(resdyn, name, None) is None] == []
    assert resdyn.TrainConfig is config_module.TrainConfig and callable(resdyn.fit) and callable(resdyn.load_runs)
