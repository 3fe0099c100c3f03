"""Optimisers by name, schedules against torch's own schedulers, warm-up, and the weight penalties."""

import math

import pytest
import torch
from torch import nn

from resdyn.registry import UnknownNameError
from resdyn.train.config import OptimConfig, ScheduleConfig
from resdyn.train.optim import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    lr_at,
    penalised_weights,
    weight_penalty,
)

EPOCHS = 20


def torch_rates(make_scheduler, epochs=EPOCHS, lr=0.1):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def our_rates(config, epochs=EPOCHS, lr=0.1):
    return [lr_at(config, lr, epochs, step=e, steps_per_epoch=1) for e in range(epochs)]


S = torch.optim.lr_scheduler


@pytest.mark.parametrize(
    ("config", "reference"),
    [
        (ScheduleConfig(name="step", step_size=7, gamma=0.5), lambda o: S.StepLR(o, 7, 0.5)),
        (ScheduleConfig(name="multistep", milestones=[8, 15], gamma=0.1), lambda o: S.MultiStepLR(o, [8, 15], 0.1)),
        (ScheduleConfig(name="exponential", gamma=0.9), lambda o: S.ExponentialLR(o, 0.9)),
        (ScheduleConfig(name="cosine", min_lr=0.001), lambda o: S.CosineAnnealingLR(o, EPOCHS, eta_min=0.001)),
        (ScheduleConfig(name="polynomial", power=2.0), lambda o: S.PolynomialLR(o, EPOCHS, power=2.0)),
        (ScheduleConfig(name="constant"), lambda o: S.LambdaLR(o, lambda e: 1.0)),
    ],
)
def test_schedules_equal_torch_schedulers_at_epoch_boundaries(config, reference):
    assert our_rates(config) == pytest.approx(torch_rates(reference), rel=1e-9, abs=1e-12)


def test_onecycle_shape():
    c = ScheduleConfig(name="onecycle", pct_start=0.25, div_factor=10, final_div_factor=100)
    assert lr_at(c, 1.0, 8, 0, 100) == pytest.approx(0.1)
    assert lr_at(c, 1.0, 8, 200, 100) == pytest.approx(1.0)  # peak at 25% of 8 epochs
    assert lr_at(c, 1.0, 8, 800, 100) == pytest.approx(0.1 / 100)
    rates = [lr_at(c, 1.0, 8, s, 100) for s in range(801)]
    assert rates.index(max(rates)) == 200
    assert all(a <= b for a, b in zip(rates[:200], rates[1:201], strict=True))
    assert all(a >= b for a, b in zip(rates[200:-1], rates[201:], strict=True))


def test_cyclic_is_triangular():
    c = ScheduleConfig(name="cyclic", min_lr=0.01, cycle_epochs=2)
    assert [lr_at(c, 0.1, 10, s, 4) for s in range(9)] == pytest.approx(
        [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.0775, 0.055, 0.0325, 0.01]
    )


def test_linear_warmup_then_schedule():
    c = ScheduleConfig(name="constant", warmup_epochs=2)
    rates = [lr_at(c, 0.4, 10, s, 10) for s in range(25)]
    assert rates[0] == pytest.approx(0.02)  # the first step already moves the weights
    assert rates[9] == pytest.approx(0.2)
    assert rates[19:] == pytest.approx([0.4] * 6)


def test_unknown_schedule_and_optimizer_list_valid_names():
    with pytest.raises(UnknownNameError, match="valid schedule names: constant, cosine, cyclic"):
        lr_at(ScheduleConfig(name="linear"), 0.1, 10, 0, 1)
    with pytest.raises(UnknownNameError, match="valid optimizer names: adam, adamw, rmsprop, sgd"):
        build_optimizer(nn.Linear(2, 2), OptimConfig(name="lamb"))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_reduces_a_quadratic(name):
    torch.manual_seed(0)
    w = nn.Linear(4, 1, bias=False)
    opt = build_optimizer(w, OptimConfig(name=name, lr=0.05, weight_decay=0.0))
    x = torch.randn(64, 4)
    target = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    first = None
    for _ in range(200):
        loss = (w(x) - target).pow(2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first


def test_sgd_options_reach_torch():
    opt = build_optimizer(nn.Linear(2, 2), OptimConfig(name="sgd", momentum=0.8, nesterov=True, weight_decay=3e-4))
    group = opt.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.8, True, 3e-4)


def test_penalties_act_on_weights_only_with_the_right_gradient():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    weights = penalised_weights(model)
    assert [tuple(w.shape) for w in weights] == [(2, 1, 3, 3), (3, 2)]
    assert weight_penalty(weights, 0.0, 0.0) is None
    penalty = weight_penalty(weights, l1=0.1, l2=0.01)
    expected = sum(0.1 * w.abs().sum() + 0.005 * w.pow(2).sum() for w in weights)
    assert penalty.item() == pytest.approx(expected.item())
    penalty.backward()
    conv = model[0].weight
    assert torch.allclose(conv.grad, 0.1 * conv.sign() + 0.01 * conv)
    assert model[1].weight.grad is None and model[0].bias.grad is None


def test_schedule_registry_is_complete():
    assert set(SCHEDULES.names()) == {
        "constant", "step", "multistep", "exponential", "polynomial", "cosine", "onecycle", "cyclic"
    }
    assert math.isclose(lr_at(ScheduleConfig(name="cosine"), 1.0, 4, 4, 1), 0.0, abs_tol=1e-12)
