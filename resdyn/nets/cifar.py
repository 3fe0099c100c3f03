"""The CIFAR ResNet family (He et al. 2015 sec. 4.2; He et al. 2016 for pre-activation and ResNet-164).

Three stages of ``n`` residual fields at widths 16/32/64, the last two starting with a stride-2 transition.
Basic fields give depth ``6n + 2``, bottleneck fields depth ``9n + 2``. The scheme that moves the state
through the fields is a parameter, so every scheme of ``resdyn.schemes`` gives a CIFAR network.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import FIELDS, ResNeXtField, conv3x3, shortcut
from resdyn.nets.base import Network, Toolkit, init_he, register_family
from resdyn.noise import Noise, StochasticDepth, make_noise
from resdyn.schemes import Scheme, step_scheme
from resdyn.typed import build_table

WIDTHS = (16, 32, 64)
NAMED_DEPTHS = (20, 32, 44, 56, 110, 164, 1202)
# He et al. 2016 trained ResNet-164 and -1001 as pre-activation bottleneck networks; every other named
# depth is the He et al. 2015 post-activation basic network.
BOTTLENECK_DEPTHS = (164, 1001)


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
    scheme: type[Scheme],
    scheme_options: Mapping[str, Any],
    noise: Noise | None,
) -> Scheme:
    """``scheme(fields, shortcuts, activation, **scheme_options)`` over fields built by ``make_fields``.

    ``shapes[i] = (in_channels, out_channels, stride)`` of field ``i``, which decides its shortcut (none for a scheme
    without a skip, the plain network, whose fields map the shape themselves). ``noise`` wraps every field; a
    shape-keeping step of a scheme with several fields per step (Runge-Kutta with ``stage_fields``) gets that many,
    each wrapped alike.
    """
    if not scheme.skip and isinstance(noise, StochasticDepth):
        raise ConfigError(f"stochastic depth drops a field to leave the skip x_(n+1) = x_n, and scheme "
                          f"{scheme.__name__} has no skip (a dropped field would zero the state): use shake-shake or "
                          f"gaussian noise, or a residual scheme")
    per_step = scheme.fields_per_step(build_table(scheme.Options, dict(scheme_options), "scheme_options"))
    fields: list[nn.Module] = []
    shortcuts = []
    for i, (make, (c_in, c_out, stride)) in enumerate(zip(make_fields, shapes, strict=True)):
        keeps_shape = c_in == c_out and stride == 1

        def one(make: Callable[[], nn.Module] = make, i: int = i, keeps_shape: bool = keeps_shape) -> nn.Module:
            return noise.wrap(make, i, len(make_fields), keeps_shape) if noise is not None else make()

        fields.append(nn.ModuleList(one() for _ in range(per_step)) if per_step > 1 and keeps_shape else one())
        shortcuts.append(shortcut(shortcut_option, c_in, c_out, stride, preact) if scheme.skip else nn.Identity())
    return scheme(fields, shortcuts, None if preact else nn.ReLU(), **scheme_options)


# -- the registered families: strings and option tables stop here ------------------------------------------

@dataclass(frozen=True)
class NoiseChoice:
    """How training perturbs the fields (``resdyn.noise``): a noise name and its own options."""

    #: stochastic-depth, shake-shake or gaussian (None: no noise)
    noise: str | None = None
    #: the noise's options, e.g. {survival_last = 0.8, scaling = "train"}
    noise_options: dict[str, Any] = field(default_factory=dict)

    def make_noise(self) -> Noise | None:
        return make_noise(self.noise, **self.noise_options)


@dataclass(frozen=True)
class SchemeChoice:
    """The scheme that steps the state through the fields (``resdyn.schemes.SCHEMES``) and its own options."""

    #: a step scheme of resdyn.schemes.SCHEMES (listed with their scheme_options below), e.g. euler, lm, rk4
    scheme: str = "euler"
    #: the scheme's options, e.g. {convention = "code"} (lm), {order = 3} (poly), {stage_fields = true} (Runge-Kutta)
    scheme_options: dict[str, Any] = field(default_factory=dict)

    def body(self, make_fields: Sequence[Callable[[], nn.Module]], shapes: Sequence[tuple[int, int, int]],
             shortcut_option: str, preact: bool, noise: Noise | None, scheme: type[Scheme] | None = None) -> Scheme:
        """The chosen scheme over the fields (:func:`residual_body`); ``scheme``, a class, replaces the name."""
        return residual_body(make_fields, shapes, shortcut_option, preact, scheme or step_scheme(self.scheme),
                             self.scheme_options, noise)


@dataclass(frozen=True, kw_only=True)
class ResNetOptions(Toolkit, SchemeChoice, NoiseChoice):
    """The CIFAR ResNet layout (He et al. 2015/2016) under any scheme, with the toolkit options (:class:`Toolkit`)."""

    #: 6n + 2 (basic fields) or 9n + 2 (bottleneck)
    depth: int
    #: basic or bottleneck (None: bottleneck at depths 164 and 1001, else basic)
    block: Literal["basic", "bottleneck"] | None = None
    #: pre-activation fields (None: at the bottleneck depths, as He et al. 2016)
    preact: bool | None = None
    #: A (zero-padding), B (projection) or B-preact (BN-ReLU-projection, the LM-ResNet authors' code) at
    #: transitions (None: B at the bottleneck depths, else A)
    shortcut_option: Literal["A", "B", "B-preact"] | None = None


def resnet(o: ResNetOptions, in_channels: int, num_classes: int, scheme: type[Scheme] | None = None) -> Network:
    """A CIFAR ResNet of ``o.depth`` layers: three stages of ``n`` fields at widths 16/32/64, the body ``o.scheme``
    over them, every field wrapped by ``o.noise``. ``scheme``, a :class:`~resdyn.schemes.Scheme` subclass of your
    own, steps the body instead of the registered ``o.scheme`` (``resnet(ResNetOptions(depth=8), 1, 10,
    scheme=MyScheme)``).

    ``block``, ``preact`` and ``shortcut_option`` default to what the papers trained at that depth: post-activation
    basic fields with option-A shortcuts (He et al. 2015), pre-activation bottlenecks with option B at 164 and 1001
    (He et al. 2016).
    """
    bottleneck_depth = o.depth in BOTTLENECK_DEPTHS
    block = o.block or ("bottleneck" if bottleneck_depth else "basic")
    preact = o.preact if o.preact is not None else bottleneck_depth
    shortcut_option = o.shortcut_option or ("B" if bottleneck_depth else "A")
    scheme = scheme or step_scheme(o.scheme)
    if not scheme.skip and o.shortcut_option is not None:
        raise ConfigError(f"the {scheme.__name__} scheme has no skip connection, so no shortcut: its fields map the "
                          f"shape themselves; leave shortcut_option unset (got {o.shortcut_option!r})")
    n = blocks_per_stage(o.depth, block)
    field_cls = FIELDS[(block, preact)]

    makes, shapes = [], []
    channels = WIDTHS[0]
    for stage, width in enumerate(WIDTHS):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            out = width * field_cls.expansion
            makes.append(functools.partial(field_cls, channels, width, stride, o.field_dropout))
            shapes.append((channels, out, stride))
            channels = out

    stem_layers: list[nn.Module] = [conv3x3(in_channels, WIDTHS[0])]
    if not preact:
        stem_layers += [nn.BatchNorm2d(WIDTHS[0]), nn.ReLU(inplace=True)]
    body = o.body(makes, shapes, shortcut_option, preact, o.make_noise(), scheme)
    return o.finish(Network(nn.Sequential(*stem_layers), body, o.head(channels, num_classes, preact)), init_he)


@dataclass(frozen=True, kw_only=True)
class ResNeXtOptions(Toolkit, SchemeChoice, NoiseChoice):
    """ResNeXt-29 for CIFAR (Xie et al. 2017) under any scheme, with the toolkit options (:class:`Toolkit`)."""

    #: groups per aggregated bottleneck (8 or 16 in the paper)
    cardinality: int
    #: channels per group in the first stage
    base_width: int = 64
    #: output width 64 * widen_factor in the first stage
    widen_factor: int = 4
    #: bottlenecks per stage
    blocks: int = 3


def resnext29(o: ResNeXtOptions, in_channels: int, num_classes: int) -> Network:
    """ResNeXt-29 for CIFAR (Xie et al. 2017, sec. 5.3): 3 stages of ``o.blocks`` aggregated bottlenecks.

    Stage ``s`` outputs ``64 * widen_factor * 2^s`` channels through ``cardinality`` groups of
    ``base_width * 2^s`` channels each; projection (option B) shortcuts; post-activation.
    """
    makes, shapes = [], []
    channels = 64
    for stage in range(3):
        out = 64 * o.widen_factor * 2**stage
        inner = o.cardinality * o.base_width * 2**stage
        for i in range(o.blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            makes.append(functools.partial(ResNeXtField, channels, inner, out, stride, o.cardinality,
                                           o.field_dropout))
            shapes.append((channels, out, stride))
            channels = out
    stem = nn.Sequential(conv3x3(in_channels, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
    body = o.body(makes, shapes, "B", False, o.make_noise())
    return o.finish(Network(stem, body, o.head(channels, num_classes, preact=False)), init_he)


register_family("resnet", ResNetOptions, resnet, "CIFAR ResNet of any valid depth and any scheme (depth=N required)")
register_family("resnext29", ResNeXtOptions, resnext29, "ResNeXt-29 (Xie et al. 2017) under any scheme")
