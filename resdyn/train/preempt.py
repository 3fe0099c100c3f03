"""Stopping on a signal without losing the epoch: a cluster's warning before it kills a job (SLURM sends
SIGUSR1 with ``--signal``, and SIGTERM at the time limit or on preemption), a ``torchrun`` agent stopping its
workers, or Ctrl-C.

While a training with a run folder runs, :func:`catching` turns these signals into a request that the loop
honours after the step it is taking: it writes a checkpoint of the moment (inside the epoch: the batches done,
their running sums, every RNG and the optimiser, so that ``--resume`` continues exactly, bit for bit on the CPU)
and raises :class:`Preempted`; ``resdyn train`` then exits with :data:`EXIT_PREEMPTED`. A second Ctrl-C stops at
once (KeyboardInterrupt), leaving the last checkpoint as it was.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import torch

from resdyn.distributed import World
from resdyn.errors import ResdynError

#: ``resdyn train``'s exit status after a signal stopped it with a checkpoint written: EX_TEMPFAIL of sysexits.h,
#: "a temporary failure; retry", which is what a requeued job does
EXIT_PREEMPTED = 75
#: the signals a training stops on by default: a cluster's warning and its kill, and Ctrl-C
STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")


class Preempted(ResdynError):
    """The training stopped on a signal after writing a checkpoint of the step it had reached."""

    def __init__(self, signal_name: str, step: int, epoch: int, batch: int, folder: str) -> None:
        self.signal_name, self.step, self.epoch, self.batch, self.folder = signal_name, step, epoch, batch, folder
        super().__init__(f"stopped on {signal_name} after step {step} (epoch {epoch}, batch {batch}); "
                         f"{folder}/checkpoint.pt holds that step: `resdyn train --resume {folder}` continues "
                         "exactly from it")


class StopRequest:
    """Which stop signal arrived (``name``), if any; :meth:`agreed` asks every process."""

    def __init__(self) -> None:
        self.name: str | None = None

    def agreed(self, world: World, device: torch.device) -> str | None:
        """The signal's name when any process received one, so that every process stops at the same step (a
        collective: call it at the same step on every process)."""
        if world.size == 1:
            return self.name
        # The minimum of minus the flags is minus their maximum: World reduces by sum and min.
        stopped = int(world.min_(torch.tensor(-int(self.name is not None), device=device)).item()) < 0
        return (self.name or "a signal to another process") if stopped else None


@contextmanager
def catching(names: tuple[str, ...] = STOP_SIGNALS) -> Iterator[StopRequest | None]:
    """Turn the signals ``names`` into a :class:`StopRequest` for as long as the block runs (their handlers
    restored after); yields None where handlers cannot be installed (a thread other than the main one). A second
    SIGINT raises KeyboardInterrupt at once."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    request = StopRequest()
    signals = [getattr(signal, name) for name in names if hasattr(signal, name)]

    def handle(number: int, frame: FrameType | None) -> None:
        if number == signal.SIGINT and request.name is not None:
            raise KeyboardInterrupt
        request.name = request.name or signal.Signals(number).name

    previous = {s: signal.signal(s, handle) for s in signals}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
