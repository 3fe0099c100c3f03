"""Residual branches: the vector fields ``f`` that a scheme steps the state through.

A field maps the state ``x`` (N, C, H, W) to an increment of the (possibly downsampled, widened) state.
Fields know nothing of how the state moves; that is the scheme's job (``resdyn.schemes``).
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicField(nn.Sequential):
    """Post-activation basic branch of He et al. 2015: conv3x3-BN-ReLU-conv3x3-BN."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__(
            conv3x3(in_channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )


class PreActBasicField(nn.Sequential):
    """Pre-activation basic branch of He et al. 2016: BN-ReLU-conv3x3-BN-ReLU-conv3x3."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            conv3x3(in_channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
        )


class BottleneckField(nn.Sequential):
    """Post-activation bottleneck of He et al. 2015: 1x1 (reduce) - 3x3 - 1x1 (expand x4), BN after each."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        out = channels * self.expansion
        super().__init__(
            conv1x1(in_channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels, stride),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv1x1(channels, out),
            nn.BatchNorm2d(out),
        )


class PreActBottleneckField(nn.Sequential):
    """Pre-activation bottleneck of He et al. 2016 (ResNet-164): BN-ReLU before each of 1x1, 3x3, 1x1."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
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
            conv1x1(channels, out),
        )


class ResNeXtField(nn.Sequential):
    """Aggregated residual transformation (Xie et al. 2017): 1x1 reduce, grouped 3x3 with ``cardinality``
    groups, 1x1 expand, BN after each (post-activation). ``inner`` is the total width of the groups."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, stride: int = 1, cardinality: int = 8) -> None:
        super().__init__(
            conv1x1(in_channels, inner),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=cardinality, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            conv1x1(inner, out_channels),
            nn.BatchNorm2d(out_channels),
        )


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
            raise ValueError(f"option-A shortcut cannot shrink channels ({in_channels} -> {out_channels})")
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


def shortcut(kind: str, in_channels: int, out_channels: int, stride: int, preact: bool) -> nn.Module:
    """The map ``P`` that carries the state across a step: identity where shapes agree, else option A or B."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(in_channels, out_channels, stride)
    if kind == "B":
        # He et al. 2016 put no BN on a pre-activation projection: its input is already normalised.
        return ProjectionShortcut(in_channels, out_channels, stride, norm=not preact)
    raise ValueError(f"unknown shortcut option {kind!r}; valid: 'A' (zero-padding) or 'B' (projection)")
