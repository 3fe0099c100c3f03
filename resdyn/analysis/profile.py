"""Static measures of a model: parameter count and Mult-Adds (multiply-accumulates) per image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resdyn.schemes.ode import ODEBlock


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (trainable or not; buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def _count(model: nn.Module, input_shape: tuple[int, ...]) -> FlopCounterMode:
    """FlopCounterMode over one eval-mode forward pass on a batch of two zero inputs of ``input_shape``."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(2, *input_shape, device=param.device, dtype=param.dtype)
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter


def mult_adds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a single input of ``input_shape`` (C, H, W), eval mode.

    Counted by PyTorch's FlopCounterMode (convolutions and matrix products, 2 FLOPs per multiply-add) on a batch of two,
    halved: a norm over a 1x1 feature map (an ODENet on 8x8 images) refuses a batch of one. The papers' tables (Lu et
    al. 2018) quote Mult-Adds per batch of 128, which is this times 128. The input is zeros: where the work depends on
    the input (an adaptive ODE solver's number of steps), :func:`adaptive_solve_cost` says how.
    """
    return _count(model, input_shape).get_total_flops() // 4


@dataclass(frozen=True)
class SolveCost:
    """The adaptive ODE solves inside :func:`mult_adds`'s count: the field evaluations they took on the zero input
    (NFE, summed over the blocks) and the Mult-Adds per image of one evaluation.

    An adaptive solver picks its NFE for each input and each set of weights, so a model's Mult-Adds are
    ``fixed + nfe * per_evaluation``, with the NFE that training measures (``nfe_*`` in metrics.jsonl) in place
    of this one.
    """

    solver: str
    nfe: int
    per_evaluation: int
    total: int

    @property
    def fixed(self) -> int:
        """Mult-Adds per image outside the solves (stem, head), which do not depend on the input."""
        return self.total - self.nfe * self.per_evaluation


def adaptive_solve_cost(model: nn.Module, input_shape: tuple[int, ...]) -> SolveCost | None:
    """What :func:`mult_adds` counted of ``model``'s adaptive ODE solves on a zero input of ``input_shape``, or None
    where the model has none (its Mult-Adds do not depend on the input)."""
    blocks = [m for m in model.modules() if isinstance(m, ODEBlock) and m.solver.adaptive]
    if not blocks:
        return None
    for block in blocks:
        block.metrics()  # reset its NFE statistics, so that they hold this pass's solves only
    counter = _count(model, input_shape)
    nfe = sum(block.metrics()[f"{block.metric_prefix}nfe_eval_max"] for block in blocks)
    by_module = counter.get_flop_counts()
    names = {block: name for name, block in model.named_modules()}
    # FlopCounterMode names a module by its class and path: Network.body.blocks.0.field
    root = type(model).__name__
    field_flops = sum(sum(by_module.get(f"{root}.{names[block]}.field", {}).values()) for block in blocks)
    return SolveCost(blocks[0].solver.describe(), int(nfe), round(field_flops / 4 / nfe),
                     counter.get_total_flops() // 4)


def saved_tensor_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for backward after ``model(x)``, each storage counted once.

    What a memory-saving scheme (RevNet) avoids storing; measurable on any device, unlike an allocator's peak.
    """
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        storages[ptr] = max(storages.get(ptr, 0), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)  # the forward pass decides what is kept until backward
    return sum(storages.values())
