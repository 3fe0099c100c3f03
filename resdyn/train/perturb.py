"""Noise added while training, as regularisers (G. Fuentes-Pineda, "Entrenamiento de redes profundas", lecture,
2023: "adición de ruido a entradas, salidas y/o parámetros"): Gaussian noise on a training batch's inputs
(``data.input_noise``) and on the weights for each forward and backward pass (``optim.weight_noise``), and label
smoothing, noise on the targets, in torch's convention or the lecture's (``train.label_smoothing_convention``).

Both are zero-mean, so the expected noisy input is the clean input and the expected noisy weights the clean weights;
evaluation never sees either. Draws come from torch's generator on the device, which the checkpoint keeps, so a
resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resdyn.train.config import TrainConfig


def input_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """``x + std * N(0, 1)`` elementwise, in the units the model sees (after the loader's normalisation); ``x``
    itself when ``std`` is 0."""
    return x + std * torch.randn_like(x) if std else x


class WeightNoise:
    """Gaussian noise on ``weights`` for one training step::

        noise.add()       # w <- w + std * N(0, 1), the clean w kept
        loss.backward()   # the gradient at the noisy point
        noise.remove()    # w <- the kept clean w, bit for bit, before the optimiser's update

    The update is then ``w - lr * grad L(w + noise)``: the noise perturbs where the gradient is taken, never the
    weights that are kept, so nothing accumulates and the checkpoint holds clean weights.
    """

    def __init__(self, weights: list[nn.Parameter], std: float) -> None:
        self.weights, self.std = weights, std
        self._clean: list[torch.Tensor] | None = None

    @torch.no_grad()
    def add(self) -> None:
        self._clean = [w.detach().clone() for w in self.weights]
        for w in self.weights:
            w.add_(torch.randn_like(w), alpha=self.std)

    @torch.no_grad()
    def remove(self) -> None:
        assert self._clean is not None, "remove() follows add()"
        for w, clean in zip(self.weights, self._clean, strict=True):
            w.copy_(clean)
        self._clean = None


class LectureSmoothing(nn.Module):
    """Cross-entropy against targets smoothed as the lecture does: ``1 - eps`` on the true class and ``eps/(k-1)`` on
    each of the ``k - 1`` others (k = 5, eps = 0.01: 0.99 and 0.0025). torch's ``label_smoothing`` (Szegedy et al.
    2016) puts ``eps/k`` on every class, the true one included (``1 - eps + eps/k`` there); the lecture's ``eps`` is
    torch's ``eps * k / (k-1)``, which is what this passes torch, ``k`` read off the logits."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = logits.shape[1]
        return F.cross_entropy(logits, target, label_smoothing=self.eps * k / (k - 1))


def smoothed_loss(tc: TrainConfig) -> nn.Module:
    """The training loss: cross-entropy with ``train.label_smoothing`` in ``train.label_smoothing_convention``."""
    if tc.label_smoothing_convention == "lecture" and tc.label_smoothing:
        return LectureSmoothing(tc.label_smoothing)
    return nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
