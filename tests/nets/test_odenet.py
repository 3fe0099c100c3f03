"""Gładzik 2019's ODENet and ResNet baseline: exact parameter counts, shared segments, options, a real learning run."""

from pathlib import Path

import pytest
import torch
from torch import nn

from resdyn import build_model
from resdyn.analysis.profile import count_parameters
from resdyn.fields import PreActGroupNormField, TimeConvField
from resdyn.runs import RunDir
from resdyn.schemes import Euler
from resdyn.schemes.ode import ODE, ODESolverError, Regularisation, Solver
from resdyn.train.config import Config, apply_overrides
from resdyn.train.loop import train
from resdyn.train.progress import Progress

FMNIST = Path("/usr/share/datasets/fashion-mnist")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize(
    ("name", "options", "in_channels", "num_classes", "params"),
    [
        # Gładzik 2019, Figs. 5.1-5.6 ("Number of model parameters").
        ("odenet", {}, 1, 10, 208_266),
        ("odenet", {"adjoint": True}, 1, 10, 208_266),
        ("odenet", {"blocks": 2}, 1, 10, 283_658),
        ("odenet-resnet", {"blocks": 2}, 1, 10, 280_842),
        ("odenet-resnet", {}, 1, 10, 428_810),  # "ResNet 4"
        ("odenet-resnet", {"blocks": 8}, 1, 10, 724_746),
        ("odenet", {}, 3, 10, 209_418),  # CIFAR-10
        ("odenet-resnet", {}, 3, 10, 429_962),
        ("odenet", {}, 3, 100, 215_268),  # CIFAR-100
        ("odenet-resnet", {"blocks": 8}, 3, 100, 731_748),
    ],
)
def test_parameter_counts_match_the_thesis(name, options, in_channels, num_classes, params):
    assert count_parameters(build_model(name, in_channels, num_classes, **options)) == params


@pytest.mark.parametrize("augment", [1, 64])
def test_augmented_odenet_widens_the_field_and_the_classifier(augment):
    c = 64 + augment
    field = 3 * 2 * c + 2 * ((c + 1) * c * 9 + c)  # three GroupNorms, two time-conditioned 3x3 convolutions
    head = 2 * c + c * 10 + 10
    downsampling = 132_096
    model = build_model("odenet", 1, 10, augment=augment)
    assert count_parameters(model) == downsampling + field + head
    assert count_parameters(build_model("odenet", 1, 10, augment=64)) == 431_882
    logits = model(torch.randn(2, 1, 28, 28))
    assert logits.shape == (2, 10)


def test_the_two_networks_differ_only_in_the_feature_segment():
    ode, res = build_model("odenet", 1, 10), build_model("odenet-resnet", 1, 10)
    for segment in ("stem", "head"):
        a, b = getattr(ode, segment).state_dict(), getattr(res, segment).state_dict()
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert isinstance(ode.body, ODE) and [type(b.field) for b in ode.body.blocks] == [TimeConvField]
    assert isinstance(res.body, Euler) and [type(f) for f in res.body.fields] == [PreActGroupNormField] * 4
    # Downsampling turns a 28x28 image into the 64x6x6 state the ODE evolves.
    assert ode.stem(torch.zeros(1, 1, 28, 28)).shape == (1, 64, 6, 6)


def test_options_reach_the_blocks():
    model = build_model("odenet", 1, 10, method="rk4", step_size=0.25, t1=0.5, adjoint=True, seminorm=True,
                        blocks=2, kinetic=0.1, jacobian=0.05, max_steps=50, width=16, rtol=1e-4)
    assert len(model.body.blocks) == 2
    for block in model.body.blocks:
        assert block.solver == Solver("rk4", 1e-4, 1e-3, 0.25, 50, adjoint=True, seminorm=True)
        assert block.t1 == 0.5 and block.regularisation == Regularisation(kinetic=0.1, jacobian=0.05)
    model.train()
    x = torch.randn(2, 1, 28, 28)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    penalties = [b.extra_loss() for b in model.body.blocks]
    assert all(p is not None and torch.isfinite(p) for p in penalties)
    (loss + sum(penalties)).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert {"ode0_nfe_forward_mean", "ode1_nfe_backward_mean", "ode0_kinetic_mean", "ode1_jacobian_mean"} <= {
        k for b in model.body.blocks for k in b.metrics()
    }
    with pytest.raises(ValueError, match="unknown ODE solver 'rk5'"):
        build_model("odenet", method="rk5")


def test_a_step_limit_in_the_network_names_the_block():
    model = build_model("odenet", 1, 10, blocks=2, max_steps=1, rtol=1e-9, atol=1e-9)
    with pytest.raises(ODESolverError, match=r"ODE block 0 \(dopri5, rtol 1e-09"):
        model(torch.randn(2, 1, 28, 28))


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="needs Debian's dataset-fashion-mnist (make data)")
def test_odenet_learns_fashion_mnist_and_logs_nfe(tmp_path):
    # The thesis's full ODENet (208,266 parameters), dopri5 at rtol = atol = 1e-3 over [0, 1], one epoch on 2,000
    # images: about 0.49 test accuracy (chance 0.10) in about 13 s on one CPU thread.
    config = apply_overrides(Config(), [
        "model.name=odenet", "data.name=fashion-mnist", f'data.dir="{FMNIST}"', "data.limit_train=2000",
        "data.limit_test=1000", "data.augment=false", "train.epochs=1", "train.batch_size=32",
        "train.eval_batch_size=500", "train.device=cpu", "schedule.name=constant", "optim.lr=0.05",
        "optim.weight_decay=0",
    ])
    run = train(config, tmp_path, progress=Progress("off"))
    assert run.params == 208_266
    assert run.test_acc > 0.35
    summary = run.model_metrics
    (record,) = (r.model for r in RunDir(tmp_path).read_metrics())
    for key in ("nfe_forward_mean", "nfe_forward_max", "nfe_backward_mean", "nfe_backward_max", "nfe_eval_mean"):
        assert key in record
    # dopri5 takes 2 + 6 k evaluations; backprop takes one VJP per evaluation the output depends on.
    assert record["nfe_forward_max"] >= 8 and (record["nfe_forward_max"] - 2) % 6 == 0
    assert record["nfe_backward_mean"] <= record["nfe_forward_mean"]
    assert "nfe_eval_mean" in summary  # the final evaluation's statistics
    for key in ("nfe_forward_mean", "nfe_forward_max", "nfe_backward_mean", "nfe_backward_max"):
        assert summary[key] == record[key]  # the last epoch's training statistics


def test_group_norm_of_a_channels_last_cpu_tensor_is_that_of_its_contiguous_copy_and_stays_channels_last():
    from resdyn.fields import group_norm

    torch.manual_seed(0)
    norm = group_norm(8)
    x = torch.randn(3, 8, 5, 5)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    y, yc = norm(x.requires_grad_()), norm(xc)
    assert yc.is_contiguous(memory_format=torch.channels_last) and not yc.is_contiguous()
    torch.testing.assert_close(yc, y)
    weights = torch.randn_like(y)
    (y * weights).sum().backward()
    (yc * weights).sum().backward()
    torch.testing.assert_close(xc.grad, x.grad)
    assert list(norm.state_dict()) == ["weight", "bias"]  # an nn.GroupNorm's keys: checkpoints load


def test_the_resnet_baseline_takes_the_odenets_field_activation():
    import torch

    from resdyn.fields import PreActGroupNormField
    torch.manual_seed(0)
    relu = build_model("odenet-resnet", 1, 10, blocks=2)
    torch.manual_seed(0)
    tanh = build_model("odenet-resnet", 1, 10, blocks=2, activation="tanh")
    fields = [m for m in tanh.modules() if isinstance(m, PreActGroupNormField)]
    assert len(fields) == 2
    # Both nonlinearities of every block, and nothing else: the same weights, so the same parameter count.
    assert all([type(m) for m in f if not isinstance(m, (torch.nn.Conv2d, torch.nn.GroupNorm))]
               == [torch.nn.Tanh, torch.nn.Tanh] for f in fields)
    assert all(torch.equal(a, b) for a, b in zip(relu.state_dict().values(), tanh.state_dict().values(), strict=True))
    x = torch.randn(2, 1, 28, 28)
    assert not torch.allclose(relu(x), tanh(x))
