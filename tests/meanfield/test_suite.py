"""The He-vs-Xavier study of Macedo's talk (on Yang & Schoenholz 2017) is an ordinary `resdyn compare` suite: it
resolves, builds, runs and reports."""

from dataclasses import replace

import torch

from resdyn import build_model
from resdyn.compare import load_suite, run_suite
from resdyn.recipes import recipe_path

SUITE = recipe_path("suites/meanfield-init")
ACTIVATIONS = {"tanh", "relu", "alpha-relu"}
INITS = {"he-normal", "he-uniform", "xavier-normal", "xavier-uniform"}


SMALL = ["data.name=digits", "model.options.image_size=8", "model.options.width=16", "model.options.depth=2",
         "train.epochs=1", "train.device=cpu", "train.progress=off"]


def test_suite_crosses_every_activation_with_every_scheme_over_three_seeds():
    suite = load_suite(SUITE)
    assert len(suite.experiments) == 3 * 4 * 3
    pairs = {(e.config.model.options["activation"], e.config.model.options["init"]) for e in suite.experiments}
    assert pairs == {(a, i) for a in ACTIVATIONS for i in INITS}
    assert {e.config.train.seed for e in suite.experiments} == {0, 1, 2}
    assert suite.experiments[0].config.model.options == {"width": 256, "depth": 10, "alpha": 0.8,
                                                          "activation": "tanh", "init": "he-normal"}
    for e in load_suite(SUITE, SMALL).experiments:  # every variant's options build (small, for speed)
        model = build_model(e.config.model.name, 1, 10, **e.config.model.options)
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_suite_runs_through_compare(tmp_path):
    suite = load_suite(SUITE, SMALL, out=tmp_path)
    name = "frn-alpha-relu-xavier-uniform-seed0"
    suite = replace(suite, experiments=[e for e in suite.experiments if e.name == name])
    (outcome,) = run_suite(suite, log=lambda line: None)
    assert outcome.action == "started"
    assert (tmp_path / name / "summary.json").exists()
