"""The zoo of schemes: empirical order of convergence, linear stability against known results, tableau checks."""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from resdyn.errors import ConfigError
from resdyn.schemes import SCHEMES, stability_region
from resdyn.schemes.runge_kutta import RungeKutta, tableau

T = 1.0
U0 = torch.tensor([[0.2], [0.5], [0.7]], dtype=torch.float64)


def logistic(u):
    return u * (1 - u)


def exact(t: float) -> torch.Tensor:
    """The logistic equation's solution ``u(t) = 1 / (1 + (1/u0 - 1) e^{-t})``; defined for negative t too."""
    return 1 / (1 + (1 / U0 - 1) * math.exp(-t))


class Scaled(nn.Module):
    """The field ``scale * g(u)`` of a network whose fields absorb the step size."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, u):
        return self.scale * logistic(u)


@dataclass(frozen=True)
class OrderSetup:
    """How a scheme meets the logistic equation in the order test: the multiple of ``h`` its field absorbs, its
    options, exact starting values (the solution, or its field values, before t = 0) and coefficients to fix."""

    scale: float = 1.0
    options: dict = field(default_factory=dict)
    start: Callable[[float], object] = lambda h: None
    prepare: Callable[[nn.Module], None] = lambda scheme: None


def _fix_lm_k(scheme: nn.Module) -> None:
    with torch.no_grad():
        scheme.k.fill_(0.5)


# One row per registered scheme: a scheme added to SCHEMES without a row fails the order test below.
ORDER_SETUPS = {
    "euler": OrderSetup(), "midpoint": OrderSetup(), "heun": OrderSetup(), "rk4": OrderSetup(),
    # PolyNet's F ~ h g approximates backward Euler.
    "poly": OrderSetup(),
    "ab2": OrderSetup(start=lambda h: [h * logistic(exact(-j * h)) for j in (1, 2)]),
    "ab3": OrderSetup(start=lambda h: [h * logistic(exact(-j * h)) for j in (1, 2)]),
    # Leapfrog's field absorbs 2h: u_{n+1} = u_{n-1} + 2h g(u_n).
    "leapfrog": OrderSetup(scale=2.0, start=lambda h: exact(-h)),
    "momentum": OrderSetup(options={"gamma": 0.5}),
    # The plain network is inconsistent (order 0): the state collapses to h g(u), an O(1) error at every h.
    "plain": OrderSetup(),
    # u_{n+1} = (1 - k) u_n + k u_{n-1} + (1 + k) h g(u_n): consistent (ρ'(1) = σ(1) = 1 + k) for any fixed k;
    # it starts itself with an Euler step of the same field (no k there, so a step of 1.5 h), an O(h) error in the
    # starting value that leaves the global order 1.
    "lm": OrderSetup(scale=1.5, prepare=_fix_lm_k),
}


@pytest.mark.parametrize("name", SCHEMES.names())
def test_empirical_order_of_convergence(name):
    """Regression of log error on log h over h = 1/8 ... 1/64 gives the scheme's declared order (within 0.15);
    order 0 (the plain network) is an error that does not shrink."""
    cls = SCHEMES.get(name)
    assert name in ORDER_SETUPS, f"scheme {name!r} has no order test: add its OrderSetup to ORDER_SETUPS"
    assert isinstance(cls.order, int) and cls.order >= 0, f"{cls.__name__} declares no order of convergence"
    setup = ORDER_SETUPS[name]
    hs = [2.0**-k for k in range(3, 7)]
    errors = []
    for h in hs:
        steps = round(T / h)
        scheme = cls([Scaled(setup.scale * h)] * steps, [nn.Identity()] * steps, **setup.options).double()
        setup.prepare(scheme)
        with torch.no_grad():
            u = scheme(U0.clone(), setup.start(h))
        errors.append((u - exact(T)).abs().max().item())
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert slope == pytest.approx(cls.order, abs=0.15), errors


def test_euler_stability_region_is_the_unit_disc_around_minus_one():
    re, im = np.meshgrid(np.linspace(-3, 1, 41), np.linspace(-2, 2, 41))
    z = re + 1j * im
    assert np.allclose(stability_region("euler", z), np.abs(1 + z))


def real_interval(name: str, **coefficients: float) -> float:
    """The left end of the stability interval on the negative real axis."""
    x = np.linspace(-4, 0, 40_001)
    stable = stability_region(name, x, **coefficients) <= 1 + 1e-9
    return x[np.argmax(stable)]


@pytest.mark.parametrize(
    ("name", "left"),
    # Hairer & Wanner II, Fig. IV.2.1 (RK), Fig. V.1.1 (Adams-Bashforth: -1, -6/11).
    [("euler", -2.0), ("midpoint", -2.0), ("heun", -2.0), ("rk4", -2.785), ("ab2", -1.0), ("ab3", -6 / 11)],
)
def test_stability_intervals_on_the_real_axis(name, left):
    assert real_interval(name) == pytest.approx(left, abs=2e-3)


def test_rk_stability_function_is_the_truncated_exponential():
    z = np.array([0.3 + 0.2j, -1.5, 0.7j])
    assert np.allclose(stability_region("rk4", z), np.abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24))


def test_leapfrog_is_stable_only_on_the_imaginary_segment():
    assert np.all(stability_region("leapfrog", 1j * np.linspace(-2, 2, 101)) <= 1 + 1e-6)
    assert stability_region("leapfrog", np.array([-0.01, 0.01, 2.01j])).min() > 1


def test_lm_with_k_zero_is_euler_and_momentum_zero_too():
    z = np.array([-0.5 + 0.3j, -1.9])
    assert np.allclose(stability_region("lm", z, k=0.0), np.abs(1 + z))
    assert np.allclose(stability_region("momentum", z, gamma=0.0), np.abs(1 + z))


def test_schemes_without_a_stability_polynomial_say_so():
    with pytest.raises(ValueError, match="no linear stability polynomial"):
        stability_region("ode", np.array([0j]))


def test_a_tableau_checks_its_order_conditions():
    with pytest.raises(ValueError, match=r"order-2 conditions b.c = 1/2"):
        tableau(["0", "1"], [["0", "0"], ["1", "0"]], ["1", "0"], order=2)
    with pytest.raises(ValueError, match="strictly lower triangular"):
        tableau(["1"], [["1"]], ["1"], order=1)
    with pytest.raises(ValueError, match="sum of its row"):
        tableau(["0", "1/2"], [["0", "0"], ["1", "0"]], ["0", "1"], order=1)


def test_any_tableau_makes_a_scheme():
    class Ralston(RungeKutta):
        tableau = tableau(["0", "2/3"], [["0", "0"], ["2/3", "0"]], ["1/4", "3/4"], order=2)

    assert Ralston.order == 2 and Ralston.evaluations == 2
    assert Ralston.tableau.b == (Fraction(1, 4), Fraction(3, 4))
    f = Scaled(0.1)
    u = U0.clone()
    k1 = f(u)
    assert torch.allclose(Ralston([f], [nn.Identity()])(u), u + k1 / 4 + 3 / 4 * f(u + 2 / 3 * k1))


def test_stage_fields_give_each_stage_its_own_field():
    fields = [nn.ModuleList([Scaled(0.1), Scaled(0.2), Scaled(0.3), Scaled(0.4)])]
    rk4 = SCHEMES.get("rk4")(fields, [nn.Identity()], stage_fields=True)
    u = U0.clone()
    k1 = 0.1 * logistic(u)
    k2 = 0.2 * logistic(u + k1 / 2)
    k3 = 0.3 * logistic(u + k2 / 2)
    k4 = 0.4 * logistic(u + k3)
    assert torch.allclose(rk4(u), u + (k1 + 2 * k2 + 2 * k3 + k4) / 6)


def test_scheme_options_are_typed():
    with pytest.raises(ConfigError, match="unknown key.*convention.*valid keys: stage_fields"):
        SCHEMES.get("rk4")([Scaled(0.1)], [nn.Identity()], convention="code")
    with pytest.raises(ConfigError, match="gamma must be in"):
        SCHEMES.get("momentum")([Scaled(0.1)], [nn.Identity()], gamma=1.5)
