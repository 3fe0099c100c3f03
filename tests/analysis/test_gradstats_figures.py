"""The report's gradient-statistics figures: drawn for the experiments that recorded them (train.grad_stats), from
their seeds' gradstats.jsonl, and absent otherwise."""

import pytest

from resdyn.analysis.gradstats import gradstats_plots
from resdyn.analysis.report import build_report
from resdyn.analysis.report.collect import read_runs
from resdyn.analysis.report.tables import group_runs
from resdyn.runs import GradStatsRecord, RunDir
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import train
from resdyn.train.progress import Progress

MLP = ["model.name=mlp", "model.options.image_size=8", "data.name=digits", "data.augment=false",
       "data.limit_train=256", "data.limit_test=128", "train.batch_size=32", "train.device=cpu", "train.epochs=2"]
SLUGS = ["learning-speed-by-layer", "gradient-norm-over-training"]


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gradstats")
    for name, extra in {"seed0": ["train.seed=0"], "seed1": ["train.seed=1"],
                        "plain": ["train.seed=0", "model.options.widths=[20, 20]"]}.items():
        stats = ["train.grad_stats=true", "train.grad_stats_every=4"] if name != "plain" else []
        train(apply_overrides(Config(), MLP + extra + stats), root / name, progress=Progress("off"))
    return root


def test_the_figures_are_drawn_for_runs_with_gradient_statistics_only(mlp_runs):
    with_stats = build_report([mlp_runs / "seed0", mlp_runs / "seed1"])
    plots = {p.slug: p for p in with_stats.sections[0].plots}
    assert all(plots[slug].png.startswith(b"\x89PNG") for slug in SLUGS)
    assert "initialisation" in plots["learning-speed-by-layer"].caption
    without = build_report([mlp_runs / "plain"])
    assert not any(p.slug in SLUGS for p in without.sections[0].plots)


def test_an_experiment_whose_seeds_lack_statistics_is_left_out(mlp_runs, tmp_path):
    runs, _ = read_runs([mlp_runs / "seed0", mlp_runs / "seed1"])
    (group,) = group_runs(runs)
    assert len(gradstats_plots([group])) == 2
    (mlp_runs / "seed1" / RunDir.GRADSTATS).rename(tmp_path / "away")
    try:
        assert gradstats_plots([group]) == []
    finally:
        (tmp_path / "away").rename(mlp_runs / "seed1" / RunDir.GRADSTATS)


def test_a_record_with_other_units_leaves_its_experiment_out(mlp_runs, tmp_path):
    runs, _ = read_runs([mlp_runs / "seed0"])
    (group,) = group_runs(runs)
    run = RunDir(mlp_runs / "seed0")
    saved = run.file(RunDir.GRADSTATS).read_bytes()
    try:
        run.append_gradstats([GradStatsRecord(3, 99, ["stem", "head"], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])])
        assert gradstats_plots([group]) == []
    finally:
        run.file(RunDir.GRADSTATS).write_bytes(saved)
