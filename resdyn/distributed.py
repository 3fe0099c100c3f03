"""Data-parallel training across processes, as ``torchrun`` launches them: who this process is, the sums and
means across processes, and BatchNorm that normalises with the statistics of every process's images.

One process (no ``torchrun``) is a :class:`World` of size 1, where every operation here is the identity, so
the training loop has one code path.
"""

from __future__ import annotations

import atexit
import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from resdyn.errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the processes training one run: ``rank`` of ``size``; ``local_rank`` picks
    the GPU on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder and prints; the others only train."""
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place."""
        if self.size > 1:
            dist.all_reduce(tensor)
        return tensor

    def min_(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` reduced to its minimum over the processes, in place."""
        if self.size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return tensor

    def mean_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """A model's reported numbers (e.g. an ODE block's NFE over this process's images) averaged over the
        processes; anything that is not a number or a list of numbers is rank 0's."""
        if self.size == 1:
            return metrics
        numeric = {k: v for k, v in metrics.items() if _is_numbers(v)}
        flat = [float(x) for v in numeric.values() for x in (v if isinstance(v, list) else [v])]
        total = self.sum_(torch.tensor(flat, dtype=torch.float64)).div_(self.size).tolist()
        merged = dict(metrics)
        for key, value in numeric.items():
            n = len(value) if isinstance(value, list) else 1
            merged[key] = total[:n] if isinstance(value, list) else total[0]
            total = total[n:]
        return merged

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order."""
        if self.size == 1:
            return [obj]
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _is_numbers(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _leave_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_process(code: int | str | None) -> NoReturn:
    """End this process as ``raise SystemExit(code)`` would (None: status 0; a message: printed, status 1).

    A process in a process group (one that joined a world) runs Python's clean-up (the atexit functions, which
    leave the group; buffered output) and then ends at once (``os._exit``), without the C++ static destructors,
    among which gloo's threads could still abort a finished rank ("terminate called without an active
    exception", SIGABRT) on a loaded machine even after the group was left. Any other process exits as usual.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise SystemExit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def join_world(device_type: str) -> World:
    """Join the processes ``torchrun`` started (its RANK, WORLD_SIZE and LOCAL_RANK variables), with NCCL between
    GPUs and gloo otherwise; without ``torchrun`` this process is the whole world."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run one process (plain `resdyn train`)")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=30))
        # A process group still alive at interpreter exit can abort the process ("terminate called without an
        # active exception", SIGABRT from gloo's threads), failing a run that had finished: leave it first.
        atexit.register(_leave_world)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class _AllReduce(torch.autograd.Function):
    """A sum over processes that gradients flow through: the gradient of each process's part is the sum of
    every process's gradient of the total."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole global batch, every process's images.

    ``torch.nn.SyncBatchNorm`` refuses CPU tensors; this is the same normalisation on any device, with the
    per-channel sums and counts, then the sums of squared deviations from the global mean, summed over processes
    by a differentiable all-reduce (so the gradient flows through the shared statistics, as it does through one
    process's batch statistics).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, 2, 3]
        count = torch.full((1,), x.numel() // channels, dtype=x.dtype, device=x.device)
        totals = _AllReduce.apply(torch.cat([x.sum(dims), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        # Two passes: E[x^2] - E[x]^2 cancels catastrophically in float32 for a channel whose mean dwarfs its spread.
        centred = x - mean.view(1, channels, 1, 1)
        var = _AllReduce.apply((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked.item()
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * n / (n - 1), factor)
        shape = (1, channels, 1, 1)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d replaced by a :class:`SyncBatchNorm` holding the same parameters and
    statistics."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, SyncBatchNorm):
        synced = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats, device=module.weight.device if module.affine else None)
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, sync_batchnorm(child))
    return module
