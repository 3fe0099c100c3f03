"""Schemes: how the state moves through a sequence of residual fields.

Each scheme is a module that takes the fields ``f_n`` and the shortcut maps ``P_n`` (identity except where a
step changes the state's shape) and reads like its update rule. ``SCHEMES`` maps a name to the class.
"""

from resdyn.registry import Registry
from resdyn.schemes.euler import Euler

SCHEMES: Registry[type] = Registry("scheme")
SCHEMES.add("euler", Euler, "forward Euler: x_{n+1} = P_n x_n + f_n(x_n) (ResNet)")

__all__ = ["SCHEMES", "Euler"]
