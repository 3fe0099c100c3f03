"""Figures of a comparison: accuracy, loss and learning-rate curves, LM-ResNet's k_n, NFE, memory against depth.

Each function takes the compared models as :class:`Series` (a label, a colour, and the per-epoch records of
each seed) and returns a :class:`Plot` holding PNG bytes, or ``None`` when no series has the data, so a
report never shows an empty figure. Curves are the mean over seeds with a band of one standard deviation.

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas directly, not through ``pyplot``: no
global backend or figure state, safe without a display and in any thread.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from resdyn.runs import EpochRecord

#: reads one number (or None) from an epoch's record
Reading = Callable[[EpochRecord], float | None]

DPI = 110
WIDE = (8.5, 4.2)
MANY_EPOCHS = 30  # above this many points a line needs no markers to be read
MEMORY_KINDS = {"cuda_max_allocated": "CUDA allocator peak", "peak_rss": "peak resident memory of the training",
                "process_max_rss": "process max RSS",
                "cuda_max_allocated_reused": "CUDA allocator peak in a process that trained before",
                "peak_rss_reused": "peak resident memory in a process that trained before"}
#: peaks that belong to one training; a process's lifetime max RSS also holds whatever ran before in it
OWN_MEMORY_KINDS = frozenset({"cuda_max_allocated", "peak_rss"})


@dataclass(frozen=True)
class Series:
    """One compared model: what to call it, its colour, and the per-epoch records of each of its seeds."""

    label: str
    colour: str
    seeds: Sequence[Sequence[EpochRecord]]
    depth: int | None = None
    #: the label without its depth, so that e.g. resnet20 and resnet56 are joined in the memory plot
    family: str = ""
    peak_memory_bytes: float | None = None


@dataclass(frozen=True)
class Plot:
    """A finished figure: a file stem, a title, a caption saying how to read it, and the PNG image."""

    slug: str
    title: str
    caption: str
    png: bytes


def colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per label, from a qualitative palette, the same in every figure of a report."""
    unique = sorted(set(labels))
    if len(unique) <= 10:
        palette = matplotlib.colormaps["tab10"].colors
    elif len(unique) <= 20:
        palette = matplotlib.colormaps["tab20"].colors
    else:
        cmap = matplotlib.colormaps["turbo"]
        palette = [cmap(i / (len(unique) - 1)) for i in range(len(unique))]
    return {label: matplotlib.colors.to_hex(palette[i]) for i, label in enumerate(unique)}


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (missing keys, lists, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return float(value)


def nfe(reports: Mapping[str, Any], direction: str) -> float | None:
    """Function evaluations per ``direction`` ("forward" or "backward") pass: the sum over the model's ODE
    blocks of their ``*nfe_<direction>_mean`` values (a block may prefix its keys, or log one value per block in
    a list) in what the model reported, or None for a model without an ODE."""
    pattern = re.compile(rf"(^|.*[^a-z])nfe_{direction}_mean$")
    values = [v for k, v in reports.items() if pattern.match(k)]
    numbers = [n for v in values for n in map(number, v if isinstance(v, list) else [v]) if n is not None]
    return sum(numbers) if numbers else None


def key(name: str) -> Reading:
    """The reading of one numeric field of the record."""
    return lambda record: number(getattr(record, name))


def seed_curve(seeds: Sequence[Sequence[EpochRecord]],
               reading: Reading) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(epochs, mean, std) over the seeds at the epochs every seed has a value for, or None if there are none."""
    per_seed = []
    for records in seeds:
        values = {r.epoch: v for r in records for v in [reading(r)] if v is not None}
        if values:
            per_seed.append(values)
    if not per_seed:
        return None
    epochs = sorted(set.intersection(*(set(v) for v in per_seed)))
    if not epochs:
        return None
    table = np.array([[values[e] for e in epochs] for values in per_seed])
    return np.array(epochs), table.mean(0), table.std(0, ddof=1) if len(table) > 1 else np.zeros(len(epochs))


def _figure(size: tuple[float, float] = WIDE) -> Figure:
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _draw_curve(ax: Any, epochs: np.ndarray, mean: np.ndarray, std: np.ndarray, colour: str,
                bounds: tuple[float, float] = (-np.inf, np.inf), **style: Any) -> None:
    """The mean as a line (with markers when there are few epochs) and the spread over seeds as a band, cut to
    ``bounds`` (a loss below 0 or an accuracy above 100% is no possible value)."""
    style = {"marker": "o" if len(epochs) <= MANY_EPOCHS else None, "markersize": 3.5, "linewidth": 1.6, **style}
    ax.plot(epochs, mean, color=colour, **style)
    if np.any(std > 0):
        low, high = np.clip(mean - std, *bounds), np.clip(mean + std, *bounds)
        ax.fill_between(epochs, low, high, color=colour, alpha=0.18, linewidth=0)


def _log_minor_label(value: float, _: int) -> str:
    """Label the 2 and 5 of each decade on a log axis, and leave the other minor ticks bare."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** np.floor(np.log10(value)))
    return f"{value:g}" if mantissa in (2, 5) else ""


def _model_legend(figure: Figure, series: Sequence[Series], extra: Sequence[Line2D] = (), points: bool = False) -> None:
    """One entry per model in its colour (a line, or a dot for a scatter plot), then the style keys."""
    line = {"linestyle": "none", "marker": "o"} if points else {"linewidth": 2}
    handles = [Line2D([], [], color=s.colour, label=s.label, **line) for s in series] + list(extra)
    figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)


def _epoch_axis(ax: Any, last_epoch: float | None = None) -> None:
    """Label the x axis "epoch" with whole-number ticks only, spanning epochs 1 to ``last_epoch`` (so that a
    single epoch is not drawn on an axis from 2.85 to 3.15)."""
    ax.set_xlabel("epoch")
    if last_epoch is not None:
        pad = max(0.5, 0.03 * (last_epoch - 1))
        ax.set_xlim(1 - pad, last_epoch + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.grid(True, alpha=0.3)


def _last_epoch(*curves: Sequence[tuple[Series, tuple[np.ndarray, ...]]]) -> float | None:
    epochs = [float(c[0][-1]) for group in curves for _, c in group]
    return max(epochs) if epochs else None


def _curves(series: Sequence[Series], reading: Reading) -> list[tuple[Series, tuple[np.ndarray, ...]]]:
    return [(s, c) for s in series for c in [seed_curve(s.seeds, reading)] if c is not None]


#: fewer scored epochs than this and a per-epoch test curve says little: the accuracy figure shows the training
#: accuracy of every epoch and each model's final test accuracy instead
FEW_SCORED_EPOCHS = 3


def _final_test_acc(s: Series) -> list[float]:
    """Each seed's last scored test accuracy."""
    finals = [next((r.test_acc for r in reversed(records) if number(r.test_acc) is not None), None)
              for records in s.seeds]
    return [float(a) for a in finals if a is not None]


def accuracy_figure(series: Sequence[Series]) -> tuple[Figure, str]:
    """The accuracy figure and its title. With :data:`FEW_SCORED_EPOCHS` or more scored epochs: test accuracy per
    epoch. With fewer (``train.eval_every`` scores only the last epoch, as ``make demo`` does): the training
    accuracy per epoch with the scored test points on it, beside each model's final test accuracy (the mean over
    seeds ± one standard deviation, and every seed)."""
    test, train = _curves(series, key("test_acc")), _curves(series, key("train_acc"))
    if test and max(len(c[0]) for _, c in test) >= FEW_SCORED_EPOCHS:
        figure = _figure()
        ax = figure.add_subplot()
        for s, (epochs, mean, std) in test:
            _draw_curve(ax, epochs, 100 * mean, 100 * std, s.colour, bounds=(0, 100))
        _epoch_axis(ax, _last_epoch(test))
        ax.set_ylabel("test accuracy (%)")
        _model_legend(figure, [s for s, _ in test])
        return figure, "Test accuracy per epoch"
    figure = _figure((11, 4.2))
    per_epoch, final = figure.subplots(1, 2, width_ratios=(3, 2))
    for s, (epochs, mean, std) in train:
        _draw_curve(per_epoch, epochs, 100 * mean, 100 * std, s.colour, bounds=(0, 100))
    for s, (epochs, mean, _) in test:
        per_epoch.plot(epochs, 100 * mean, linestyle="none", marker="D", markersize=7, color=s.colour,
                       markeredgecolor="black", markeredgewidth=0.8)
    _epoch_axis(per_epoch, _last_epoch(train, test))
    per_epoch.set_ylabel("accuracy (%)")
    shown = [s for s in series if _final_test_acc(s)]
    for i, s in enumerate(shown):
        values = 100 * np.array(_final_test_acc(s))
        mean = values.mean()
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        # A dot, not a bar: on an axis that does not start at 0 a bar's length would mislead.
        final.errorbar(i, mean, yerr=std if std > 0 else None, fmt="o", markersize=10, color=s.colour,
                       markeredgecolor="black", markeredgewidth=0.8, capsize=6, elinewidth=1.6)
        if len(values) > 1:
            final.plot(i + np.linspace(-0.2, 0.2, len(values)), values, linestyle="none", marker="o",
                       markersize=3.5, color="black")
    if shown:
        finals = 100 * np.concatenate([_final_test_acc(s) for s in shown])
        # Zoomed to the values, as differences of a point or two are what the figure is for; the axis says so.
        low, high = finals.min(), finals.max()
        margin = max(1.0, 0.25 * (high - low))
        final.set_ylim(max(0.0, low - margin), min(100.0, high + margin))
    final.set_xlim(-0.6, len(shown) - 0.4)
    final.set_xticks(range(len(shown)), [s.label for s in shown], rotation=30, ha="right", fontsize="small")
    final.set_ylabel("final test accuracy (%, axis zoomed)")
    final.grid(True, axis="y", alpha=0.3)
    styles = [Line2D([], [], color="0.3", linewidth=1.6, label="train (every epoch)"),
              Line2D([], [], color="0.6", linestyle="none", marker="D", markeredgecolor="black", label="test (scored)")]
    _model_legend(figure, [s for s in series if any(s is t for t, _ in train + test)], styles)
    return figure, "Training accuracy per epoch and final test accuracy"


def accuracy_plot(series: Sequence[Series]) -> Plot | None:
    """Test accuracy per epoch, or where runs were scored in few epochs, training accuracy per epoch and the final
    test accuracy per model (:func:`accuracy_figure`)."""
    if not _curves(series, key("test_acc")) and not _curves(series, key("train_acc")):
        return None
    figure, title = accuracy_figure(series)
    if title == "Test accuracy per epoch":
        caption = "Mean over seeds; the band is ± one standard deviation."
    else:
        caption = (f"The runs were scored on the test set in fewer than {FEW_SCORED_EPOCHS} epochs "
                   "(train.eval_every), too few for a test curve. Left: training accuracy of every epoch (on the "
                   "augmented training batches; mean over seeds, band ± one standard deviation), with the scored "
                   "test accuracy as diamonds. Right: each model's final test accuracy, its mean over seeds a large "
                   "dot with whiskers ± one standard deviation, each seed a small black dot; the axis is zoomed "
                   "to the values.")
    return Plot("test-accuracy", title, caption, _png(figure))


def loss_plot(series: Sequence[Series]) -> Plot | None:
    """Train and test cross-entropy per epoch, on a linear and a logarithmic axis side by side."""
    train, test = _curves(series, key("train_loss")), _curves(series, key("test_loss"))
    if not train and not test:
        return None
    figure = _figure((11, 4.2))
    for ax, scale in zip(figure.subplots(1, 2), ("linear", "log"), strict=True):
        for curves, style in ((train, "-"), (test, "--")):
            for s, (epochs, mean, std) in curves:
                _draw_curve(ax, epochs, mean, std, s.colour, bounds=(0, np.inf), linestyle=style)
        if scale == "log":
            ax.set_yscale("log", nonpositive="clip")
            # Plain numbers (0.2, 5) read faster than 2x10^-1.
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(_log_minor_label))
        _epoch_axis(ax, _last_epoch(train, test))
        ax.set_ylabel(f"cross-entropy loss (nats, {scale} scale)")
    styles = [Line2D([], [], color="0.3", linestyle="-", label="train"),
              Line2D([], [], color="0.3", linestyle="--", label="test")]
    shown = {s.label: s for s, _ in train + test}
    _model_legend(figure, [s for s in series if s.label in shown], styles)
    return Plot("loss", "Loss per epoch (linear and log scale)",
                "Solid: training loss (mean over the epoch's batches, with augmentation); dashed: test loss. "
                "Mean over seeds, band ± one standard deviation.", _png(figure))


def lr_plot(series: Sequence[Series]) -> Plot | None:
    """The learning rate of each epoch's last step; one grey line when every model shares the schedule."""
    curves = _curves(series, key("lr"))
    if not curves:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    shared = all(np.array_equal(c[0], curves[0][1][0]) and np.array_equal(c[1], curves[0][1][1]) for _, c in curves)
    if shared and len(curves) > 1:
        epochs, mean, _ = curves[0][1]
        _draw_curve(ax, epochs, mean, np.zeros_like(mean), "0.25")
        figure.legend(handles=[Line2D([], [], color="0.25", linewidth=2, label="every model")],
                      loc="outside right upper", fontsize="small", frameon=False)
    else:
        # Schedules often coincide: wider lines underneath keep every colour visible where they overlap.
        for i, (s, (epochs, mean, _)) in enumerate(curves):
            _draw_curve(ax, epochs, mean, np.zeros_like(mean), s.colour, linewidth=1.6 + 1.4 * (len(curves) - 1 - i))
        _model_legend(figure, [s for s, _ in curves])
    _epoch_axis(ax, _last_epoch(curves))
    ax.set_ylabel("learning rate (at the epoch's last step)")
    return Plot("learning-rate", "Learning rate", "The schedule's learning rate at the last step of each epoch.",
                _png(figure))


def _lm_k(seeds: Sequence[Sequence[EpochRecord]]) -> np.ndarray | None:
    """k_n as an array (seed, epoch, layer) over the epochs every seed logged, or None without LM blocks."""
    per_seed = [[r.model["lm_k"] for r in records if isinstance(r.model.get("lm_k"), list) and r.model["lm_k"]]
                for records in seeds]
    per_seed = [k for k in per_seed if k]
    if not per_seed:
        return None
    epochs = min(len(k) for k in per_seed)
    return np.array([k[:epochs] for k in per_seed], dtype=float)


def lm_k_final_plot(series: Sequence[Series]) -> Plot | None:
    """LM-ResNet's learned k_n per layer at the end of training."""
    found = [(s, k) for s in series for k in [_lm_k(s.seeds)] if k is not None]
    if not found:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    for s, k in found:
        final = k[:, -1, :]
        layers = np.arange(1, final.shape[1] + 1)
        std = final.std(0, ddof=1) if len(final) > 1 else np.zeros(final.shape[1])
        _draw_curve(ax, layers, final.mean(0), std, s.colour)
    euler = Line2D([], [], color="0.4", linestyle=":", label="k = 0: forward Euler (ResNet)")
    ax.axhline(0, color="0.4", linestyle=":", linewidth=1)
    ax.set_xlabel("LM step n (in network order)")
    ax.set_ylabel("k_n (paper convention)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    _model_legend(figure, [s for s, _ in found], [euler])
    return Plot("lm-k-final", "LM-ResNet: learned k_n per layer, end of training",
                "u_{n+1} = (1 - k_n) u_n + k_n u_{n-1} + f_n(u_n); mean over seeds, band ± one standard deviation. "
                "The first step and the downsampling transitions are Euler steps and have no k_n.", _png(figure))


def lm_k_heatmap(series: Sequence[Series]) -> Plot | None:
    """k_n of every LM step over the epochs, one heatmap per LM model (mean over seeds)."""
    found = [(s, k.mean(0)) for s in series for k in [_lm_k(s.seeds)] if k is not None]
    if not found:
        return None
    limit = max(float(np.abs(k).max()) for _, k in found) or 1.0
    columns = min(len(found), 3)
    rows = -(-len(found) // columns)
    figure = _figure((4.2 * columns + 1.2, 3.4 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    image = None
    for ax, (s, k) in zip(axes, found, strict=False):
        epochs, layers = k.shape
        image = ax.imshow(k.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit,
                          extent=(0.5, epochs + 0.5, 0.5, layers + 0.5), interpolation="nearest")
        ax.set_title(s.label, color=s.colour, fontsize="medium", fontweight="bold")
        ax.set_xlabel("epoch")
        ax.set_ylabel("LM step n")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
    for ax in axes[len(found):]:
        ax.set_visible(False)
    figure.colorbar(image, ax=axes[: len(found)].tolist(), label="k_n (paper convention)")
    return Plot("lm-k-epochs", "LM-ResNet: k_n over training",
                "Each row is one LM step, each column one epoch; blue is negative, red positive, white k_n = 0 "
                "(forward Euler). Mean over seeds.", _png(figure))


def nfe_plot(series: Sequence[Series]) -> Plot | None:
    """Function evaluations per forward and backward pass of the ODE blocks, per epoch."""
    forward = _curves(series, lambda r: nfe(r.model, "forward"))
    backward = _curves(series, lambda r: nfe(r.model, "backward"))
    if not forward and not backward:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    for curves, style in ((forward, "-"), (backward, "--")):
        for s, (epochs, mean, std) in curves:
            _draw_curve(ax, epochs, mean, std, s.colour, linestyle=style)
    _epoch_axis(ax, _last_epoch(forward, backward))
    ax.set_ylabel("function evaluations per pass (mean)")
    styles = [Line2D([], [], color="0.3", linestyle="-", label="forward"),
              Line2D([], [], color="0.3", linestyle="--", label="backward")]
    shown = {s.label for s, _ in forward + backward}
    _model_legend(figure, [s for s in series if s.label in shown], styles)
    return Plot("nfe", "ODE function evaluations over training",
                "Evaluations of the vector field per forward (solid) and backward (dashed) pass, summed over the "
                "network's ODE blocks and averaged over each epoch's batches; mean over seeds.", _png(figure))


def memory_depth_plot(series: Sequence[Series], memory_kind: str | None) -> Plot | None:
    """Peak memory against depth, points coloured per model and joined within a family (e.g. all LM-ResNets).

    Drawn only when every run's figure is its own (``OWN_MEMORY_KINDS``): a process's lifetime max RSS also holds
    the runs before it in the same process, which would make the last model of a suite look hungriest."""
    if memory_kind not in OWN_MEMORY_KINDS:
        return None
    points = [s for s in series if s.depth is not None and s.peak_memory_bytes is not None]
    if len({s.depth for s in points}) < 2:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    mib = 2.0 ** 20
    for family in sorted({s.family for s in points}):
        members = sorted((s for s in points if s.family == family), key=lambda s: s.depth)
        if len(members) > 1:
            ax.plot([s.depth for s in members], [s.peak_memory_bytes / mib for s in members], color="0.6",
                    linewidth=1, zorder=1)
            last = members[-1]
            ax.annotate(family, (last.depth, last.peak_memory_bytes / mib), textcoords="offset points",
                        xytext=(4, 4), fontsize="small", color="0.35")
    for s in points:
        ax.scatter([s.depth], [s.peak_memory_bytes / mib], color=s.colour, s=40, zorder=2)
    ax.set_xlabel("depth (layers)")
    kind = MEMORY_KINDS.get(memory_kind or "", memory_kind or "as measured")
    ax.set_ylabel(f"peak memory (MiB, {kind})")
    ax.grid(True, alpha=0.3)
    ax.margins(0.1, 0.15)  # room for the family names written beside the last point
    _model_legend(figure, points, points=True)
    return Plot("memory-depth", "Peak memory against depth", _memory_caption(memory_kind), _png(figure))


def _memory_caption(memory_kind: str | None) -> str:
    if memory_kind == "cuda_max_allocated":
        return "Peak memory allocated by PyTorch on the GPU during each run (mean over seeds)."
    return ("On the CPU the figure is the peak resident memory of the process while the run trained (reset at its "
            "start): it includes the Python interpreter and the dataset as well as the model and its activations.")


def all_plots(series: Sequence[Series], memory_kind: str | None) -> list[Plot]:
    """Every figure that has data, in reading order."""
    plots = [accuracy_plot(series), loss_plot(series), lr_plot(series), lm_k_final_plot(series),
             lm_k_heatmap(series), nfe_plot(series), memory_depth_plot(series, memory_kind)]
    return [p for p in plots if p is not None]
