"""Weight initialisation schemes shared by the model families (G. Fuentes-Pineda's lecture, 2023, "inicialización";
the comparison in G. B. Macedo's 2020 talk on Yang & Schoenholz 2017).

For a layer with ``fan_in`` inputs and ``fan_out`` outputs per weight (a convolution's fans include its kernel
area, as in PyTorch's ``nn.init``):

    he-normal        N(0, 2 / fan_in)                         He, Zhang, Ren, Sun 2015
    he-uniform       U(-b, b), b = sqrt(6 / fan_in)           same variance, 2 / fan_in
    xavier-normal    N(0, 2 / (fan_in + fan_out))             Glorot & Bengio 2010 ("Glorot")
    xavier-uniform   U(-b, b), b = sqrt(6 / (fan_in + fan_out))

Glorot & Bengio 2010 ask for ``Var = 2 / (fan_in + fan_out)`` (their eq. 12, the harmonic mean of the forward
condition ``1 / fan_in`` and the backward one ``1 / fan_out``; the uniform "normalised initialisation" of their
eq. 16 has it). Fuentes-Pineda's lecture writes ``1 / (fan_in + fan_out)``, half of it. resdyn implements Glorot &
Bengio's ``2 / (fan_in + fan_out)``, as PyTorch's ``xavier_*_`` with gain 1 do: at equal fans it is ``1 / fan_in``,
which keeps a linear layer's output variance that of its input, where the lecture's would halve it at every layer.

Uniform on ``[-b, b]`` has variance ``b² / 3``, so each uniform scheme has its normal twin's variance. (The
lecture's slide gives He uniform the bound ``sqrt(2 / n_e)``, a third of that variance; the bound here is He et
al.'s.)
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

WeightInit = Literal["he-normal", "he-uniform", "xavier-normal", "xavier-uniform"]
WEIGHT_INITS: tuple[str, ...] = get_args(WeightInit)


def weight_variance(weight: torch.Tensor, scheme: str) -> float:
    """The variance ``scheme`` gives the entries of ``weight`` (He: ``2 / fan_in``; Xavier: ``2 / (fan_in +
    fan_out)``)."""
    receptive = weight[0][0].numel()  # a convolution's kernel area; 1 for a linear layer
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    return 2.0 / fan_in if scheme.startswith("he-") else 2.0 / (fan_in + fan_out)


@torch.no_grad()
def fill_weight(weight: torch.Tensor, scheme: str) -> None:
    """Draw ``weight`` in place by ``scheme``, one of :data:`WEIGHT_INITS`."""
    variance = weight_variance(weight, scheme)
    if scheme.endswith("-normal"):
        weight.normal_(0.0, math.sqrt(variance))
    else:
        bound = math.sqrt(3 * variance)
        weight.uniform_(-bound, bound)


@torch.no_grad()
def init_network(net: nn.Module, scheme: str) -> None:
    """Every convolution and linear layer of ``net`` by ``scheme``, with zero biases; every norm layer's scale 1 and
    shift 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fill_weight(m.weight, scheme)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            m.weight.fill_(1.0)
            m.bias.zero_()
