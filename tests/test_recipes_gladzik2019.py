"""The recipes of Gładzik's thesis (AGH Kraków, 2019): each resolves by name, builds the thesis's network with the
thesis's parameter count, and trains as the thesis says (epochs, schedule, image preparation); the thesis's
accuracies are labelled training-set figures; its suites build every row; the former names still resolve."""

from __future__ import annotations

import pytest

from resdyn.analysis.profile import count_parameters
from resdyn.cli import main
from resdyn.compare import load_suite
from resdyn.data import DATASETS
from resdyn.errors import ConfigError
from resdyn.nets import build_model
from resdyn.recipes import find_recipe, recipe_names, recipe_path
from resdyn.train.config import Config, load_config

RECIPES = [name for name in recipe_names() if name.startswith("gladzik2019/")]
SUITES = ["suites/gladzik2019-fashion-mnist", "suites/gladzik2019-fashion-mnist-blocks"]
# the thesis's epochs per data set (secs. 5.3.1-5.3.5); the CIFAR-10 tolerance sweep ran 25
EPOCHS = {"mnist": 30, "qmnist": 60, "fashion-mnist": 50, "cifar10": 100, "cifar100": 100}


def built_parameters(config: Config) -> int:
    info = DATASETS.get(config.data.name)().info
    model = build_model(config.model.name, info.in_channels, info.num_classes, **config.model.options)
    return count_parameters(model)


def test_every_experiment_of_the_thesis_has_a_recipe() -> None:
    assert RECIPES == sorted(
        [f"gladzik2019/{data}/odenet{adjoint}" for data in ("mnist", "qmnist") for adjoint in ("", "-adjoint")]
        + [f"gladzik2019/fashion-mnist/{name}" for name in ("resnet2", "resnet4", "resnet8", "odenet", "odenet-adjoint",
                                                        "odenet2", "odenet2-adjoint")]
        + [f"gladzik2019/cifar10/{name}" for name in ("resnet4", "resnet8", "odenet", "odenet-adjoint",
                                                  "odenet-rtol1e-4", "odenet-rtol1e-5")]
        + [f"gladzik2019/cifar100/{name}" for name in ("resnet4", "resnet8", "odenet-sgd", "odenet-adjoint-sgd",
                                                   "odenet-adam", "odenet-adjoint-adam")]
    )  # fmt: skip


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_builds_the_thesis_network_with_its_parameter_count(name: str) -> None:
    config = load_config(find_recipe(name)).validate()
    assert config.meta["source"].startswith("Gładzik 2019, sec. 5.3.")
    assert built_parameters(config) == config.meta["paper_params"]
    options = config.model.options
    assert options.get("adjoint", False) == ("adjoint" in name)
    assert options.get("blocks", 1) == (2 if "odenet2" in name else 1 if "odenet" in name else int(name[-1]))


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_as_the_thesis_says(name: str) -> None:
    config = load_config(find_recipe(name))
    data = config.data
    # sec. 4.4: upscale to 32x32, random 28x28 crop, no flip; evaluation resizes the image to 28x28
    assert (data.augment, data.resize, data.crop, data.crop_padding, data.flip, data.eval_crop) == (
        True, 32, 28, 0, False, "resize")  # fmt: skip
    assert config.train.batch_size == 128 and config.optim.weight_decay == 0
    if "rtol" in name:  # the CIFAR-10 tolerance sweep: Adam, constant lr 1e-3, 25 epochs
        tolerance = float(name.split("rtol")[1])
        assert config.model.options == {"rtol": tolerance, "atol": tolerance}
        assert (config.optim.name, config.optim.lr, config.schedule.name, config.train.epochs) == (
            "adam", 1e-3, "constant", 25)  # fmt: skip
        return
    assert config.train.epochs == EPOCHS[data.name] and config.optim.lr == 0.1
    assert config.optim.name == ("adam" if name.endswith("-adam") else "sgd")
    if config.optim.name == "sgd":
        assert config.optim.momentum == 0.9
    # lr divided by 10 every 0.3 x the epochs (sec. 4.3.1; "every 30 epochs" for the CIFARs, sec. 5.3.4)
    assert (config.schedule.name, config.schedule.gamma) == ("step", 0.1)
    assert config.schedule.step_size == round(0.3 * config.train.epochs)


def test_the_accuracies_the_thesis_states_are_in_meta_as_training_set_figures() -> None:
    def meta(name: str) -> dict:
        return load_config(find_recipe(name)).meta

    # sec. 5.1: "The dataset used for training and validation is the same training dataset"
    assert all(meta(name)["paper_metric"] == "train accuracy" for name in RECIPES)
    assert not any("paper_test_error" in meta(name) for name in RECIPES)
    assert meta("gladzik2019/mnist/odenet")["paper_train_error"] == 1.0  # "comparable results of 99%"
    assert meta("gladzik2019/qmnist/odenet-adjoint")["paper_train_error"] == 0.5  # "99,5%"
    assert all(meta(f"gladzik2019/fashion-mnist/{n}")["paper_train_accuracy_min"] == 90.0
               for n in ("resnet2", "odenet"))
    assert [meta(f"gladzik2019/cifar10/odenet-rtol{t}")["paper_nfe"] for t in ("1e-4", "1e-5")] == [34, 52]


@pytest.mark.parametrize("suite", SUITES)
def test_the_thesis_suites_build_every_row(suite: str) -> None:
    experiments = load_suite(find_recipe(suite)).experiments
    for experiment in experiments:
        assert built_parameters(experiment.config) == experiment.config.meta["paper_params"]
    labels = [e.label for e in experiments]
    if suite == "suites/gladzik2019-fashion-mnist":
        assert labels == ["resnet2", "resnet4", "resnet8", "odenet", "odenet-adjoint"]
    else:
        assert labels == ["odenet", "odenet-adjoint", "odenet2", "odenet2-adjoint"]


@pytest.mark.parametrize(("old", "new"), [
    ("seed004/fashion-mnist/odenet", "gladzik2019/fashion-mnist/odenet"),
    ("seed004/cifar10/odenet-rtol1e-4.toml", "gladzik2019/cifar10/odenet-rtol1e-4"),
    ("suites/seed004-fashion-mnist", "suites/gladzik2019-fashion-mnist"),
    ("suites/seed004-fashion-mnist-blocks", "suites/gladzik2019-fashion-mnist-blocks"),
])
def test_a_former_name_resolves_to_the_renamed_recipe_with_a_notice(old: str, new: str, capsys) -> None:
    assert find_recipe(old) == recipe_path(new)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and repr(new) in err and repr(old.removesuffix(".toml")) in err
    assert old.removesuffix(".toml") not in recipe_names()


def test_a_former_name_works_on_the_command_line_and_in_a_suite(tmp_path, capsys) -> None:
    assert main(["recipes", "show", "seed004/mnist/odenet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == recipe_path("gladzik2019/mnist/odenet").read_text()
    assert "'gladzik2019/mnist/odenet'" in captured.err
    (tmp_path / "s.toml").write_text('[suite]\nname = "s"\nrecipes = ["seed004/fashion-mnist/resnet2"]\n')
    (experiment,) = load_suite(tmp_path / "s.toml").experiments
    assert experiment.config.meta["paper_params"] == 280842 and experiment.label == "resnet2"
    assert "'gladzik2019/fashion-mnist/resnet2'" in capsys.readouterr().err


def test_a_former_name_that_never_existed_is_still_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match="no shipped recipe 'seed004/mnist/resnet99'"):
        find_recipe("seed004/mnist/resnet99")
