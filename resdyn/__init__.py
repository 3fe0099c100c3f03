"""resdyn: deep residual networks as discretisations of dynamical systems.

    import resdyn
    model = resdyn.build_model("resnet20", in_channels=1, num_classes=10)
    resdyn.list_models()
    result = resdyn.fit(model, (images, labels), (test_images, test_labels),
                        resdyn.Config(train=resdyn.TrainConfig(epochs=1)), out="runs/mine")
    loaded = resdyn.load_run("runs/mine", model=resdyn.build_model("resnet20", 1, 10))
    summaries, epochs = resdyn.load_runs(["runs/mine"])
"""

from importlib import import_module
from typing import Any

from resdyn.version import __version__

#: what ``resdyn`` exports, and the module each name lives in; imported on first use, so that reading run folders
#: (resdyn.runs, the report) never imports the models or the loop
_EXPORTS = {
    "build_model": "resdyn.nets",
    "list_models": "resdyn.nets",
    "fit": "resdyn.train.fit",
    "load_run": "resdyn.train.fit",
    "LoadedRun": "resdyn.train.fit",
    "Result": "resdyn.train.loop",
    "load_runs": "resdyn.runs",
    "Summary": "resdyn.runs",
    "EpochRecord": "resdyn.runs",
    "Config": "resdyn.train.config",
    "ModelConfig": "resdyn.train.config",
    "DataConfig": "resdyn.train.config",
    "OptimConfig": "resdyn.train.config",
    "ScheduleConfig": "resdyn.train.config",
    "TrainConfig": "resdyn.train.config",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'resdyn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
