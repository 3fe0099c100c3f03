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
from resdyn.fields import FIELDS, NORMS, Norm, ResNeXtField, conv3x3, replace_batch_norms, shortcut
from resdyn.nets.base import ClassifierHead, Network, register_family
from resdyn.nets.init import WeightInit, init_network
from resdyn.noise import Noise, make_noise
from resdyn.schemes import SCHEMES, Euler, Scheme
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

    ``shapes[i] = (in_channels, out_channels, stride)`` of field ``i``, which decides its shortcut. ``noise`` wraps
    every field; a shape-keeping step of a scheme with several fields per step (Runge-Kutta with ``stage_fields``)
    gets that many, each wrapped alike.
    """
    per_step = scheme.fields_per_step(build_table(scheme.Options, dict(scheme_options), "scheme_options"))
    fields: list[nn.Module] = []
    shortcuts = []
    for i, (make, (c_in, c_out, stride)) in enumerate(zip(make_fields, shapes, strict=True)):
        keeps_shape = c_in == c_out and stride == 1

        def one(make: Callable[[], nn.Module] = make, i: int = i, keeps_shape: bool = keeps_shape) -> nn.Module:
            return noise.wrap(make, i, len(make_fields), keeps_shape) if noise is not None else make()

        fields.append(nn.ModuleList(one() for _ in range(per_step)) if per_step > 1 and keeps_shape else one())
        shortcuts.append(shortcut(shortcut_option, c_in, c_out, stride, preact))
    return scheme(fields, shortcuts, None if preact else nn.ReLU(), **scheme_options)


def cifar_resnet(
    depth: int,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    block: str | None = None,
    preact: bool | None = None,
    shortcut_option: str | None = None,
    scheme: type[Scheme] = Euler,
    scheme_options: Mapping[str, Any] | None = None,
    noise: Noise | None = None,
    widths: Sequence[int] = WIDTHS,
    dropout: float = 0.0,
    field_dropout: float = 0.0,
    init: str = "default",
    norm: str = "batch",
) -> Network:
    """A CIFAR ResNet of ``depth`` layers whose body is ``scheme(fields, shortcuts, activation, **scheme_options)``.

    ``block`` is "basic" or "bottleneck" and ``preact`` selects the pre-activation fields; both default
    to the configuration the papers trained at that depth. ``shortcut_option`` is "A" (zero-padding, no
    parameters), "B" (1x1 projection) or "B-preact" (BN-ReLU-1x1, the LM-ResNet authors' code); it defaults
    to A, and to B at the bottleneck depths, as in He 2016.
    ``noise`` (``resdyn.noise``) wraps every field.

    Seed 003's toolkit: ``dropout`` before the classifier, ``field_dropout`` before each field's last convolution,
    ``init`` ("default": He-normal fan-out as the reference code, or one of ``resdyn.nets.init.WEIGHT_INITS``) and
    ``norm`` (a key of ``resdyn.fields.NORMS``, in place of every BatchNorm: fields, shortcuts, stem and head).
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
            makes.append(functools.partial(field_cls, channels, width, stride, field_dropout))
            shapes.append((channels, out, stride))
            channels = out

    stem_layers: list[nn.Module] = [conv3x3(in_channels, widths[0])]
    if not preact:
        stem_layers += [nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    body = residual_body(makes, shapes, shortcut_option, preact, scheme, scheme_options or {}, noise)
    net = Network(nn.Sequential(*stem_layers), body, ClassifierHead(channels, num_classes, preact, dropout))
    if norm != "batch":
        replace_batch_norms(net, NORMS[norm])
    if init == "default":
        init_he(net)
    else:
        init_network(net, init)
    return net


def cifar_resnext(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    cardinality: int = 8,
    base_width: int = 64,
    widen_factor: int = 4,
    blocks: int = 3,
    scheme: type[Scheme] = Euler,
    scheme_options: Mapping[str, Any] | None = None,
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
    body = residual_body(makes, shapes, "B", False, scheme, scheme_options or {}, noise)
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


# -- the registered families: strings and option tables stop here ------------------------------------------

# Schemes that do not step residual fields f_n(x) with shortcuts, and so cannot drive this layout's fields.
OWN_BODIES = {
    "fractal": "its fields are the columns of fractal blocks joined by averaging, not residual branches: "
               "use the model fractalnet20 or fractalnet40",
    "ode": "it integrates time-dependent fields f(t, x) (GroupNorm, not BatchNorm, which would mix the solver's "
           "evaluations) with an adaptive solver: use the model odenet",
    "reversible": "its coupling steps two half-width fields F, G per block: use revnet38/110/164, or "
                  "scheme=leapfrog for a reversible scheme on these fields",
}


def step_scheme(name: str) -> type[Scheme]:
    """The step-by-step scheme registered as ``name``; the others are refused with the reason."""
    cls = SCHEMES.get(name)
    if not issubclass(cls, Scheme):
        raise ConfigError(f"scheme {name!r} cannot run on residual fields with shortcuts: {OWN_BODIES[name]}")
    return cls


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

    #: euler, lm, poly, ab2, ab3, midpoint, heun, rk4, leapfrog, momentum
    scheme: str = "euler"
    #: the scheme's options, e.g. {convention = "code"} (lm), {order = 3} (poly), {stage_fields = true} (Runge-Kutta)
    scheme_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ResNetOptions(SchemeChoice, NoiseChoice):
    """The CIFAR ResNet layout (He et al. 2015/2016) under any scheme."""

    #: 6n + 2 (basic fields) or 9n + 2 (bottleneck)
    depth: int
    #: basic or bottleneck (None: bottleneck at depths 164 and 1001, else basic)
    block: Literal["basic", "bottleneck"] | None = None
    #: pre-activation fields (None: at the bottleneck depths, as He et al. 2016)
    preact: bool | None = None
    #: A (zero-padding), B (projection) or B-preact (BN-ReLU-projection, the LM-ResNet authors' code) at
    #: transitions (None: B at the bottleneck depths, else A)
    shortcut_option: Literal["A", "B", "B-preact"] | None = None
    #: dropout rate on the pooled features before the classifier (0: none)
    dropout: float = 0.0
    #: dropout rate inside every field, before its last convolution (Wide ResNet's place; 0: none)
    field_dropout: float = 0.0
    #: weights: default (He-normal fan-out convolutions, PyTorch's classifier, as the reference code), or he-normal,
    #: he-uniform, xavier-normal, xavier-uniform (Glorot) on every convolution and the classifier
    init: Literal["default", WeightInit] = "default"
    #: normalisation layer everywhere BatchNorm stands (fields, shortcuts, stem, head): batch, group, layer or none
    norm: Norm = "batch"


def resnet(o: ResNetOptions, in_channels: int, num_classes: int) -> Network:
    """A CIFAR ResNet with the options' scheme and noise."""
    return cifar_resnet(
        o.depth, in_channels=in_channels, num_classes=num_classes, block=o.block, preact=o.preact,
        shortcut_option=o.shortcut_option, scheme=step_scheme(o.scheme), scheme_options=o.scheme_options,
        noise=o.make_noise(), dropout=o.dropout, field_dropout=o.field_dropout, init=o.init, norm=o.norm,
    )


@dataclass(frozen=True, kw_only=True)
class ResNeXtOptions(SchemeChoice, NoiseChoice):
    """ResNeXt-29 for CIFAR (Xie et al. 2017) under any scheme."""

    #: groups per aggregated bottleneck (8 or 16 in the paper)
    cardinality: int
    #: channels per group in the first stage
    base_width: int = 64
    #: output width 64 * widen_factor in the first stage
    widen_factor: int = 4
    #: bottlenecks per stage
    blocks: int = 3


def resnext29(o: ResNeXtOptions, in_channels: int, num_classes: int) -> Network:
    """ResNeXt-29 with the options' scheme and noise."""
    return cifar_resnext(
        in_channels=in_channels, num_classes=num_classes, cardinality=o.cardinality, base_width=o.base_width,
        widen_factor=o.widen_factor, blocks=o.blocks, scheme=step_scheme(o.scheme), scheme_options=o.scheme_options,
        noise=o.make_noise(),
    )


register_family("resnet", ResNetOptions, resnet, "CIFAR ResNet of any valid depth and any scheme (depth=N required)")
register_family("resnext29", ResNeXtOptions, resnext29, "ResNeXt-29 (Xie et al. 2017) under any scheme")
