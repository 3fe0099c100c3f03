"""ODE blocks: the ResNet correspondence made exact, closed-form solutions, adjoint = backprop, NFE as torchdiffeq
counts it, failures that say what to do, Finlay et al.'s regularisers, augmentation, mixed precision."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from resdyn.errors import ConfigError
from resdyn.fields import MLPField, TimeConvField
from resdyn.schemes import Euler
from resdyn.schemes.ode import ADAPTIVE_METHODS, FIXED_METHODS, ODE, ODEBlock, ODESolverError, Regularisation, Solver

f64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class LinearField(nn.Module):
    """``f(t, z) = A z``: solution ``z(t) = expm(tA) z(0)``."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t, z):
        return z @ self.a.T


class Oscillating(nn.Module):
    """``f(t, z) = w cos(wt) z``: solution ``z(t) = exp(sin(wt)) z(0)``; fast enough to make dopri5 reject steps."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=f64))

    def forward(self, t, z):
        return self.w * torch.cos(self.w * t) * z


class Squared(nn.Module):
    """``f(t, z) = z^2``: from z(0) = 1 the solution 1 / (1 - t) blows up at t = 1."""

    def forward(self, t, z):
        return z * z


class StepCounter:
    """A torchdiffeq right-hand side that counts what torchdiffeq reports through its step callbacks."""

    def __init__(self, f):
        self.f, self.accepted, self.rejected = f, 0, 0
        self.adjoint_accepted, self.adjoint_rejected = 0, 0

    def __call__(self, t, z):
        return self.f(t, z)

    def callback_accept_step(self, t0, y0, dt):
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt):
        self.rejected += 1

    def callback_accept_step_adjoint(self, t0, y0, dt):
        self.adjoint_accepted += 1

    def callback_reject_step_adjoint(self, t0, y0, dt):
        self.adjoint_rejected += 1


def random_matrix(d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, d, generator=g, dtype=f64) / math.sqrt(d)


def grads(module: nn.Module, x: torch.Tensor, loss_of) -> list[torch.Tensor]:
    module.zero_grad()
    x = x.detach().requires_grad_()
    loss_of(module(x)).backward()
    return [x.grad] + [p.grad for p in module.parameters()]


# -- the ResNet / ODE correspondence ------------------------------------------------------------------------


class AtTime(nn.Module):
    """The residual branch ``h f(t_n, x)`` of one forward-Euler step of the shared field ``f``."""

    def __init__(self, field: nn.Module, t: float, h: float) -> None:
        super().__init__()
        self.field, self.t, self.h = field, t, h

    def forward(self, x):
        return self.h * self.field(torch.tensor(self.t, dtype=x.dtype), x)


@pytest.mark.parametrize("n", [1, 4, 49])  # 49: where torchdiffeq's own step_size grid would add a sliver step
def test_euler_solver_equals_a_weight_tied_resnet(n):
    torch.manual_seed(0)
    field = TimeConvField(8).double()
    x = torch.randn(2, 8, 5, 5, dtype=f64)
    block = ODEBlock(field, Solver("euler", step_size=1 / n))
    resnet = Euler([AtTime(field, k / n, 1 / n) for k in range(n)], [nn.Identity() for _ in range(n)])
    torch.testing.assert_close(block(x), resnet(x), rtol=1e-12, atol=1e-12)
    assert block.metrics()["nfe_forward_mean"] == n


# -- accuracy against closed forms --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_adaptive_solvers_match_the_matrix_exponential(method):
    a = random_matrix(4)
    z0 = torch.randn(3, 4, dtype=f64, generator=torch.Generator().manual_seed(1))
    t1 = 1.5
    exact = z0 @ torch.linalg.matrix_exp(t1 * a).T
    errors = {}
    for tol in (1e-4, 1e-8):
        block = ODEBlock(LinearField(a), Solver(method, rtol=tol, atol=tol, max_steps=100_000), t1=t1)
        errors[tol] = (block(z0) - exact).abs().max().item()
    # The control is local, per step; over the interval the low-order pairs accumulate more (fehlberg2, a 1(2)
    # pair, ends about 200 tolerances off here, dopri5 within 0.05 of one), so the bound is a multiple of tol.
    for tol, error in errors.items():
        assert error < 500 * tol
    assert errors[1e-8] < errors[1e-4] / 10


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("midpoint", 2), ("heun3", 3), ("rk4", 4)])
def test_fixed_step_solvers_converge_at_their_order(method, order):
    a = random_matrix(3)
    z0 = torch.ones(1, 3, dtype=f64)
    exact = z0 @ torch.linalg.matrix_exp(a).T
    errors = [(ODEBlock(LinearField(a), Solver(method, step_size=h))(z0) - exact).norm().item()
              for h in (1 / 16, 1 / 32)]
    assert math.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.25)


# -- gradients ------------------------------------------------------------------------------------------------


def relative_gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """``||a - b|| / ||b||`` over all gradients together (a conv bias before GroupNorm has gradient 0)."""
    a_flat, b_flat = torch.cat([g.flatten() for g in a]), torch.cat([g.flatten() for g in b])
    return ((a_flat - b_flat).norm() / b_flat.norm()).item()


def sin_loss(z):
    return (z.sin() * torch.linspace(-1, 1, z.numel(), dtype=z.dtype).view_as(z)).sum()


@pytest.mark.parametrize("seminorm", [False, True])
def test_adjoint_gradients_match_backprop_through_the_solver(seminorm):
    torch.manual_seed(0)
    f, x = MLPField(3, hidden=16, activation=nn.Softplus).double(), torch.randn(5, 3, dtype=f64)
    tight = {"rtol": 1e-10, "atol": 1e-10}
    direct = grads(ODEBlock(f, Solver(**tight)), x, sin_loss)
    adjoint = grads(ODEBlock(f, Solver(**tight, adjoint=True, seminorm=seminorm)), x, sin_loss)
    for g_adjoint, g_direct in zip(adjoint, direct, strict=True):  # input first, then every parameter
        torch.testing.assert_close(g_adjoint, g_direct, rtol=1e-5, atol=1e-8)


def test_adjoint_gradients_of_the_conv_field_converge_to_backprop():
    # The adjoint solves a second ODE backward; its gradient approaches the exact gradient of the discrete forward
    # solve as the tolerance tightens. ReLU's kinks make that approach slow (about 3% at 1e-5, 0.6% at 1e-7), so
    # the smooth field above carries the tight check and this one checks the conv field's trend.
    torch.manual_seed(0)
    f, x = TimeConvField(4).double(), torch.randn(2, 4, 3, 3, dtype=f64)
    gaps = []
    for tol in (1e-5, 1e-7):
        direct = grads(ODEBlock(f, Solver(rtol=tol, atol=tol)), x, sin_loss)
        adjoint = grads(ODEBlock(f, Solver(rtol=tol, atol=tol, adjoint=True, seminorm=True)), x, sin_loss)
        gaps.append(relative_gap(adjoint, direct))
    assert gaps[1] < gaps[0] / 3 and gaps[1] < 0.01


# -- function evaluations -------------------------------------------------------------------------------------


def test_dopri5_nfe_is_two_plus_six_per_step_attempted():
    # torchdiffeq (rk_common.py): RKAdaptiveStepsizeODESolver._before_integrate evaluates f(t0, y0) and
    # _select_initial_step one more f (2 evaluations); each _adaptive_step, accepted or rejected, runs
    # _runge_kutta_step, which evaluates f once per row of the tableau's alpha: 6 for dopri5, whose seventh stage
    # is the next step's first (FSAL).
    z0 = torch.ones(3, 2, dtype=f64)
    t = torch.tensor([0.0, 1.0], dtype=f64)
    reference = StepCounter(Oscillating(20.0))
    odeint(reference, z0, t, rtol=1e-3, atol=1e-3, method="dopri5")
    assert reference.rejected > 0  # the rule must hold for rejected steps too

    block = ODEBlock(Oscillating(20.0)).train()
    block(z0.requires_grad_()).sum().backward()
    m = block.metrics()
    assert m["nfe_forward_mean"] == 2 + 6 * (reference.accepted + reference.rejected)
    # Backprop through the solver: one VJP per evaluation the output depends on, so none for rejected steps.
    assert m["nfe_backward_mean"] == m["nfe_forward_mean"] - 6 * reference.rejected


def test_adjoint_backward_nfe_counts_the_adjoint_solve():
    z0 = torch.ones(3, 2, dtype=f64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=f64)
    field = Oscillating(20.0)
    reference = StepCounter(field)
    odeint_adjoint(reference, z0, t, rtol=1e-3, atol=1e-3, method="dopri5",
                   adjoint_params=tuple(field.parameters()))[-1].sum().backward()

    block = ODEBlock(field, Solver(adjoint=True)).train()
    block(z0).sum().backward()
    m = block.metrics()
    assert m["nfe_backward_mean"] == 2 + 6 * (reference.adjoint_accepted + reference.adjoint_rejected)


def test_metrics_are_per_batch_statistics_since_the_last_call():
    block = ODEBlock(LinearField(random_matrix(3)))
    x = torch.randn(2, 3, dtype=f64)
    block.train()
    for scale in (1e-3, 10.0):  # where atol no longer dominates the error control, the solver takes more steps
        block(scale * x).sum().backward()
    block.eval()
    with torch.no_grad():
        block(x)
    first = block.metrics()
    assert set(first) == {f"nfe_{k}_{s}" for k in ("forward", "backward", "eval") for s in ("mean", "max")}
    assert first["nfe_forward_max"] > first["nfe_forward_mean"] >= 2
    assert first["nfe_eval_max"] == first["nfe_eval_mean"]
    assert block.metrics() == {}  # reset by the call

    block.train()
    block(x)  # a forward pass whose backward never runs records no backward NFE
    block.metrics()
    with torch.no_grad():
        block(x)
    assert "nfe_backward_mean" not in block.metrics()


def test_several_blocks_report_under_their_index():
    torch.manual_seed(0)
    scheme = ODE([TimeConvField(4), TimeConvField(4)])
    scheme(torch.randn(2, 4, 4, 4)).sum().backward()
    keys = set(scheme.blocks[0].metrics()) | set(scheme.blocks[1].metrics())
    assert {"ode0_nfe_forward_mean", "ode1_nfe_forward_mean", "ode1_nfe_backward_max"} <= keys
    assert ODE([TimeConvField(4)]).blocks[0].metric_prefix == ""


# -- failures -------------------------------------------------------------------------------------------------


def test_a_blow_up_stops_at_max_steps_with_advice():
    block = ODEBlock(Squared(), Solver(max_steps=20), t1=2.0, index=3)
    with pytest.raises(ODESolverError, match=r"ODE block 3 \(dopri5, rtol 0.001, atol 0.001, backprop\), forward "
                                             r"solve: more than max_steps=20 steps") as e:
        block(torch.ones(2, 3))
    assert isinstance(e.value, RuntimeError)
    for advice in ("looser tolerance", "fixed-step solver", "kinetic=", "smaller learning rate"):
        assert advice in str(e.value)


def test_a_blow_up_without_a_step_limit_stops_when_dt_underflows():
    block = ODEBlock(Squared(), Solver(max_steps=None), t1=2.0)
    with pytest.raises(ODESolverError, match=r"step size underflowed .* at t = 1 "):
        block(torch.ones(2, 3))


def test_an_adjoint_backward_failure_is_reported_too():
    block = ODEBlock(LinearField(random_matrix(3)), Solver(adjoint=True)).train()
    z = block(torch.ones(2, 3, dtype=f64, requires_grad=True))
    with pytest.raises(ODESolverError, match=r"adjoint \(backward\) solve: the state became non-finite"):
        (z.sum() * math.nan).backward()


def test_solver_options_are_checked_where_they_enter():
    with pytest.raises(ValueError, match="unknown ODE solver 'dopri6'.*dopri5.*rk4"):
        Solver("dopri6")
    with pytest.raises(ValueError, match="rk4 needs a step_size"):
        Solver("rk4")
    with pytest.raises(ValueError, match="dopri5 chooses its own steps"):
        Solver(step_size=0.1)
    with pytest.raises(ValueError, match="set adjoint=True"):
        Solver(seminorm=True)
    with pytest.raises(ValueError, match="kinetic=-1"):
        Regularisation(kinetic=-1)


# -- regularised dynamics (Finlay et al. 2020) -----------------------------------------------------------------


def test_kinetic_energy_matches_its_closed_form():
    # A = Q diag(l) Q^T symmetric, z(t) = Q diag(exp(l t)) c with c = Q^T z(0), so
    # ∫_0^T ||A z||^2 dt = sum_j c_j^2 l_j^2 ∫_0^T exp(2 l_j t) dt = sum_j c_j^2 l_j (exp(2 l_j T) - 1) / 2.
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=f64))
    lam = torch.tensor([-1.0, -0.3, 0.5], dtype=f64)
    a = q @ torch.diag(lam) @ q.T
    z0 = torch.randn(4, 3, generator=g, dtype=f64)
    t1, weight = 1.3, 0.7
    c = z0 @ q
    exact = (c**2 * lam * (torch.exp(2 * lam * t1) - 1) / 2).sum(1) / 3  # / d: a mean over the state's elements

    block = ODEBlock(LinearField(a), Solver(rtol=1e-10, atol=1e-10, max_steps=100_000), t1=t1,
                     regularisation=Regularisation(kinetic=weight)).train()
    z = block(z0)
    torch.testing.assert_close(z, z0 @ torch.linalg.matrix_exp(t1 * a).T, rtol=1e-8, atol=1e-8)
    penalty = block.extra_loss()
    torch.testing.assert_close(penalty, weight * exact.mean(), rtol=1e-7, atol=0)
    assert block.extra_loss() is None  # taken once
    (z.sum() + penalty).backward()
    assert torch.isfinite(block.field.a.grad).all() and block.field.a.grad.abs().sum() > 0
    assert block.metrics()["kinetic_mean"] == pytest.approx(exact.mean().item(), rel=1e-7)

    block.eval()
    block(z0)
    assert block.extra_loss() is None  # evaluation solves the plain ODE


@pytest.mark.parametrize("probe", ["gaussian", "rademacher"])
def test_jacobian_penalty_is_an_unbiased_estimate_of_the_frobenius_norm(probe):
    # For f = A z, ||∇f||_F^2 = ||A||_F^2 at every t: the integral over [0, T] is T ||A||_F^2 / d.
    torch.manual_seed(0)
    a = random_matrix(3)
    t1 = 0.5
    block = ODEBlock(LinearField(a), t1=t1, regularisation=Regularisation(jacobian=1.0, probe=probe)).train()
    block(torch.randn(20_000, 3, dtype=f64))
    estimate = block.extra_loss().item()
    assert estimate == pytest.approx(t1 * (a**2).sum().item() / 3, rel=0.03)


def test_regularised_gradients_agree_between_adjoint_and_backprop():
    torch.manual_seed(0)
    f = MLPField(2, hidden=8, activation=nn.Softplus).double()
    x = torch.randn(4, 2, dtype=f64)
    reg = Regularisation(kinetic=0.5, jacobian=0.3)
    tight = {"rtol": 1e-10, "atol": 1e-10, "max_steps": 100_000}

    def run(adjoint):
        block = ODEBlock(f, Solver(**tight, adjoint=adjoint), regularisation=reg).train()
        torch.manual_seed(1)  # the same Hutchinson probe in both runs
        return grads(block, x, lambda z: z.pow(2).sum() + block.extra_loss())

    for g_adjoint, g_direct in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(g_adjoint, g_direct, rtol=1e-5, atol=1e-8)


# -- augmentation and precision ---------------------------------------------------------------------------


def test_augmented_ode_learns_the_crossing_map_a_plain_one_cannot():
    # Dupont et al. 2019: g(1) = -1, g(-1) = 1. A flow on the line preserves order (trajectories cannot cross),
    # so any plain 1-D ODE has z(1; -1) < z(1; 1) and a squared error of at least 1 per point on average ...
    x, target = torch.tensor([[1.0], [-1.0]]), torch.tensor([[-1.0], [1.0]])
    for seed in range(5):
        torch.manual_seed(seed)
        z = ODE([MLPField(1, hidden=16)])(x)
        assert z[1] < z[0]
    # ... while one ODE in two dimensions, started from [x, 0], learns it.
    torch.manual_seed(0)
    ode = ODE([MLPField(2, hidden=16)], augment=1)
    optimizer = torch.optim.Adam(ode.parameters(), lr=1e-2)
    for _ in range(200):
        z = ode(x)
        assert z.shape == (2, 2)
        loss = (z[:, :1] - target).pow(2).mean()
        if loss < 0.01:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss < 0.01


class DtypeRecorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.state_dtypes, self.compute_dtypes = set(), set()

    def forward(self, t, z):
        out = self.linear(z)
        self.state_dtypes.add(z.dtype)
        self.compute_dtypes.add(out.dtype)
        return out


@pytest.mark.parametrize("adjoint", [False, True])
def test_field_runs_in_bf16_while_the_solver_state_stays_float32(adjoint):
    field = DtypeRecorder()
    block = ODEBlock(field, Solver(adjoint=adjoint)).train()
    x = torch.randn(3, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = block(x.to(torch.bfloat16))  # as a bf16 activation would arrive from an autocast stem
    assert z.dtype == torch.float32
    z.sum().backward()  # the adjoint's backward solve runs outside the autocast region: the block restores it
    assert field.state_dtypes == {torch.float32} and field.compute_dtypes == {torch.bfloat16}
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_tight_tolerances_stop_at_the_memory_budget_not_the_machines():
    """Backprop through the solver keeps every accepted step's activations: at rtol = atol = 1e-12 in float32
    the steps shrink until each is accepted and the graph grows by a step's activations each time, which
    max_steps (here 10,000) does not bound. A 2 MiB budget stops it after a few steps, with the advice."""
    torch.manual_seed(0)
    block = ODEBlock(TimeConvField(8), Solver(rtol=1e-12, atol=1e-12, max_steps=10_000, max_memory=2 / 1024))
    x = torch.randn(4, 8, 6, 6)
    with pytest.raises(ODESolverError, match=r"kept (\d|\.)+ GiB for backward after \d+ steps.*max_memory") as e:
        block.train()(x)
    assert "adjoint=True" in str(e.value)
    steps = int(str(e.value).split(" steps")[0].rsplit(" ", 1)[1])
    assert 0 < steps < 100
    # Without a graph (evaluation) nothing is kept, and the adjoint method keeps nothing across steps either.
    with torch.no_grad():
        assert ODEBlock(TimeConvField(8), Solver(max_memory=2 / 1024))(x).shape == x.shape


def test_memory_budget_defaults_to_a_quarter_of_the_machine():
    import os

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert Solver().memory_budget(torch.device("cpu")) == ram // 4
    assert Solver(max_memory=1.5).memory_budget(torch.device("cpu")) == int(1.5 * 2**30)
    with pytest.raises(ValueError, match="max_memory is in GiB and must be positive"):
        Solver(max_memory=0)


class Decay:
    """``dz/dt = -z`` that counts torchdiffeq's ``callback_step`` calls (the hook resdyn's step checks use)."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, t, z):
        return -z

    def callback_step(self, t0, y0, dt):
        self.steps += 1


@pytest.mark.parametrize("method", ADAPTIVE_METHODS + FIXED_METHODS)
def test_every_accepted_method_is_one_torchdiffeq_solves_with(method):
    """The method names resdyn keeps are ones torchdiffeq's public odeint accepts: each solves z' = -z to its
    tolerance (with resdyn's options: its equal-step grid for the fixed-step ones) and calls callback_step before
    its steps, which the max_steps / max_memory / finiteness checks rely on."""
    solver = Solver(method) if method in ADAPTIVE_METHODS else Solver(method, step_size=1 / 16)
    assert solver.adaptive == (method in ADAPTIVE_METHODS)
    f = Decay()
    z0 = torch.ones(3, dtype=f64)
    t = torch.tensor([0.0, 1.0], dtype=f64)
    z1 = odeint(f, z0, t, rtol=1e-8, atol=1e-8, method=method, options=solver.options(1.0))[-1]
    # At h = 1/16 Euler errs by 3% and the self-starting explicit Adams by 0.3%; the adaptive ones, holding the
    # local error to 1e-8, come within 1e-4 globally (bosh3: 1.2e-5).
    torch.testing.assert_close(z1, z0 * math.exp(-1), rtol=1e-4 if solver.adaptive else 5e-2, atol=0)
    assert f.steps >= 1


def test_torchdiffeq_refuses_a_method_it_does_not_have():
    """What the test above relies on: odeint does check the name (so a renamed method would fail there)."""
    with pytest.raises(ValueError, match="Invalid method"):
        odeint(Decay(), torch.ones(1), torch.tensor([0.0, 1.0]), method="no-such-method")
    with pytest.raises(ConfigError, match="unknown ODE solver 'scipy_solver'; adaptive: dopri8, dopri5"):
        Solver("scipy_solver")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident set size from /proc")
def test_training_through_the_solver_keeps_no_memory_from_step_to_step():
    """The memory budget's saved-tensor hook once returned the saved tensors themselves: an output that holds its
    own grad_fn is a reference cycle through the autograd graph, and the ODENet leaked ~65 MiB a step (the
    demo's ODENet reached 15 GiB in 3 epochs). Resident memory must stay flat over steps."""
    import re

    from resdyn import build_model

    def rss_mib() -> float:
        return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024

    torch.manual_seed(0)
    model = build_model("odenet", 1, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    for step in range(16):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 3:
            settled = rss_mib()
    assert rss_mib() - settled < 96, "memory grew by ~30 MiB a step: a leak through the autograd graph"
