"""Static measures of a model: parameter count and Mult-Adds (multiply-accumulates) per image."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (trainable or not; buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def mult_adds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a single input of ``input_shape`` (C, H, W), eval mode.

    Counted by PyTorch's FlopCounterMode (convolutions and matrix products, 2 FLOPs per multiply-add) on a
    batch of two, halved: a norm over a 1x1 feature map (an ODENet on 8x8 images) refuses a batch of one. The
    seeds' tables quote Mult-Adds per batch of 128, which is this times 128.
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(2, *input_shape, device=param.device, dtype=param.dtype)
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 4


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
