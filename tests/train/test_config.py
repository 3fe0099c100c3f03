"""Typed config: TOML round trip, overrides, and errors that name the key and list the valid ones."""

import pytest
import torch

from resdyn.train.config import Config, ConfigError, apply_overrides, dump_config, load_config, parse_value


def test_toml_round_trip_is_exact(tmp_path):
    config = apply_overrides(Config(), [
        "model.options.preact=true", "schedule.milestones=[80, 120]", "train.grad_clip=1.5",
        "optim.name=\"adamw\"", "data.limit_train=500",
    ])
    path = tmp_path / "c.toml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_overrides_are_typed():
    c = apply_overrides(Config(), ["optim.lr=0.05", "train.epochs=3", "optim.weight_decay=0", "train.ema_decay=0.99"])
    assert c.optim.lr == 0.05 and c.train.epochs == 3
    assert isinstance(c.optim.weight_decay, float)  # an int where a float is expected is widened
    assert c.train.ema_decay == 0.99


def test_bare_words_are_strings():
    assert parse_value("adamw") == "adamw"
    assert parse_value("[1, 2]") == [1, 2]
    assert apply_overrides(Config(), ["optim.name=rmsprop"]).optim.name == "rmsprop"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", r"unknown key\(s\) lrr in \[optim\]; valid keys: name, lr, momentum"),
        ("optm.lr=1", r"has no section 'optm'; valid: model, data, optim, schedule, train, meta"),
        ("train.epochs=ten", r"train.epochs: expected int, got 'ten'"),
        ("train.epochs=1.5", r"train.epochs: expected int, got 1.5"),
        ("train.precision=fp16", r"expected one of 'auto', 'bf16', 'fp32', got 'fp16'"),
        ("train.seed=true", r"train.seed: expected int, got True"),
        ("optim.lr", r"must look like section.key=value"),
    ],
)
def test_bad_overrides_say_what_was_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [override])


def test_unknown_section_in_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[trian]\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: unknown key\(s\) trian in \[top level\]"):
        load_config(path)


def test_invalid_toml_and_missing_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_recipe_meta_table_is_kept(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[meta]\npaper_test_error = 8.75\n[train]\nepochs = 2\n')
    config = load_config(path)
    assert config.train.epochs == 2 and config.meta == {"paper_test_error": 8.75}
    assert "[meta]\npaper_test_error = 8.75" in dump_config(config)


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="needs a validation split"):
        apply_overrides(Config(), ["train.early_stop_patience=3"]).validate()
    with pytest.raises(ConfigError, match="ema_decay must be in"):
        apply_overrides(Config(), ["train.ema_decay=1.5"]).validate()


def test_shipped_recipes_load_and_build():
    from pathlib import Path

    from resdyn import build_model

    root = Path(__file__).parents[2] / "resdyn" / "recipes"
    recipes = sorted(p for p in root.rglob("*.toml") if "suites" not in p.parts)  # suites: tests/test_compare.py
    assert len(recipes) >= 16
    for path in recipes:
        config = load_config(path).validate()
        with torch.device("meta"):  # shapes only: the CIFAR-100 ResNeXts have 68M parameters
            build_model(config.model.name, **config.model.options)
