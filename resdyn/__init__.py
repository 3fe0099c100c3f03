"""resdyn: deep residual networks as discretisations of dynamical systems.

    import resdyn
    model = resdyn.build_model("resnet20", in_channels=1, num_classes=10)
    resdyn.list_models()
"""

from resdyn.nets import build_model, list_models
from resdyn.version import __version__

__all__ = ["build_model", "list_models", "__version__"]
