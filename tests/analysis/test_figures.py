"""Every CIFAR recipe builds its model and reproduces the parameters and Mult-Adds its paper row quotes, or differs
by exactly the difference its [meta] documents."""

import pytest

import resdyn.recipes as recipes
from resdyn.analysis.figures import Quoted, check_figures, check_recipe
from resdyn.cli import main
from resdyn.errors import ConfigError
from resdyn.recipes import recipe_names

CIFAR = [n for n in recipe_names() if n.startswith(("cifar10/", "cifar100/"))]
# Rows whose source quotes no parameter count (Lu's slides, Table 4, give none for ResNet-1202 on CIFAR-10).
QUOTE_NONE = {"cifar10/resnet1202-sd"}
# The LM-ResNet code's parameters that its forward pass never uses (tests/schemes/test_multistep.py derives them).
UNUSED_BASIC, UNUSED_BOTTLENECK = 32 + (2 * 16 + 16 * 64) + 3, 32 + 3


def test_the_recipes_cover_the_papers_rows():
    # The CIFAR-10 rows of Lu's slides (Tables 2 and 4) and their CIFAR-100 rows, and the FIUBA replication
    # report's Tables 1 and 2.
    expected = {f"cifar10/{n}" for n in (
        "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet110-preact", "resnet110-gaussian",
        "resnet56-sd", "resnet56-sd-huang", "resnet110-sd", "resnet1202-sd", "lm-resnet20", "lm-resnet32",
        "lm-resnet44", "lm-resnet56", "lm-resnet110", "lm-resnet164", "lm-resnet56-sd", "lm-resnet110-sd")}
    expected |= {f"cifar100/{n}" for n in (
        "resnet110", "resnet164", "resnet1202", "resnext29-8x64d", "resnext29-16x64d", "lm-resnet110",
        "lm-resnet164", "lm-resnext29-8x64d", "lm-resnext29-16x64d")}
    assert set(CIFAR) == expected


@pytest.mark.parametrize("name", CIFAR)
def test_recipe_reproduces_the_figures_it_quotes(name):
    check = check_recipe(name)
    if name in QUOTE_NONE:
        assert check is None
        return
    assert check is not None, f"{name} quotes no paper_params"
    assert check.params_ok, (name, check.params, check.paper_params, check.documented_difference)
    assert check.mult_adds_ok, (name, check.mult_adds, check.paper_mult_adds)
    if name.startswith("cifar10/lm-"):
        # The replication report's exact counts and Mult-Adds of the authors' code: reproduced to the last digit
        # quoted, less the parameters that code creates and never uses.
        assert check.paper_mult_adds is not None and check.paper_params.tolerance == 0
        unused = UNUSED_BOTTLENECK if "164" in name else UNUSED_BASIC
        assert check.documented_difference == -unused
        assert check.params + unused == check.paper_params.value
    elif check.documented_difference is not None:
        # A rounded figure resdyn does not reproduce (the slides' 2.55M, 18.88M, and the ResNeXts'
        # 10-class counts): the documented difference is more than the rounding.
        assert not check.paper_params.matches(check.params)


def test_the_slides_discrepancies_keep_the_original_architectures():
    # ResNet-164 of He et al. 2016 (pre-activation bottleneck: 1.70M), not the slides' 2.55M.
    assert check_recipe("cifar100/resnet164").params == 1_703_258 + 90 * 257
    assert check_recipe("cifar100/resnet1202").params == 19_421_274 + 90 * 65  # He et al. 2015's 19.4M
    # The ResNeXts' quoted figures are their 10-class counts.
    eight = check_recipe("cifar100/resnext29-8x64d")
    assert eight.paper_params.matches(eight.params - 90 * 1025)


def test_quoted_figures_keep_their_precision():
    assert Quoted.parse(273475, "k") == Quoted("273,475", 273475.0, 0.0)
    rounded = Quoted.parse("0.27M", "k")
    assert rounded.value == 270_000 and rounded.tolerance == 5_000
    assert rounded.matches(274_999) and not rounded.matches(275_001)
    assert Quoted.parse("16.10G", "k").tolerance == pytest.approx(5e6)
    for bad in ("0.27 M", 0.27, "about 1M", True):
        with pytest.raises(ConfigError, match="expected an exact integer or a quoted figure"):
            Quoted.parse(bad, "paper_params")


def test_a_documented_difference_needs_its_note():
    meta = {"paper_params": 1, "params_difference": 3}
    with pytest.raises(ConfigError, match="params_note"):
        check_figures("resnet20", {}, 3, 10, (32, 32), meta)
    check = check_figures("resnet20", {}, 3, 10, (32, 32), {**meta, "params_difference": 269_721, "params_note": "x"})
    assert check.params_ok and check.mult_adds is None


def test_models_paper_figures_lists_the_recipes_that_quote_one(capsys, monkeypatch):
    shown = ["cifar10/lm-resnet20", "cifar10/resnet20", "cifar10/resnet1202-sd", "cifar100/resnet164",
             "suites/cifar10-resnet-vs-lm"]
    monkeypatch.setattr(recipes, "recipe_names", lambda: shown)
    assert main(["models", "--paper-figures"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("cifar")}
    assert set(rows) == {"cifar10/lm-resnet20", "cifar10/resnet20", "cifar100/resnet164"}
    assert rows["cifar100/resnet164"][1:5] == ["1,726,388", "2.55M", "-823,612", "-"]
    assert rows["cifar10/lm-resnet20"][1:7] == ["272,384", "273,475", "-1,091", "5.224G", "5.22G", "differs"]
    assert rows["cifar10/resnet20"][1:] == ["269,722", "0.27M", "-", "-", "-", "reproduced"]
    assert "creates 1,091 parameters its forward pass never uses" in out


def test_the_old_seed_figures_flag_still_works_and_says_to_use_paper_figures(capsys, monkeypatch):
    monkeypatch.setattr(recipes, "recipe_names", lambda: ["cifar10/resnet20"])
    assert main(["models", "--seed-figures"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "resdyn: --seed-figures is deprecated; use --paper-figures\n"
    assert "cifar10/resnet20" in captured.out
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    shown = capsys.readouterr().out
    assert "--paper-figures" in shown and "--seed-figures" not in shown
