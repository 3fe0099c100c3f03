"""Started by ``torchrun`` in the data-parallel tests: train a config into a folder, and optionally end the
processes right after an epoch's checkpoint (as a kill would, but at a known moment).

    torchrun --nproc_per_node=2 tests/train/ddp_worker.py OUT OVERRIDES_JSON KILL_AFTER_EPOCH start|resume
"""

import json
import sys

from resdyn.distributed import exit_process
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import train
from resdyn.train.progress import Progress

KILLED = 3


def main() -> None:
    out, overrides, kill_after, mode = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

    def die(epoch, record):
        if epoch == kill_after:
            sys.exit(KILLED)

    train(apply_overrides(Config(), overrides), out, resume=mode == "resume", progress=Progress("off"),
          on_epoch_end=die if kill_after else None)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        exit_process(e.code)
    exit_process(0)
