"""Fully-connected full and reduced residual networks of the mean-field theory (Yang & Schoenholz 2017, via G. B.
Macedo's talk, 2020).

    full (FRN)     h = W x + b,   x' = V φ(h) + x + a
    reduced (RRN)  h = W x + b,   x' = φ(h) + x

with ``φ`` tanh, ReLU or α-ReLU (``x^α`` for ``x > 0``, else 0). A classifier flattens the image (average-pooled
to ``image_size`` x ``image_size`` first, a no-op at the default 28 for MNIST-like data), projects it to
``width`` units, applies ``depth`` residual layers, and projects to the class scores.

Initialisation ``"mean-field"`` is the paper's: ``W ~ N(0, σ_w²/N)``, ``V ~ N(0, σ_v²/N)``, ``b ~ N(0, σ_b²)``,
``a ~ N(0, σ_a²)`` with ``N`` the width. The talk's comparison uses the usual schemes on ``W`` and ``V`` instead
(biases zero): He ``Var = 2 / fan_in`` and Xavier/Glorot ``Var = 2 / (fan_in + fan_out)``, normal or uniform, or
the lecture's fixed variance ``init_std²`` (``normal``, ``uniform``).
The input and output projections are ``N(0, 1/fan_in)`` with zero bias under every scheme, so the schemes
differ only in the residual layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import ACTIVATIONS as FIELD_ACTIVATIONS
from resdyn.nets.base import Network, register_family
from resdyn.nets.init import INIT_STD, WeightInit, check_std, fill_weight

# The nonlinearities the mean-field theory (resdyn.meanfield.theory) has recurrences for; the others of the table
# would train, but the curves and maps these nets exist to check could not be drawn for them.
Activation = Literal["tanh", "relu", "alpha-relu"]
Init = Literal["mean-field", WeightInit]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
INITS: tuple[str, ...] = get_args(Init)


class AlphaReLU(nn.Module):
    """``φ(x) = x^α`` for ``x > 0``, else 0 (Yang & Schoenholz's α-ReLU; α = 1 is the ReLU)."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # clamp first so that the gradient of x^α is never evaluated at x <= 0 (it would be inf or NaN there)
        return torch.where(x > 0, x.clamp_min(torch.finfo(x.dtype).tiny) ** self.alpha, torch.zeros_like(x))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def make_activation(name: str, alpha: float) -> nn.Module:
    """The activation called ``name``: α-ReLU with ``alpha``, or tanh and ReLU from the one table of nonlinearities
    (:data:`resdyn.fields.ACTIVATIONS`)."""
    if name == "alpha-relu":
        if alpha <= 0:
            raise ConfigError(f"alpha-relu needs alpha > 0, got alpha={alpha}")
        return AlphaReLU(alpha)
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return FIELD_ACTIVATIONS[name]()


class FullResidualLayer(nn.Module):
    """``x' = V φ(W x + b) + x + a``: ``w`` holds ``W, b`` and ``v`` holds ``V, a``."""

    def __init__(self, width: int, phi: nn.Module) -> None:
        super().__init__()
        self.w = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.phi = phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.v(self.phi(self.w(x))) + x


class ReducedResidualLayer(nn.Module):
    """``x' = φ(W x + b) + x``."""

    def __init__(self, width: int, phi: nn.Module) -> None:
        super().__init__()
        self.w = nn.Linear(width, width)
        self.phi = phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.phi(self.w(x)) + x


def init_linear(layer: nn.Linear, scheme: str, sigma_weight2: float, sigma_bias2: float, std: float = INIT_STD) -> None:
    """Initialise ``layer`` by ``scheme``: ``"mean-field"`` draws ``N(0, σ_w²/fan_in)`` weights and ``N(0, σ_b²)``
    biases; He, Xavier and the fixed-variance normal and uniform (``std``) draw the weights by their rule and zero
    the biases."""
    with torch.no_grad():
        if scheme == "mean-field":
            layer.weight.normal_(0.0, math.sqrt(sigma_weight2 / layer.in_features))
            layer.bias.normal_(0.0, math.sqrt(sigma_bias2))
            return
        fill_weight(layer.weight, scheme, std)
        layer.bias.zero_()


def residual_classifier(
    layers: list[nn.Module], in_features: int, width: int, num_classes: int, image_size: int
) -> Network:
    """Pool and flatten, project ``in_features -> width``, the residual layers, project ``width -> classes``."""
    stem = nn.Sequential(nn.AdaptiveAvgPool2d(image_size), nn.Flatten(), nn.Linear(in_features, width))
    head = nn.Linear(width, num_classes)
    for projection in (stem[-1], head):
        init_linear(projection, "mean-field", 1.0, 0.0)
    return Network(stem, nn.Sequential(*layers), head)


def _network(o: RRNOptions, layer: Callable[[], nn.Module], in_channels: int, num_classes: int) -> Network:
    """The classifier around ``o.depth`` residual layers made by ``layer`` (the options' types, init included,
    were checked when they were built; the sizes are checked here)."""
    if o.width < 1 or o.depth < 1 or o.image_size < 1:
        raise ConfigError(f"width, depth and image_size must be at least 1, got {o.width}, {o.depth}, {o.image_size}")
    check_std(o.init_std)
    layers = [layer() for _ in range(o.depth)]
    return residual_classifier(layers, in_channels * o.image_size**2, o.width, num_classes, o.image_size)


# -- registered builders: strings stop here -----------------------------------------------------------------


@dataclass(frozen=True)
class RRNOptions:
    """A reduced residual net ``x' = φ(W x + b) + x`` (Yang & Schoenholz 2017).

    Without the convolutional families' toolkit (:class:`~resdyn.nets.base.Toolkit`): these nets have no norm layers
    and no pooled head to drop features from, and their ``init`` is their own (the mean-field σ's, or He/Xavier on
    the residual layers only), the object of the mean-field comparison.
    """

    #: units per layer
    width: int = 256
    #: residual layers
    depth: int = 10
    activation: Activation = "tanh"
    #: the exponent of α-ReLU (used only by activation = "alpha-relu")
    alpha: float = 0.8
    #: variance of W times the width (mean-field init)
    sigma_w2: float = 1.0
    #: variance of b (mean-field init)
    sigma_b2: float = 0.0
    #: mean-field (the paper's σ's), or He / Xavier (normal or uniform), or normal / uniform of variance init_std²,
    #: on the residual layers
    init: Init = "mean-field"
    #: standard deviation of init = normal or uniform
    init_std: float = INIT_STD
    #: the image is average-pooled to image_size x image_size before it is flattened
    image_size: int = 28


@dataclass(frozen=True)
class FRNOptions(RRNOptions):
    """A full residual net ``x' = V φ(W x + b) + x + a`` (Yang & Schoenholz 2017)."""

    #: variance of V times the width (mean-field init)
    sigma_v2: float = 1.0
    #: variance of a (mean-field init)
    sigma_a2: float = 0.0


def frn(o: FRNOptions, in_channels: int, num_classes: int) -> Network:
    """Full residual net ``x' = V φ(W x + b) + x + a``, ``depth`` layers of ``width`` units."""

    def layer() -> FullResidualLayer:
        full = FullResidualLayer(o.width, make_activation(o.activation, o.alpha))
        init_linear(full.w, o.init, o.sigma_w2, o.sigma_b2, o.init_std)
        init_linear(full.v, o.init, o.sigma_v2, o.sigma_a2, o.init_std)
        return full

    return _network(o, layer, in_channels, num_classes)


def rrn(o: RRNOptions, in_channels: int, num_classes: int) -> Network:
    """Reduced residual net ``x' = φ(W x + b) + x``, ``depth`` layers of ``width`` units."""

    def layer() -> ReducedResidualLayer:
        reduced = ReducedResidualLayer(o.width, make_activation(o.activation, o.alpha))
        init_linear(reduced.w, o.init, o.sigma_w2, o.sigma_b2, o.init_std)
        return reduced

    return _network(o, layer, in_channels, num_classes)


register_family("frn", FRNOptions, frn, "fully-connected full residual net x' = V φ(Wx + b) + x + a (Yang & "
                "Schoenholz 2017), any width and depth; tanh, ReLU or α-ReLU; mean-field, He or Xavier init")
register_family("rrn", RRNOptions, rrn, "fully-connected reduced residual net x' = φ(Wx + b) + x (Yang & "
                "Schoenholz 2017), any width and depth")
