"""Started by ``torchrun --max-restarts 1`` in the elastic test: ``resdyn train`` with its command-line arguments,
except that on the first attempt rank 1 kills itself (SIGKILL: no checkpoint, no goodbye) when it sets the
learning rate of step ``KILL_AT_STEP``, inside an epoch.

    torchrun --nproc_per_node=2 --max-restarts=1 tests/train/elastic_worker.py KILL_AT_STEP TRAIN-ARGS...
"""

import os
import signal
import sys

from resdyn.cli import main
from resdyn.distributed import exit_process
from resdyn.train import loop


def kill_rank_1_at(step: int) -> None:
    real, calls = loop._set_lr, [0]

    def set_lr(optimizer, lr):
        calls[0] += 1
        if calls[0] == step:
            os.kill(os.getpid(), signal.SIGKILL)
        real(optimizer, lr)

    loop._set_lr = set_lr


if __name__ == "__main__":
    if os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        kill_rank_1_at(int(sys.argv[1]))
    exit_process(main(["train", *sys.argv[2:]]))
