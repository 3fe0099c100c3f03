"""Mult-Adds that depend on the input: an ODENet's count is one adaptive solve on a zero input, split into its
field evaluations, and `resdyn models` says so; every other model's count is the same for any input."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resdyn import build_model
from resdyn.analysis.profile import adaptive_solve_cost, mult_adds
from resdyn.cli import main
from resdyn.nets import MODELS

CIFAR = (3, 32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("blocks", [1, 2])
def test_an_odenets_mult_adds_are_the_fixed_part_plus_nfe_evaluations_of_its_field(blocks):
    model = build_model("odenet", 3, 10, blocks=blocks)
    cost = adaptive_solve_cost(model, CIFAR)
    assert cost is not None and cost.total == mult_adds(model, CIFAR)
    # The NFE is the blocks' own count of the zero input's solves.
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, *CIFAR))
    assert cost.nfe == sum(block.metrics()[f"{block.metric_prefix}nfe_eval_max"] for block in model.body.blocks)
    # One evaluation of the field on the 64x7x7 state a 32x32 image becomes (counted on two images, halved).
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.body.blocks[0].field(torch.tensor(0.0), torch.zeros(2, 64, 7, 7))
    assert cost.per_evaluation == counter.get_total_flops() // 4
    # Outside the solves: the stem and head, as the ResNet baseline's, which shares them.
    baseline = build_model("odenet-resnet", 3, 10, blocks=1)
    field_macs = mult_adds(baseline.body, (64, 7, 7))
    assert cost.fixed == mult_adds(baseline, CIFAR) - field_macs


def test_the_count_depends_on_the_solve_it_measured():
    loose, tight = (adaptive_solve_cost(build_model("odenet", 3, 10, rtol=tol, atol=tol), CIFAR)
                    for tol in (1e-1, 1e-5))
    assert tight.nfe > loose.nfe and tight.per_evaluation == loose.per_evaluation
    assert tight.total - loose.total == (tight.nfe - loose.nfe) * loose.per_evaluation


@pytest.mark.parametrize(("name", "options"), [("resnet20", {}), ("odenet-resnet", {}),
                                               ("odenet", {"method": "rk4", "step_size": 0.25})])
def test_models_without_an_adaptive_solver_have_one_count(name, options):
    assert adaptive_solve_cost(build_model(name, 3, 10, **options), CIFAR) is None


def test_resdyn_models_marks_the_odenets_count_and_says_what_it_measured(capsys, monkeypatch):
    monkeypatch.setattr(MODELS, "names", lambda: ["resnet20", "odenet"])
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("resnet20 ", "odenet "))}
    torch.manual_seed(0)  # the table counts on seed 0's initial weights: the NFE depends on them
    cost = adaptive_solve_cost(build_model("odenet", 3, 10), CIFAR)
    assert f"{cost.total / 1e6:.1f} M*" in rows["odenet"] and "*" not in rows["resnet20"]
    assert (f"* odenet: counted on one solve (dopri5, rtol 0.001, atol 0.001, backprop) of a zero input with the "
            f"initial weights of seed 0: {cost.nfe} field evaluations (NFE) of {cost.per_evaluation / 1e6:.2f} M"
            ) in out
    # The same table twice, whatever the global random state in between.
    torch.manual_seed(123)
    assert main(["models"]) == 0
    assert capsys.readouterr().out == out
    assert f"Mult-Adds per image are {cost.fixed / 1e6:.1f} M + NFE x {cost.per_evaluation / 1e6:.2f} M" in out
