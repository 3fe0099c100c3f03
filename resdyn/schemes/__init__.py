"""Schemes: how the state moves through a sequence of residual fields, and the bodies that are not schemes.

Two registries, each holding one kind of thing:

* ``SCHEMES``: the step-by-step schemes, subclasses of :class:`Scheme` (``scheme(fields, shortcuts, activation,
  **options)``, one abstract ``step``, an ``order`` and a stability polynomial); what ``scheme="rk4"`` looks up.
* ``ARCHITECTURES``: RevNet's coupling, FractalNet's joins and the ODE block, which build bodies of their own with
  their own models (ARCHITECTURE.md says why); each entry says why it cannot step residual fields.

:func:`step_scheme` is the one lookup of a scheme by name: an architecture's name is refused with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from resdyn.errors import ConfigError
from resdyn.registry import Registry
from resdyn.schemes.adams import AB2, AB3, AdamsBashforth
from resdyn.schemes.base import Scheme, stability_region
from resdyn.schemes.euler import Euler
from resdyn.schemes.fractal import Fractal
from resdyn.schemes.leapfrog import Leapfrog
from resdyn.schemes.momentum import Momentum
from resdyn.schemes.multistep import LinearMultistep
from resdyn.schemes.ode import ODE
from resdyn.schemes.plain import Plain
from resdyn.schemes.poly import Poly
from resdyn.schemes.reversible import Reversible
from resdyn.schemes.runge_kutta import RK4, ButcherTableau, Heun, Midpoint, RungeKutta

SCHEMES: Registry[type[Scheme]] = Registry("scheme")
SCHEMES.add("euler", Euler, "forward Euler: x_{n+1} = P_n x_n + f_n(x_n) (ResNet), order 1")
SCHEMES.add("lm", LinearMultistep, "linear two-step: u_{n+1} = (1 - k_n) u_n + k_n u_{n-1} + f_n(u_n) (LM-ResNet)")
SCHEMES.add("poly", Poly, "PolyNet: x_{n+1} = x_n + F x_n + F F x_n, approximating backward Euler")
SCHEMES.add("ab2", AB2, "Adams-Bashforth 2: x_{n+1} = x_n + 3/2 f(x_n) - 1/2 f(x_{n-1}), order 2")
SCHEMES.add("ab3", AB3, "Adams-Bashforth 3: x_n + 23/12 f_n - 16/12 f_{n-1} + 5/12 f_{n-2}, order 3")
SCHEMES.add("midpoint", Midpoint, "explicit midpoint Runge-Kutta: x_{n+1} = x_n + f(x_n + f(x_n)/2), order 2")
SCHEMES.add("heun", Heun, "Heun's Runge-Kutta: x_{n+1} = x_n + (k1 + f(x_n + k1))/2, order 2")
SCHEMES.add("rk4", RK4, "classical Runge-Kutta: x_{n+1} = x_n + (k1 + 2k2 + 2k3 + k4)/6, order 4")
SCHEMES.add("leapfrog", Leapfrog, "leapfrog: u_{n+1} = u_{n-1} + f_n(u_n), order 2, reversible (stores no activations)")
SCHEMES.add("plain", Plain, "no skip: x_{n+1} = f_n(x_n), the plain network of He et al. 2015; no shortcuts, order 0")
SCHEMES.add("momentum", Momentum, "heavy ball: v_{n+1} = g v_n + (1-g) f_n(x_n), x_{n+1} = x_n + v_{n+1}, order 1")


@dataclass(frozen=True)
class Architecture:
    """A body that is not a step scheme over residual fields: its module class, and why it cannot step the
    fields of a residual layout (naming the models that use it)."""

    body: type[nn.Module]
    why_not_a_scheme: str


ARCHITECTURES: Registry[Architecture] = Registry("architecture")
ARCHITECTURES.add(
    "fractal",
    Architecture(Fractal, "its fields are the columns of fractal blocks joined by averaging, not residual branches: "
                          "use the model fractalnet20 or fractalnet40"),
    "FractalNet: f_{C+1} = join(f_C(f_C(z)), conv(z)), joins averaging columns")
ARCHITECTURES.add(
    "ode",
    Architecture(ODE, "it integrates time-dependent fields f(t, x) (GroupNorm, not BatchNorm, which would mix the "
                      "solver's evaluations) with an adaptive solver: use the model odenet"),
    "continuous depth: z_{n+1} = z_n + ∫_0^t1 f_n(t, z) dt by a torchdiffeq solver (ODENet)")
ARCHITECTURES.add(
    "reversible",
    Architecture(Reversible, "its coupling steps two half-width fields F, G per block: use revnet38/110/164, or "
                             "scheme=leapfrog for a reversible scheme on these fields"),
    "RevNet: y1 = x1 + F_n(x2), y2 = x2 + G_n(y1); invertible, stores no activations")


def step_scheme(name: str) -> type[Scheme]:
    """The step-by-step scheme registered as ``name``. An architecture's name is refused with the reason and the
    models to use; any other unknown name lists the valid scheme names."""
    if name in ARCHITECTURES:
        why = ARCHITECTURES.get(name).why_not_a_scheme
        raise ConfigError(f"scheme {name!r} cannot run on residual fields with shortcuts: {why}")
    return SCHEMES.get(name)


def scheme_name(model: nn.Module) -> str | None:
    """The registered name of the scheme or architecture that moves ``model``'s state (its first), or None if it
    has none (a run's summary records it)."""
    names = {SCHEMES.get(n): n for n in SCHEMES.names()}
    names.update({ARCHITECTURES.get(n).body: n for n in ARCHITECTURES.names()})
    return next((names[type(m)] for m in model.modules() if type(m) in names), None)


__all__ = ["AB2", "AB3", "ARCHITECTURES", "RK4", "SCHEMES", "AdamsBashforth", "Architecture", "ButcherTableau",
           "Euler", "Fractal", "Heun", "Leapfrog", "LinearMultistep", "Midpoint", "Momentum", "ODE", "Plain", "Poly",
           "Reversible", "RungeKutta", "Scheme", "scheme_name", "stability_region", "step_scheme"]
