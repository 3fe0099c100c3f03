"""The batched grid trains each network exactly as it would train alone; the map runs end to end."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resdyn.data import load_dataset
from resdyn.errors import ConfigError
from resdyn.meanfield import theory
from resdyn.meanfield.sweep import (
    MapSettings,
    StackedModels,
    build_grid_model,
    theory_grid,
    train_stacked,
    trainability_map,
)

SETTINGS = MapSettings(activation="tanh", values=[0.5, 1.5, 3.0], depths=[3], width=16, data="digits",
                       limit_train=200, limit_test=100, batch_size=50, lr=0.05)


@pytest.fixture(scope="module")
def digits_info():
    return load_dataset("digits").info


def grid_models(info, settings=SETTINGS, depth=3):
    models = []
    for i, value in enumerate(settings.values):
        torch.manual_seed(i)
        models.append(build_grid_model(settings, value, depth, info).double())  # float64: equal up to roundoff
    return models


def test_batched_gradients_equal_each_network_alone(digits_info):
    models = grid_models(digits_info)
    stacked = StackedModels(models)
    x, y = torch.randn(7, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (7,))
    stacked.losses(x, y).sum().backward()
    for i, model in enumerate(models):
        F.cross_entropy(model(x), y).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stacked.params[name].grad[i], p.grad, rtol=1e-10, atol=1e-12)


def test_batched_training_equals_training_alone(digits_info):
    """Three SGD-with-momentum steps of the stack leave each network where three steps alone would."""
    models = grid_models(digits_info)
    alone = grid_models(digits_info)
    stacked = StackedModels(models)
    batches = [(torch.randn(5, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (5,))) for _ in range(3)]

    class Loader(list):
        def set_epoch(self, epoch):
            pass

    train_stacked(stacked, Loader(batches), epochs=1, lr=0.1, momentum=0.9)
    for i, model in enumerate(alone):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for x, y in batches:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stacked.params[name][i].detach(), p.detach(), rtol=1e-10, atol=1e-12)


def test_a_diverged_network_does_not_stop_the_others(digits_info):
    stacked = StackedModels(grid_models(digits_info))
    with torch.no_grad():
        stacked.params["head.weight"][1] = math.nan
    batches = [(torch.randn(5, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (5,)))]

    class Loader(list):
        def set_epoch(self, epoch):
            pass

    losses = train_stacked(stacked, Loader(batches), epochs=1, lr=0.1, momentum=0.9)
    assert math.isinf(losses[1]) and math.isfinite(losses[0]) and math.isfinite(losses[2])
    assert all(torch.isfinite(p[[0, 2]]).all() for p in stacked.params.values())


def test_map_end_to_end_with_the_theory_grid():
    settings = MapSettings(activation="tanh", values=[0.5, 2.0], depths=[2, 4], width=16, data="digits",
                           limit_train=300, limit_test=200, batch_size=50, lr=0.05, epochs=2)
    result = trainability_map(settings, log=lambda line: None)
    accuracy = np.array(result.accuracy)
    assert accuracy.shape == (2, 2) and (accuracy > 0.3).all()  # digits is learnable in two short epochs
    assert result.diverged == [[False, False], [False, False]] and result.wall_time_s > 0
    grid = np.array(result.theory["grid"])
    assert grid.shape == (5, 60) and result.theory["quantity"] == "log_R"
    # log R of a depth-4 net at the last axis value, from its own solve
    assert grid[4, -1] == pytest.approx(float(theory("frn", "tanh", 4, correlations=False,
                                                     **settings.sigmas(2.0)).log_R), rel=1e-10)


def test_rho2_axis_keeps_sigma_v2_over_one_plus_rho2():
    settings = MapSettings(axis="rho2", values=[0.0, 1.0], sigma_v2=1.5)
    sigmas = settings.sigmas(1.0)
    assert sigmas["sigma_v2"] / (1 + 1.0) == pytest.approx(1.5)
    assert sigmas["sigma_a2"] / sigmas["sigma_v2"] == pytest.approx(1.0)


def test_relu_maps_draw_the_expressivity():
    settings = MapSettings(activation="alpha-relu", axis="alpha", values=[0.6, 0.9], depths=[3])
    grid = theory_grid(settings, points=4)
    assert grid["quantity"] == "log10_s"
    expected = theory("frn", "alpha-relu", 3, alpha=0.7, sigma_w2=1.0, sigma_a2=0.25).s[3]
    assert grid["grid"][3][1] == pytest.approx(math.log10(expected), rel=1e-9)


@pytest.mark.parametrize(("changes", "match"), [
    ({"axis": "alpha"}, "needs --activation alpha-relu"),
    ({"axis": "rho2", "net": "rrn"}, "needs an FRN"),
    ({"axis": "depth"}, "unknown axis"),
    ({"depths": [0, 3]}, "depths >= 1"),
])
def test_bad_map_settings_are_config_errors(changes, match):
    with pytest.raises(ConfigError, match=match):
        MapSettings(**changes)
