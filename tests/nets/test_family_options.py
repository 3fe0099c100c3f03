"""Every model family with every option it declares set away from its default: right output shape, finite loss,
finite gradients. The table below has one row per declared option, so an option added to a family's dataclass
without a row here fails ``test_every_declared_option_has_a_row``."""

import dataclasses

import pytest
import torch

from resdyn import build_model
from resdyn.nets import FAMILIES
from resdyn.nets.base import required

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# Small members of each family, for 8x8 images.
BASE = {
    "resnet": {"depth": 8},
    "resnext29": {"cardinality": 2, "base_width": 2, "widen_factor": 1, "blocks": 1},
    "revnet": {"depth": 38},
    "fractalnet": {"columns": 2, "blocks": 2, "channels": [8, 8]},
    "imagenet-resnet": {"depth": 18, "width": 4},
    "odenet": {"width": 8},
    "odenet-resnet": {"width": 8, "blocks": 1},
    "frn": {"width": 8, "depth": 2, "image_size": 4},
    "rrn": {"width": 8, "depth": 2, "image_size": 4},
    "mlp": {"widths": [8, 8], "image_size": 4},
}

# The toolkit (resdyn.nets.base.Toolkit) and the scheme and noise choices, as every family that declares them.
TOOLKIT = {"dropout": {"dropout": 0.2}, "field_dropout": {"field_dropout": 0.2}, "init": {"init": "xavier-normal"},
           "norm": {"norm": "group"}, "activation": {"activation": "tanh"},
           "init_std": {"init": "normal", "init_std": 0.05}}
CHOICES = {"noise": {"noise": "gaussian"}, "noise_options": {"noise": "gaussian", "noise_options": {"std": 0.1}},
           "scheme": {"scheme": "rk4"}, "scheme_options": {"scheme": "poly", "scheme_options": {"order": 3}}}
MEANFIELD = {"width": {"width": 16}, "depth": {"depth": 3}, "activation": {"activation": "relu"},
             "alpha": {"activation": "alpha-relu", "alpha": 0.5}, "sigma_w2": {"sigma_w2": 2.0},
             "sigma_b2": {"sigma_b2": 0.1}, "init": {"init": "he-uniform"}, "image_size": {"image_size": 8},
             "init_std": {"init": "uniform", "init_std": 0.05}}

# family -> option -> the options that set it away from its default (with what it needs, e.g. a fixed-step
# method for step_size).
NON_DEFAULT = {
    "resnet": {**TOOLKIT, **CHOICES, "depth": {"depth": 14}, "block": {"block": "bottleneck", "depth": 11},
               "preact": {"preact": True}, "shortcut_option": {"shortcut_option": "B-preact"}},
    "imagenet-resnet": {**TOOLKIT, **CHOICES, "depth": {"depth": 50}, "width": {"width": 2},
                        "preact": {"preact": True}, "shortcut_option": {"shortcut_option": "B-preact"}},
    "resnext29": {**TOOLKIT, **CHOICES, "cardinality": {"cardinality": 4}, "base_width": {"base_width": 4},
                  "widen_factor": {"widen_factor": 2}, "blocks": {"blocks": 2}},
    "revnet": {**TOOLKIT, "noise": {"noise": "gaussian"}, "noise_options": CHOICES["noise_options"],
               "depth": {"depth": 164}, "memory_saving": {"memory_saving": False}},
    "fractalnet": {"columns": {"columns": 3}, "blocks": {"blocks": 3, "channels": [4, 8, 8]},
                   "channels": {"channels": [4, 16]}, "drop_path_local": {"drop_path_local": 0.5},
                   "global_drop_ratio": {"global_drop_ratio": 0.0}, "dropout": {"dropout": [0.1, 0.2]},
                   "flat_join": {"flat_join": False}, "activation": {"activation": "silu"}},
    "odenet": {"method": {"method": "bosh3"}, "rtol": {"rtol": 1e-2}, "atol": {"atol": 1e-2},
               "step_size": {"method": "rk4", "step_size": 0.5}, "max_steps": {"max_steps": 200},
               "adjoint": {"adjoint": True}, "seminorm": {"adjoint": True, "seminorm": True},
               "max_memory": {"max_memory": 0.5}, "t1": {"t1": 0.5}, "blocks": {"blocks": 2},
               "augment": {"augment": 2}, "kinetic": {"kinetic": 0.01}, "jacobian": {"jacobian": 0.01},
               "width": {"width": 16}, "activation": {"activation": "softplus"}},
    "odenet-resnet": {"blocks": {"blocks": 2}, "width": {"width": 16}, "activation": {"activation": "tanh"}},
    "frn": {**MEANFIELD, "sigma_v2": {"sigma_v2": 2.0}, "sigma_a2": {"sigma_a2": 0.1}},
    "rrn": MEANFIELD,
    "mlp": {"widths": {"widths": [8, 6, 4]}, "residual": {"residual": True}, "activation": {"activation": "relu"},
            "init": {"init": "he-normal"}, "init_std": {"init": "uniform", "init_std": 0.1},
            "image_size": {"image_size": 8}},
}

CASES = [(family, option) for family in sorted(NON_DEFAULT) for option in sorted(NON_DEFAULT[family])]


def test_every_declared_option_has_a_row():
    assert sorted(NON_DEFAULT) == FAMILIES.names()
    for family, rows in NON_DEFAULT.items():
        assert sorted(rows) == sorted(f.name for f in dataclasses.fields(FAMILIES.get(family).options)), family


@pytest.mark.parametrize(("family", "option"), CASES)
def test_every_family_trains_a_step_with_each_option_away_from_its_default(family, option):
    fields = {f.name: f for f in dataclasses.fields(FAMILIES.get(family).options)}
    options = {**BASE[family], **NON_DEFAULT[family][option]}
    spec = fields[option]
    if not required(spec):
        default = spec.default if spec.default_factory is dataclasses.MISSING else spec.default_factory()
        assert options[option] != default, f"{family}.{option}: the row sets the default"
    torch.manual_seed(0)
    model = build_model(family, in_channels=1, num_classes=3, **options)
    logits = model(torch.randn(4, 1, 8, 8))
    assert logits.shape == (4, 3)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0]))
    assert torch.isfinite(loss)
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    # Drop-path may leave a column, and noise a field, without a gradient this step; the rest must have one.
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None), family
    assert sum(g is not None for g in grads.values()) > len(grads) // 2
