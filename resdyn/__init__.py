"""resdyn: deep residual networks as discretisations of dynamical systems.

    import resdyn
    model = resdyn.build_model("resnet20", in_channels=1, num_classes=10)
    resdyn.list_models()
"""

from typing import Any

from resdyn.version import __version__

__all__ = ["build_model", "list_models", "__version__"]


def __getattr__(name: str) -> Any:
    # The models load on first use, so that reading run folders (resdyn.runs, the report) never imports them.
    if name in ("build_model", "list_models"):
        from resdyn import nets

        return getattr(nets, name)
    raise AttributeError(f"module 'resdyn' has no attribute {name!r}")
