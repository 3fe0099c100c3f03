"""Experiment identity: runs that differ only in how they were executed are seeds of one experiment."""

from resdyn.experiment import RUN_ONLY_KEYS, differences, flatten, identity, identity_key
from resdyn.train.config import Config, apply_overrides


def config(*overrides: str) -> dict:
    return apply_overrides(Config(), list(overrides)).to_dict()


def test_flatten_names_nested_keys_with_dots():
    assert flatten({"model": {"name": "resnet", "options": {"depth": 8}}, "x": 1}) == {
        "model.name": "resnet", "model.options.depth": 8, "x": 1}


def test_seed_device_progress_and_data_location_are_not_part_of_the_identity():
    a = config("train.seed=0", "train.device=cpu", "data.dir=/a")
    b = config("train.seed=5", "train.device=cuda", "data.dir=/b", "train.progress=off")
    assert identity_key(a) == identity_key(b) and differences(a, b) == []
    assert not RUN_ONLY_KEYS & identity(a).keys()


def test_anything_else_is_another_experiment_and_the_keys_are_named():
    a, b = config("optim.lr=0.1"), config("optim.lr=0.05", "model.options.depth=8")
    assert identity_key(a) != identity_key(b)
    assert differences(a, b) == ["model.options.depth", "optim.lr"]
