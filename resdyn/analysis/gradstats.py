"""The report's figures of gradient statistics (runs trained with ``train.grad_stats``; their gradstats.jsonl):
learning speed by layer, as Nielsen, "Neural Networks and Deep Learning", ch. 5 draws it (the gradient's norm
against the layer, one line per epoch, the initial weights' dashed), and each layer's gradient norm over training.

A panel per compared experiment (up to :data:`MAX_PANELS`), the mean over its seeds; the units are those of
:mod:`resdyn.train.gradstats` (stem, each step of the body, head), and a unit's gradient norm is its whole
gradient's (weights and biases together). Experiments whose seeds recorded different units (or none) are left out.
Reads run folders only through :class:`resdyn.runs.RunDir`, like the rest of the report.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from resdyn.analysis.plots import Plot
from resdyn.runs import GradStatsRecord, RunDir

if TYPE_CHECKING:  # the report package imports this module
    from resdyn.analysis.report.tables import Group

MAX_PANELS = 6
DPI = 110


def gradstats_plots(groups: Sequence[Group]) -> list[Plot]:
    """The two figures, or none when no experiment recorded gradient statistics."""
    panels = [(g.label, seeds) for g in groups for seeds in [_seeds(g)] if seeds]
    if not panels:
        return []
    shown, left_out = panels[:MAX_PANELS], len(panels) - MAX_PANELS
    more = f" ({left_out} more experiment(s) not drawn.)" if left_out > 0 else ""
    return [
        Plot("learning-speed-by-layer", "Learning speed by layer",
             "The norm of the loss's gradient with respect to each layer's (or block's) weights and biases, from the "
             "first layer to the last, averaged over each epoch's recorded steps (train.grad_stats) and over seeds; "
             "dashed: at initialisation (the first step). A line rising to the right means the first layers learn "
             "slowest (vanishing gradients: Nielsen, Neural Networks and Deep Learning, ch. 5); falling, that they "
             "learn fastest (exploding)." + more,
             _png(_by_layer(shown))),
        Plot("gradient-norm-over-training", "Gradient norm of each layer over training",
             "The norm of each layer's (or block's) gradient at every recorded step, mean over seeds, first layer "
             "dark to last layer light." + more,
             _png(_over_training(shown))),
    ]


def _seeds(group: Group) -> list[list[GradStatsRecord]]:
    """Each seed's records, when every seed has some and all name the same units; else none."""
    seeds = [RunDir(run.path).read_gradstats() for run in group.runs]
    if not all(seeds) or len({tuple(r.layers) for records in seeds for r in records}) != 1:
        return []
    return seeds


def _grid(count: int) -> tuple[Figure, list]:
    columns = min(count, 3)
    rows = -(-count // columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return figure, list(axes[:count])


def _by_layer(panels: list[tuple[str, list[list[GradStatsRecord]]]]) -> Figure:
    figure, axes = _grid(len(panels))
    for ax, (label, seeds) in zip(axes, panels, strict=True):
        layers = seeds[0][0].layers
        epochs = sorted({r.epoch for r in seeds[0]} & set.intersection(*({r.epoch for r in s} for s in seeds)))
        cmap = matplotlib.colormaps["viridis"]
        x = np.arange(len(layers))
        ax.plot(x, np.mean([s[0].grad_norm for s in seeds], axis=0), color="black", linestyle="--", marker="o",
                markersize=3, label="initialisation")
        for i, epoch in enumerate(epochs):
            mean = np.mean([np.mean([r.grad_norm for r in s if r.epoch == epoch], axis=0) for s in seeds], axis=0)
            shown = i in (0, len(epochs) - 1) or len(epochs) <= 8
            ax.plot(x, mean, color=cmap(i / max(len(epochs) - 1, 1)), marker="o", markersize=3,
                    label=f"epoch {epoch}" if shown else None)
        ax.set_yscale("log")
        ax.set_xticks(x, layers, rotation=45 if len(layers) > 6 else 0, fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("layer, in network order")
        ax.set_ylabel("gradient norm")
        ax.legend(fontsize=7)
    return figure


def _over_training(panels: list[tuple[str, list[list[GradStatsRecord]]]]) -> Figure:
    figure, axes = _grid(len(panels))
    for ax, (label, seeds) in zip(axes, panels, strict=True):
        layers = seeds[0][0].layers
        steps = sorted(set.intersection(*({r.step for r in s} for s in seeds)))
        table = np.mean([[r.grad_norm for r in s if r.step in set(steps)] for s in seeds], axis=0)
        cmap = matplotlib.colormaps["viridis"]
        for j, name in enumerate(layers):
            ax.plot(steps, table[:, j], color=cmap(j / max(len(layers) - 1, 1)), linewidth=1.2,
                    label=name if j in (0, len(layers) - 1) or len(layers) <= 8 else None)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("gradient norm")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()
