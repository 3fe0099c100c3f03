"""FractalNet's expansion rule: the rule itself, its counts, the paper's joins, local and global drop-path, eval."""

import copy

import pytest
import torch
from torch import nn

from resdyn.schemes.fractal import Fractal, FractalBlock, local_drop_mask, mean_join, only_column

WIDTH = 3


def conv(in_channels: int, out_channels: int) -> nn.Module:
    # A smooth base layer without BatchNorm, so outputs do not depend on the batch and can be recomputed by hand.
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Tanh())


def block(columns: int, in_channels: int = WIDTH, **options) -> FractalBlock:
    torch.manual_seed(columns)
    return FractalBlock(columns, in_channels, WIDTH, conv, **options)


def chain(layers, z):
    for layer in layers:
        z = layer(z)
    return z


def convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


z = torch.randn(2, 2, 5, 5)


def test_two_columns_are_half_two_steps_plus_half_one_conv():
    # f_2(z) = join(f_1(f_1(z)), conv(z)) = 1/2 conv_b(conv_a(z)) + 1/2 conv_c(z): the FIUBA 75.26 report's eq. 11
    # at C = 2.
    f = block(2, in_channels=2).train()
    (conv_c,), (conv_a, conv_b) = f.column(0), f.column(1)
    assert f.column(1) == [f.inner.conv, f.outer.conv] and conv_c is f.conv
    torch.testing.assert_close(f(z), 0.5 * conv_b(conv_a(z)) + 0.5 * conv_c(z))


def test_three_columns_flat_join_averages_every_column_ending_there():
    f = block(3, in_channels=2).eval()
    (a,), (b1, b2), (d1, d2, d3, d4) = f.column(0), f.column(1), f.column(2)
    middle = (d2(d1(z)) + b1(z)) / 2
    torch.testing.assert_close(f(z), (d4(d3(middle)) + b2(middle) + a(z)) / 3)


def test_nested_join_is_the_binary_reading_with_halving_weights():
    # f_3 = 1/2 f_2 o f_2 + 1/2 conv with every join binary: the shallowest column weighs 1/2, the others 1/4.
    f = block(3, in_channels=2, flat_join=False).eval()
    (a,), (b1, b2), (d1, d2, d3, d4) = f.column(0), f.column(1), f.column(2)
    middle = (d2(d1(z)) + b1(z)) / 2
    torch.testing.assert_close(f(z), (d4(d3(middle)) + b2(middle)) / 4 + a(z) / 2)


@pytest.mark.parametrize("columns", [1, 2, 3, 4, 5])
def test_a_block_of_c_columns_has_2c_minus_1_convolutions_and_depth_2c_minus_1(columns):
    f = block(columns)
    assert len(convs(f)) == 2**columns - 1
    assert [len(f.column(k)) for k in range(columns)] == [2**k for k in range(columns)]
    # The columns partition the convolutions.
    by_column = [id(m) for k in range(columns) for layer in f.column(k) for m in convs(layer)]
    assert sorted(by_column) == sorted(id(m) for m in convs(f))


@pytest.mark.parametrize(("flat_join", "sizes"), [(True, [2, 3, 2, 4]), (False, [2] * 7)])
def test_join_sizes_match_the_papers_four_column_block(monkeypatch, flat_join, sizes):
    # Caffe generator of the paper (gustavla/fractalnet): join2, join3, join2, join4 along a 4-column block.
    seen = []

    def recording_join(branches, keep=None):
        seen.append(len(branches))
        return mean_join(branches, keep)

    monkeypatch.setattr("resdyn.schemes.fractal.mean_join", recording_join)
    block(4, flat_join=flat_join).eval()(torch.randn(1, WIDTH, 4, 4))
    assert seen == sizes


@pytest.mark.parametrize(("inputs", "drop_prob"), [(2, 0.15), (3, 0.5), (4, 0.9)])
def test_local_drop_path_keeps_one_input_and_drops_at_the_right_rate(inputs, drop_prob):
    torch.manual_seed(0)
    draws = 20_000
    masks = torch.tensor([local_drop_mask(inputs, drop_prob) for _ in range(draws)])
    assert masks.any(dim=1).all()
    # Each input is dropped with p, except when all are and it is the one revived: P = p - p^n / n.
    expected = drop_prob - drop_prob**inputs / inputs
    rate = 1 - masks.float().mean(dim=0)
    assert torch.allclose(rate, torch.full((inputs,), expected), atol=4 * (expected * (1 - expected) / draws) ** 0.5)


def test_local_drop_path_averages_the_survivors_and_zeroes_the_dropped_gradients():
    branches = [torch.full((2,), float(2**i), requires_grad=True) for i in range(3)]
    out = mean_join(branches, [True, False, True])
    assert out.tolist() == [2.5, 2.5]
    out.sum().backward()
    assert [b.grad.tolist() for b in branches] == [[0.5, 0.5], [0.0, 0.0], [0.5, 0.5]]


def test_local_drop_path_acts_in_training_only():
    f = block(4, drop_prob=0.5)
    plain = copy.deepcopy(f)
    for m in plain.modules():
        if isinstance(m, FractalBlock):
            m.drop_prob = 0.0
    x = torch.randn(1, WIDTH, 4, 4)
    torch.manual_seed(1)
    assert len({tuple(f.train()(x).flatten().tolist()) for _ in range(10)}) > 1
    torch.testing.assert_close(f.eval()(x), plain.train()(x))


def network(columns: int = 3, blocks: int = 2, **options) -> Fractal:
    torch.manual_seed(0)
    fractal_blocks = [FractalBlock(columns, 2 if b == 0 else WIDTH, WIDTH, conv, **options.pop("block", {}))
                      for b in range(blocks)]
    return Fractal(fractal_blocks, [nn.AvgPool2d(2) for _ in range(blocks)], **options)


def column_chain(net: Fractal, k: int, x: torch.Tensor) -> torch.Tensor:
    for f, transition in zip(net.blocks, net.transitions, strict=True):
        x = transition(chain(f.column(k), x))
    return x


def test_global_drop_path_uses_one_column_throughout_the_network():
    net = network(global_drop_ratio=1.0, block={"drop_prob": 0.5}).train()
    x = torch.randn(2, 2, 8, 8)
    seen = set()
    for step in range(40):
        torch.manual_seed(step)
        k = net.global_column()
        torch.manual_seed(step)
        net.zero_grad()
        out = net(x)
        # The output is exactly column k's chain of 2^k convolutions in every block, and only its layers learn.
        torch.testing.assert_close(out, column_chain(net, k, x))
        out.square().sum().backward()
        for b, f in enumerate(net.blocks):
            for j in range(net.columns):
                for layer in f.column(j):
                    moved = layer[0].weight.grad.abs().sum() > 0
                    assert moved == (j == k), f"block {b} column {j} under global column {k}"
        seen.add(k)
    assert seen == {0, 1, 2}


def test_other_columns_outputs_do_not_reach_a_global_column():
    net = network(global_drop_ratio=1.0).train()
    x = torch.randn(2, 2, 8, 8)
    torch.manual_seed(3)
    k = net.global_column()
    torch.manual_seed(3)
    reference = net(x)
    # Make every layer off column k return a huge value: the output must not move.
    for f in net.blocks:
        for j in set(range(net.columns)) - {k}:
            for layer in f.column(j):
                layer.register_forward_hook(lambda module, args, out: torch.full_like(out, 1e6))
    torch.manual_seed(3)
    torch.testing.assert_close(net(x), reference)


def test_global_drop_path_takes_its_share_of_batches():
    net = network(global_drop_ratio=0.5).train()
    torch.manual_seed(0)
    draws = [net.global_column() for _ in range(4000)]
    assert sum(d is not None for d in draws) / len(draws) == pytest.approx(0.5, abs=0.03)
    columns = torch.tensor([d for d in draws if d is not None])
    assert torch.bincount(columns).tolist() == pytest.approx([len(columns) / 3] * 3, rel=0.1)


def test_eval_is_deterministic_and_joins_every_column():
    net = network(global_drop_ratio=1.0, block={"drop_prob": 0.9}).eval()
    quiet = network(global_drop_ratio=0.0, block={"drop_prob": 0.0}).eval()
    x = torch.randn(2, 2, 8, 8)
    torch.testing.assert_close(net(x), net(x))
    torch.testing.assert_close(net(x), quiet(x))
    # The full join differs from every single column.
    for k in range(net.columns):
        assert not torch.allclose(net(x), column_chain(net, k, x))


def test_single_column_eval_is_that_columns_chain_and_restores():
    net = network().eval()
    x = torch.randn(2, 2, 8, 8)
    full = net(x)
    with only_column(net):
        torch.testing.assert_close(net(x), column_chain(net, 2, x))
    torch.testing.assert_close(net(x), full)
    net.eval_column = 0
    torch.testing.assert_close(net(x), column_chain(net, 0, x))


def bn_network(**options) -> Fractal:
    def conv_bn(in_channels: int, out_channels: int) -> nn.Module:
        # Momentum 1: the running statistics are those of the last batch.
        norm = nn.BatchNorm2d(out_channels, momentum=1.0)
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), norm)

    torch.manual_seed(0)
    blocks = [FractalBlock(3, 2 if b == 0 else WIDTH, WIDTH, conv_bn) for b in range(2)]
    return Fractal(blocks, [nn.AvgPool2d(2), nn.AvgPool2d(2)], **options)


def joined_statistics(net: Fractal) -> torch.Tensor:
    return torch.cat([torch.cat([m.running_mean, m.running_var]) for m in net.norms()])


def test_each_column_keeps_its_own_batchnorm_statistics():
    net = bn_network(global_drop_ratio=1.0).train()
    x = torch.randn(4, 2, 8, 8)
    joined, columns = joined_statistics(net).clone(), net.column_running_mean.clone()
    torch.manual_seed(5)
    k = net.global_column()
    torch.manual_seed(5)
    out = net(x)
    out.sum().backward()  # the statistics swapped back after the forward pass do not upset autograd
    assert torch.equal(joined_statistics(net), joined)
    changed = (net.column_running_mean != columns).any(dim=1)
    assert changed.tolist() == [j == k for j in range(3)]
    # With momentum 1 the column's running statistics are its batch's: evaluating that column on the same batch
    # gives the training output again (up to the unbiased variance BatchNorm keeps).
    net.eval().eval_column = k
    torch.testing.assert_close(net(x), out, rtol=2e-2, atol=2e-2)


def test_local_drop_path_batches_update_the_joined_statistics_only():
    net = bn_network(global_drop_ratio=0.0).train()
    joined, columns = joined_statistics(net).clone(), net.column_running_mean.clone()
    net(torch.randn(4, 2, 8, 8))
    assert not torch.equal(joined_statistics(net), joined)
    assert torch.equal(net.column_running_mean, columns)


def test_column_statistics_are_saved_with_the_model():
    net = bn_network(global_drop_ratio=1.0).train()
    for _ in range(3):
        net(torch.randn(4, 2, 8, 8))
    copy_ = bn_network()
    copy_.load_state_dict(net.state_dict())
    assert torch.equal(copy_.column_running_var, net.column_running_var)
    assert copy_.column_batches_tracked.sum() == 3 * len(net.norms())


def test_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match=r"eval_column 3 does not exist in a network of 3 columns: use 0\.\.2"):
        network().eval_column = 3
    with pytest.raises(ValueError, match=r"same number of columns, got \[2, 3\]"):
        Fractal([FractalBlock(3, 2, 2, conv), FractalBlock(2, 2, 2, conv)], [nn.Identity(), nn.Identity()])
    with pytest.raises(ValueError, match=r"column 4 does not exist in a block of 3 columns; valid: 0\.\.2"):
        block(3)(torch.randn(1, WIDTH, 4, 4), 4)
    with pytest.raises(ValueError, match="no fractal body"):
        with only_column(nn.Linear(2, 2)):
            pass
