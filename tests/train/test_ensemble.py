"""Ensembles (`resdyn ensemble RUN...`): the test score of the average softmax of several runs' final models equals a
hand average; runs on other test data are refused, naming the difference."""

import json

import pytest
import torch

from resdyn.analysis.ensembles import read_ensemble
from resdyn.cli import main
from resdyn.data import load_dataset
from resdyn.runs import RunError
from resdyn.train.config import Config, apply_overrides
from resdyn.train.data import prepare_data
from resdyn.train.ensemble import ensemble
from resdyn.train.fit import load_run
from resdyn.train.loop import train
from resdyn.train.progress import Progress

# ReLU and Adam, so that two epochs learn something (about 75%) and the seeds disagree where an average can help.
MLP = ["model.name=mlp", "model.options.image_size=8", "model.options.activation=relu", "data.name=digits",
       "data.augment=false", "data.limit_train=512", "train.batch_size=32", "train.device=cpu", "train.epochs=2",
       "optim.name=adam", "optim.lr=0.01", "train.precision=fp32"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    for seed in range(3):
        train(apply_overrides(Config(), [*MLP, f"train.seed={seed}"]), root / f"seed{seed}", progress=Progress("off"))
    return [root / f"seed{seed}" for seed in range(3)]


def test_the_ensemble_scores_the_average_softmax_as_a_hand_computation(seeds, one_thread):
    score = ensemble(seeds)
    config = load_run(seeds[0]).config
    test = prepare_data(load_dataset("digits"), config, torch.device("cpu"), channels_last=False).test
    models = [load_run(path).model for path in seeds]
    x = torch.cat([batch for batch, _ in test])
    y = torch.cat([labels for _, labels in test])
    with torch.no_grad():
        probs = [m(x).softmax(1) for m in models]
    mean = torch.stack(probs).mean(0)
    assert score.test_images == len(y) == 359  # digits' test split
    assert score.test_acc == pytest.approx((mean.argmax(1) == y).double().mean().item(), abs=1e-12)
    assert score.test_loss == pytest.approx(-mean[torch.arange(len(y)), y].log().mean().item(), rel=1e-5)
    assert score.member_acc == pytest.approx([(p.argmax(1) == y).double().mean().item() for p in probs], abs=1e-12)
    assert score.runs == [str(p) for p in seeds]
    assert min(score.member_acc) > 0.5


def test_runs_on_other_test_data_are_refused_naming_the_difference(seeds, tmp_path):
    other = tmp_path / "fewer"
    train(apply_overrides(Config(), [*MLP, "data.limit_test=100"]), other, progress=Progress("off"))
    with pytest.raises(RunError, match="data.limit_test"):
        ensemble([seeds[0], other])
    with pytest.raises(RunError, match="at least two"):
        ensemble([seeds[0]])


def test_the_command_prints_each_member_and_the_ensemble_and_writes_json(seeds, tmp_path, capsys, one_thread):
    out = tmp_path / "ensemble.json"
    assert main(["ensemble", *map(str, seeds), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of 3" in printed and all(str(p) in printed for p in seeds)
    written = json.loads(out.read_text())
    assert written["test_acc"] == ensemble(seeds).test_acc and len(written["member_acc"]) == 3


def test_a_kept_ensemble_is_the_reports_ensemble_of_seeds_row(seeds, tmp_path, one_thread):
    kept = tmp_path / "ensemble"
    assert main(["ensemble", *map(str, seeds), "--out", str(kept)]) == 0
    score = read_ensemble(kept)
    assert score.test_acc == ensemble(seeds).test_acc and score.label == "mlp" and score.command.startswith("resdyn")
    out = tmp_path / "report"
    assert main(["report", *map(str, seeds), str(kept), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "Ensemble of seeds: mlp" in md
    assert f"| ensemble of seeds (3) | {100 * score.test_acc:.2f} |" in md
