"""The CIFAR ResNet family (He et al. 2015 sec. 4.2; He et al. 2016 for pre-activation and ResNet-164).

Three stages of ``n`` residual fields at widths 16/32/64, the last two starting with a stride-2 transition.
Basic fields give depth ``6n + 2``, bottleneck fields depth ``9n + 2``. The scheme that moves the state
through the fields is a parameter, so every scheme of ``resdyn.schemes`` gives a CIFAR network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from resdyn.fields import FIELDS, conv3x3, shortcut
from resdyn.nets.base import MODELS, ClassifierHead, Network
from resdyn.schemes import Euler

WIDTHS = (16, 32, 64)
NAMED_DEPTHS = (20, 32, 44, 56, 110, 164, 1202)
# He et al. 2016 trained ResNet-164 and -1001 as pre-activation bottleneck networks; every other named
# depth is the He et al. 2015 post-activation basic network.
BOTTLENECK_DEPTHS = (164, 1001)

Scheme = Callable[[Sequence[nn.Module], Sequence[nn.Module], nn.Module | None], nn.Module]


def blocks_per_stage(depth: int, block: str) -> int:
    """``n`` such that depth = 6n + 2 (basic) or 9n + 2 (bottleneck); an error names the valid depths."""
    layers = {"basic": 2, "bottleneck": 3}[block]
    per = 3 * layers
    if depth < per + 2 or (depth - 2) % per:
        first = [per * n + 2 for n in range(1, 6)]
        raise ValueError(
            f"depth {depth} is not valid for {block} blocks: it must be {per}n + 2 "
            f"(e.g. {', '.join(map(str, first))}, ...)"
        )
    return (depth - 2) // per


def cifar_resnet(
    depth: int,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool | None = None,
    shortcut_option: str | None = None,
    scheme: Scheme = Euler,
    widths: Sequence[int] = WIDTHS,
) -> Network:
    """A CIFAR ResNet of ``depth`` layers whose body is ``scheme(fields, shortcuts, activation)``.

    ``block`` is "basic" or "bottleneck" and ``preact`` selects the pre-activation fields; both default
    to the configuration the papers trained at that depth. ``shortcut_option`` is "A" (zero-padding, no
    parameters) or "B" (1x1 projection); it defaults to A, and to B at the bottleneck depths, as in He 2016.
    """
    if block is None:
        block = "bottleneck" if depth in BOTTLENECK_DEPTHS else "basic"
    if preact is None:
        preact = depth in BOTTLENECK_DEPTHS
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"unknown block {block!r}; valid: 'basic', 'bottleneck'")
    if shortcut_option is None:
        shortcut_option = "B" if depth in BOTTLENECK_DEPTHS else "A"
    n = blocks_per_stage(depth, block)
    field_cls = FIELDS[(block, preact)]

    fields: list[nn.Module] = []
    shortcuts: list[nn.Module] = []
    channels = widths[0]
    for stage, width in enumerate(widths):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            out = width * field_cls.expansion
            fields.append(field_cls(channels, width, stride))
            shortcuts.append(shortcut(shortcut_option, channels, out, stride, preact))
            channels = out

    stem_layers: list[nn.Module] = [conv3x3(in_channels, widths[0])]
    if not preact:
        stem_layers += [nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    body = scheme(fields, shortcuts, None if preact else nn.ReLU())
    net = Network(nn.Sequential(*stem_layers), body, ClassifierHead(channels, num_classes, preact))
    init_he(net)
    return net


def init_he(net: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit-scale BN, as the reference CIFAR ResNet implementations do."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@MODELS.register("resnet", "CIFAR ResNet of any valid depth (option depth=N required)")
def resnet(
    depth: int,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool | None = None,
    shortcut_option: str | None = None,
) -> Network:
    return cifar_resnet(
        depth, in_channels=in_channels, num_classes=num_classes, block=block, preact=preact,
        shortcut_option=shortcut_option,
    )


def _named(depth: int) -> Callable[..., Network]:
    def build(
        in_channels: int = 3,
        num_classes: int = 10,
        block: str | None = None,
        preact: bool | None = None,
        shortcut_option: str | None = None,
    ) -> Network:
        return resnet(depth, in_channels, num_classes, block, preact, shortcut_option)

    build.__doc__ = f"CIFAR ResNet-{depth}."
    return build


for _depth in NAMED_DEPTHS:
    _kind = "pre-activation bottleneck (He 2016)" if _depth in BOTTLENECK_DEPTHS else "post-activation basic (He 2015)"
    MODELS.add(f"resnet{_depth}", _named(_depth), f"CIFAR ResNet-{_depth}, {_kind}")
