"""CIFAR RevNets: parameter counts against Gomez et al. 2017 (Table 1), layout, noise, memory saving."""

import copy

import pytest
import torch

from resdyn import build_model
from resdyn.analysis.profile import count_parameters
from resdyn.errors import ConfigError
from resdyn.noise import DropBranch
from resdyn.schemes.reversible import Reversible

NAMES = ("revnet38", "revnet110", "revnet164")


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # Gomez et al. 2017, Table 1: 0.46M, 1.73M and 1.75M; our exact counts round to the paper's.
        ("revnet38", 464_890),
        ("revnet110", 1_729_194),
        ("revnet164", 1_748_778),
    ],
)
def test_parameter_counts_match_the_paper(name, params):
    assert count_parameters(build_model(name)) == params


@pytest.mark.parametrize(("name", "units", "transitions"), [("revnet38", 9, 2), ("revnet110", 27, 2),
                                                             ("revnet164", 27, 3)])
def test_only_transitions_store_activations(name, units, transitions):
    # Basic RevNets keep width 32 into stage 1, so only the two stride-2 units are transitions; RevNet-164's
    # first unit also widens 32 -> 128 channels.
    body = build_model(name).body
    assert isinstance(body, Reversible) and len(body.blocks) == units
    assert sum(not block.invertible for block in body.blocks) == transitions


def test_grayscale_28x28_input():
    model = build_model("revnet38", in_channels=1, num_classes=10)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_odd_sizes_pool_like_the_strided_convolution():
    assert build_model("revnet38")(torch.randn(2, 3, 15, 15)).shape == (2, 10)


def test_memory_saving_gives_the_gradients_of_ordinary_backprop():
    torch.manual_seed(0)
    saving = build_model("revnet38", in_channels=1, noise="stochastic-depth",
                         noise_options={"survival_last": 0.5, "per": "image"}).double()
    plain = copy.deepcopy(saving)
    plain.body.memory_saving = False
    x, y = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    for net in (saving, plain):
        torch.manual_seed(1)
        torch.nn.functional.cross_entropy(net(x), y).backward()
    for (name, p), q in zip(saving.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)
    for (name, b), c in zip(saving.named_buffers(), plain.buffers(), strict=True):
        assert torch.equal(b, c), name


def test_noise_wraps_every_f_and_g_in_network_order():
    model = build_model("revnet38", noise="stochastic-depth",
                        noise_options={"survival_last": 0.5, "schedule": "linear"})
    probs = [m.survival_prob for m in model.modules() if isinstance(m, DropBranch)]
    # 18 functions; the linear schedule's per-batch draws keep the two shape-changing F's of the transitions.
    assert len(probs) == 16
    assert probs[0] == pytest.approx(1 - 1 / 18 * 0.5) and probs[-1] == pytest.approx(0.5)


def test_unknown_option_lists_valid_options():
    valid = "activation, dropout, field_dropout, init, init_std, memory_saving, noise, noise_options, norm"
    with pytest.raises(ConfigError, match=f"valid options: {valid}"):
        build_model("revnet38", depth=3)


@pytest.mark.parametrize("memory_saving", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_trains_one_step(name, memory_saving):
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=10, memory_saving=memory_saving)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 1, 16, 16)), torch.tensor([1, 7]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"


def test_eval_under_no_grad_matches_train_mode_graph_free_forward():
    torch.manual_seed(0)
    model = build_model("revnet38").eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    assert y.grad_fn is None
    torch.testing.assert_close(y, model(x).detach())


TOOLKIT = {"field-dropout": {"field_dropout": 0.3}, "group-norm": {"norm": "group"},
           "all": {"field_dropout": 0.3, "norm": "group", "dropout": 0.2, "init": "xavier-uniform"}}


@pytest.mark.parametrize("options", TOOLKIT.values(), ids=TOOLKIT)
def test_toolkit_options_keep_memory_saving_exact(options):
    """The reversible blocks recompute F and G in backward: field dropout's masks are replayed, GroupNorm has no
    running statistics to restore; outputs, input and parameter gradients, buffers and the RNG afterwards equal
    ordinary backprop's."""
    torch.manual_seed(0)
    saving = build_model("revnet38", in_channels=1, num_classes=4, **options).double()
    plain = copy.deepcopy(saving)
    plain.body.memory_saving = False
    x, y = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    results = []
    for net in (saving, plain):
        inputs = x.clone().requires_grad_()
        torch.manual_seed(1)
        logits = net(inputs)
        torch.nn.functional.cross_entropy(logits, y).backward()
        results.append((logits.detach(), inputs.grad, torch.rand(3)))
    (out_s, dx_s, next_s), (out_p, dx_p, next_p) = results
    assert torch.equal(out_s, out_p) and torch.equal(next_s, next_p)
    torch.testing.assert_close(dx_s, dx_p, rtol=1e-9, atol=1e-12)
    for (name, p), q in zip(saving.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)
    for (name, b), c in zip(saving.named_buffers(), plain.buffers(), strict=True):
        assert torch.equal(b, c), name


def test_field_dropout_is_random_and_group_norm_blocks_invert():
    """Guards the test above: the dropout really draws (two passes differ), and with GroupNorm every invertible
    block's inverse reconstructs its input from its output (evaluation mode: no dropout)."""
    torch.manual_seed(0)
    model = build_model("revnet38", in_channels=1, field_dropout=0.3, norm="group").double()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
        model.eval()
        state = model.stem(x)
        for block in model.body.blocks:
            out = block(state)
            if block.invertible:
                torch.testing.assert_close(block.inverse(out), state, rtol=1e-10, atol=1e-10)
            state = out
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2 * len(model.body.blocks)
