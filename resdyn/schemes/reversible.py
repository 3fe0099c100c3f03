"""Reversible coupling: RevNet (Gomez, Ren, Urtasun, Grosse 2017, "The Reversible Residual Network").

The state is split in two halves along the channels, ``x = (x1, x2)``, and each step couples them:

    y1 = x1 + F(x2),        y2 = x2 + G(y1).

Lu, Zhong, Li, Dong 2018 (slides, arXiv:1710.10121, Table 1; the FIUBA 75.26 replication report, sec. 2.3,
eqs. 17-20) read this as a forward-Euler step of the
coupled system ``dX/dt = F(Y), dY/dt = G(X)`` in which ``Y`` steps from the already-updated ``X``. Because each
half moves by a function of the other half only, the step inverts exactly,

    x2 = y2 - G(y1),        x1 = y1 - F(x2),

so backpropagation can rebuild every block's input from its output instead of storing it: the activations a
stage of reversible blocks keeps for backward do not grow with its depth.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two channel halves of the state, each dense in the state's memory layout.

    A channel slice of a channels_last tensor is strided in every dimension, and the CPU's BatchNorm has no fast
    kernel for it: on such a half of RevNet-38's 32-channel state (batch 128, 28x28) a BatchNorm forward and
    backward took 650 ms instead of 34 ms once copied, which made RevNet's bf16 + channels_last step only 1.2x
    faster than float32. The copy costs less than a single BatchNorm.
    """
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    if not channels_last:
        return x.chunk(2, dim=1)
    x1, x2 = x.chunk(2, dim=1)
    return x1.contiguous(memory_format=torch.channels_last), x2.contiguous(memory_format=torch.channels_last)


class ReversibleBlock(nn.Module):
    """``y1 = P1 x1 + F(x2); y2 = P2 x2 + G(y1)`` on the two channel halves of the state (Gomez et al. 2017).

    With the identity for ``P1`` and ``P2`` (the default) the block is invertible (:meth:`inverse`). A block
    that changes the state's shape (a downsampling transition, ``P`` pooling or projecting each half) loses
    information, so it cannot be inverted; RevNet stores the activations of those few blocks.
    """

    def __init__(
        self, f: nn.Module, g: nn.Module, shortcut1: nn.Module | None = None, shortcut2: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.f = f
        self.g = g
        self.shortcut1 = shortcut1 if shortcut1 is not None else nn.Identity()
        self.shortcut2 = shortcut2 if shortcut2 is not None else nn.Identity()

    @property
    def invertible(self) -> bool:
        return isinstance(self.shortcut1, nn.Identity) and isinstance(self.shortcut2, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = halves(x)
        y1 = self.shortcut1(x1) + self.f(x2)
        y2 = self.shortcut2(x2) + self.g(y1)
        return torch.cat((y1, y2), dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """``x2 = y2 - G(y1); x1 = y1 - F(x2)``: the input that :meth:`forward` maps to ``y``."""
        if not self.invertible:
            raise ValueError("a reversible block with a non-identity shortcut (a transition) has no inverse")
        y1, y2 = halves(y)
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return torch.cat((x1, x2), dim=1)


class Reversible(nn.Module):
    """RevNet's scheme: the state steps through ``blocks``, each ``y1 = P x1 + F_n(x2); y2 = P x2 + G_n(y1)``.

    Each step has two fields, ``F_n`` and ``G_n``, acting on half the channels, so this scheme takes
    :class:`ReversibleBlock` s rather than Euler's ``(fields, shortcuts)``. Consecutive invertible blocks form
    a run that, with ``memory_saving`` (the default) and gradients enabled, backpropagates without storing
    activations: only the run's output is kept, and backward rebuilds each block's input from its output
    and recomputes ``F`` and ``G`` to get the gradients (Gomez et al. 2017, Algorithm 1). Blocks that are not
    invertible (transitions) are ordinary autograd and store their activations, as in the paper.
    ``memory_saving=False`` is ordinary autograd through the same blocks, for comparison.

    The recomputation replays the forward pass exactly: the RNG state (CPU and the state's CUDA device) is
    restored before each ``F`` and ``G``, so dropout and noise wrappers draw the same numbers, and any buffer
    a field updates in its forward (BatchNorm's running statistics) is put back, so a training step counts
    each batch once. Autocast, if on in the forward pass, is on again in the recomputation.

    The inverse is exact in exact arithmetic only: each reconstruction ``x2 = y2 - G(y1)`` gives back the
    rounding of ``y2``, and ``F``, ``G`` can amplify it. In float64 the gradients agree with ordinary
    backprop to ~1e-14; in float32 at initialisation to ~1e-6 (RevNet-38) and ~0.7% (RevNet-110/164) of the
    gradient's norm, the small numerical error Gomez et al. analyse. Under autocast the fields run in low
    precision but the state stays float32, for the same reason; with CPU bfloat16 autocast the memory-saving
    gradients of RevNet-38 at initialisation then differ from ordinary backprop's by 8%, while bfloat16's own
    gradients differ from float32's by 57% (batch of 8).
    """

    def __init__(self, blocks: Sequence[ReversibleBlock], memory_saving: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.memory_saving = memory_saving
        # [start, stop) of maximal runs of blocks that are all invertible or all not.
        self.runs: list[tuple[int, int, bool]] = []
        for i, block in enumerate(self.blocks):
            if self.runs and self.runs[-1][2] == block.invertible:
                self.runs[-1] = (self.runs[-1][0], i + 1, block.invertible)
            else:
                self.runs.append((i, i + 1, block.invertible))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keep the state in float32 even under autocast (the fields still compute in low precision): the
        # reconstruction x2 = y2 - G(y1) subtracts nearly equal numbers, and a bfloat16 state would lose
        # most of x2's digits.
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        for start, stop, invertible in self.runs:
            blocks = self.blocks[start:stop]
            if invertible and self.memory_saving and torch.is_grad_enabled():
                x = _ReversibleRun.apply(x, blocks, *_trainable(blocks))
            else:
                for block in blocks:
                    x = block(x)
        return x

    def extra_repr(self) -> str:
        return f"memory_saving={self.memory_saving}"


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


@dataclass(frozen=True)
class _RNGState:
    """The random-number state before a field's forward, to replay its dropout or noise when it is recomputed."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None
    device: torch.device

    @classmethod
    def capture(cls, device: torch.device) -> _RNGState:
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(torch.get_rng_state(), cuda, device)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


@contextmanager
def _recording_rng(fields: Sequence[nn.Module], device: torch.device, states: list[_RNGState]) -> Iterator[None]:
    """Append the RNG state to ``states`` just before each of ``fields`` runs its forward."""
    handles = [f.register_forward_pre_hook(lambda *_: states.append(_RNGState.capture(device))) for f in fields]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _buffers_kept(module: nn.Module) -> Iterator[None]:
    """Undo whatever ``module``'s forward does to its buffers (BatchNorm's running statistics and batch count).

    The recomputation in backward is a second forward pass over the same batch; without this, BatchNorm
    would fold the batch into its running statistics twice. The buffers are put back only after the
    recomputed graph has been differentiated, because BatchNorm's backward checks that they were not
    modified in place since its forward.
    """
    saved = [b.clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved, strict=True):
                buffer.copy_(value)


@dataclass(frozen=True)
class _AutocastState:
    device_type: str
    enabled: bool
    dtype: torch.dtype

    @classmethod
    def capture(cls, device: torch.device) -> _AutocastState:
        kind = device.type
        return cls(kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))

    def resume(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


def _vjp(output: torch.Tensor, inputs: Sequence[torch.Tensor], grad: torch.Tensor) -> list[torch.Tensor | None]:
    """``J^T grad`` of ``output`` with respect to each input; None where it does not depend on one.

    A field can return a tensor with no graph (stochastic depth's dropped branch is ``zeros_like``).
    """
    if not output.requires_grad:
        return [None] * len(inputs)
    return list(torch.autograd.grad(output, inputs, grad, allow_unused=True))


def _add(total: torch.Tensor | None, term: torch.Tensor | None) -> torch.Tensor | None:
    if term is None:
        return total
    return term if total is None else total + term


class _ReversibleRun(torch.autograd.Function):
    """A run of invertible blocks whose backward rebuilds activations from the output (Gomez et al. 2017, Alg. 1).

    Inputs are the run's input, the blocks and their trainable parameters (passed so that autograd knows the
    output depends on them); the only tensor saved for backward is the output.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, blocks: nn.ModuleList, *params: torch.Tensor) -> torch.Tensor:
        ctx.blocks = blocks
        ctx.autocast = _AutocastState.capture(x.device)
        ctx.rng = []
        for block in blocks:
            states: list[_RNGState] = []  # before F, before G
            with _recording_rng((block.f, block.g), x.device, states):
                x = block(x)
            ctx.rng.append(states)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        params = _trainable(ctx.blocks)
        index = {id(p): i for i, p in enumerate(params)}
        grads: list[torch.Tensor | None] = [None] * len(params)
        devices = [y.device] if y.device.type == "cuda" else []
        # Replaying the forward's random draws must not disturb the RNG of whatever runs after backward.
        with torch.random.fork_rng(devices=devices), ctx.autocast.resume():
            for block, (f_state, g_state) in zip(reversed(ctx.blocks), reversed(ctx.rng), strict=True):
                f_params = [p for p in block.f.parameters() if id(p) in index]
                g_params = [p for p in block.g.parameters() if id(p) in index]
                y1, y2 = halves(y.detach())
                dy1, dy2 = halves(dy)
                with _buffers_kept(block.f), _buffers_kept(block.g), torch.enable_grad():
                    # Invert the block, keeping the graphs of G(y1) and F(x2) for the gradients.
                    y1 = y1.requires_grad_()
                    g_state.restore()
                    g_y1 = block.g(y1)
                    x2 = (y2 - g_y1.detach()).requires_grad_()
                    f_state.restore()
                    f_x2 = block.f(x2)
                    x1 = y1.detach() - f_x2.detach()
                    # y2 = x2 + G(y1): y1's gradient gains J_G^T dy2; G's parameters get theirs from dy2.
                    dg = _vjp(g_y1, [y1, *g_params], dy2)
                    dy1 = _add(dy1, dg[0])
                    # y1 = x1 + F(x2): x1's gradient is dy1; x2's is dy2 + J_F^T dy1; F's parameters from dy1.
                    df = _vjp(f_x2, [x2, *f_params], dy1)
                    dx2 = _add(dy2, df[0])
                for p, g in zip(g_params + f_params, dg[1:] + df[1:], strict=True):
                    grads[index[id(p)]] = _add(grads[index[id(p)]], g)
                y = torch.cat((x1, x2.detach()), dim=1)
                dy = torch.cat((dy1, dx2), dim=1)
        return (dy if ctx.needs_input_grad[0] else None, None, *grads)
