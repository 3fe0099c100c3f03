"""Optimisers, learning-rate schedules and explicit weight penalties, each selected by name from a registry.

Schedules are pure functions of training progress (epochs elapsed, fractional), so the learning rate at
any step is known without replaying a scheduler's state: a resumed run gets exactly the rates it would
have had.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.registry import Registry
from resdyn.train.config import OptimConfig, ScheduleConfig

OptimizerBuilder = Callable[[Iterable[nn.Parameter], OptimConfig], torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")


@OPTIMIZERS.register("sgd", "SGD; momentum (heavy ball) and Nesterov by optim.momentum / optim.nesterov")
def _sgd(params: Iterable[nn.Parameter], c: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=c.weight_decay)


@OPTIMIZERS.register("rmsprop", "RMSProp (Hinton); optim.alpha smoothing, optim.momentum")
def _rmsprop(params: Iterable[nn.Parameter], c: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params, lr=c.lr, alpha=c.alpha, eps=c.eps, momentum=c.momentum, weight_decay=c.weight_decay
    )


@OPTIMIZERS.register("adam", "Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient")
def _adam(params: Iterable[nn.Parameter], c: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, betas=tuple(c.betas), eps=c.eps, weight_decay=c.weight_decay)


@OPTIMIZERS.register("adamw", "AdamW (Loshchilov & Hutter 2019): decoupled weight decay")
def _adamw(params: Iterable[nn.Parameter], c: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, betas=tuple(c.betas), eps=c.eps, weight_decay=c.weight_decay)


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser ``config.name`` over all of ``model``'s parameters."""
    if len(config.betas) != 2:
        raise ConfigError(f"optim.betas must hold two numbers, got {config.betas}")
    return OPTIMIZERS.get(config.name)(model.parameters(), config)


# A schedule maps (t = epochs elapsed, total epochs, config, peak lr) to the learning rate before warm-up.
Schedule = Callable[[float, int, ScheduleConfig, float], float]
SCHEDULES: Registry[Schedule] = Registry("schedule")


@SCHEDULES.register("constant", "lr throughout")
def _constant(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    return lr


@SCHEDULES.register("step", "lr * gamma^floor(t / step_size)")
def _step(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    return lr * c.gamma ** math.floor(t / c.step_size)


@SCHEDULES.register("multistep", "lr * gamma^(number of milestones passed); the seeds' recipe: [80, 120]")
def _multistep(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    return lr * c.gamma ** sum(t >= m for m in c.milestones)


@SCHEDULES.register("exponential", "lr * gamma^t")
def _exponential(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    return lr * c.gamma**t


@SCHEDULES.register("polynomial", "min_lr + (lr - min_lr) (1 - t/T)^power")
def _polynomial(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    return c.min_lr + (lr - c.min_lr) * max(0.0, 1 - t / epochs) ** c.power


@SCHEDULES.register("cosine", "min_lr + (lr - min_lr) (1 + cos(pi t/T)) / 2 (Loshchilov & Hutter 2017)")
def _cosine(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    return c.min_lr + (lr - c.min_lr) * (1 + math.cos(math.pi * min(t, epochs) / epochs)) / 2


@SCHEDULES.register("onecycle", "Smith's one-cycle: cosine rise lr/div_factor -> lr, then cosine fall")
def _onecycle(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    start = lr / c.div_factor
    end = start / c.final_div_factor
    rise = c.pct_start * epochs
    if t < rise:
        return _cos_between(start, lr, t / rise)
    return _cos_between(lr, end, min(1.0, (t - rise) / (epochs - rise)))


@SCHEDULES.register("cyclic", "triangular cycles min_lr -> lr -> min_lr, one every cycle_epochs (Smith 2017)")
def _cyclic(t: float, epochs: int, c: ScheduleConfig, lr: float) -> float:
    phase = (t % c.cycle_epochs) / c.cycle_epochs
    return c.min_lr + (lr - c.min_lr) * (1 - abs(2 * phase - 1))


def _cos_between(a: float, b: float, fraction: float) -> float:
    return b + (a - b) * (1 + math.cos(math.pi * fraction)) / 2


def lr_at(config: ScheduleConfig, lr: float, epochs: int, step: int, steps_per_epoch: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based), with linear warm-up over ``warmup_epochs``.

    Warm-up counts the step being taken, so the first step already moves the weights.
    """
    t = step / steps_per_epoch
    value = SCHEDULES.get(config.name)(t, epochs, config, lr)
    warmup_steps = config.warmup_epochs * steps_per_epoch
    if warmup_steps > 0:
        value *= min(1.0, (step + 1) / warmup_steps)
    return value


def penalised_weights(model: nn.Module) -> list[nn.Parameter]:
    """The tensors L1/L2 penalties act on: weights of convolutions and linear maps, not norms or biases."""
    return [p for p in model.parameters() if p.ndim > 1]


def weight_penalty(weights: list[nn.Parameter], l1: float, l2: float) -> torch.Tensor | None:
    """``l1 * sum |w| + l2 / 2 * sum w^2`` (so the L2 term's gradient is ``l2 * w``); None when both are 0."""
    if not l1 and not l2:
        return None
    total = weights[0].new_zeros(())
    if l1:
        total = total + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        total = total + l2 / 2 * sum(w.pow(2).sum() for w in weights)
    return total
