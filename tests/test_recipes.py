"""Shipped recipes by name: listed with their papers' numbers, shown, resolved by `-c NAME` and in suites."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import resdyn.recipes as recipes
from resdyn.cli import main
from resdyn.compare import load_suite
from resdyn.errors import ConfigError
from resdyn.recipes import find_recipe, is_suite, recipe_names, recipe_path, recipes_root
from resdyn.runs import RunDir
from resdyn.train.config import load_config

ROOT = Path(__file__).parents[1] / "resdyn" / "recipes"


def test_every_toml_under_the_package_folder_is_a_recipe_named_by_its_path():
    on_disk = sorted(p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.rglob("*.toml"))
    assert recipes_root() == ROOT and recipe_names() == on_disk
    assert {"fashion-mnist-resnet20", "cifar10/lm-resnet56", "suites/demo-fashion-mnist"} <= set(on_disk)
    assert not (ROOT.parents[1] / "recipes").exists()  # one copy: none left at the top of the repository


def test_a_new_file_in_any_subfolder_is_picked_up(tmp_path, monkeypatch):
    shutil.copytree(ROOT, tmp_path / "recipes", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (tmp_path / "recipes" / "suites" / "new-suite.toml").write_text('[suite]\nname = "n"\n')
    (tmp_path / "recipes" / "mnist" / "deep").mkdir(parents=True)
    (tmp_path / "recipes" / "mnist" / "deep" / "r8.toml").write_text('[model]\nname = "resnet20"\n')
    monkeypatch.setattr(recipes, "files", lambda _: tmp_path / "recipes")
    assert {"suites/new-suite", "mnist/deep/r8"} <= set(recipe_names())
    assert len(recipe_names()) == len(list(ROOT.rglob("*.toml"))) + 2
    assert recipe_path("mnist/deep/r8.toml") == tmp_path / "recipes" / "mnist" / "deep" / "r8.toml"


def test_names_resolve_with_or_without_toml_and_a_file_comes_first(tmp_path, monkeypatch):
    shipped = ROOT / "cifar10" / "lm-resnet56.toml"
    assert find_recipe("cifar10/lm-resnet56") == find_recipe("cifar10/lm-resnet56.toml") == shipped
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "lm-resnet56.toml").write_text("[train]\nepochs = 3\n")
    assert find_recipe("cifar10/lm-resnet56.toml") == Path("cifar10/lm-resnet56.toml")  # the file there wins
    assert find_recipe("cifar10/lm-resnet56") == shipped  # no file of that path: the shipped one


def test_an_unknown_name_lists_the_shipped_ones_and_the_closest():
    with pytest.raises(ConfigError) as error:
        find_recipe("cifar10/lm-resnet57")
    message = str(error.value)
    assert "no config file cifar10/lm-resnet57" in message and "did you mean cifar10/lm-resnet56" in message
    assert all(name in message for name in recipe_names())


def test_every_shipped_recipe_and_suite_loads():
    suites = [n for n in recipe_names() if is_suite(recipe_path(n))]
    assert "suites/demo-fashion-mnist" in suites and "cifar10/resnet20" not in suites
    for name in recipe_names():
        if name in suites:
            assert load_suite(recipe_path(name)).experiments
        else:
            load_config(recipe_path(name)).validate()


def test_recipes_lists_every_recipe_with_its_paper_number(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in recipe_names():
        line = next(line for line in lines if line.split(" ")[0] == name)
        if not is_suite(recipe_path(name)):
            meta = load_config(recipe_path(name)).meta
            if "paper_test_error" in meta:
                assert f"{meta['paper_test_error']:.2f}" in line and meta["source"] in line
    line = next(line for line in lines if line.startswith("cifar10/lm-resnet56 "))
    assert line.split()[1:5] == ["lm-resnet56", "cifar10", "160", "6.31"]
    assert "Lu et al. 2018 (replication report FIUBA 75.26, Table 1" in line
    demo = next(line for line in lines if line.startswith("suites/demo-fashion-mnist "))
    assert demo.split()[-4:] == ["fashion-mnist", "1", "15", "4"]  # data, seeds, epochs, runs


def test_recipes_show_prints_the_file(capsys):
    assert main(["recipes", "show", "cifar10/lm-resnet56"]) == 0
    assert capsys.readouterr().out == (ROOT / "cifar10" / "lm-resnet56.toml").read_text()
    assert main(["recipes", "show"]) == 1
    assert "needs a recipe name" in capsys.readouterr().err


def test_a_shown_suite_copied_elsewhere_still_finds_its_recipes(tmp_path, capsys):
    assert main(["recipes", "show", "suites/cifar10-resnet-vs-lm"]) == 0
    copy = tmp_path / "my-suite.toml"
    copy.write_text(capsys.readouterr().out)
    suite = load_suite(copy)
    assert len(suite.experiments) == 15 * 3
    errors = {e.label: e.config.meta["paper_test_error"] for e in suite.experiments}
    assert errors["lm-resnet56"] == 6.31 and errors["resnet110-sd"] == 5.25


def test_a_suite_file_beside_a_recipe_uses_the_file_over_the_shipped_name(tmp_path):
    (tmp_path / "fashion-mnist-resnet20").write_text('[model]\nname = "resnet32"\n[train]\nepochs = 2\n')
    (tmp_path / "s.toml").write_text('[suite]\nname = "s"\nrecipe = "fashion-mnist-resnet20"\n')
    (tmp_path / "t.toml").write_text('[suite]\nname = "t"\nrecipe = "cifar10/resnet20"\n')
    local = load_suite(tmp_path / "s.toml").experiments[0].config
    assert local.model.name == "resnet32" and local.train.epochs == 2
    shipped = load_suite(tmp_path / "t.toml").experiments[0].config
    assert shipped.model.name == "resnet20" and shipped.meta["paper_test_error"] == 8.75


def test_train_dash_c_name_trains_the_shipped_recipe(tmp_path):
    out = tmp_path / "run"
    # The recipe's optimiser settings with a tiny model and dataset: the config saved is the recipe's.
    assert main(["train", "-c", "fashion-mnist-resnet20", "--data", "digits", "--model", "resnet",
                 "--set", "model.options.depth=8", "--epochs", "1", "--limit-train", "64", "--limit-test", "64",
                 "--device", "cpu", "--progress", "off", "--out", str(out)]) == 0
    config = RunDir(out).read_config()
    assert config["optim"]["nesterov"] is True and config["optim"]["weight_decay"] == 5e-4
    assert config["schedule"]["warmup_epochs"] == 1 and config["data"]["name"] == "digits"


def test_compare_dash_c_name_runs_the_shipped_suite(tmp_path, capsys):
    assert main(["compare", "-c", "suites/demo-fashion-mnist.toml", "--dry-run", "--out", str(tmp_path)]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == [[f"{m}-seed0", "start"] for m in ("resnet20", "lm-resnet20", "revnet38", "odenet")]


def test_train_with_an_unknown_name_is_one_line_listing_the_names(capsys):
    assert main(["train", "-c", "cifar10/lm-resnet57"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("resdyn: error: no config file cifar10/lm-resnet57") and "suites/demo-fashion-mnist" in err
