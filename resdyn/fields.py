"""Residual branches: the vector fields ``f`` that a scheme steps the state through.

A field maps the state ``x`` (N, C, H, W) to an increment of the (possibly downsampled, widened) state.
Fields know nothing of how the state moves; that is the scheme's job (``resdyn.schemes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Protocol

import torch
from torch import nn

from resdyn.errors import ConfigError


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def dropout_layer(rate: float) -> list[nn.Module]:
    """``[Dropout(rate)]``, or nothing at rate 0, so that a field without dropout keeps its layers' indices (and so
    its state_dict keys)."""
    if not 0 <= rate < 1:
        raise ConfigError(f"a dropout rate is a probability in [0, 1), got {rate}")
    return [nn.Dropout(rate)] if rate > 0 else []


# Fields take ``dropout``, a rate applied before their last convolution, as Wide ResNets do between the two
# convolutions of a basic block (Zagoruyko & Komodakis 2016, sec. 2.4).


class BasicField(nn.Sequential):
    """Post-activation basic branch of He et al. 2015: conv3x3-BN-ReLU-[dropout]-conv3x3-BN."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__(
            conv3x3(in_channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            *dropout_layer(dropout),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )


class PreActBasicField(nn.Sequential):
    """Pre-activation basic branch of He et al. 2016: BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            conv3x3(in_channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            *dropout_layer(dropout),
            conv3x3(channels, channels),
        )


class BottleneckField(nn.Sequential):
    """Post-activation bottleneck of He et al. 2015: 1x1 (reduce) - 3x3 - [dropout] - 1x1 (expand x4), BN after
    each convolution."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        out = channels * self.expansion
        super().__init__(
            conv1x1(in_channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            *dropout_layer(dropout),
            conv1x1(channels, out),
            nn.BatchNorm2d(out),
        )


class PreActBottleneckField(nn.Sequential):
    """Pre-activation bottleneck of He et al. 2016 (ResNet-164): BN-ReLU before each of 1x1, 3x3, 1x1, dropout
    before the last."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        out = channels * self.expansion
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            conv1x1(in_channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            *dropout_layer(dropout),
            conv1x1(channels, out),
        )


class ResNeXtField(nn.Sequential):
    """Aggregated residual transformation (Xie et al. 2017): 1x1 reduce, grouped 3x3 with ``cardinality``
    groups, 1x1 expand, BN after each (post-activation), dropout before the last. ``inner`` is the total width of
    the groups."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, stride: int = 1, cardinality: int = 8,
                 dropout: float = 0.0) -> None:
        super().__init__(
            conv1x1(in_channels, inner),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=cardinality, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            *dropout_layer(dropout),
            conv1x1(inner, out_channels),
            nn.BatchNorm2d(out_channels),
        )


class DenseField(nn.Sequential):
    """``s(W x + b)`` on states ``x`` of shape (N, in_features): a fully-connected layer and its nonlinearity, the
    field of the ``mlp`` family (plain, it is the layer; residual, the branch ``x + s(W x + b)``)."""

    def __init__(self, in_features: int, out_features: int, activation: MakeActivation) -> None:
        super().__init__(nn.Linear(in_features, out_features), activation())


FIELDS: dict[tuple[str, bool], type[nn.Module]] = {
    ("basic", False): BasicField,
    ("basic", True): PreActBasicField,
    ("bottleneck", False): BottleneckField,
    ("bottleneck", True): PreActBottleneckField,
}


class PadShortcut(nn.Module):
    """Option-A shortcut (He et al. 2015): subsample by ``stride`` and zero-pad the new channels; no parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"option-A shortcut cannot shrink channels ({in_channels} -> {out_channels})")
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # Pad the new channels symmetrically, as the reference CIFAR implementations do.
        before = self.extra // 2
        return nn.functional.pad(x, (0, 0, 0, 0, before, self.extra - before))


class ProjectionShortcut(nn.Sequential):
    """Option-B shortcut (He et al. 2015): 1x1 convolution with stride, then BN (post-activation only)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: bool = True) -> None:
        layers: list[nn.Module] = [conv1x1(in_channels, out_channels, stride)]
        if norm:
            layers.append(nn.BatchNorm2d(out_channels))
        super().__init__(*layers)


class PreActProjectionShortcut(nn.Sequential):
    """BN-ReLU-conv1x1 with stride: a projection shortcut with its own pre-activation (shortcut option "B-preact").

    The shortcut of the LM-ResNet authors' code (their ``Downsample``) at every stage change, behind the FIUBA 75.26
    report's table 1 (Lu et al. 2018's counts): its parameter counts need the BN (2 x in_channels parameters per
    transition) and its Mult-Adds the 1x1 convolution. Unlike option B on pre-activation fields, the projection sees a
    normalised, rectified state.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True), conv1x1(in_channels, out_channels, stride))


SHORTCUT_OPTIONS = {
    "A": "zero-padding, no parameters (He et al. 2015)",
    "B": "1x1 projection, with BN after it on post-activation fields (He et al. 2015/2016)",
    "B-preact": "BN-ReLU-1x1 projection (the LM-ResNet authors' code)",
}


def shortcut(kind: str, in_channels: int, out_channels: int, stride: int, preact: bool) -> nn.Module:
    """The map ``P`` that carries the state across a step: identity where shapes agree, else the option ``kind``
    of :data:`SHORTCUT_OPTIONS`."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_channels, out_channels, stride)
    if kind == "B":
        # He et al. 2016 put no BN on a pre-activation projection: its input is already normalised.
        return ProjectionShortcut(in_channels, out_channels, stride, norm=not preact)
    if kind == "B-preact":
        return PreActProjectionShortcut(in_channels, out_channels, stride)
    valid = "; ".join(f"{name!r} ({what})" for name, what in SHORTCUT_OPTIONS.items())
    raise ConfigError(f"unknown shortcut option {kind!r}; valid: {valid}")


# -- time-dependent fields f(t, x) for continuous-depth blocks (resdyn.schemes.ode) ---------------------------


def norm_groups(channels: int) -> int:
    """GroupNorm groups for ``channels``: torchdiffeq's ``min(32, C)`` where that divides ``C``, else ``gcd(32, C)``.

    The two agree for every width the ODENet papers use (``C <= 32`` or ``32 | C``); the fallback lets an augmented
    state (Dupont et al. 2019) have any number of channels.
    """
    groups = min(32, channels)
    return groups if channels % groups == 0 else math.gcd(32, channels)


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that normalises a channels_last CPU tensor in the contiguous layout and hands it back in
    channels_last: the CPU's GroupNorm has no fast channels_last kernel (forward and backward at 128x64x7x7 on a
    2-core AVX-512 machine: 0.8 ms contiguous, 88 ms channels_last in bf16, 17 ms in float32), which made the
    ODENet's bf16 + channels_last step ~1.8x slower than float32 instead of slightly faster. Same parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def group_norm(channels: int) -> nn.GroupNorm:
    return GroupNorm(norm_groups(channels), channels)


def layer_norm(channels: int) -> nn.GroupNorm:
    """Layer normalisation of a convolutional state (Ba et al. 2016): each sample's C x H x W normalised together,
    with a scale and shift per channel; GroupNorm with one group."""
    return nn.GroupNorm(1, channels)


def no_norm(channels: int) -> nn.Identity:
    return nn.Identity()


Norm = Literal["batch", "group", "layer", "none"]
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d, "group": group_norm, "layer": layer_norm, "none": no_norm,
}


def replace_batch_norms(net: nn.Module, make_norm: Callable[[int], nn.Module]) -> None:
    """Put ``make_norm(channels)`` in place of every ``BatchNorm2d`` of ``net``: in its fields, shortcuts, stem and
    head alike, whichever scheme and noise built them.

    A network is built with BatchNorm, as the papers' are, and converted, as PyTorch converts to SyncBatchNorm: the
    fields and shortcuts keep one constructor. ``no_norm`` leaves the convolutions without a bias, as they were.
    """
    for name, child in net.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(net, name, make_norm(child.num_features))
        else:
            replace_batch_norms(child, make_norm)


class ConcatConv2d(nn.Module):
    """``conv([t, x])``: a convolution that sees the time ``t`` as one extra constant input channel.

    The time conditioning of Chen et al. 2018's code (torchdiffeq ``examples/odenet_mnist.py``) and Gładzik 2019
    (sec. 4.1.4: "input planes = 65"). The time channel comes first, as there, so weights load across implementations.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        time = torch.ones_like(x[:, :1]) * t
        return self.conv(torch.cat([time, x], dim=1))


Activation = Literal["relu", "sigmoid", "tanh", "leaky-relu", "elu", "gelu", "silu", "softplus"]


class MakeActivation(Protocol):
    """A nonlinearity's constructor, ``make(inplace)``: ``inplace=True`` asks for one that may overwrite its input,
    which a caller asks for only where the input is a fresh tensor nothing else reads (a norm's output)."""

    def __call__(self, inplace: bool = False) -> nn.Module: ...


def keeps_input(module: Callable[[], nn.Module]) -> MakeActivation:
    """``module`` as a :class:`MakeActivation` that never works in place: the backward of sigmoid, tanh, GELU, SiLU
    and softplus needs their input (or PyTorch has no in-place form), and an in-place ELU or leaky ReLU saves
    little."""

    def make(inplace: bool = False) -> nn.Module:
        return module()

    return make


# Every nonlinearity a family may take, by name: the one table (Fuentes-Pineda's lecture, 2023, and Nielsen's
# ch. 5 compare saturating and non-saturating ones). PyTorch's defaults: leaky ReLU's slope 0.01, ELU's alpha 1,
# exact (erf) GELU, softplus with beta 1. ReLU alone works in place where asked (its backward needs only its
# output's sign), as the reference CIFAR ResNets and torchdiffeq's ODEfunc put it after a norm: every saved
# allocation counts when an ODE solver calls the field tens of times per batch.
ACTIVATIONS: dict[str, MakeActivation] = {
    "relu": nn.ReLU,
    "sigmoid": keeps_input(nn.Sigmoid),
    "tanh": keeps_input(nn.Tanh),
    "leaky-relu": keeps_input(nn.LeakyReLU),
    "elu": keeps_input(nn.ELU),
    "gelu": keeps_input(nn.GELU),
    "silu": keeps_input(nn.SiLU),
    "softplus": keeps_input(nn.Softplus),
}


def replace_activations(net: nn.Module, make: MakeActivation) -> None:
    """Put ``make(inplace)`` in place of every ``nn.ReLU`` of ``net`` (in its fields, shortcuts, stem, scheme and
    head alike), ``inplace`` as the ReLU it replaces.

    The convolutional families are built with ReLU, as the papers' are, and converted, as their norms are
    (:func:`replace_batch_norms`): the fields and shortcuts keep one constructor, and a sigmoid network is sigmoid
    everywhere the ResNet is ReLU.
    """
    for name, child in net.named_children():
        if isinstance(child, nn.ReLU):
            setattr(net, name, make(inplace=child.inplace))
        else:
            replace_activations(child, make)


class TimeConvField(nn.Module):
    """``f(t, x) = GN(conv_t(s(GN(conv_t(s(GN(x)))))))``: the ODE block's field of Gładzik 2019 (sec. 4.1.4).

    A full pre-activation residual branch (He et al. 2016) with GroupNorm, whose 3x3 convolutions take ``t`` as an
    extra channel (:class:`ConcatConv2d`), ending in a third GroupNorm: torchdiffeq's ``ODEfunc``. GroupNorm, not
    BatchNorm, because the solver evaluates the field at many states per batch and BatchNorm's running statistics
    would mix them; GroupNorm also normalises each sample alone, so the field acts on samples independently.
    75,392 parameters at 64 channels.

    ``activation`` makes ``s``: ReLU as Gładzik 2019, or any of :data:`ACTIVATIONS`, e.g. a smooth one (softplus,
    tanh, SiLU). ReLU's kinks make ``f``
    only piecewise smooth, which an adaptive solver's error estimate does not see, so its tolerances control the
    adjoint's gradient poorly; a smooth ``s`` restores that control (README, "ODENet field activation").
    """

    def __init__(self, channels: int, activation: MakeActivation = nn.ReLU) -> None:
        super().__init__()
        self.norm1 = group_norm(channels)
        self.conv1 = ConcatConv2d(channels, channels)
        self.norm2 = group_norm(channels)
        self.conv2 = ConcatConv2d(channels, channels)
        self.norm3 = group_norm(channels)
        self.activation = activation(inplace=True)  # on GroupNorm's fresh output

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(t, self.activation(self.norm1(x)))
        out = self.conv2(t, self.activation(self.norm2(out)))
        return self.norm3(out)


class PreActGroupNormField(nn.Sequential):
    """GN-ReLU-conv3x3-GN-ReLU-conv3x3: the residual block of Gładzik 2019's ResNet baseline (sec. 4.1.3).

    torchdiffeq's ``ResBlock``: the pre-activation basic branch with GroupNorm, convolutions without bias; it has no
    time input and no closing norm, unlike :class:`TimeConvField`. 73,984 parameters at 64 channels.
    ``activation`` makes both nonlinearities (ReLU as Gładzik 2019), so that the baseline can use the ODE field's.
    """

    def __init__(self, channels: int, activation: MakeActivation = nn.ReLU) -> None:
        super().__init__(
            group_norm(channels),
            activation(inplace=True),
            conv3x3(channels, channels),
            group_norm(channels),
            activation(inplace=True),
            conv3x3(channels, channels),
        )


class MLPField(nn.Module):
    """``f(t, x) = W_L s(... s(W_1 [t, x] + b_1) ...) + b_L`` on states ``x`` of shape (N, dim).

    For low-dimensional demonstrations, e.g. Dupont et al. 2019's 1-D map ``g(1) = -1, g(-1) = 1``, which no ODE on
    the line can represent (its trajectories cannot cross) and an augmented one can. As in their ``ODEFunc``, time
    enters the first layer only (``time_dependent=False`` drops it: an autonomous field).
    """

    def __init__(self, dim: int, hidden: int = 32, layers: int = 2, time_dependent: bool = True,
                 activation: MakeActivation = nn.ReLU) -> None:
        super().__init__()
        self.time_dependent = time_dependent
        widths = [dim + int(time_dependent)] + [hidden] * layers
        stack: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            stack += [nn.Linear(width_in, width_out), activation()]
        stack.append(nn.Linear(widths[-1], dim))
        self.net = nn.Sequential(*stack)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.time_dependent:
            x = torch.cat([torch.ones_like(x[:, :1]) * t, x], dim=1)
        return self.net(x)
