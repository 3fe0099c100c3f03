"""The stability-region figure: one boundary per scheme at |ρ| = 1, learned coefficients, left-out schemes named."""

import numpy as np
import pytest
import torch
from torch import nn

from resdyn.analysis.stability import stability_figure, stability_png
from resdyn.schemes import LinearMultistep


def boundary_points(fig, index: int) -> np.ndarray:
    contour = [c for c in fig.axes[0].collections if hasattr(c, "get_paths")]
    lines = [c for c in contour if c.get_linewidth().size and c.get_linewidth()[0] == 1.5]
    return np.concatenate([p.vertices for p in lines[index].get_paths()])


def test_euler_boundary_is_the_unit_circle_around_minus_one():
    fig = stability_figure(["euler", "rk4"], points=201)
    z = boundary_points(fig, 0)
    assert np.allclose(np.hypot(z[:, 0] + 1, z[:, 1]), 1, atol=0.03)
    rk4 = boundary_points(fig, 1)
    assert rk4[np.abs(rk4[:, 1]) < 0.02, 0].min() == pytest.approx(-2.785, abs=0.03)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["euler", "rk4"]


def test_a_trained_lm_scheme_is_drawn_with_its_learned_k_and_others_are_named():
    lm = LinearMultistep([nn.Identity()] * 3, [nn.Identity()] * 3)
    with torch.no_grad():
        lm.k.fill_(-0.25)
    fig = stability_figure([lm, "ode"], points=51)
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "LinearMultistep, k=-0.25"
    assert "not shown (no linear stability polynomial): ode" in fig.axes[0].get_title()
    assert stability_png(["ab2"], points=51)[:8] == b"\x89PNG\r\n\x1a\n"
