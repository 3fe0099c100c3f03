"""Schemes: how the state moves through a sequence of residual fields.

Each scheme is a module that takes the fields ``f_n`` and the shortcut maps ``P_n`` (identity except where a
step changes the state's shape) and reads like its update rule. ``SCHEMES`` maps a name to the class.
"""

from resdyn.registry import Registry
from resdyn.schemes.euler import Euler
from resdyn.schemes.fractal import Fractal
from resdyn.schemes.multistep import LinearMultistep
from resdyn.schemes.ode import ODE
from resdyn.schemes.poly import Poly
from resdyn.schemes.reversible import Reversible

SCHEMES: Registry[type] = Registry("scheme")
SCHEMES.add("euler", Euler, "forward Euler: x_{n+1} = P_n x_n + f_n(x_n) (ResNet)")
SCHEMES.add("fractal", Fractal, "FractalNet: f_{C+1} = join(f_C(f_C(z)), conv(z)), joins averaging columns")
SCHEMES.add("lm", LinearMultistep, "linear two-step: u_{n+1} = (1 - k_n) u_n + k_n u_{n-1} + f_n(u_n) (LM-ResNet)")
SCHEMES.add("ode", ODE, "continuous depth: z_{n+1} = z_n + ∫_0^t1 f_n(t, z) dt by a torchdiffeq solver (ODENet)")
SCHEMES.add("poly", Poly, "PolyNet: x_{n+1} = x_n + F x_n + F F x_n, approximating backward Euler")
SCHEMES.add("reversible", Reversible, "RevNet: y1 = x1 + F_n(x2), y2 = x2 + G_n(y1); invertible, stores no activations")

__all__ = ["SCHEMES", "Euler", "Fractal", "LinearMultistep", "ODE", "Poly", "Reversible"]
