"""The shape every network shares: stem -> body (a scheme over residual fields) -> head."""

from __future__ import annotations

import torch
from torch import nn

from resdyn.registry import Registry

MODELS: Registry = Registry("model")


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
    """Optional BN-ReLU (pre-activation nets end un-normalised), global average pool, linear classifier."""

    def __init__(self, channels: int, num_classes: int, preact: bool) -> None:
        layers: list[nn.Module] = [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)] if preact else []
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
        super().__init__(*layers)
