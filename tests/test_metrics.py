"""The hooks a model uses to talk to the loop: reported metrics and extra loss terms."""

import torch
from torch import nn

from resdyn.metrics import AddsLoss, ReportsMetrics, extra_loss, model_metrics


class Penalised(nn.Module, AddsLoss, ReportsMetrics):
    def __init__(self, value: float, name: str) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(value))
        self.name = name
        self.pending = None

    def forward(self, x):
        self.pending = self.w**2
        return x * self.w

    def extra_loss(self):
        term, self.pending = self.pending, None
        return term

    def metrics(self):
        return {self.name: self.w.item()}


def test_extra_losses_are_summed_and_reset():
    model = nn.Sequential(Penalised(2.0, "a"), nn.Identity(), Penalised(3.0, "b"))
    assert extra_loss(model) is None
    model(torch.ones(1))
    total = extra_loss(model)
    assert total.item() == 13.0
    total.backward()
    assert model[0].w.grad.item() == 4.0
    assert extra_loss(model) is None  # consumed


def test_metrics_are_merged():
    model = nn.Sequential(Penalised(2.0, "a"), Penalised(3.0, "b"))
    assert model_metrics(model) == {"a": 2.0, "b": 3.0}
    assert model_metrics(nn.Linear(2, 2)) == {}
