"""Leapfrog: the update rule, reversible backprop that agrees with ordinary autograd, memory flat in depth."""

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.analysis.profile import saved_tensor_bytes
from resdyn.errors import ConfigError
from resdyn.fields import PreActBasicField
from resdyn.noise import GaussianBranch
from resdyn.schemes import Leapfrog

C = 3


def scheme(steps: int, memory_saving: bool = True, noise: bool = False) -> Leapfrog:
    def field() -> nn.Module:
        f = PreActBasicField(C, C)
        return GaussianBranch(f, 0.1) if noise else f

    return Leapfrog([field() for _ in range(steps)], [nn.Identity()] * steps, memory_saving=memory_saving).double()


def test_forward_is_the_two_step_midpoint_rule():
    torch.manual_seed(0)
    net = scheme(5).eval()
    u = torch.randn(2, C, 4, 4, dtype=torch.float64)
    states = [u, u + net.fields[0](u)]  # the first step is Euler
    for n in range(1, 5):
        states.append(states[-2] + net.fields[n](states[-1]))
    with torch.no_grad():
        assert torch.allclose(net(u), states[-1])
    # The memory-saving path (grad enabled) computes the same function.
    assert torch.allclose(net(u), states[-1])


@pytest.mark.parametrize("steps", [4, 5])
def test_memory_saving_gradients_equal_ordinary_autograd(steps):
    torch.manual_seed(0)
    saving = scheme(steps, noise=True).train()
    plain = scheme(steps, memory_saving=False, noise=True).train()
    plain.load_state_dict(saving.state_dict())
    u = torch.randn(2, C, 4, 4, dtype=torch.float64)

    def grads(net):
        x = u.clone().requires_grad_()
        torch.manual_seed(1)  # the same Gaussian noise draws in both
        net(x).sin().sum().backward()
        return [x.grad] + [p.grad for p in net.parameters()]

    for a, b in zip(grads(saving), grads(plain), strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    # BatchNorm counted the batch once, not again in the recomputation.
    bns = [m for m in saving.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(int(m.num_batches_tracked) == 1 for m in bns)


def test_saved_bytes_stay_flat_in_depth():
    torch.manual_seed(0)
    u = torch.randn(2, C, 8, 8, dtype=torch.float64)
    saving = {n: saved_tensor_bytes(scheme(n), u) for n in (3, 5, 9)}
    plain = {n: saved_tensor_bytes(scheme(n, memory_saving=False), u) for n in (3, 5, 9)}
    assert saving[3] == saving[5] == saving[9]
    assert plain[9] - plain[5] == 2 * (plain[5] - plain[3]) > 0  # linear in the number of steps
    assert plain[9] > 3 * saving[9]


def test_post_activation_fields_are_refused():
    with pytest.raises(ConfigError, match="use pre-activation fields"):
        build_model("resnet", depth=8, scheme="leapfrog", preact=False)
    assert build_model("resnet", depth=8, scheme="leapfrog", preact=True).body.reversible
