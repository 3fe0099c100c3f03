"""FractalNet's expansion rule (Larsson, Maire, Shakhnarovich 2017, "FractalNet: Ultra-Deep Neural Networks without
Residuals", ICLR; read as a scheme in the FIUBA 75.26 (Simulación)
replication report of Lu, Zhong, Li, Dong 2018, sec. 2.2).

A fractal block of ``C`` columns is built by the rule

    f_1(z) = conv(z),        f_{C+1}(z) = join(f_C(f_C(z)), conv(z)),

with ``join`` the element-wise mean. The FIUBA report (eqs. 10-12, after Lu et al. 2018) reads it as a Runge-Kutta-like
scheme of order 2: ``f_{C+1} = 1/2 f_C o f_C + 1/2 conv``, two stages of ``f_C`` averaged with one step of a new
``conv``, which for ``C = 2`` is ``x_{n+1} = k_1 x_n + k_2 (k_3 x_n + f_1(x_n)) + f_2(k_3 x_n + f_1(x_n))`` (eq. 12).
There is no identity path: every signal passes a convolution before it is joined.

Flat joins. In ``f_C(f_C(z))`` the outer ``f_C`` ends in its own join, so the rule puts two joins back to back
with nothing between them. The paper's implementation merges them into one join layer (its Caffe generator,
``gustavla/fractalnet`` ``generation/fractalnet.py``, wires joins of 2, 3, 2 and 4 inputs along a 4-column block):
the join at the end of ``f_{C+1}`` averages the ``C + 1`` columns that end there,

    f_{C+1}(z) = mean(a_1, ..., a_C, conv(z)),   where a_1..a_C are the inputs of the last join of f_C(f_C(z)).

That is the rule with ``join`` taken as one n-ary mean over every column meeting at a point; it is what this
module computes by default. It is the same network as the binary reading (same convolutions, same wiring, same
paths) and the same function for ``C = 2``, but for ``C >= 3`` the weights differ: the flat join gives each of
the ``C + 1`` columns ``1 / (C + 1)``, while the nested binary mean of the FIUBA report's ``1/2 f_C o f_C + 1/2 conv``
gives ``conv(z)`` 1/2 and the deeper columns 1/4, 1/8, ... ``flat_join=False`` gives the nested reading.

Drop-path (paper sec. 3; per mini-batch, as the paper's Caffe join layer samples it):

- local: every join drops each of its inputs independently with probability ``drop_prob`` (0.15 in the
  paper) and keeps one input, chosen uniformly, when it would drop them all; the survivors are averaged.
- global: a single column is chosen and the whole network uses only that column: every join keeps only the
  input from that column, which makes each block the plain chain of that column's ``2^k`` convolutions.
  ``Fractal`` draws it for a fraction ``global_drop_ratio`` (0.5 in the paper) of the mini-batches.

A dropped input is still computed and joined with weight 0, as in Caffe, which runs every layer (see
:func:`mean_join`): a network trains at full cost whatever is dropped, and every parameter gets a gradient.
Each column keeps its own BatchNorm running statistics for its global batches and single-column evaluation
(see :class:`Fractal`); without them, global drop-path ruins the statistics of the joined network.

Columns are numbered from the shallowest: column 0 is the single ``conv(z)`` of the outermost rule, column
``C - 1`` the deepest, with ``2^(C-1)`` convolutions. In eval mode there is no drop-path and every join averages all
its inputs; ``eval_column`` (or :func:`only_column`) evaluates a single column instead, as in the paper's
"deepest column alone" results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from resdyn.errors import ConfigError

ConvFactory = Callable[[int, int], nn.Module]


def local_drop_mask(inputs: int, drop_prob: float) -> list[bool]:
    """Which of ``inputs`` join inputs survive local drop-path: each is dropped with ``drop_prob``, and if all
    would be, one chosen uniformly survives (the paper's join, ``FractalJoinLayer::Forward_cpu``)."""
    keep = (torch.rand(inputs) >= drop_prob).tolist()
    if not any(keep):
        keep[int(torch.randint(inputs, ()))] = True
    return keep


def mean_join(branches: Sequence[torch.Tensor], keep: Sequence[bool] | None = None) -> torch.Tensor:
    """Element-wise mean of the ``branches`` marked in ``keep`` (all of them when ``keep`` is None).

    A dropped branch enters with weight 0 instead of being left out, as in the paper's Caffe join, which sends
    it a zero gradient: its parameters get a zero gradient rather than none, so momentum and weight decay still
    act on them that step, as they did in the paper's training.
    """
    if keep is None:
        keep = [True] * len(branches)
    weight = 1.0 / sum(keep)
    return sum(b * (weight if kept else 0.0) for b, kept in zip(branches, keep, strict=True))


class FractalBlock(nn.Module):
    """``f_C``: ``f_1(z) = conv(z)``, ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))`` (Larsson et al. 2017, eq. 1).

    ``conv(in_channels, out_channels)`` builds one base layer (the paper's conv-BN-ReLU); the first layer of every
    column maps ``in_channels`` to ``out_channels``. A block of ``C`` columns holds ``2^C - 1`` convolutions,
    ``2^(C-1)`` of them on its deepest path. ``drop_prob`` is local drop-path at every join, applied in training
    mode; ``flat_join`` chooses the paper's merged n-ary joins (default) or the FIUBA report's nested binary means.
    """

    def __init__(
        self,
        columns: int,
        in_channels: int,
        out_channels: int,
        conv: ConvFactory,
        drop_prob: float = 0.0,
        flat_join: bool = True,
    ) -> None:
        super().__init__()
        if columns < 1:
            raise ConfigError(f"a fractal block needs at least 1 column, got {columns}")
        if not 0 <= drop_prob <= 1:
            raise ConfigError(f"local drop-path probability must be in [0, 1], got {drop_prob}")
        self.columns = columns
        self.drop_prob = drop_prob
        self.flat_join = flat_join
        self.conv = conv(in_channels, out_channels)
        self.inner: FractalBlock | None = None
        self.outer: FractalBlock | None = None
        if columns > 1:
            # f_C o f_C: ``inner`` reads the block's input and ``outer`` its output, so only ``inner`` changes width.
            self.inner = FractalBlock(columns - 1, in_channels, out_channels, conv, drop_prob, flat_join)
            self.outer = FractalBlock(columns - 1, out_channels, out_channels, conv, drop_prob, flat_join)

    def forward(self, z: torch.Tensor, column: int | None = None) -> torch.Tensor:
        """``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, the last join of the outer ``f_C`` merged into this one
        (flat joins); under global drop-path every join keeps only the input from ``column`` (0..C-1).

        Inside the recursion ``column`` is counted in this block, and a negative one (the ``conv`` of an
        enclosing block) makes every join here a plain mean: the enclosing join gives the result weight 0.
        """
        if column is not None and column >= self.columns:
            last = self.columns - 1
            raise ConfigError(f"column {column} does not exist in a block of {self.columns} columns; valid: 0..{last}")
        branches = self.branches(z, column)
        return branches[0] if len(branches) == 1 else self.join(branches, column)

    def branches(self, z: torch.Tensor, column: int | None = None) -> list[torch.Tensor]:
        """The inputs of this block's last join, shallowest first: ``conv(z)``, then the inputs of the last join
        of ``f_C(f_C(z))`` (flat joins) or its output (nested joins)."""
        if self.inner is None or self.outer is None:
            return [self.conv(z)]
        deep_column = None if column is None else column - 1  # column k here is column k - 1 of f_C o f_C
        y = self.inner(z, deep_column)
        deep = self.outer.branches(y, deep_column) if self.flat_join else [self.outer(y, deep_column)]
        return [self.conv(z), *deep]

    def join(self, branches: Sequence[torch.Tensor], column: int | None) -> torch.Tensor:
        if column is not None:
            # Global drop-path. Branch i carries column i (flat), or column 0 and columns >= 1 (nested, 2 inputs).
            keep = None if column < 0 else [i == min(column, len(branches) - 1) for i in range(len(branches))]
        elif self.training and self.drop_prob > 0:
            keep = local_drop_mask(len(branches), self.drop_prob)
        else:
            keep = None
        return mean_join(branches, keep)

    def column(self, k: int) -> list[nn.Module]:
        """The convolutions of column ``k``, input to output: one for ``k = 0``, ``2^k`` in general."""
        if not 0 <= k < self.columns:
            last = self.columns - 1
            raise ConfigError(f"column {k} does not exist in a block of {self.columns} columns; valid: 0..{last}")
        if self.inner is None or self.outer is None:
            return [self.conv]
        return [self.conv] if k == 0 else self.inner.column(k - 1) + self.outer.column(k - 1)

    def extra_repr(self) -> str:
        return f"columns={self.columns}, drop_prob={self.drop_prob}, flat_join={self.flat_join}"


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class Fractal(nn.Module):
    """FractalNet's body: ``x <- transition_b(f_C^b(x))`` for each block ``b``, with global drop-path.

    In training mode a fraction ``global_drop_ratio`` of the mini-batches (0.5 in the paper) draws one column,
    uniformly, and every block uses only that column; the other mini-batches use local drop-path, set on the
    blocks. In eval mode all columns are joined, or only ``eval_column`` when it is set (negative indices count
    from the deepest column, so -1 is the deepest).

    Each column keeps its own BatchNorm running statistics, used by its global drop-path batches and by
    ``eval_column``; the joined network's statistics stay in the BatchNorm layers. A single column sees other
    activations than the joined network (no averaging at the joins), so one shared set of statistics fits
    neither: trained with global drop-path it evaluates near chance on the joined network. The authors' Caffe
    generator (``gustavla/fractalnet``) trains the global columns as separate passes with tied weights, which
    gives them their own BatchNorm statistics in the same way.
    """

    def __init__(
        self,
        blocks: Sequence[FractalBlock],
        transitions: Sequence[nn.Module],
        global_drop_ratio: float = 0.0,
        eval_column: int | None = None,
    ) -> None:
        super().__init__()
        if len(blocks) != len(transitions):
            raise ConfigError(f"{len(blocks)} fractal blocks but {len(transitions)} transitions")
        widths = {block.columns for block in blocks}
        if len(widths) != 1:
            # Global drop-path picks one column for the whole network, so every block needs the same columns.
            raise ConfigError(f"every fractal block needs the same number of columns, got {sorted(widths)}")
        if not 0 <= global_drop_ratio <= 1:
            raise ConfigError(f"global drop-path ratio must be in [0, 1], got {global_drop_ratio}")
        self.blocks = nn.ModuleList(blocks)
        self.transitions = nn.ModuleList(transitions)
        self.columns = widths.pop()
        self.global_drop_ratio = global_drop_ratio
        self.eval_column = eval_column
        norms = self.norms()
        joined_mean = torch.cat([m.running_mean for m in norms]) if norms else torch.zeros(0)
        joined_var = torch.cat([m.running_var for m in norms]) if norms else torch.zeros(0)
        self.register_buffer("column_running_mean", joined_mean.repeat(self.columns, 1))
        self.register_buffer("column_running_var", joined_var.repeat(self.columns, 1))
        self.register_buffer("column_batches_tracked", torch.zeros(self.columns, len(norms), dtype=torch.long))

    @property
    def eval_column(self) -> int | None:
        return self._eval_column

    @eval_column.setter
    def eval_column(self, column: int | None) -> None:
        if column is not None and not -self.columns <= column < self.columns:
            raise ConfigError(
                f"eval_column {column} does not exist in a network of {self.columns} columns: use 0..{self.columns - 1}"
                f" (0 the shallowest), -1 for the deepest, or None to join all columns"
            )
        self._eval_column = None if column is None else column % self.columns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        column = self.global_column() if self.training else self.eval_column
        with self.statistics_of(column):
            for f, transition in zip(self.blocks, self.transitions, strict=True):
                x = transition(f(x, column))
        return x

    def global_column(self) -> int | None:
        """The column of this mini-batch under global drop-path, or None for local drop-path."""
        if self.global_drop_ratio > 0 and torch.rand(()) < self.global_drop_ratio:
            return int(torch.randint(self.columns, ()))
        return None

    def norms(self) -> list[nn.Module]:
        """The BatchNorm layers of the blocks that keep running statistics, in a fixed order."""
        return [m for m in self.blocks.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]

    @contextmanager
    def statistics_of(self, column: int | None) -> Iterator[None]:
        """Put ``column``'s BatchNorm running statistics in the BatchNorm layers for the duration (None: the joined
        network's, already there).

        The layers get views of this module's buffers, which they update in place while training, and get their own
        tensors back afterwards; swapping tensors, not copying values, leaves alone any tensor autograd saved.
        """
        norms = self.norms()
        if column is None or not norms:
            yield
            return
        joined = [(m.running_mean, m.running_var, m.num_batches_tracked) for m in norms]
        start = 0
        for i, m in enumerate(norms):
            end = start + m.num_features
            m.running_mean = self.column_running_mean[column, start:end]
            m.running_var = self.column_running_var[column, start:end]
            m.num_batches_tracked = self.column_batches_tracked[column, i]
            start = end
        try:
            yield
        finally:
            for m, (mean, var, batches) in zip(norms, joined, strict=True):
                m.running_mean, m.running_var, m.num_batches_tracked = mean, var, batches

    def extra_repr(self) -> str:
        return f"columns={self.columns}, global_drop_ratio={self.global_drop_ratio}, eval_column={self.eval_column}"


@contextmanager
def only_column(model: nn.Module, column: int = -1) -> Iterator[nn.Module]:
    """Evaluate every ``Fractal`` body in ``model`` on one column (default: the deepest), then restore."""
    bodies = [m for m in model.modules() if isinstance(m, Fractal)]
    if not bodies:
        raise ConfigError(f"{type(model).__name__} has no fractal body to restrict to one column")
    saved = [body.eval_column for body in bodies]
    try:
        for body in bodies:
            body.eval_column = column
        yield model
    finally:
        for body, was in zip(bodies, saved, strict=True):
            body.eval_column = was
