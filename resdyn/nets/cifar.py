"""The CIFAR ResNet family (He et al. 2015 sec. 4.2; He et al. 2016 for pre-activation and ResNet-164).

Three stages of ``n`` residual fields at widths 16/32/64, the last two starting with a stride-2 transition.
Basic fields give depth ``6n + 2``, bottleneck fields depth ``9n + 2``. The scheme that moves the state
through the fields is a parameter, so every scheme of ``resdyn.schemes`` gives a CIFAR network.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import FIELDS, ResNeXtField, conv3x3, shortcut
from resdyn.nets.base import MODELS, ClassifierHead, Network
from resdyn.noise import Noise, make_noise
from resdyn.schemes import Euler, LinearMultistep, Poly

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
        raise ConfigError(
            f"depth {depth} is not valid for {block} blocks: it must be {per}n + 2 "
            f"(e.g. {', '.join(map(str, first))}, ...)"
        )
    return (depth - 2) // per


def residual_body(
    make_fields: Sequence[Callable[[], nn.Module]],
    shapes: Sequence[tuple[int, int, int]],
    shortcut_option: str,
    preact: bool,
    scheme: Scheme,
    noise: Noise | None,
) -> nn.Module:
    """``scheme(fields, shortcuts, activation)`` over fields built by ``make_fields`` (wrapped by ``noise``).

    ``shapes[i] = (in_channels, out_channels, stride)`` of field ``i``, which decides its shortcut.
    """
    fields, shortcuts = [], []
    for i, (make, (c_in, c_out, stride)) in enumerate(zip(make_fields, shapes, strict=True)):
        keeps_shape = c_in == c_out and stride == 1
        fields.append(noise.wrap(make, i, len(make_fields), keeps_shape) if noise is not None else make())
        shortcuts.append(shortcut(shortcut_option, c_in, c_out, stride, preact))
    return scheme(fields, shortcuts, None if preact else nn.ReLU())


def cifar_resnet(
    depth: int,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool | None = None,
    shortcut_option: str | None = None,
    scheme: Scheme = Euler,
    noise: Noise | None = None,
    widths: Sequence[int] = WIDTHS,
) -> Network:
    """A CIFAR ResNet of ``depth`` layers whose body is ``scheme(fields, shortcuts, activation)``.

    ``block`` is "basic" or "bottleneck" and ``preact`` selects the pre-activation fields; both default
    to the configuration the papers trained at that depth. ``shortcut_option`` is "A" (zero-padding, no
    parameters) or "B" (1x1 projection); it defaults to A, and to B at the bottleneck depths, as in He 2016.
    ``noise`` (``resdyn.noise``) wraps every field.
    """
    if block is None:
        block = "bottleneck" if depth in BOTTLENECK_DEPTHS else "basic"
    if preact is None:
        preact = depth in BOTTLENECK_DEPTHS
    if shortcut_option is None:
        shortcut_option = "B" if depth in BOTTLENECK_DEPTHS else "A"
    if block not in ("basic", "bottleneck"):
        raise ConfigError(f"unknown block {block!r}; valid: 'basic', 'bottleneck'")
    n = blocks_per_stage(depth, block)
    field_cls = FIELDS[(block, preact)]

    makes, shapes = [], []
    channels = widths[0]
    for stage, width in enumerate(widths):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            out = width * field_cls.expansion
            makes.append(functools.partial(field_cls, channels, width, stride))
            shapes.append((channels, out, stride))
            channels = out

    stem_layers: list[nn.Module] = [conv3x3(in_channels, widths[0])]
    if not preact:
        stem_layers += [nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    body = residual_body(makes, shapes, shortcut_option, preact, scheme, noise)
    net = Network(nn.Sequential(*stem_layers), body, ClassifierHead(channels, num_classes, preact))
    init_he(net)
    return net


def cifar_resnext(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    cardinality: int = 8,
    base_width: int = 64,
    widen_factor: int = 4,
    blocks: int = 3,
    scheme: Scheme = Euler,
    noise: Noise | None = None,
) -> Network:
    """ResNeXt-29 for CIFAR (Xie et al. 2017, sec. 5.3): 3 stages of ``blocks`` aggregated bottlenecks.

    Stage ``s`` outputs ``64 * widen_factor * 2^s`` channels through ``cardinality`` groups of
    ``base_width * 2^s`` channels each; projection (option B) shortcuts; post-activation.
    """
    makes, shapes = [], []
    channels = 64
    for stage in range(3):
        out = 64 * widen_factor * 2**stage
        inner = cardinality * base_width * 2**stage
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            makes.append(functools.partial(ResNeXtField, channels, inner, out, stride, cardinality))
            shapes.append((channels, out, stride))
            channels = out
    stem = nn.Sequential(conv3x3(in_channels, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
    body = residual_body(makes, shapes, "B", False, scheme, noise)
    net = Network(stem, body, ClassifierHead(channels, num_classes, preact=False))
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


# -- registered builders: strings and option dicts stop here ------------------------------------------------


def resnet(
    depth: int,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool | None = None,
    shortcut_option: str | None = None,
    noise: str | None = None,
    noise_options: dict[str, Any] | None = None,
) -> Network:
    """CIFAR ResNet (forward Euler)."""
    return cifar_resnet(
        depth, in_channels=in_channels, num_classes=num_classes, block=block, preact=preact,
        shortcut_option=shortcut_option, noise=make_noise(noise, **(noise_options or {})),
    )


def lm_resnet(
    depth: int,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool = True,
    shortcut_option: str | None = None,
    convention: str = "paper",
    noise: str | None = None,
    noise_options: dict[str, Any] | None = None,
) -> Network:
    """LM-ResNet (linear two-step scheme); pre-activation by default, as in Lu et al. 2018."""
    scheme = functools.partial(LinearMultistep, convention=convention)
    return cifar_resnet(
        depth, in_channels=in_channels, num_classes=num_classes, block=block, preact=preact,
        shortcut_option=shortcut_option, scheme=scheme, noise=make_noise(noise, **(noise_options or {})),
    )


def polynet(
    depth: int,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool | None = None,
    shortcut_option: str | None = None,
    order: int = 2,
    noise: str | None = None,
    noise_options: dict[str, Any] | None = None,
) -> Network:
    """CIFAR ResNet whose blocks are PolyNet's x + F x + F F x (``order=3`` adds F F F x)."""
    return cifar_resnet(
        depth, in_channels=in_channels, num_classes=num_classes, block=block, preact=preact,
        shortcut_option=shortcut_option, scheme=functools.partial(Poly, order=order),
        noise=make_noise(noise, **(noise_options or {})),
    )


def resnext29(
    cardinality: int,
    in_channels: int = 3,
    num_classes: int = 100,
    noise: str | None = None,
    noise_options: dict[str, Any] | None = None,
) -> Network:
    """ResNeXt-29 (forward Euler), CIFAR-100 by default."""
    return cifar_resnext(
        in_channels=in_channels, num_classes=num_classes, cardinality=cardinality,
        noise=make_noise(noise, **(noise_options or {})),
    )


def lm_resnext29(
    cardinality: int,
    in_channels: int = 3,
    num_classes: int = 100,
    convention: str = "paper",
    noise: str | None = None,
    noise_options: dict[str, Any] | None = None,
) -> Network:
    """LM-ResNeXt-29: the linear two-step scheme on ResNeXt blocks (Lu et al. 2018), CIFAR-100 by default."""
    return cifar_resnext(
        in_channels=in_channels, num_classes=num_classes, cardinality=cardinality,
        scheme=functools.partial(LinearMultistep, convention=convention),
        noise=make_noise(noise, **(noise_options or {})),
    )


MODELS.add("resnet", resnet, "CIFAR ResNet of any valid depth (option depth=N required)")
MODELS.add("lm-resnet", lm_resnet, "LM-ResNet of any valid depth (option depth=N required)")
for _depth in NAMED_DEPTHS:
    _kind = "pre-activation bottleneck (He 2016)" if _depth in BOTTLENECK_DEPTHS else "post-activation basic (He 2015)"
    MODELS.add(f"resnet{_depth}", functools.partial(resnet, _depth), f"CIFAR ResNet-{_depth}, {_kind}")
for _depth in (20, 32, 44, 56, 110, 164):
    MODELS.add(f"lm-resnet{_depth}", functools.partial(lm_resnet, _depth),
               f"LM-ResNet-{_depth} (Lu et al. 2018), pre-activation, linear two-step scheme")
for _depth in (20, 56, 110):
    MODELS.add(f"polynet{_depth}", functools.partial(polynet, _depth),
               f"ResNet-{_depth} layout with PolyNet blocks x + F x + F F x (Zhang et al. 2017)")
for _card in (8, 16):
    MODELS.add(f"resnext29-{_card}x64d", functools.partial(resnext29, _card),
               f"ResNeXt-29 {_card}x64d (Xie et al. 2017), CIFAR-100 by default")
    MODELS.add(f"lm-resnext29-{_card}x64d", functools.partial(lm_resnext29, _card),
               f"LM-ResNeXt-29 {_card}x64d: the two-step scheme on ResNeXt blocks (Lu et al. 2018)")
