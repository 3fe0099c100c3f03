"""The ImageNet ResNet family (He et al. 2015, Table 1; He et al. 2016 for pre-activation) under any scheme.

A 7x7 stride-2 convolution and a 3x3 stride-2 max-pool take a 224 x 224 image to 56 x 56; four stages of fields at
widths ``w, 2w, 4w, 8w`` (``w = 64``) follow, each after the first starting with a stride-2 transition, so the
state ends 7 x 7. Depths 18 and 34 use basic fields, 50, 101 and 152 bottlenecks of expansion 4. The scheme that
moves the state through the fields, the noise that wraps them and the toolkit options are those of the CIFAR family
(:mod:`resdyn.nets.cifar`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import FIELDS
from resdyn.nets.base import Network, Toolkit, init_he, register_family
from resdyn.nets.cifar import NoiseChoice, SchemeChoice
from resdyn.schemes import Scheme, step_scheme

# depth -> (field, fields per stage): He et al. 2015, Table 1.
LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@dataclass(frozen=True, kw_only=True)
class ImageNetResNetOptions(Toolkit, SchemeChoice, NoiseChoice):
    """The ImageNet ResNet layout (He et al. 2015/2016) under any scheme, with the toolkit options
    (:class:`~resdyn.nets.base.Toolkit`)."""

    #: 18 or 34 (basic fields), 50, 101 or 152 (bottlenecks), as He et al. 2015, Table 1
    depth: int
    #: width of the stem and the first stage; the stages are width x 1, 2, 4, 8 (bottlenecks expand them 4 times)
    width: int = 64
    #: pre-activation fields, the stem's BN-ReLU kept and a BN-ReLU before the head (He et al. 2016)
    preact: bool = False
    #: A (zero-padding), B (projection) or B-preact (BN-ReLU-projection, the LM-ResNet authors' code) where the
    #: shape changes (None: B, He et al. 2015's choice for ResNet-50/101/152)
    shortcut_option: Literal["A", "B", "B-preact"] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.depth not in LAYOUTS:
            raise ConfigError(f"depth {self.depth} is not an ImageNet ResNet layout; valid depths: "
                              f"{', '.join(map(str, LAYOUTS))}")
        if self.width < 1:
            raise ConfigError(f"width must be at least 1 channel, got {self.width}")


def imagenet_resnet(o: ImageNetResNetOptions, in_channels: int, num_classes: int,
                    scheme: type[Scheme] | None = None) -> Network:
    """An ImageNet ResNet of ``o.depth`` layers: stem (conv 7x7 stride 2, BN, ReLU, max-pool 3x3 stride 2), four
    stages of fields at widths ``o.width * (1, 2, 4, 8)``, the body ``o.scheme`` over them with every field wrapped
    by ``o.noise``, and the classifier head. ``scheme``, a :class:`~resdyn.schemes.Scheme` subclass of your own,
    steps the body instead of the registered ``o.scheme``.

    The stem keeps its BN-ReLU under pre-activation, as He et al. 2016's ImageNet networks do (fb.resnet.torch's
    ``preresnet``); the first field's own BN-ReLU then follows it, where theirs skips it (128 parameters).
    """
    block, stages = LAYOUTS[o.depth]
    scheme = scheme or step_scheme(o.scheme)
    if not scheme.skip and o.shortcut_option is not None:
        raise ConfigError(f"the {scheme.__name__} scheme has no skip connection, so no shortcut: its fields map the "
                          f"shape themselves; leave shortcut_option unset (got {o.shortcut_option!r})")
    field_cls = FIELDS[(block, o.preact)]

    makes, shapes = [], []
    channels = o.width
    for stage, count in enumerate(stages):
        width = o.width * 2**stage
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            out = width * field_cls.expansion
            makes.append(functools.partial(field_cls, channels, width, stride, o.field_dropout))
            shapes.append((channels, out, stride))
            channels = out

    stem = nn.Sequential(
        nn.Conv2d(in_channels, o.width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(o.width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    body = o.body(makes, shapes, o.shortcut_option or "B", o.preact, o.make_noise(), scheme)
    return o.finish(Network(stem, body, o.head(channels, num_classes, o.preact)), init_he)


register_family("imagenet-resnet", ImageNetResNetOptions, imagenet_resnet,
                "ImageNet ResNet (He et al. 2015/2016) of depth 18, 34, 50, 101 or 152 under any scheme "
                "(depth=N required)")
