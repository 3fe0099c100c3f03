"""Options added to a family keep its defaults: every model registered on main at bf72fe9 builds, with its default
options, the same parameters and state_dict keys and shapes (old checkpoints load). Built on the meta device: only
shapes matter, and the 34 models, resnet1202 and fractalnet40 included, build in about 3 s."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from resdyn import build_model, list_models
from resdyn.analysis.profile import count_parameters

MAIN = json.loads((Path(__file__).parent / "data" / "state_dicts_bf72fe9.json").read_text())


def test_every_model_of_main_is_still_registered():
    assert set(MAIN) <= set(list_models())


@pytest.mark.parametrize("name", sorted(MAIN))
def test_defaults_keep_the_parameters_and_state_dict_of_main(name):
    recorded = MAIN[name]
    with torch.device("meta"):
        model = build_model(name, 3, 10, **recorded["options"])
    state = model.state_dict()
    lines = "\n".join(f"{key} {tuple(value.shape)}" for key, value in state.items())
    assert count_parameters(model) == recorded["params"]
    assert len(state) == recorded["keys"]
    assert hashlib.sha256(lines.encode()).hexdigest() == recorded["sha256"], "state_dict keys or shapes changed"
