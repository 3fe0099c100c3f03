"""The shape every network shares (stem -> body (a scheme over residual fields) -> head), and the model registry.

A model *family* is a typed options dataclass and a builder that takes it (``FAMILIES``); every model name
(``MODELS``) is a family with some of its options fixed: the family itself (``resnet``, depth free) or an alias
of the literal table in :mod:`resdyn.nets.aliases` (``lm-resnet56``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from resdyn.fields import ACTIVATIONS, NORMS, Activation, Norm, dropout_layer, replace_activations, replace_batch_norms
from resdyn.nets.init import INIT_STD, WeightInit, check_std, init_network
from resdyn.registry import Registry


@dataclass(frozen=True)
class Family:
    """A family of networks: ``build(options, in_channels, num_classes)`` with ``options`` an instance of
    ``options`` (a dataclass, validated by :func:`resdyn.typed.build_table`)."""

    options: type
    build: Callable[[Any, int, int], nn.Module]


@dataclass(frozen=True)
class ModelName:
    """What a model name means: a family and the options the name fixes."""

    family: str
    fixed: dict[str, Any] = field(default_factory=dict)


FAMILIES: Registry[Family] = Registry("model family")
MODELS: Registry[ModelName] = Registry("model")


def required(option: dataclasses.Field) -> bool:
    """Whether an options dataclass field has no default (a family's ``depth``, which its names fix)."""
    return option.default is dataclasses.MISSING and option.default_factory is dataclasses.MISSING


def register_family(name: str, options: type, build: Callable[[Any, int, int], nn.Module], help: str) -> None:
    """Add the family ``name`` (also a model name, nothing fixed)."""
    FAMILIES.add(name, Family(options, build), help)
    MODELS.add(name, ModelName(name), help)


class Network(nn.Module):
    """``head(body(stem(x)))``; the body is a scheme stepping the state through its fields."""

    def __init__(self, stem: nn.Module, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.body = body
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


class ClassifierHead(nn.Sequential):
    """Optional BN-ReLU (pre-activation nets end un-normalised), global average pool, optional dropout, linear
    classifier.

    ``dropout`` (a rate; 0: none, and no layer, so the classifier keeps its state_dict key) drops pooled features
    before the linear layer, as Srivastava et al. 2014 drop a fully-connected layer's inputs.
    """

    def __init__(self, channels: int, num_classes: int, preact: bool, dropout: float = 0.0) -> None:
        # Not in place: without the BN (norm="none") this ReLU's input is the body's output, which a scheme may
        # keep for its backward pass (a reversible one reconstructs from it).
        layers: list[nn.Module] = [nn.BatchNorm2d(channels), nn.ReLU()] if preact else []
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), *dropout_layer(dropout), nn.Linear(channels, num_classes)]
        super().__init__(*layers)


@dataclass(frozen=True, kw_only=True)
class Toolkit:
    """The regularisation, initialisation and activation options of G. Fuentes-Pineda's lecture (2023), shared by
    every family built of convolutions, BatchNorm, ReLU and :class:`ClassifierHead` (resnet, resnext29, revnet).

    A family's options dataclass inherits these fields; its builder makes the head with :meth:`head`, hands
    ``field_dropout`` to its fields (a rate before each field's last convolution) and ends with :meth:`finish`.
    Families that keep them out say why in their options' docstring (odenet, fractalnet, frn/rrn).
    """

    #: dropout rate on the pooled features before the classifier (0: none)
    dropout: float = 0.0
    #: dropout rate inside every field, before its last convolution (Wide ResNet's place; 0: none)
    field_dropout: float = 0.0
    #: weights: default (the family's reference init: He-normal fan-out convolutions, PyTorch's classifier), or
    #: he-normal, he-uniform, xavier-normal, xavier-uniform (Glorot), normal or uniform (variance init_std²) on
    #: every convolution and the classifier
    init: Literal["default", WeightInit] = "default"
    #: standard deviation of init = normal or uniform (the lecture's "variance 0.01" is 0.1)
    init_std: float = INIT_STD
    #: normalisation layer everywhere BatchNorm stands (fields, shortcuts, stem, head): batch, group, layer or none
    norm: Norm = "batch"
    #: nonlinearity everywhere ReLU stands (fields, after each step, stem, head): relu, sigmoid, tanh, leaky-relu,
    #: elu, gelu, silu or softplus
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        check_std(self.init_std)

    def head(self, channels: int, num_classes: int, preact: bool) -> ClassifierHead:
        """The classifier head with the ``dropout`` rate."""
        return ClassifierHead(channels, num_classes, preact, self.dropout)

    def finish(self, net: nn.Module, default_init: Callable[[nn.Module], None]) -> nn.Module:
        """``net`` with ``norm`` in place of every BatchNorm and ``activation`` of every ReLU, then initialised by
        ``init`` (``default_init`` for "default"). Norm and activation are converted after building, as PyTorch
        converts to SyncBatchNorm, so fields, shortcuts, schemes and noise wrappers need no parameter for them."""
        if self.norm != "batch":
            replace_batch_norms(net, NORMS[self.norm])
        if self.activation != "relu":
            replace_activations(net, ACTIVATIONS[self.activation])
        if self.init == "default":
            default_init(net)
        else:
            init_network(net, self.init, self.init_std)
        return net


def init_he(net: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit-scale norms, as the reference CIFAR ResNet implementations do."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
