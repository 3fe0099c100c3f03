"""The CIFAR FractalNet (Larsson, Maire, Shakhnarovich 2017, sec. 4).

``B`` fractal blocks of ``C`` columns (``resdyn.schemes.fractal``), each followed by a 2x2 max-pool, then a linear
classifier. The base layer is conv3x3-BN-ReLU; block ``b`` has ``channels[b]`` filters, 64, 128, 256, 512, 512 in
the paper, and optional dropout ``0.1 b`` (0%, 10%, 20%, 30%, 40%). The deepest path has ``B 2^(C-1)``
convolutions: 20 for ``fractalnet20`` (C=3) and 40 for ``fractalnet40`` (C=4). Training follows the paper with
local drop-path 0.15 at every join and global drop-path (one column for the whole network) on half the batches.

Parameters: ``fractalnet20`` has 33,724,618, the count osmr/imgclsmob asserts for its ``fractalnet_cifar10``;
khanrc/pt.fractalnet measures 33.7M for the same network. The paper's Table 1 quotes 38.6M for its 20-layer
network, but the architecture it describes has 33.7M whether the convolutions are bias-free before BN (here) or
biased as in the authors' Caffe (33,714,314); khanrc reaches 38.9M only by adding a 1x1 convolution before each
block. ``fractalnet40`` at the same widths has 76,106,634.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import ACTIVATIONS, Activation, replace_activations
from resdyn.nets.base import ClassifierHead, Network, register_family
from resdyn.schemes.fractal import Fractal, FractalBlock

BLOCKS = 5


class ConvBNReLU(nn.Sequential):
    """FractalNet's base layer ``conv``: conv3x3-(dropout)-BN-ReLU, dropout where the authors' Caffe puts it."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        super().__init__(*layers)


def paper_channels(blocks: int) -> tuple[int, ...]:
    """64 filters doubling per block up to 512: (64, 128, 256, 512, 512) for the paper's 5 blocks."""
    return tuple(min(64 * 2**b, 512) for b in range(blocks))


def paper_dropout(blocks: int) -> tuple[float, ...]:
    """Dropout 0.1 b in block b: (0, 0.1, 0.2, 0.3, 0.4) for the paper's 5 blocks."""
    return tuple(round(0.1 * b, 10) for b in range(blocks))


def init_caffe_xavier(net: nn.Module) -> None:
    """Caffe's "xavier" filler, which the paper's code uses: ``U(-sqrt(3 / fan_in), sqrt(3 / fan_in))``, zero biases.

    Caffe scales by the fan-in alone (its default ``variance_norm: FAN_IN``), where PyTorch's ``xavier_uniform_``
    uses the mean of fan-in and fan-out.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# -- the registered family: strings and option tables stop here ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FractalNetOptions:
    """A CIFAR FractalNet of Larsson et al. 2017.

    Without the toolkit options of the residual families (:class:`~resdyn.nets.base.Toolkit`): its regularisers
    are its own, per-block dropout where the authors' Caffe puts it and drop-path at the joins, and its init is
    the paper's Caffe filler (:func:`init_caffe_xavier`).
    """

    #: columns C of each fractal block (deepest path 2^(C-1) convolutions per block)
    columns: int
    #: fractal blocks B, each followed by a 2x2 max-pool
    blocks: int = BLOCKS
    #: one width per block (None: 64, 128, 256, 512, 512, ...)
    channels: list[int] | None = None
    #: local drop-path probability at every join
    drop_path_local: float = 0.15
    #: fraction of mini-batches trained on one global column
    global_drop_ratio: float = 0.5
    #: false (none), true (the paper's 0.1 b in block b) or one rate per block
    dropout: bool | list[float] = False
    #: the paper's merged n-ary joins (false: the nested binary means of the FIUBA 75.26 report on Lu et al.
    #: 2018, its eq. 11)
    flat_join: bool = True
    #: the base layers' nonlinearity (relu, the paper's; or any of resdyn.fields.ACTIVATIONS)
    activation: Activation = "relu"


def fractalnet(o: FractalNetOptions, in_channels: int, num_classes: int) -> Network:
    """A FractalNet of ``o.blocks`` blocks of ``o.columns`` columns for images with ``in_channels`` channels.

    ``channels`` (one width per block) defaults to :func:`paper_channels`; ``dropout`` is False (none), True (the
    paper's :func:`paper_dropout`) or one rate per block. ``drop_path_local`` is the local drop-path probability
    at every join and ``global_drop_ratio`` the fraction of mini-batches trained on one global column.
    ``flat_join=False`` nests binary means (``1/2 f_C o f_C + 1/2 conv``, the FIUBA 75.26 report's reading after
    Lu et al. 2018) instead of the paper's joins.

    Pooling is a 2x2 max-pool with ``ceil_mode``: on 32x32 inputs it is exactly the paper's (32 -> 16 -> 8 -> 4
    -> 2 -> 1); on 28x28 an odd map keeps its last row and column in a partial window (28 -> 14 -> 7 -> 4 -> 2 -> 1),
    and a 1x1 map stays 1x1, so 16x16 inputs also pass 5 blocks. The classifier averages whatever map remains,
    which on a 1x1 map is the paper's flatten-and-linear.
    """
    if o.columns < 1 or o.blocks < 1:
        raise ConfigError(f"a FractalNet needs at least 1 column and 1 block, got columns={o.columns}, "
                          f"blocks={o.blocks}")
    widths = tuple(o.channels) if o.channels is not None else paper_channels(o.blocks)
    if o.dropout is True:
        rates = paper_dropout(o.blocks)
    elif o.dropout is False:
        rates = (0.0,) * o.blocks
    else:
        rates = tuple(o.dropout)
    for name, values in (("channels", widths), ("dropout", rates)):
        if len(values) != o.blocks:
            raise ConfigError(f"{name} needs one value per block: {o.blocks} blocks but {len(values)} values {values}")
    if not all(0 <= r < 1 for r in rates):
        raise ConfigError(f"dropout rates must be in [0, 1), got {rates}")

    fractal_blocks, pools = [], []
    width_in = in_channels
    for width, rate in zip(widths, rates, strict=True):
        conv = functools.partial(ConvBNReLU, dropout=rate)
        fractal_blocks.append(FractalBlock(o.columns, width_in, width, conv, o.drop_path_local, o.flat_join))
        pools.append(nn.MaxPool2d(2, ceil_mode=True))
        width_in = width
    body = Fractal(fractal_blocks, pools, o.global_drop_ratio)
    net = Network(nn.Identity(), body, ClassifierHead(width_in, num_classes, preact=False))
    if o.activation != "relu":
        replace_activations(net, ACTIVATIONS[o.activation])
    init_caffe_xavier(net)
    return net


register_family("fractalnet", FractalNetOptions, fractalnet, "CIFAR FractalNet (Larsson et al. 2017), C columns")
