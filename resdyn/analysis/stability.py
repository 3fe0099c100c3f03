"""Linear stability regions of the schemes in a comparison, as a figure for the report.

For ``u' = λu`` each step-by-step scheme is stable where every root of its characteristic polynomial has
``|ρ| <= 1`` (:func:`resdyn.schemes.stability_region`), in the plane of ``z = hλ``, the eigenvalue of a field as
the network uses it. A trained scheme (a :class:`~resdyn.schemes.Scheme` instance) is drawn with its own
coefficients: LM-ResNet with the mean of its learned ``k_n``, momentum with its ``γ``. Architectures with no linear
stability polynomial (``resdyn.schemes.ARCHITECTURES``: FractalNet, the ODE block, RevNet) are left out, and the
title names them.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from resdyn.schemes import ARCHITECTURES, SCHEMES, LinearMultistep, Scheme, stability_region

SchemeLike = str | type[Scheme] | Scheme | tuple[str, dict[str, float]]


def _label_and_coefficients(scheme: SchemeLike) -> tuple[str, type[Scheme] | None, dict[str, float]]:
    """The legend's label, the scheme class (None for an architecture, which has no stability polynomial) and
    the coefficients to draw it with."""
    if isinstance(scheme, str | tuple):  # a name, or a name with its coefficients as a run's summary records them
        name, coefficients = (scheme, {}) if isinstance(scheme, str) else scheme
        label = name + "".join(f", {k}={v:.3g}" for k, v in coefficients.items())
        return label, None if name in ARCHITECTURES else SCHEMES.get(name), coefficients
    if isinstance(scheme, type):
        return scheme.__name__, scheme, {}
    coefficients = {k: v for k, v in dataclasses.asdict(scheme.options).items() if isinstance(v, float | int)}
    if isinstance(scheme, LinearMultistep):
        k = scheme.k_paper()
        coefficients["k"] = float(k.mean()) if k.numel() else 0.0
    label = type(scheme).__name__ + "".join(f", {k}={v:.3g}" for k, v in coefficients.items())
    return label, type(scheme), coefficients


def stability_figure(
    schemes: Sequence[SchemeLike],
    extent: tuple[float, float, float, float] = (-4.0, 2.0, -3.0, 3.0),
    points: int = 301,
) -> Figure:
    """The boundary ``max |ρ| = 1`` of each scheme's stability region over ``extent`` (re min, re max, im min,
    im max), the region of the first shaded; one colour per scheme."""
    re = np.linspace(extent[0], extent[1], points)
    im = np.linspace(extent[2], extent[3], points)
    z = re[None, :] + 1j * im[:, None]
    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    handles, left_out = [], []
    colours = [f"C{i}" for i in range(10)]
    for i, scheme in enumerate(schemes):
        label, cls, coefficients = _label_and_coefficients(scheme)
        if cls is None:
            left_out.append(label)
            continue
        growth = stability_region(cls, z, **coefficients)
        colour = colours[i % len(colours)]
        if not handles:
            ax.contourf(re, im, growth <= 1, levels=[0.5, 1.5], colors=[colour], alpha=0.15)
        ax.contour(re, im, growth, levels=[1.0], colors=[colour], linewidths=1.5)
        handles.append(Line2D([], [], color=colour, label=label))
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.set_xlabel("Re(hλ)")
    ax.set_ylabel("Im(hλ)")
    ax.set_aspect("equal")
    title = "Linear stability regions (|ρ| ≤ 1 inside)"
    if left_out:
        title += f"\nnot shown (no linear stability polynomial): {', '.join(left_out)}"
    ax.set_title(title, fontsize=9)
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="upper left")
    return fig


def stability_png(schemes: Sequence[SchemeLike], **kwargs: object) -> bytes:
    """:func:`stability_figure` as PNG bytes."""
    buffer = io.BytesIO()
    stability_figure(schemes, **kwargs).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
