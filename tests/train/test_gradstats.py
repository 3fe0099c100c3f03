"""Gradient statistics (train.grad_stats): per unit in network order, the norms of the loss's gradient with respect
to the unit's weights and biases and the RMS of its output, equal to a hand computation with autograd; what the
loop records, when, and that a resume keeps it exact; Nielsen's vanishing gradient in a sigmoid net."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from resdyn.errors import ConfigError
from resdyn.nets import build_model
from resdyn.nets.mlp import MLPOptions, mlp
from resdyn.runs import RunDir
from resdyn.train.config import Config, apply_overrides
from resdyn.train.gradstats import GradStats, units
from resdyn.train.loop import train
from resdyn.train.progress import Progress

QUIET = Progress("off")
# An mlp on scikit-learn's 8x8 digits, seen at their own size: a real task that trains in well under a second.
MLP = ["model.name=mlp", "model.options.image_size=8", "data.name=digits", "data.augment=false",
       "data.limit_train=512", "data.limit_test=256", "train.batch_size=32", "train.device=cpu", "optim.lr=0.5"]


def mlp_config(*overrides):
    return apply_overrides(Config(), MLP + list(overrides))


def test_statistics_equal_autograd_by_hand(one_thread):
    torch.manual_seed(0)
    model = mlp(MLPOptions(widths=[5, 4, 3], image_size=2), 1, 3)
    x, y = torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    probe = GradStats(model, every=1)
    assert probe.watch(0)
    F.cross_entropy(model(x), y).backward()
    probe.record(epoch=1)
    (record,) = probe.take()

    linears = [model.stem[2][0], model.body.fields[0][0], model.body.fields[1][0], model.head]
    a, activations = x.flatten(1), []
    for i, layer in enumerate(linears):
        a = a @ layer.weight.T + layer.bias
        a = torch.sigmoid(a) if i < 3 else a
        activations.append(a)
    params = [p for layer in linears for p in (layer.weight, layer.bias)]
    grads = torch.autograd.grad(F.cross_entropy(a, y), params)
    assert (record.epoch, record.step) == (1, 0)
    assert record.layers == ["stem", "fields.0", "fields.1", "head"]
    torch.testing.assert_close(torch.tensor(record.weight_grad_norm), torch.stack([g.norm() for g in grads[::2]]))
    torch.testing.assert_close(torch.tensor(record.bias_grad_norm), torch.stack([g.norm() for g in grads[1::2]]))
    torch.testing.assert_close(torch.tensor(record.activation_rms), torch.stack([a.pow(2).mean().sqrt()
                                                                                 for a in activations]))


def test_only_due_steps_are_recorded_and_the_hooks_go_with_remove():
    model = mlp(MLPOptions(widths=[4, 4]), 1, 3)
    probe = GradStats(model, every=3)
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    for step in range(7):
        probe.watch(step)
        F.cross_entropy(model(x), y).backward()
        probe.record(epoch=1)
    assert [r.step for r in probe.take()] == [0, 3, 6]
    assert probe.take() == []
    probe.remove()
    assert not any(m._forward_hooks for m in model.modules())


def test_units_of_a_resnet_are_stem_steps_head_each_parameter_once():
    model = build_model("resnet", 3, 10, depth=8, shortcut_option="B")
    found = units(model)
    assert [u.name for u in found] == ["stem", "fields.0", "fields.1", "fields.2", "head"]
    counted = [id(p) for u in found for p in u.parameters]
    assert sorted(counted) == sorted(id(p) for p in model.parameters())  # projection shortcuts in their step
    probe = GradStats(model, every=1)
    probe.watch(0)
    F.cross_entropy(model(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1])).backward()
    probe.record(epoch=1)
    (record,) = probe.take()
    assert all(n > 0 for n in record.weight_grad_norm) and all(r > 0 for r in record.activation_rms)


@pytest.mark.parametrize("name, options, steps", [
    ("lm-resnet20", {}, ["fields.0", "fields.8", "body"]),  # the body's own k_n after the steps
    ("revnet38", {}, ["blocks.0", "blocks.8"]),
    ("fractalnet20", {}, ["blocks.0", "blocks.4"]),  # no stem: its stem holds no parameters
    ("odenet", {}, ["blocks.0"]),
    ("frn", {"depth": 3}, ["body.0", "body.2"]),
])
def test_every_family_has_units_in_network_order_each_parameter_once(name, options, steps):
    model = build_model(name, 3, 10, **options)
    names = [u.name for u in units(model)]
    assert all(step in names for step in steps) and names[-1] == "head"
    assert names.index(steps[0]) <= names.index(steps[-1]) < len(names) - 1
    counted = [id(p) for u in units(model) for p in u.parameters]
    assert sorted(counted) == sorted(id(p) for p in model.parameters())


def test_a_model_of_ones_own_has_a_unit_per_child_holding_parameters():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(3, 2))
    assert [u.name for u in units(model)] == ["1", "3"]
    probe = GradStats(model, every=1)
    probe.watch(0)
    model(torch.randn(2, 4)).sum().backward()
    probe.record(epoch=1)
    assert probe.take()[0].bias_grad_norm == [None, pytest.approx(8**0.5)]  # d(sum)/db = 2 per output


def test_a_run_records_gradstats_and_its_summary_the_first_to_last_ratio(tmp_path, one_thread):
    summary = train(mlp_config("train.epochs=2", "train.grad_stats=true", "train.grad_stats_every=5"), tmp_path,
                    progress=QUIET)
    records = RunDir(tmp_path).read_gradstats()
    steps_per_epoch = 512 // 32
    assert [r.step for r in records] == list(range(0, 2 * steps_per_epoch, 5))
    assert [r.epoch for r in records] == [1 + r.step // steps_per_epoch for r in records]
    assert records[0].layers == ["stem", "fields.0", "fields.1", "head"]
    first, last = records[0].grad_norm, records[-1].grad_norm
    assert summary.grad_norm_ratio_start == pytest.approx(first[0] / first[-1])
    assert summary.grad_norm_ratio_end == pytest.approx(last[0] / last[-1])


def test_without_grad_stats_there_is_no_file_and_no_ratio_and_the_same_training(tmp_path, one_thread):
    summary = train(mlp_config("train.epochs=1"), tmp_path / "without", progress=QUIET)
    assert not (tmp_path / "without" / RunDir.GRADSTATS).exists()
    assert summary.grad_norm_ratio_start is None and summary.grad_norm_ratio_end is None
    watched = train(mlp_config("train.epochs=1", "train.grad_stats=true", "train.grad_stats_every=1"),
                    tmp_path / "with", progress=QUIET)
    a, b = RunDir(tmp_path / "without").load_checkpoint().model, RunDir(tmp_path / "with").load_checkpoint().model
    assert all(torch.equal(a[k], b[k]) for k in a)  # watching changes nothing it watches
    assert (watched.test_acc, watched.test_loss) == (summary.test_acc, summary.test_loss)


def test_resume_with_grad_stats_equals_uninterrupted_run(tmp_path, one_thread):
    config = mlp_config("train.epochs=3", "train.grad_stats=true", "train.grad_stats_every=3")
    train(config, tmp_path / "straight", progress=QUIET)

    def killed_after_epoch_1(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=QUIET, on_epoch_end=killed_after_epoch_1)
    resumed = train(config, tmp_path / "resumed", resume=True, progress=QUIET)
    a, b = RunDir(tmp_path / "straight"), RunDir(tmp_path / "resumed")
    wa, wb = a.load_checkpoint().model, b.load_checkpoint().model
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.read_gradstats() == b.read_gradstats()
    assert a.read_summary().grad_norm_ratio_start == resumed.grad_norm_ratio_start
    assert [dataclasses.replace(r, epoch_time_s=0, eval_time_s=0, images_per_s=0) for r in a.read_metrics()] == \
        [dataclasses.replace(r, epoch_time_s=0, eval_time_s=0, images_per_s=0) for r in b.read_metrics()]


def test_nielsen_first_layers_learn_slowest_in_a_sigmoid_net(tmp_path, one_thread):
    """Nielsen, Neural Networks and Deep Learning, ch. 5 (as Fuentes-Pineda's lecture, 2023, shows it): in a sigmoid
    net with 4 hidden layers of 30, at initialisation the gradient of the first hidden layer is the smallest and
    they grow toward the last."""
    config = mlp_config("model.options.widths=[30, 30, 30, 30]", "train.epochs=1", "train.grad_stats=true",
                        "train.grad_stats_every=1000", "data.limit_train=500", "train.batch_size=100")
    train(config, tmp_path, progress=QUIET)
    (start,) = RunDir(tmp_path).read_gradstats()
    hidden = start.bias_grad_norm[:4]  # Nielsen's ||delta^l||, the speed of learning of hidden layer l
    assert start.layers[:4] == ["stem", "fields.0", "fields.1", "fields.2"]
    assert hidden == sorted(hidden) and len(set(hidden)) == 4
    assert start.grad_norm[:4] == sorted(start.grad_norm[:4])


@pytest.mark.parametrize("override, message", [
    ("train.grad_stats_every=0", "grad_stats_every"),
])
def test_bad_grad_stats_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        mlp_config("train.grad_stats=true", override).validate()


def test_grad_stats_with_compile_is_refused():
    with pytest.raises(ConfigError, match="train.compile"):
        mlp_config("train.grad_stats=true", "train.compile=true").validate()
