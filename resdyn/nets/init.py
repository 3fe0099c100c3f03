"""Weight initialisation schemes shared by the model families (G. Fuentes-Pineda's lecture, 2023, "inicialización";
the comparison in G. B. Macedo's 2020 talk on Yang & Schoenholz 2017).

For a layer with ``fan_in`` inputs and ``fan_out`` outputs per weight (a convolution's fans include its kernel
area, as in PyTorch's ``nn.init``):

    he-normal        N(0, 2 / fan_in)                         He, Zhang, Ren, Sun 2015
    he-uniform       U(-b, b), b = sqrt(6 / fan_in)           same variance, 2 / fan_in
    xavier-normal    N(0, 2 / (fan_in + fan_out))             Glorot & Bengio 2010 ("Glorot")
    xavier-uniform   U(-b, b), b = sqrt(6 / (fan_in + fan_out))
    normal           N(0, std²), whatever the fans                the lecture's fixed variance
    uniform          U(-b, b), b = sqrt(3) std: variance std²

Glorot & Bengio 2010 ask for ``Var = 2 / (fan_in + fan_out)`` (their eq. 12, the harmonic mean of the forward
condition ``1 / fan_in`` and the backward one ``1 / fan_out``; the uniform "normalised initialisation" of their
eq. 16 has it). Fuentes-Pineda's lecture writes ``1 / (fan_in + fan_out)``, half of it. resdyn implements Glorot &
Bengio's ``2 / (fan_in + fan_out)``, as PyTorch's ``xavier_*_`` with gain 1 do: at equal fans it is ``1 / fan_in``,
which keeps a linear layer's output variance that of its input, where the lecture's would halve it at every layer.

The fixed-variance schemes are what the lecture warns against: "normal with mean 0 and variance 0.01 works for small
networks; in deep ones the activations tend to 0", and with variance 1 units saturate. They ignore the fans, so
a layer's output variance is ``fan_in std²`` times its input's: it vanishes or explodes geometrically with depth.
The lecture's variance 0.01 is ``std = 0.1``; ``std = 0.01`` (the default of the families' ``init_std``) is the
Gaussian of Krizhevsky et al. 2012 that He et al. 2015 ("Delving deep into rectifiers") show stalls deep nets.

Uniform on ``[-b, b]`` has variance ``b² / 3``, so each uniform scheme has its normal twin's variance. (The
lecture's slide gives He uniform the bound ``sqrt(2 / n_e)``, a third of that variance; the bound here is He et
al.'s.)
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

from resdyn.errors import ConfigError

WeightInit = Literal["he-normal", "he-uniform", "xavier-normal", "xavier-uniform", "normal", "uniform"]
WEIGHT_INITS: tuple[str, ...] = get_args(WeightInit)
#: the default standard deviation of the fixed-variance schemes (``init_std`` of the families)
INIT_STD = 0.01


def weight_variance(weight: torch.Tensor, scheme: str, std: float = INIT_STD) -> float:
    """The variance ``scheme`` gives the entries of ``weight`` (He: ``2 / fan_in``; Xavier: ``2 / (fan_in +
    fan_out)``; normal and uniform: ``std²``)."""
    if scheme in ("normal", "uniform"):
        return std**2
    receptive = weight[0][0].numel()  # a convolution's kernel area; 1 for a linear layer
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    return 2.0 / fan_in if scheme.startswith("he-") else 2.0 / (fan_in + fan_out)


@torch.no_grad()
def fill_weight(weight: torch.Tensor, scheme: str, std: float = INIT_STD) -> None:
    """Draw ``weight`` in place by ``scheme``, one of :data:`WEIGHT_INITS` (``std`` for normal and uniform)."""
    variance = weight_variance(weight, scheme, std)
    if scheme.endswith("normal"):
        weight.normal_(0.0, math.sqrt(variance))
    else:
        bound = math.sqrt(3 * variance)
        weight.uniform_(-bound, bound)


def check_std(std: float) -> None:
    """Refuse a standard deviation that is not positive (at the options' boundary)."""
    if not std > 0:
        raise ConfigError(f"init_std is the standard deviation of init = normal or uniform: it must be positive, "
                          f"got {std}")


@torch.no_grad()
def init_network(net: nn.Module, scheme: str, std: float = INIT_STD) -> None:
    """Every convolution and linear layer of ``net`` by ``scheme`` (``std`` for normal and uniform), with zero
    biases; every norm layer's scale 1 and shift 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fill_weight(m.weight, scheme, std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            m.weight.fill_(1.0)
            m.bias.zero_()
