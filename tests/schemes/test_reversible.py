"""RevNet's reversible coupling: exact inverse, gradients without stored activations, BN and RNG replay."""

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from resdyn.analysis.profile import saved_tensor_bytes
from resdyn.fields import PreActBasicField
from resdyn.noise import DropBranch, GaussianBranch
from resdyn.schemes.reversible import Reversible, ReversibleBlock, halves

HALF = 3  # channels per half


def stage(blocks: int, field: Callable[[], nn.Module] = lambda: PreActBasicField(HALF, HALF)) -> Reversible:
    return Reversible([ReversibleBlock(field(), field()) for _ in range(blocks)]).double()


def state(requires_grad: bool = True) -> torch.Tensor:
    return torch.randn(4, 2 * HALF, 4, 4, dtype=torch.float64, requires_grad=requires_grad)


def ordinary(memory_saving: Reversible) -> Reversible:
    """The same blocks (a copy: same weights and buffers) backpropagating by ordinary autograd."""
    twin = copy.deepcopy(memory_saving)
    twin.memory_saving = False
    return twin


def step(net: nn.Module, x: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and input gradient of a loss that weighs every output entry differently; then the next draw."""
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(seed)
    y = net(x)
    weights = torch.linspace(-1, 2, y.numel(), dtype=y.dtype).reshape(y.shape)
    (y * weights).sum().backward()
    return y.detach(), x.grad


def test_block_is_the_coupling_and_its_inverse():
    torch.manual_seed(0)
    f, g = nn.Conv2d(HALF, HALF, 3, padding=1).double(), nn.Conv2d(HALF, HALF, 3, padding=1).double()
    block = ReversibleBlock(f, g)
    x = state(requires_grad=False)
    x1, x2 = x[:, :HALF], x[:, HALF:]
    y1 = x1 + f(x2)
    assert torch.equal(block(x), torch.cat((y1, x2 + g(y1)), dim=1))
    assert (block.inverse(block(x)) - x).abs().max() < 1e-12


def test_inverse_reconstructs_the_stage_input():
    torch.manual_seed(0)
    net = stage(8)
    x = state(requires_grad=False)
    with torch.no_grad():
        y = net(x)
        for block in reversed(net.blocks):
            y = block.inverse(y)
    assert (y - x).abs().max() < 1e-10


def test_transition_has_no_inverse():
    block = ReversibleBlock(nn.Conv2d(2, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(2, 4, 1), nn.Conv2d(2, 4, 1))
    assert not block.invertible
    with pytest.raises(ValueError, match="no inverse"):
        block.inverse(torch.randn(1, 8, 2, 2))


def test_invertible_blocks_are_grouped_into_runs_between_transitions():
    def block(invertible: bool) -> ReversibleBlock:
        return ReversibleBlock(nn.Identity(), nn.Identity(), *(() if invertible else (nn.Identity(), nn.ReLU())))

    net = Reversible([block(False), block(True), block(True), block(False), block(True)])
    assert net.runs == [(0, 1, False), (1, 3, True), (3, 4, False), (4, 5, True)]


FIELDS = {
    "batchnorm": lambda: PreActBasicField(HALF, HALF),
    "drop-per-image": lambda: DropBranch(PreActBasicField(HALF, HALF), 0.5, per="image"),
    # Per batch, a dropped branch is zeros_like(x), a tensor with no graph: backward must skip it.
    "drop-per-batch": lambda: DropBranch(PreActBasicField(HALF, HALF), 0.5, scaling="train"),
    "gaussian": lambda: GaussianBranch(PreActBasicField(HALF, HALF), std=0.3),
}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", FIELDS)
def test_gradients_equal_ordinary_backprop(kind, train):
    torch.manual_seed(0)
    saving = stage(4, FIELDS[kind]).train(train)
    plain = ordinary(saving)
    x = state()
    y_saving, dx_saving = step(saving, x)
    next_saving = torch.rand(3)
    y_plain, dx_plain = step(plain, x)
    next_plain = torch.rand(3)

    # Stochastic fields replay their draws in the recomputation; otherwise the gradients would disagree.
    assert torch.equal(y_saving, y_plain)
    torch.testing.assert_close(dx_saving, dx_plain, rtol=1e-10, atol=1e-12)
    for (name, p), q in zip(saving.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)
    # Backward replays the forward's draws without moving the global RNG: training continues identically.
    assert torch.equal(next_saving, next_plain)


def test_stochastic_fields_are_random():
    # Guards the test above: with these seeds the noise really changes the output.
    torch.manual_seed(0)
    for kind in ("drop-per-image", "drop-per-batch", "gaussian"):
        net = stage(4, FIELDS[kind])
        x = state(requires_grad=False)
        with torch.no_grad():
            torch.manual_seed(1)
            first = net(x)
            second = net(x)
        assert not torch.equal(first, second), kind


def test_batchnorm_running_statistics_count_each_batch_once():
    torch.manual_seed(0)
    saving = stage(4)
    for bn in saving.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.momentum = None  # cumulative average: the update depends on num_batches_tracked too
    plain = ordinary(saving)
    before = [b.clone() for b in saving.buffers()]
    x = state()
    step(saving, x)
    step(plain, x)
    for (name, b), c, b0 in zip(saving.named_buffers(), plain.buffers(), before, strict=True):
        assert torch.equal(b, c), name
        if name.endswith("num_batches_tracked"):
            assert b.item() == 1
        else:
            assert not torch.equal(b, b0), f"{name} was not updated at all"


def test_saved_bytes_do_not_grow_with_depth():
    torch.manual_seed(0)
    x = state()
    saving = {n: saved_tensor_bytes(stage(n), x) for n in (2, 4, 8)}
    plain = {n: saved_tensor_bytes(ordinary(stage(n)), x) for n in (2, 4, 8)}
    # Memory-saving: only the stage's output.
    assert saving[2] == saving[4] == saving[8] == x.numel() * x.element_size()
    # Ordinary autograd: the same activations for every block, so linear in depth.
    assert plain[8] - plain[4] == 2 * (plain[4] - plain[2]) > 0
    assert plain[2] > 2 * saving[2]


def test_gradcheck_tiny_stage():
    torch.manual_seed(0)

    def field() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Tanh())

    net = Reversible([ReversibleBlock(field(), field()) for _ in range(2)]).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    params = tuple(net.parameters())
    # gradcheck perturbs the parameters in place, so the module sees each perturbation.
    assert torch.autograd.gradcheck(lambda x, *_: net(x), (x, *params), fast_mode=True)


def test_parameters_get_gradients_when_the_input_needs_none():
    torch.manual_seed(0)
    net = stage(3)
    x = state(requires_grad=False)
    y = net(x)
    assert y.requires_grad
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert x.grad is None


def test_frozen_parameters_are_left_alone():
    torch.manual_seed(0)
    net = stage(3)
    frozen = net.blocks[1].f
    frozen.requires_grad_(False)
    x = state()
    net(x).sum().backward()
    assert all(p.grad is None for p in frozen.parameters())
    assert x.grad is not None and all(p.grad is not None for p in net.blocks[1].g.parameters())


def test_no_grad_runs_a_plain_forward_and_saves_nothing():
    torch.manual_seed(0)
    net = stage(4).eval()
    x = state()
    with torch.no_grad():
        assert saved_tensor_bytes(net, x) == 0
        y = net(x)
    assert y.grad_fn is None
    assert torch.equal(y, ordinary(net)(x).detach())


def test_channels_last_halves_are_dense_and_the_gradients_still_equal_ordinary_backprop():
    """A channel half of a channels_last state is copied dense (the CPU's BatchNorm is ~20x slower on the strided
    slice); values, the inverse and the gradients are those of the contiguous layout."""
    x = state(requires_grad=False).contiguous(memory_format=torch.channels_last)
    for half, expected in zip(halves(x), x.chunk(2, dim=1), strict=True):
        assert half.is_contiguous(memory_format=torch.channels_last) and torch.equal(half, expected)
    torch.manual_seed(0)
    net = stage(3).to(memory_format=torch.channels_last)
    y, dx = step(net, x)
    y_ordinary, dx_ordinary = step(ordinary(net), x.contiguous())
    torch.testing.assert_close(y, y_ordinary, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dx, dx_ordinary, rtol=1e-10, atol=1e-10)
