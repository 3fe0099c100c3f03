"""PolyNet's scheme: x + F x + F F x with one shared F, and its third-order variant."""

import torch
from torch import nn

from resdyn import build_model
from resdyn.schemes import Poly


def test_factorised_form_equals_the_polynomial():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(5, 5), nn.Tanh())
    x = torch.randn(7, 5)
    assert torch.allclose(Poly([f], [nn.Identity()])(x), x + f(x) + f(f(x)))
    assert torch.allclose(Poly([f], [nn.Identity()], order=3)(x), x + f(x) + f(f(x)) + f(f(f(x))))


def test_linear_field_gives_the_truncated_neumann_series():
    # For F = A linear, (I + A + A^2) x approximates (I - A)^{-1} x: the backward-Euler reading of the block.
    torch.manual_seed(1)
    a = 0.05 * torch.randn(6, 6, dtype=torch.float64)
    f = nn.Linear(6, 6, bias=False).double()
    with torch.no_grad():
        f.weight.copy_(a)
    x = torch.randn(6, dtype=torch.float64)
    exact = torch.linalg.solve(torch.eye(6, dtype=torch.float64) - a, x)
    second = Poly([f], [nn.Identity()])(x)
    third = Poly([f], [nn.Identity()], order=3)(x)
    assert (third - exact).norm() < (second - exact).norm() < (x + f(x) - exact).norm()


def test_transitions_are_euler_steps():
    f = nn.Linear(2, 4)
    project = nn.Linear(2, 4, bias=False)
    x = torch.randn(3, 2)
    assert torch.allclose(Poly([f], [project])(x), project(x) + f(x))


def test_polynet_shares_weights_with_the_resnet_layout():
    assert sum(p.numel() for p in build_model("polynet20").parameters()) == 269_722
