"""Gradient statistics by layer (``train.grad_stats``): how fast each part of a network learns, the quantity behind
the vanishing and exploding gradients of Nielsen, "Neural Networks and Deep Learning", ch. 5 (as G. Fuentes-Pineda's
lecture, 2023, shows it: in a sigmoid net the first hidden layers learn slowest).

Every ``train.grad_stats_every`` steps (counted from the first, so the initial weights are always seen) it records,
for each *unit* of the network in network order, the norm of the loss's gradient with respect to the unit's weights
and to its biases, and the RMS of the unit's output, on that step's batch, after the backward pass and before
gradient clipping and the update (the gradient as backprop delivers it). The units:

- a :class:`~resdyn.nets.base.Network` (stem -> body -> head): the ``stem``; each step of the body, ``fields.N`` for
  a scheme (field ``f_n`` with the parameters of its shortcut ``P_n``: a projection shortcut counts in its step) and
  ``blocks.N`` for an architecture (a RevNet coupling, an ODE block, a fractal block with the transition after it);
  ``body.N`` for a body of layers in a row (the mean-field nets); then ``body`` for the body's own parameters
  outside its steps (LM-ResNet's ``k_n``), if any; the ``head``. For the ``mlp`` family that is each fully-connected
  layer: the stem's, each hidden field's, the classifier.
- any other model: each direct child that holds parameters, in the order they were registered.

A unit without parameters (a FractalNet's empty stem) is left out.

Weights are every parameter not named ``bias`` (a BatchNorm's scale, LM-ResNet's ``k_n``). A unit's output is its
module's at the unit's last evaluation in the forward pass: for a field, the branch ``f_n(x_n)``, which is the next
state under the plain scheme. Under data parallelism the gradients are every process's average and the outputs
rank 0's images.

The norms stay on the device; :meth:`GradStats.take` brings an epoch's records to the host in one transfer, so a
recorded step adds a few small reductions and no synchronisation. benchmarks/gradstats_overhead.py measures the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from resdyn.nets.base import Network
from resdyn.runs import GradStatsRecord


@dataclass(frozen=True)
class Unit:
    """A layer or block of the network: its name, the module whose output it measures, and its parameters: the
    weights (every one not named ``bias``) and the biases."""

    name: str
    output: nn.Module
    weights: list[nn.Parameter]
    biases: list[nn.Parameter]

    @property
    def parameters(self) -> list[nn.Parameter]:
        return self.weights + self.biases


def units(model: nn.Module) -> list[Unit]:
    """The units of ``model`` in network order (see the module's docstring)."""
    if not isinstance(model, Network):
        return [_unit(name, child) for name, child in model.named_children()
                if next(child.parameters(), None) is not None]
    body = model.body
    steps: list[Unit] = []
    if hasattr(body, "fields"):  # a scheme: field n and its shortcut
        for n, field in enumerate(body.fields):
            output = field[-1] if isinstance(field, nn.ModuleList) else field  # a field per Runge-Kutta stage
            steps.append(_unit(f"fields.{n}", output, field, body.shortcuts[n]))
    elif hasattr(body, "blocks"):  # an architecture: block n (and a fractal block's transition)
        transitions = getattr(body, "transitions", [None] * len(body.blocks))
        steps = [_unit(f"blocks.{n}", block, block, transition)
                 for n, (block, transition) in enumerate(zip(body.blocks, transitions, strict=True))]
    elif isinstance(body, nn.Sequential):  # layers in a row (the mean-field nets)
        steps = [_unit(f"body.{n}", layer) for n, layer in enumerate(body)]
    counted = {id(p) for step in steps for p in step.parameters}
    rest = [(key, p) for key, p in body.named_parameters() if id(p) not in counted]
    if rest:  # the body's own coefficients (LM-ResNet's k_n), or a body of no known shape
        steps.append(Unit("body", body, [p for key, p in rest if not key.endswith("bias")],
                          [p for key, p in rest if key.endswith("bias")]))
    return [u for u in (_unit("stem", model.stem), *steps, _unit("head", model.head)) if u.parameters]


def _unit(name: str, output: nn.Module, *holders: nn.Module | None) -> Unit:
    named = [(key, p) for h in (holders or (output,)) if h is not None for key, p in h.named_parameters()]
    return Unit(name, output, [p for key, p in named if not key.endswith("bias")],
                [p for key, p in named if key.endswith("bias")])


class GradStats:
    """Forward hooks on ``model``'s units and the gradient norms of every ``every``-th step::

        stats.watch(step)      # before the forward pass: is this step recorded?
        loss.backward()
        stats.record(epoch)    # after the backward pass: the unit's gradient norms (nothing on other steps)
        stats.take()           # the records so far, to the host in one transfer
    """

    def __init__(self, model: nn.Module, every: int) -> None:
        self.units = units(model)
        self.every = every
        self._step: int | None = None
        self._rms: list[torch.Tensor | None] = [None] * len(self.units)
        self._pending: list[tuple[int, int, torch.Tensor]] = []
        self._hooks = [u.output.register_forward_hook(self._measure(i)) for i, u in enumerate(self.units)]

    def watch(self, step: int) -> bool:
        """Get ready for ``step`` (steps done before it); True when it is recorded."""
        self._step = step if step % self.every == 0 else None
        self._rms = [None] * len(self.units)
        return self._step is not None

    def record(self, epoch: int) -> None:
        """Keep the watched step's gradient norms and output RMS (on the device); nothing when it is not due."""
        if self._step is None:
            return
        device = self.units[0].parameters[0].device  # where the model is now
        nan = torch.full((), float("nan"), device=device)
        table = torch.stack([torch.stack([nan if t is None else t.float() for t in
                                          (_norm(u.weights, device), _norm(u.biases, device), self._rms[i])])
                             for i, u in enumerate(self.units)])
        self._pending.append((epoch, self._step, table))
        self._step = None

    def take(self) -> list[GradStatsRecord]:
        """The records since the last take, oldest first."""
        if not self._pending:
            return []
        values = torch.stack([table for _, _, table in self._pending]).cpu().tolist()
        names = [u.name for u in self.units]
        records = []
        for (epoch, step, _), table in zip(self._pending, values, strict=True):
            weight, bias, rms = ([_number(row[k]) for row in table] for k in range(3))
            records.append(GradStatsRecord(epoch, step, names, [w or 0.0 for w in weight], bias, rms))
        self._pending = []
        return records

    def remove(self) -> None:
        """Take the hooks off the model."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def _measure(self, i: int) -> Callable[[nn.Module, object, object], None]:
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if self._step is not None and isinstance(output, torch.Tensor):
                self._rms[i] = output.detach().float().pow(2).mean().sqrt()
        return hook


def _norm(parameters: list[nn.Parameter], device: torch.device) -> torch.Tensor | None:
    """The norm of the parameters' gradients taken together; None without parameters (a parameter that took no
    part in the loss, a dropped stochastic-depth branch, contributes zero)."""
    if not parameters:
        return None
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros((), device=device)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


def _number(value: float) -> float | None:
    return None if value != value else value  # NaN marks what the unit does not have


def first_to_last(record: GradStatsRecord) -> float | None:
    """The first unit's gradient norm over the last's (None when the last's is zero)."""
    norms = record.grad_norm
    return norms[0] / norms[-1] if norms[-1] > 0 else None
