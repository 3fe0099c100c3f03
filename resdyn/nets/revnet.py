"""CIFAR RevNets (Gomez et al. 2017, Table 1), laid out as the authors' code builds them.

Source: ``renmengye/revnet-public`` (``resnet/configs/cifar_configs.py``, ``resnet/models/revnet_model.py``):

    name        residual function   units per stage   widths (stem, stages)        paper params
    RevNet-38   basic               3-3-3             32 - 32, 64, 112             0.46M
    RevNet-110  basic               9-9-9             32 - 32, 64, 128             1.73M
    RevNet-164  bottleneck          9-9-9             32 - 128, 256, 512 (x4)      1.75M

Depth counts the convolutions of every ``F`` and ``G`` plus the stem and the classifier (38 = 3 * 3 * 2 * 2 + 2,
164 = 3 * 9 * 2 * 3 + 2). The stem is conv3x3-BN-ReLU; each unit is a
:class:`~resdyn.schemes.reversible.ReversibleBlock` whose ``F`` and ``G`` are pre-activation residual functions
on half the channels; the head is BN-ReLU, global average pool, linear.

The first unit of a stage that changes resolution or width, ``y1 = P x1 + F(x2); y2 = P x2 + G(y1)``, is not
reversible (it discards information), so, as in the paper, it is an ordinary block that stores its activations:
its ``F`` takes the stride and the new width, and ``P`` carries each half across -- average pooling and
zero-padding of the new channels for basic functions, a 1x1 projection (no BN) per half for bottlenecks. Every
other unit is reversible and backpropagates without storing activations. (The authors' code also stores the
input of the first unit of the first stage; for basic functions that unit keeps the shape, so here it is
reversible. The parameters are the same.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from torch import nn

from resdyn.fields import PadShortcut, ProjectionShortcut, conv1x1, conv3x3, dropout_layer
from resdyn.nets.base import Network, Toolkit, init_he, register_family
from resdyn.nets.cifar import NoiseChoice
from resdyn.noise import FieldFactory
from resdyn.schemes.reversible import Reversible, ReversibleBlock

STEM_WIDTH = 32
# name: (residual function, units per stage, stage widths before the bottleneck expansion)
LAYOUTS: dict[int, tuple[str, int, tuple[int, ...]]] = {
    38: ("basic", 3, (32, 64, 112)),
    110: ("basic", 9, (32, 64, 128)),
    164: ("bottleneck", 9, (32, 64, 128)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


def residual_function(
    block: str, in_channels: int, out_channels: int, stride: int = 1, preactivate: bool = True, dropout: float = 0.0
) -> nn.Sequential:
    """``F`` or ``G`` of a RevNet unit, pre-activation, as in the authors' code, with optional dropout before its
    last convolution (:class:`~resdyn.nets.base.Toolkit`'s ``field_dropout``; none at 0, so no layer).

    basic: ``[BN-ReLU] conv3x3(stride) BN-ReLU conv3x3``; bottleneck:
    ``[BN-ReLU] conv1x1(stride, out/4) BN-ReLU conv3x3 BN-ReLU conv1x1(out)``. Two things differ from
    :class:`resdyn.fields.PreActBottleneckField` / ``PreActBasicField``, hence this function: the bottleneck
    strides in its first 1x1 convolution (the authors' TensorFlow ResNet) rather than the 3x3, and the network's
    very first ``F`` has no leading BN-ReLU (``preactivate=False``) because the stem already ends in one.
    """
    layers: list[nn.Module] = [nn.BatchNorm2d(in_channels), nn.ReLU()] if preactivate else []
    if block == "basic":
        layers += [conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
                   *dropout_layer(dropout), conv3x3(out_channels, out_channels)]
    else:
        mid = out_channels // 4
        layers += [conv1x1(in_channels, mid, stride), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                   conv3x3(mid, mid), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                   *dropout_layer(dropout), conv1x1(mid, out_channels)]
    return nn.Sequential(*layers)


def half_shortcut(block: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """``P`` carrying one half of the state across a transition (authors' ``_possible_downsample``).

    ``ceil_mode`` makes the pooled size ``ceil(H / stride)``, the strided convolution's, for odd ``H`` too.
    """
    if block == "bottleneck":
        return ProjectionShortcut(in_channels, out_channels, stride, norm=False)
    return nn.Sequential(nn.AvgPool2d(stride, ceil_mode=True), PadShortcut(in_channels, out_channels, 1))


# -- the registered family: strings and option tables stop here ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RevNetOptions(Toolkit, NoiseChoice):
    """A CIFAR RevNet of Gomez et al. 2017, with the toolkit options (:class:`Toolkit`).

    The reversible blocks recompute ``F`` and ``G`` in their backward pass, replaying the forward's random draws
    (field dropout, noise) and restoring BatchNorm's running statistics, so every option gives the gradients of
    ordinary backprop (tests/nets/test_revnet.py).
    """

    #: 38, 110 or 164 (the paper's layouts)
    depth: Literal[38, 110, 164]
    #: backpropagate without storing the reversible blocks' activations (False: ordinary autograd)
    memory_saving: bool = True


def revnet(o: RevNetOptions, in_channels: int, num_classes: int) -> Network:
    """CIFAR RevNet-``depth``: the stem, then :data:`LAYOUTS`' stages of units, then BN-ReLU and the classifier.

    ``o.noise`` wraps every ``F`` and ``G``, indexed in network order (``F_1, G_1, F_2, ...``). With
    ``memory_saving=False`` the same blocks backpropagate by ordinary autograd.
    """
    block, units, widths = LAYOUTS[o.depth]
    noise = o.make_noise()
    count = 2 * units * len(widths)

    def make(make_field: FieldFactory, index: int, keeps_shape: bool) -> nn.Module:
        return noise.wrap(make_field, index, count, keeps_shape) if noise is not None else make_field()

    blocks: list[ReversibleBlock] = []
    channels = STEM_WIDTH
    for stage, width in enumerate(widths):
        out = width * EXPANSION[block]
        for unit in range(units):
            stride = 2 if stage > 0 and unit == 0 else 1
            half_in, half_out = channels // 2, out // 2
            first = stage == 0 and unit == 0
            index = 2 * len(blocks)
            keeps_shape = half_in == half_out and stride == 1
            f = make(functools.partial(residual_function, block, half_in, half_out, stride, not first,
                                       o.field_dropout), index, keeps_shape)
            g = make(functools.partial(residual_function, block, half_out, half_out, dropout=o.field_dropout),
                     index + 1, True)
            if keeps_shape:
                blocks.append(ReversibleBlock(f, g))
            else:
                blocks.append(ReversibleBlock(f, g, half_shortcut(block, half_in, half_out, stride),
                                              half_shortcut(block, half_in, half_out, stride)))
            channels = out

    stem = nn.Sequential(conv3x3(in_channels, STEM_WIDTH), nn.BatchNorm2d(STEM_WIDTH), nn.ReLU(inplace=True))
    body = Reversible(blocks, memory_saving=o.memory_saving)
    return o.finish(Network(stem, body, o.head(channels, num_classes, preact=True)), init_he)


register_family("revnet", RevNetOptions, revnet, "CIFAR RevNet (Gomez et al. 2017) of depth 38, 110 or 164")
