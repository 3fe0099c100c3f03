"""Typed model options: aliases fix options of a family, mistakes list the valid options, nested tables work
from --set, and `resdyn models --options NAME` prints them."""

import pytest

from resdyn import build_model
from resdyn.cli import main
from resdyn.errors import ConfigError, ResdynError
from resdyn.nets.aliases import ALIASES
from resdyn.noise import DropBranch
from resdyn.schemes import RK4, LinearMultistep
from resdyn.train.config import Config, apply_overrides


def test_an_alias_is_its_family_with_options_fixed():
    assert ALIASES["lm-resnet56"][:2] == ("resnet", {"depth": 56, "scheme": "lm", "preact": True})
    a, b = build_model("lm-resnet20"), build_model("resnet", depth=20, scheme="lm", preact=True)
    assert isinstance(a.body, LinearMultistep) and a.state_dict().keys() == b.state_dict().keys()


def test_the_scheme_is_an_option_of_any_named_layout():
    model = build_model("resnet20", scheme="rk4", scheme_options={"stage_fields": True})
    assert isinstance(model.body, RK4) and len(model.body.fields[1]) == 4  # four fields in a shape-keeping step
    with pytest.raises(ConfigError, match="model 'lm-resnet20' has no option.*scheme.*'lm-resnet20' fixes scheme"):
        build_model("lm-resnet20", scheme="rk4")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"depth": "56"}, r"model.options.depth: expected int, got '56'"),
        ({"depth": 20, "preact": 1}, r"model.options.preact: expected bool or nothing \(None\), got 1"),
        ({"depth": 20, "scheme": "rk5"}, r"unknown scheme 'rk5'; valid scheme names: ab2, ab3"),
        ({"depth": 20, "scheme": "poly", "scheme_options": {"order": "3"}}, r"scheme_options.order: expected int"),
        ({"depth": 20, "noise": "gaussian", "noise_options": {"sigma": 1}}, r"unknown key\(s\) sigma.*valid keys: std"),
        ({}, r"model 'resnet' needs the option\(s\) depth"),
    ],
)
def test_mistyped_options_say_what_is_expected(options, message):
    with pytest.raises(ResdynError, match=message):  # ConfigError, or UnknownNameError for a name
        build_model("resnet", **options)


def test_nested_options_from_set_overrides():
    config = apply_overrides(Config(), [
        "model.name=resnet20", "model.options.scheme=ab2", "model.options.noise=stochastic-depth",
        "model.options.noise_options.survival_last=0.8",
    ])
    model = build_model(config.model.name, 1, 10, **config.model.options)
    last = [f for f in model.body.fields if isinstance(f, DropBranch)][-1]
    assert last.survival_prob == pytest.approx(0.8)


def test_models_options_prints_each_option_with_its_default(capsys):
    assert main(["models", "--options", "lm-resnet56"]) == 0
    out = capsys.readouterr().out
    assert "the family 'resnet' with depth=56, scheme='lm', preact=True" in out
    assert "noise_options" in out and "lm: convention='paper'" in out and "stochastic-depth: survival_last=0.5" in out
    assert main(["models", "--options", "odenet"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("max_steps"))
    assert row.split()[1:3] == ["int", "|"] and "1000" in row and "steps (accepted and rejected)" in row
