"""Continuous depth: ODENet (Chen, Rubanova, Bettencourt, Duvenaud 2018, "Neural Ordinary Differential Equations").

A residual block ``x_{n+1} = x_n + f(x_n)`` is one forward-Euler step of ``dz/dt = f(t, z)``. An ODE block takes
the limit of infinitely many, infinitely small steps of one weight-tied field and solves

    z(t1) = z(0) + ∫_0^{t1} f(t, z(t)) dt

with a numerical solver from torchdiffeq: an adaptive Runge-Kutta method that picks its own steps to meet a tolerance
(dopri5 by default), or a fixed-step method. "Depth" becomes the number of function evaluations (NFE), which Gładzik
2019 (engineering thesis, AGH Kraków) calls "created hidden layers". Gradients come either by backpropagating through
the solver's operations or by the adjoint method, which solves a second ODE backward in time and stores no activations
(Chen et al. 2018, sec. 2; with the seminorm of Kidger, Chen, Lyons 2021, "Hey, that's not an ODE", for its error
control).

Three additions from later work:

* Augmented neural ODEs (Dupont, Doucet, Teh 2019): the state gets ``augment`` extra zero channels, ``z(0) = [x, 0]``,
  so trajectories, which can never cross in the original space, can pass each other in the larger one.
* Regularised dynamics (Finlay, Jacobsen, Nurbekyan, Oberman 2020, "How to train your neural ODE"): penalties on
  the kinetic energy ``∫ ||f||^2 dt`` and the Jacobian's Frobenius norm ``∫ ||∇f||_F^2 dt`` make the learned
  dynamics simple, and so cheap to solve.
* Mixed precision: the field may run under bf16 autocast while the solver's state, and so its error control,
  stays float32.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from resdyn.errors import ConfigError, ResdynError
from resdyn.metrics import AddsLoss, ReportsMetrics

# The torchdiffeq methods resdyn accepts, by the public name ``odeint(method=...)`` takes (torchdiffeq 0.2.x;
# tests/schemes/test_ode.py solves a small problem with each, so a torchdiffeq that drops or renames one fails
# there). Adaptive methods control their step by an error estimate and call ``callback_step`` before each attempt,
# which the step, memory and finiteness checks need; fixed-grid ones take the equal steps of ``step_size``. Left
# out: ``scipy_solver`` (cannot backpropagate) and ``fixed_adams`` (a second name of ``implicit_adams``).
ADAPTIVE_METHODS = ("dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_METHODS = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")
GIB = 2**30
Probe = Literal["gaussian", "rademacher"]
State = torch.Tensor | tuple[torch.Tensor, ...]


class ODESolverError(ResdynError, RuntimeError):
    """The solver could not integrate an ODE block: its step size underflowed, it took more than ``max_steps``
    steps, backprop through it kept more than ``max_memory`` for backward, or the state became non-finite. The
    message names the block, the solver and what to try."""

    def __init__(self, block: int, solver: Solver, direction: str, problem: str) -> None:
        self.block, self.solver, self.direction = block, solver, direction
        super().__init__(
            f"ODE block {block} ({solver.describe()}), {direction} solve: {problem}. The dynamics have become "
            "too stiff or have blown up for this solver. Try a looser tolerance (larger rtol/atol) or a larger "
            "max_steps; a fixed-step solver (e.g. method='rk4', step_size=0.25); the adjoint method (adjoint=True), "
            "whose memory does not grow with the steps; regularising the dynamics "
            "(kinetic=0.01, jacobian=0.01); or a smaller learning rate or gradient clipping (optim.lr, "
            "train.grad_clip)."
        )


@dataclass(frozen=True)
class Solver:
    """How an ODE block integrates: a torchdiffeq ``method`` and its controls.

    Adaptive methods (dopri5, ...) keep the local error estimate below ``atol + rtol * |z|``; fixed-grid methods
    (euler, rk4, ...) split the interval into ``n = ceil(t1 / step_size)`` equal steps. (Equal steps rather than
    torchdiffeq's own ``step_size`` option, whose grid can gain a sliver of an extra step to round-off, e.g.
    ``step_size=1/49``.) ``max_steps`` bounds the steps (accepted and rejected) of each solve, forward and adjoint,
    so that a blow-up stops with :class:`ODESolverError` instead of running on. It does not bound memory: backprop
    through the solver keeps every accepted step's field activations for backward (~56 MiB a dopri5 step for
    Gładzik 2019's ODENet on 128 images, so 1000 steps would want ~55 GiB), so ``max_memory`` (GiB, per block and
    batch; None: a quarter of the device's memory, RAM on the CPU) bounds the bytes the solve has kept, counted as
    autograd saves them, and stops it with the same error long before the machine runs out. ``adjoint`` computes
    gradients by the adjoint method (``torchdiffeq.odeint_adjoint``); ``seminorm`` leaves the parameters' adjoint
    out of the backward solve's error control (Kidger et al. 2021), which usually takes fewer steps for the same
    gradients.
    """

    #: a torchdiffeq method: adaptive dopri5, dopri8, bosh3, ...; fixed-step euler, rk4, ... (need step_size)
    method: str = "dopri5"
    #: relative tolerance of the adaptive methods
    rtol: float = 1e-3
    #: absolute tolerance of the adaptive methods
    atol: float = 1e-3
    #: step of the fixed-step methods (equal steps over [0, t1])
    step_size: float | None = None
    #: steps (accepted and rejected) allowed per solve, forward and adjoint (None: no limit)
    max_steps: int | None = 1000
    #: gradients by the adjoint method (memory constant in the steps) instead of backprop through the solver
    adjoint: bool = False
    #: leave the parameters out of the adjoint solve's error control (Kidger et al. 2021)
    seminorm: bool = False
    #: GiB backprop through the solver may keep, per block and batch (None: a quarter of the device's memory)
    max_memory: float | None = None

    def __post_init__(self) -> None:
        if self.method not in ADAPTIVE_METHODS + FIXED_METHODS:
            raise ConfigError(f"unknown ODE solver {self.method!r}; adaptive: {', '.join(ADAPTIVE_METHODS)}; "
                             f"fixed-step (need step_size): {', '.join(FIXED_METHODS)}")
        if self.adaptive and self.step_size is not None:
            raise ConfigError(f"{self.method} chooses its own steps; step_size is for the fixed-step solvers "
                             f"({', '.join(FIXED_METHODS)})")
        if not self.adaptive and (self.step_size is None or self.step_size <= 0):
            raise ConfigError(f"the fixed-step solver {self.method} needs a step_size > 0, e.g. step_size=0.25")
        if self.rtol <= 0 or self.atol <= 0:
            raise ConfigError(f"rtol and atol must be positive, got rtol={self.rtol}, atol={self.atol}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1 (or None for no limit), got {self.max_steps}")
        if self.max_memory is not None and self.max_memory <= 0:
            raise ConfigError(f"max_memory is in GiB and must be positive (or None for a quarter of the device's "
                              f"memory), got {self.max_memory}")
        if self.seminorm and not self.adjoint:
            raise ConfigError("seminorm controls the adjoint's backward solve; set adjoint=True as well")

    @property
    def adaptive(self) -> bool:
        return self.method in ADAPTIVE_METHODS

    def steps(self, t1: float) -> int:
        """Fixed-grid solvers: the number of equal steps over ``[0, t1]``, ``ceil(t1 / step_size)``."""
        assert self.step_size is not None
        ratio = t1 / self.step_size
        # t1 / (t1 / n) can land a hair above n in floating point; that is still n steps.
        return max(1, round(ratio) if math.isclose(ratio, round(ratio), rel_tol=1e-9) else math.ceil(ratio))

    def options(self, t1: float) -> dict[str, Any]:
        """torchdiffeq's ``options`` for a solve over ``[0, t1]``."""
        if self.adaptive:
            return {}
        n = self.steps(t1)

        def grid(func: Any, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            # t is [0, t1], or its mirror image in the adjoint's backward solve: any two end points work.
            return torch.linspace(float(t[0]), float(t[-1]), n + 1, dtype=t.dtype, device=t.device)

        return {"grid_constructor": grid}

    def memory_budget(self, device: torch.device) -> int:
        """Bytes a backprop solve may keep for backward on ``device``: ``max_memory`` GiB, or a quarter of the
        device's memory (the machine's RAM on the CPU)."""
        if self.max_memory is not None:
            return int(self.max_memory * GIB)
        if device.type == "cuda":
            return torch.cuda.get_device_properties(device).total_memory // 4
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4

    def describe(self) -> str:
        control = f"rtol {self.rtol:g}, atol {self.atol:g}" if self.adaptive else f"step_size {self.step_size:g}"
        gradient = "adjoint with seminorm" if self.seminorm else "adjoint" if self.adjoint else "backprop"
        return f"{self.method}, {control}, {gradient}"


@dataclass(frozen=True)
class Regularisation:
    """Penalties on the dynamics (Finlay et al. 2020, eqs. 3-4), added to the training loss:

        kinetic * E_x ∫_0^{t1} ||f(t, z)||^2 / d dt  +  jacobian * E_x ∫_0^{t1} ||∇_z f(t, z)||_F^2 / d dt

    ``d`` is the number of elements of one sample's state: like Finlay et al.'s code (``quadratic_cost``,
    ``divergence_approx`` in ``cfinlay/ffjord-rnode``) the norms are means over the state's elements, so a weight
    means the same at any width. (Their kinetic term also has a factor 1/2; fold it into ``kinetic``.)
    ``||∇f||_F^2`` is Hutchinson's estimate ``||ε^T ∇f||^2`` with one probe ``ε`` per sample, ``E[εε^T] = I``,
    drawn once per solve (``probe``: standard Gaussian or Rademacher); ``ε^T ∇f`` is one vector-Jacobian product.
    Both integrals are accumulated by augmenting the ODE's state, so the solver integrates them with ``z``.
    """

    kinetic: float = 0.0
    jacobian: float = 0.0
    probe: Probe = "gaussian"

    def __post_init__(self) -> None:
        if self.kinetic < 0 or self.jacobian < 0:
            raise ConfigError(f"regularisation weights must be >= 0, got kinetic={self.kinetic}, "
                             f"jacobian={self.jacobian}")
        if self.probe not in ("gaussian", "rademacher"):
            raise ConfigError(f"unknown Hutchinson probe {self.probe!r}; valid: 'gaussian', 'rademacher'")

    @property
    def active(self) -> bool:
        return self.kinetic > 0 or self.jacobian > 0


class _Dynamics:
    """The right-hand side torchdiffeq integrates for one forward pass of a block (and its adjoint backward).

    It evaluates the field at the solver's float32 (or float64) state under the forward pass's autocast and memory
    format, casts the result back to the state's dtype so the error control never sees bf16, counts evaluations,
    appends the regularisers' integrands, and checks every step (``callback_step``, called by torchdiffeq before
    each attempted step, accepted or rejected) for underflow, blow-up and the step limit.
    """

    def __init__(self, block: ODEBlock, z0: torch.Tensor, regularise: bool) -> None:
        self.block = block
        self.field = block.field
        self.regularise = regularise
        self.jacobian = regularise and block.regularisation.jacobian > 0
        self.probe = _draw_probe(z0, block.regularisation.probe) if self.jacobian else None
        device = z0.device.type
        self.autocast = torch.is_autocast_enabled(device)
        self.autocast_args = (device, torch.get_autocast_dtype(device))
        # The solver's own arithmetic returns contiguous (NCHW) states; hand the field the layout it was given.
        self.channels_last = (
            z0.dim() == 4 and z0.is_contiguous(memory_format=torch.channels_last) and not z0.is_contiguous()
        )
        self.counts_vjps = not block.solver.adjoint
        self.forward_solve = True
        self.nfe_forward = 0
        self.nfe_backward = 0
        self.steps = 0
        # Bytes autograd keeps for backward from this solve (each storage once), when it backpropagates through it.
        self.memory_budget = block.solver.memory_budget(z0.device)
        self.saved: dict[int, int] = {}
        self.saved_bytes = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        """A saved-tensor hook: count what the solve keeps for backward (rejected steps' tensors too, which are
        freed again: the count is an upper bound)."""
        ptr, size = t.untyped_storage().data_ptr(), t.numel() * t.element_size()
        if size > self.saved.get(ptr, 0):
            self.saved_bytes += size - self.saved.get(ptr, 0)
            self.saved[ptr] = size
        # Detached: a saved output that held on to its own grad_fn would be a reference cycle through the
        # autograd graph, which Python's collector cannot see (measured: ~65 MiB leaked per ODENet step).
        return t.detach()

    def __call__(self, t: torch.Tensor, state: State) -> State:
        if self.forward_solve:
            self.nfe_forward += 1
        else:
            self.nfe_backward += 1  # only the adjoint's backward solve evaluates f later: one f and one VJP each
        z = state[0] if self.regularise else state
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad() if self.jacobian else nullcontext():
            if self.jacobian and not (create_graph and z.requires_grad):
                # ∇f needs z as a graph leaf; only when the outer pass builds a graph must z stay connected to it.
                z = z.detach().requires_grad_()
            f = self.evaluate(t, z)
            if not self.regularise:
                return self.counted(f)
            kinetic = f.pow(2).flatten(1).mean(1)
            if self.jacobian:
                (eps_jacobian,) = torch.autograd.grad(f, z, self.probe, create_graph=create_graph)
                jacobian = eps_jacobian.pow(2).flatten(1).mean(1)
            else:
                jacobian = torch.zeros_like(kinetic)
        return self.counted(f), kinetic, jacobian

    def evaluate(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        with torch.autocast(*self.autocast_args, enabled=self.autocast):
            return self.field(t, z).to(z.dtype)

    def counted(self, f: torch.Tensor) -> torch.Tensor:
        """With backprop through the solver, count the vector-Jacobian products the backward pass takes through
        this evaluation (none for the evaluations of rejected steps, which the output does not depend on)."""
        if self.counts_vjps and f.requires_grad:
            f.register_hook(self._count_vjp)
        return f

    def _count_vjp(self, grad: torch.Tensor) -> None:
        self.nfe_backward += 1

    def callback_step(self, t0: torch.Tensor, y0: State, dt: torch.Tensor) -> None:
        # The same checks as the bare AssertionErrors of torchdiffeq's adaptive step (which synchronises on them
        # anyway), made first so the error can say which block failed and what to try; they also cover the
        # fixed-grid solvers and the adjoint's backward solve, and count steps for max_steps.
        self.steps += 1
        direction = "forward" if self.forward_solve else "adjoint (backward)"
        limit = self.block.solver.max_steps
        if limit is not None and self.steps > limit:
            raise self.block.failure(direction, f"more than max_steps={limit} steps by t = {float(t0):.4g}")
        if self.saved_bytes > self.memory_budget:
            raise self.block.failure(
                direction, f"backprop through the solver had kept {self.saved_bytes / GIB:.2f} GiB for backward "
                f"after {self.steps - 1} steps, by t = {float(t0):.4g}, over its budget of "
                f"{self.memory_budget / GIB:.2f} GiB (max_memory)")
        if not all(torch.isfinite(y).all() for y in (y0 if isinstance(y0, tuple) else (y0,))):
            raise self.block.failure(direction, f"the state became non-finite at t = {float(t0):.4g}")
        if not t0 + dt > t0:
            raise self.block.failure(direction, f"the step size underflowed (dt = {float(dt):.3g}) at "
                                                f"t = {float(t0):.4g} after {self.steps - 1} steps")

    # The adjoint method's backward solve calls ``callback_step_adjoint`` (torchdiffeq's callback protocol).
    callback_step_adjoint = callback_step


class ODEBlock(nn.Module, ReportsMetrics, AddsLoss):
    """``z(t1) = z(0) + ∫_0^{t1} f(t, z(t)) dt`` for one field ``f(t, z)`` (Chen et al. 2018).

    ``solver`` says how (:class:`Solver`); ``regularisation`` adds Finlay et al. 2020's penalties to the training
    loss through :meth:`extra_loss` (training mode only; evaluation solves the plain ODE). The state is solved in
    float32 at least: a bf16 input (from an autocast region) is promoted, and the field's output is cast back, so
    only the field itself runs in low precision.

    Function evaluations are counted per batch and reported by :meth:`metrics`, with keys prefixed by
    ``metric_prefix`` (the :class:`ODE` scheme sets ``ode{i}_`` when it holds several blocks).
    """

    def __init__(
        self,
        field: nn.Module,
        solver: Solver | None = None,
        t1: float = 1.0,
        regularisation: Regularisation | None = None,
        index: int = 0,
        metric_prefix: str = "",
    ) -> None:
        super().__init__()
        if t1 <= 0:
            raise ConfigError(f"the integration interval [0, t1] needs t1 > 0, got t1={t1}")
        self.field = field
        self.solver = solver if solver is not None else Solver()
        self.t1 = float(t1)
        self.regularisation = regularisation if regularisation is not None else Regularisation()
        self.index = index
        self.metric_prefix = metric_prefix
        self._nfe: dict[str, list[int]] = {"forward": [], "backward": [], "eval": []}
        self._penalties: dict[str, list[torch.Tensor]] = {"kinetic": [], "jacobian": []}
        self._awaiting_backward: _Dynamics | None = None
        self._extra_loss: torch.Tensor | None = None

    def forward(self, z0: torch.Tensor) -> torch.Tensor:
        """``z(t1) = z(0) + ∫_0^{t1} f(t, z(t)) dt``, as the solver approximates it."""
        self._record_backward()
        z0 = z0.to(torch.promote_types(z0.dtype, torch.float32))
        regularise = self.training and self.regularisation.active
        f = _Dynamics(self, z0, regularise)
        if regularise:
            # Finlay et al.'s accumulators: d/dt [z, K, J] = [f, ||f||^2 / d, ||ε^T ∇f||^2 / d], K(0) = J(0) = 0.
            zeros = z0.new_zeros(len(z0))
            z_t1, kinetic, jacobian = (s[-1] for s in self.integrate(f, (z0, zeros, zeros)))
            self._record_penalties(kinetic, jacobian)
        else:
            z_t1 = self.integrate(f, z0)[-1]
        f.forward_solve = False
        f.steps = 0
        if self.training:
            self._nfe["forward"].append(f.nfe_forward)
            self._awaiting_backward = f
        else:
            self._nfe["eval"].append(f.nfe_forward)
        return z_t1

    def integrate(self, f: _Dynamics, state: State) -> State:
        """torchdiffeq's solution of ``d state/dt = f(t, state)`` at ``t = [0, t1]``."""
        z0 = state[0] if isinstance(state, tuple) else state
        t = torch.tensor([0.0, self.t1], dtype=z0.dtype, device=z0.device)
        s = self.solver
        options = s.options(self.t1)
        kwargs: dict[str, Any] = {"rtol": s.rtol, "atol": s.atol, "method": s.method, "options": options}
        if not s.adjoint:
            if not torch.is_grad_enabled():
                return odeint(f, state, t, **kwargs)
            with torch.autograd.graph.saved_tensors_hooks(f.pack, lambda saved: saved):
                return odeint(f, state, t, **kwargs)
        adjoint_options = {**options, "norm": "seminorm"} if s.seminorm else None
        return odeint_adjoint(f, state, t, adjoint_params=tuple(self.field.parameters()),
                              adjoint_options=adjoint_options, **kwargs)

    def failure(self, direction: str, problem: str) -> ODESolverError:
        return ODESolverError(self.index, self.solver, direction, problem)

    def _record_backward(self) -> None:
        # A training batch's backward NFE is known only once its backward pass has run; it is collected at the
        # next forward pass or metrics() call. A forward pass whose backward never ran records no backward NFE.
        if self._awaiting_backward is not None and self._awaiting_backward.nfe_backward > 0:
            self._nfe["backward"].append(self._awaiting_backward.nfe_backward)
        self._awaiting_backward = None

    def _record_penalties(self, kinetic: torch.Tensor, jacobian: torch.Tensor) -> None:
        r = self.regularisation
        self._extra_loss = r.kinetic * kinetic.mean() + r.jacobian * jacobian.mean()
        self._penalties["kinetic"].append(kinetic.detach().mean())
        if r.jacobian > 0:
            self._penalties["jacobian"].append(jacobian.detach().mean())

    def extra_loss(self) -> torch.Tensor | None:
        """``kinetic * mean K + jacobian * mean J`` of the last training forward pass (None without
        regularisation, and in evaluation mode); resets it."""
        loss, self._extra_loss = self._extra_loss, None
        return loss

    def metrics(self) -> dict[str, Any]:
        """NFE statistics over the forward passes since the last call, which resets them.

        ``nfe_forward_{mean,max}``: field evaluations of the forward solve, over training batches.
        ``nfe_backward_{mean,max}``: vector-Jacobian products of the field in each training batch's backward pass.
        With the adjoint method these are the evaluations of the adjoint ODE's dynamics (each one ``f`` and one
        VJP); with backprop through the solver, the forward evaluations the gradient flows back through (those of
        rejected steps get none, so this is at most the forward NFE).
        ``nfe_eval_{mean,max}``: forward solves in evaluation mode (test and validation passes).
        ``kinetic_mean``, ``jacobian_mean``: the regularisers' integrals, averaged over training batches, when on.
        Statistics with no batches behind them are left out.
        """
        self._record_backward()
        p = self.metric_prefix
        out: dict[str, Any] = {}
        for kind, counts in self._nfe.items():
            if counts:
                out[f"{p}nfe_{kind}_mean"] = statistics.fmean(counts)
                out[f"{p}nfe_{kind}_max"] = max(counts)
            counts.clear()
        for name, values in self._penalties.items():
            if values:
                out[f"{p}{name}_mean"] = torch.stack(values).mean().item()
            values.clear()
        return out

    def extra_repr(self) -> str:
        return f"{self.solver.describe()}, t1={self.t1:g}"


class ODE(nn.Module):
    """ODENet's scheme: ``z_{n+1} = z_n + ∫_0^{t1} f_n(t, z) dt``, one :class:`ODEBlock` per field ``f_n``.

    Where a residual network takes one Euler step per field, this scheme integrates each field's ODE to the end of
    its interval. With ``augment = p > 0`` the input ``x`` first gets ``p`` zero channels, ``z_0 = [x, 0]``
    (augmented neural ODEs, Dupont et al. 2019), so the fields act on ``C + p`` channels; the extra channels stay
    in the state through every block and are handed on, for the classifier to read. The blocks share the solver,
    interval and regularisation.
    """

    def __init__(
        self,
        fields: Sequence[nn.Module],
        solver: Solver | None = None,
        t1: float = 1.0,
        regularisation: Regularisation | None = None,
        augment: int = 0,
    ) -> None:
        super().__init__()
        if not fields:
            raise ConfigError("an ODE scheme needs at least one field")
        if augment < 0:
            raise ConfigError(f"augment is a number of extra zero channels (>= 0), got {augment}")
        self.augment = augment
        several = len(fields) > 1
        self.blocks = nn.ModuleList(
            ODEBlock(f, solver, t1, regularisation, index=i, metric_prefix=f"ode{i}_" if several else "")
            for i, f in enumerate(fields)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = augment_zeros(x, self.augment)
        for block in self.blocks:
            z = block(z)
        return z


def augment_zeros(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``[x, 0]``: ``x`` with ``channels`` zero channels appended along dimension 1."""
    if channels == 0:
        return x
    zeros = x.new_zeros(x.shape[0], channels, *x.shape[2:])
    return torch.cat([x, zeros], dim=1)


def _draw_probe(z: torch.Tensor, kind: Probe) -> torch.Tensor:
    if kind == "gaussian":
        return torch.randn_like(z)
    return torch.randint_like(z, 0, 2) * 2 - 1


__all__ = ["ADAPTIVE_METHODS", "FIXED_METHODS", "ODE", "ODEBlock", "ODESolverError", "Regularisation", "Solver",
           "augment_zeros"]
