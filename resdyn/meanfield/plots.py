"""Figures of the mean-field theory: per-layer curves (theory against simulation) and trainability maps.

Drawn on ``matplotlib.figure.Figure`` with the Agg canvas, as ``resdyn.analysis.plots`` does: no pyplot state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DPI = 110
#: (key in curves.json, axis label, log axis): p, s and χ grow exponentially for ReLU nets, e stays in [-1, 1]
PANELS = [("p", "length p", True), ("e", "cosine e", False), ("s", "expressivity s = (1 - e) p", True),
          ("chi", "gradient χ / χ^L", True)]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def curves_png(curves: Mapping[str, Any]) -> bytes:
    """Four panels over the layers: the theory as a line, the simulation's mean ± one standard deviation as
    points with a band (``curves`` as in ``curves.json``)."""
    layers = np.asarray(curves["layers"])
    settings = curves["settings"]
    figure = Figure(figsize=(11, 7.5))
    axes = figure.subplots(2, 2).ravel()
    for ax, (key, label, log) in zip(axes, PANELS, strict=True):
        # null (a value past float64's range, as curves.json stores it) becomes NaN: a gap in the line
        ax.plot(layers, np.asarray(curves["theory"][key], dtype=float), color="C0", label="mean-field theory")
        sim = curves.get("simulation")
        if sim is not None:
            mean, std = np.asarray(sim[key]["mean"], dtype=float), np.asarray(sim[key]["std"], dtype=float)
            lower = np.maximum(mean - std, mean * 1e-3) if log else mean - std
            ax.fill_between(layers, lower, mean + std, color="C1", alpha=0.25, linewidth=0)
            ax.plot(layers, mean, "o", color="C1", markersize=3,
                    label=f"simulation, width {settings['width']} (mean ± std of {settings['samples']} nets)")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("layer l")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    title = (f"{settings['net'].upper()} {settings['activation']}"
             + (f" (α = {settings['alpha']})" if settings.get("alpha") is not None else "")
             + ": σ_w² = {sigma_w2}, σ_v² = {sigma_v2}, σ_a² = {sigma_a2}, σ_b² = {sigma_b2}".format(**settings)
             + f"; log R = {np.float64(curves['theory']['log_R']):.3g}")
    figure.suptitle(title)
    return _png(figure)


def map_png(result: Mapping[str, Any]) -> bytes:
    """Test accuracy over (axis value, depth) as a heat map, with contour lines of the theory's quantity."""
    settings = result["settings"]
    values, depths = np.asarray(settings["values"], dtype=float), np.asarray(settings["depths"], dtype=float)
    accuracy = np.asarray(result["accuracy"], dtype=float)
    figure = Figure(figsize=(8, 6))
    ax = figure.subplots()
    mesh = ax.pcolormesh(_edges(values), _edges(depths), accuracy, cmap="viridis", vmin=0.0,
                         vmax=max(float(accuracy.max()), 0.1), shading="flat")
    figure.colorbar(mesh, ax=ax, label="test accuracy")
    theory = result["theory"]
    grid = np.asarray(theory["grid"], dtype=float)
    t_depths = np.asarray(theory["depths"], dtype=float)
    keep = t_depths >= 1
    finite = grid[keep][np.isfinite(grid[keep])]
    if finite.size:
        contours = ax.contour(np.asarray(theory["values"]), t_depths[keep], grid[keep], levels=8, colors="white",
                              linewidths=1.0)
        ax.clabel(contours, fontsize=7, fmt="%.3g")
    ax.set_xlabel(settings["axis"].replace("sigma_", "σ_").replace("rho2", "ρ²"))
    ax.set_ylabel("depth L")
    ax.set_ylim(depths.min() - 0.5, depths.max() + 0.5)
    name = {"log_R": "log R", "log10_s": "log10 s^L"}[theory["quantity"]]
    ax.set_title(f"{settings['net'].upper()} {settings['activation']} on {settings['data']}: test accuracy; "
                 f"contours: theory's {name}", fontsize=9)
    return _png(figure)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges halfway between sorted centres (one cell per grid point, however uneven the grid)."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def feedforward_map_png(sigma_w2: np.ndarray, trainable: np.ndarray, title: str,
                        accuracy: Mapping[str, Any] | None = None) -> bytes:
    """Plain nets over (σ_w², depth): the theory's trainable depth ``6 ξ_c`` as a line (Schoenholz et al. 2017,
    Fig. 5), over a test-accuracy heat map when ``accuracy`` (``{"values", "depths", "grid"}``) is given."""
    figure = Figure(figsize=(8, 6))
    ax = figure.subplots()
    if accuracy is not None:
        grid = np.asarray(accuracy["grid"], dtype=float)
        mesh = ax.pcolormesh(_edges(np.asarray(accuracy["values"], dtype=float)),
                             _edges(np.asarray(accuracy["depths"], dtype=float)), grid, cmap="viridis", vmin=0.0,
                             shading="flat")
        figure.colorbar(mesh, ax=ax, label="test accuracy")
    ax.plot(sigma_w2, trainable, color="white" if accuracy is not None else "C0", label="6 ξ_c (theory)")
    ax.set_xlabel("σ_w²")
    ax.set_ylabel("depth L")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _png(figure)
