"""Fully-connected networks, plain or residual: the sigmoid nets of Nielsen, "Neural Networks and Deep Learning",
ch. 5 (784-30-30-30-10 and its 2- and 4-hidden-layer siblings, whose first layers learn slowest), as
G. Fuentes-Pineda's lecture (2023) shows them, and their residual twins.

For hidden widths ``w_1 .. w_L`` on images flattened to ``d`` inputs (average-pooled to ``image_size`` x
``image_size`` first, a no-op at the default 28 for MNIST-like data) and ``c`` classes:

    x_1      = s(W_0 x + b_0)                                  the image to the first width (the stem)
    x_{n+1}  = s(W_n x_n + b_n)          (plain)               n = 1 .. L - 1 (the body: a scheme over fields)
    x_{n+1}  = x_n + s(W_n x_n + b_n)    (residual)
    scores   = W_L x_L + b_L

so ``widths = [30, 30, 30]`` on 28x28 grey images with 10 classes is Nielsen's 784-30-30-30-10, with
``784*30+30 + 2 (30*30+30) + 30*10+10 = 25,720`` parameters whether plain or residual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import ACTIVATIONS, Activation, DenseField
from resdyn.nets.base import Network, register_family
from resdyn.nets.init import INIT_STD, WeightInit, check_std, init_network
from resdyn.schemes import Euler, Plain


@dataclass(frozen=True, kw_only=True)
class MLPOptions:
    """A fully-connected network, plain or residual. Without the convolutional families' toolkit
    (:class:`~resdyn.nets.base.Toolkit`): it has no norm layers and no pooled head; ``init`` and ``activation`` are
    its own fields, from the same tables."""

    #: hidden widths in order ([30, 30, 30] on 28x28 grey images with 10 classes: 784-30-30-30-10)
    widths: list[int] = field(default_factory=lambda: [30, 30, 30])
    #: x_{n+1} = x_n + s(W x_n + b) between hidden layers (equal widths needed); false: plain, s(W x_n + b)
    residual: bool = False
    #: every hidden layer's nonlinearity (sigmoid, Nielsen's; or any of resdyn.fields.ACTIVATIONS)
    activation: Activation = "sigmoid"
    #: weights: default (PyTorch's), he-normal, he-uniform, xavier-normal, xavier-uniform, or normal / uniform of
    #: variance init_std², on every layer, biases zero
    init: Literal["default", WeightInit] = "default"
    #: standard deviation of init = normal or uniform
    init_std: float = INIT_STD
    #: the image is average-pooled to image_size x image_size before it is flattened
    image_size: int = 28

    def __post_init__(self) -> None:
        check_std(self.init_std)
        if not self.widths or min(self.widths) < 1 or self.image_size < 1:
            raise ConfigError(f"an mlp needs at least one hidden width, every width and image_size at least 1; got "
                              f"widths={self.widths}, image_size={self.image_size}")
        if self.residual and len(set(self.widths)) > 1:
            raise ConfigError(f"a residual mlp adds x_n to s(W x_n + b), so its hidden widths must be equal; got "
                              f"{self.widths} (or set residual = false)")


def mlp(o: MLPOptions, in_channels: int, num_classes: int) -> Network:
    """The image to ``o.widths[0]`` units, the plain (:class:`~resdyn.schemes.Plain`) or residual
    (:class:`~resdyn.schemes.Euler`) scheme over the dense fields between the hidden widths, then the class scores."""
    make = ACTIVATIONS[o.activation]
    stem = nn.Sequential(nn.AdaptiveAvgPool2d(o.image_size), nn.Flatten(),
                         DenseField(in_channels * o.image_size**2, o.widths[0], make))
    fields = [DenseField(w_in, w_out, make) for w_in, w_out in zip(o.widths[:-1], o.widths[1:], strict=True)]
    scheme = Euler if o.residual else Plain
    net = Network(stem, scheme(fields, [nn.Identity() for _ in fields]), nn.Linear(o.widths[-1], num_classes))
    if o.init != "default":
        init_network(net, o.init, o.init_std)
    return net


register_family("mlp", MLPOptions, mlp, "fully-connected net, image-widths-classes, plain or residual (Nielsen "
                "ch. 5: widths [30, 30, 30] on MNIST is 784-30-30-30-10, sigmoid)")
