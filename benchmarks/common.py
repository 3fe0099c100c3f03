"""What the benchmark scripts share: the plain baselines' per-image data pipeline and test pass, device timing,
and steady-state throughput."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from resdyn.data import Split


class PerImageData(TorchDataset):
    """The tutorial pipeline: each training image is padded by 4 and randomly cropped back (and, with ``flip``,
    flipped horizontally with probability 1/2) on the CPU, one at a time, as torchvision's transforms do."""

    def __init__(self, split: Split, mean: float, std: float, train: bool, flip: bool) -> None:
        self.split, self.mean, self.std, self.train, self.flip = split, mean, std, train, flip

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.split.images[i].float() / 255
        if self.train:
            size = x.shape[-1]
            x = nn.functional.pad(x, (4, 4, 4, 4))
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            x = x[:, dy : dy + size, dx : dx + size]
            if self.flip and torch.rand(()) < 0.5:
                x = x.flip(2)
        return (x - self.mean) / self.std, self.split.labels[i]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def accuracy_on(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    """The plain loops' test pass: the fraction of ``loader``'s images ``model`` classifies correctly."""
    model.eval()
    correct = 0
    for x, y in loader:
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
    return correct / len(loader.dataset)


def steady_images_per_s(images_per_epoch: int, epoch_times_s: Sequence[float]) -> float:
    """Images per second over the epochs after the first (warm-up: allocator, cuDNN autotuning, worker start),
    or over the only epoch there is."""
    steady = epoch_times_s[1:] if len(epoch_times_s) > 1 else epoch_times_s
    return images_per_epoch * len(steady) / sum(steady)
