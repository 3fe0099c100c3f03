"""resdyn compare: suites are typed data; finished runs are skipped, interrupted ones resumed, then reported."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import resdyn.compare as compare
from resdyn.cli import main
from resdyn.compare import load_suite, plan, report_suite, run_suite
from resdyn.runs import RunDir
from resdyn.train.config import ConfigError
from resdyn.train.loop import train
from resdyn.train.progress import Progress

SUITES = Path(__file__).parents[1] / "resdyn" / "recipes" / "suites"
RECIPES = Path(__file__).parents[1] / "resdyn" / "recipes"

# ResNet-8 on a quarter of digits: a real run of two epochs in well under a second.
DIGITS = """
[model]
name = "resnet"
options = { depth = 8 }

[data]
name = "digits"
crop_padding = 1
flip = false
limit_train = 384

[train]
epochs = 2
batch_size = 32
eval_batch_size = 512
device = "cpu"
progress = "off"
"""


def write_suite(folder: Path, suite: str, base: str = DIGITS) -> Path:
    path = folder / "suite.toml"
    path.write_text(textwrap.dedent(suite) + base)
    return path


class Killed(Exception):
    pass


def kill_after_epoch_1(epoch, record):
    if epoch == 1:
        raise Killed


def test_compare_skips_finished_runs_and_resumes_interrupted_ones(tmp_path, monkeypatch, capsys):
    path = write_suite(tmp_path, f"""
        [suite]
        name = "digits-seeds"
        out = "{tmp_path / 'out'}"
        seeds = [0, 1, 2]
    """)
    suite = load_suite(path)
    done, interrupted, fresh = suite.experiments
    assert [e.name for e in suite.experiments] == ["resnet-seed0", "resnet-seed1", "resnet-seed2"]
    train(done.config, done.path, progress=Progress("off"))
    with pytest.raises(Killed):
        train(interrupted.config, interrupted.path, progress=Progress("off"), on_epoch_end=kill_after_epoch_1)
    finished_at = RunDir(done.path).file("summary.json").stat().st_mtime_ns
    assert [s for _, s in plan(suite)] == ["done", "resume", "start"]

    calls = []

    def spy(config, out, **kwargs):
        calls.append((Path(out).name, kwargs["resume"]))
        return train(config, out, **kwargs)

    monkeypatch.setattr(compare, "train", spy)
    outcomes = run_suite(suite, log=lambda line: None, isolate=False)
    assert [o.action for o in outcomes] == ["skipped", "resumed", "started"]
    assert calls == [("resnet-seed1", True), ("resnet-seed2", False)]
    assert RunDir(done.path).file("summary.json").stat().st_mtime_ns == finished_at
    assert [m.epoch for m in RunDir(interrupted.path).read_metrics()] == [1, 2]
    assert RunDir(interrupted.path).read_summary().epochs == 2

    report, html_path, md_path = report_suite(suite)
    (group,) = [row for row in report.sections[0].table.rows]
    assert group[0] == "resnet" and group[2] == "3"  # the suite's label, three seeds in one row
    assert html_path.exists() and md_path.exists() and not report.skipped

    # Everything is finished now: the command line trains nothing and reports again.
    calls.clear()
    assert main(["compare", "-c", str(path)]) == 0
    assert calls == []
    captured = capsys.readouterr()
    assert "[3/3] resnet-seed2: finished, skipped" in captured.err and "acc %" in captured.out


def test_a_folder_holding_another_config_is_refused_before_anything_runs(tmp_path):
    path = write_suite(tmp_path, f"""
        [suite]
        name = "s"
        out = "{tmp_path / 'out'}"
    """)
    (experiment,) = load_suite(path).experiments
    train(experiment.config, experiment.path, progress=Progress("off"))
    changed = load_suite(path, ["train.epochs=3", "train.device=cpu"])  # the device does not matter; epochs do
    with pytest.raises(ConfigError, match=r"holds a run of another config \(train.epochs: 2 there, 3 here\)"):
        plan(changed)


def test_a_diverging_run_fails_alone_and_is_named_in_the_report(tmp_path):
    path = write_suite(tmp_path, f"""
        [suite]
        name = "lr"
        out = "{tmp_path / 'out'}"
        set = ["train.epochs=1", "data.limit_train=64", "schedule.name=constant"]

        [[suite.variants]]
        name = "boom"
        set = ["optim.lr=1e30"]

        [[suite.variants]]
        name = "ok"
        set = ["optim.lr=0.05"]
    """)
    suite = load_suite(path)
    outcomes = run_suite(suite, log=lambda line: None)
    assert [(o.experiment.name, o.action) for o in outcomes] == [("resnet-boom-seed0", "failed"),
                                                                 ("resnet-ok-seed0", "started")]
    assert "non-finite loss" in outcomes[0].error
    report, _, _ = report_suite(suite)
    assert [s.path.name for s in report.skipped] == ["resnet-boom-seed0"]
    assert [row[0] for row in report.sections[0].table.rows] == ["resnet-ok"]


@pytest.mark.parametrize("suite, message", [
    ('[suite]\nname = "s"\nmodel = ["resnet20"]\n', r"unknown key\(s\) model in \[suite\]; valid keys: name, out"),
    ('[suite]\nname = "s"\nseeds = ["0"]\n', r"suite.seeds\[0\]: expected int, got '0'"),
    ('[suite]\nname = "s"\n[[suite.variants]]\nname = "v"\noverrides = []\n',
     r"unknown key\(s\) overrides in \[suite.variants\[0\]\]; valid keys: name, set"),
    ('[suite]\nname = "s"\nset = ["optim.lrr=0.1"]\n', r"experiment resnet: .*unknown key\(s\) lrr in \[optim\]"),
    ('[suite]\nname = "s"\nrecipes = ["a.toml"]\nmodels = ["resnet20"]\n', "either recipes"),
    ('[suite]\nname = "s"\nseeds = [1, 1]\n', "distinct"),
    ('[suite]\nname = "a b"\n', "must be a folder name"),
    ('[suite]\nname = "s"\n[[suite.variants]]\nname = "v"\n[[suite.variants]]\nname = "v"\n', "distinct"),
    ('[sweet]\nname = "s"\n', r"has no \[suite\] table"),
])
def test_suite_errors_name_the_key_and_the_file(tmp_path, suite, message):
    path = write_suite(tmp_path, suite)
    with pytest.raises(ConfigError, match=message) as e:
        load_suite(path)
    assert str(path) in str(e.value)


def test_a_recipes_paper_number_stays_with_its_own_model(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(f'[suite]\nname = "s"\nrecipe = "{RECIPES / "cifar10/resnet20.toml"}"\n'
                    'models = ["resnet20", "lm-resnet20"]\n[train]\nepochs = 3\n')
    resnet, lm = load_suite(path).experiments
    assert resnet.config.meta["paper_test_error"] == 8.75 and "paper_test_error" not in lm.config.meta
    assert lm.config.model.name == "lm-resnet20" and lm.config.train.epochs == 3  # inline tables over the recipe
    assert lm.config.meta["label"] == "lm-resnet20" and lm.config.meta["suite"] == "s"


def test_shipped_suites_load():
    cifar = load_suite(SUITES / "cifar10-resnet-vs-lm.toml")
    assert len(cifar.experiments) == 15 * 3
    by_label = {e.label: e.config for e in cifar.experiments}
    assert by_label["lm-resnet56"].meta["paper_test_error"] == 6.31
    assert by_label["resnet110-sd"].model.options["noise"] == "stochastic-depth"
    assert by_label["resnet110-sd"].train.epochs == 500
    small = load_suite(SUITES / "fashion-mnist-small.toml")
    assert [e.name for e in small.experiments][:4] == ["resnet20-seed0", "lm-resnet20-seed0", "resnet32-seed0",
                                                       "lm-resnet32-seed0"]
    assert {e.config.data.name for e in small.experiments} == {"fashion-mnist"}
    r56 = load_suite(SUITES / "fashion-mnist-resnet56-vs-lm.toml")
    assert [(e.config.model.name, e.config.train.seed) for e in r56.experiments][:2] == [("resnet56", 0),
                                                                                       ("lm-resnet56", 0)]
    assert len(r56.experiments) == 6 and {e.config.train.epochs for e in r56.experiments} == {30}
    for path in SUITES.glob("*.toml"):  # every shipped suite resolves
        assert load_suite(path).experiments, path


@pytest.mark.slow
def test_compare_launches_each_run_on_several_processes(tmp_path, capsys):
    path = write_suite(tmp_path, f"""
        [suite]
        name = "digits-ddp"
        out = "{tmp_path / 'out'}"
        set = ["train.epochs=1", "data.limit_train=128", "data.limit_test=64"]
        """)
    assert main(["compare", "-c", str(path), "--nproc-per-node", "2"]) == 0
    summary = RunDir(tmp_path / "out" / "resnet-seed0").read_summary()
    assert summary.world_size == 2 and summary.epochs == 1 and summary.train_images == 128
    assert "resnet" in (tmp_path / "out" / "report" / "report.md").read_text()


@pytest.mark.parametrize("suite, says", [
    ('[suite]\nname = "s"\nmodels = ["resnet", "resnet-typo"]\n',
     r"resnet-typo-seed0: unknown model 'resnet-typo'.*valid"),
    ('[suite]\nname = "s"\n[[suite.variants]]\nname = "a"\n[[suite.variants]]\nname = "b"\n'
     'set = ["model.options.depth=7"]\n', r"resnet-b-seed0: .*depth"),
    ('[suite]\nname = "s"\nset = ["data.resize=2"]\n[[suite.variants]]\nname = "a"\n[[suite.variants]]\n'
     'name = "ode"\nset = ["model.name=odenet", "model.options={}"]\n',
     r"resnet-ode-seed0: odenet cannot run on the 2x2 images"),
    ('[suite]\nname = "s"\n[[suite.variants]]\nname = "a"\n[[suite.variants]]\nname = "nodata"\n'
     'set = ["data.name=mnist", "data.download=false", "data.dir=\\"EMPTY\\""]\n',
     r"resnet-nodata-seed0: .*mnist"),
])
def test_every_experiment_is_checked_before_the_first_trains(tmp_path, capsys, suite, says):
    """Issue 29.6: --dry-run accepted an unknown model; the real run trained the first rows, then stopped the
    whole suite without a report."""
    (tmp_path / "empty").mkdir()
    path = write_suite(tmp_path, suite.replace("EMPTY", str(tmp_path / "empty")))
    out = tmp_path / "out"
    for dry in (["--dry-run"], []):
        assert main(["compare", "-c", str(path), "--out", str(out), *dry]) == 1
        err = capsys.readouterr().err
        assert err.startswith("resdyn: error: 1 of the suite's 2 experiments cannot run") and "Traceback" not in err
        assert re.search(says, err), err
        assert not out.exists()  # nothing trained, nothing written


def test_a_run_that_fails_at_run_time_is_recorded_and_the_others_go_on(tmp_path, monkeypatch, capsys):
    path = write_suite(tmp_path, f"""
        [suite]
        name = "s"
        out = "{tmp_path / 'out'}"
        set = ["train.epochs=1", "data.limit_train=64"]

        [[suite.variants]]
        name = "a"

        [[suite.variants]]
        name = "oom"

        [[suite.variants]]
        name = "c"
    """)
    real = compare.train

    def out_of_memory_in_oom(config, out, **kwargs):
        if Path(out).name.startswith("resnet-oom"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(config, out, **kwargs)

    monkeypatch.setattr(compare, "train", out_of_memory_in_oom)
    lines = []
    suite = load_suite(path)
    outcomes = run_suite(suite, log=lines.append, isolate=False)
    assert [o.action for o in outcomes] == ["started", "failed", "started"]
    assert "[2/3] resnet-oom-seed0: failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" in lines
    assert any(line.startswith("Traceback") for line in lines)  # not a user error: its traceback is kept
    report_suite(suite)
    md = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "resnet-a" in md and "resnet-c" in md
    assert "): RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB; the suite's command starts it again" in md
    assert "resnet-oom-seed0" in md and "failed (" in md


def test_each_run_of_a_suite_measures_its_own_peak_memory(tmp_path):
    """Issue 29.2: runs after the first reported what earlier runs had left in the process (445/549/550 MiB
    against 404-418 MiB alone). Each run now trains in a process of its own: every figure is a run's own peak,
    within 5% of the same run trained alone, even after a run that needed far more memory."""
    path = write_suite(tmp_path, f"""
        [suite]
        name = "memory"
        out = "{tmp_path / 'out'}"
        set = ["train.epochs=1"]

        [[suite.variants]]
        name = "big"
        set = ["data.resize=128", "train.batch_size=384", "train.eval_batch_size=2048"]

        [[suite.variants]]
        name = "a"

        [[suite.variants]]
        name = "b"
    """)
    assert main(["compare", "-c", str(path)]) == 0
    big, *small = [RunDir(tmp_path / "out" / f"resnet-{v}-seed0").read_summary() for v in ("big", "a", "b")]
    assert {s.peak_memory_kind for s in (big, *small)} == {"peak_rss"}
    assert all(s.command == f"resdyn compare -c {path}" for s in small)  # the suite's command, not the child's
    _, a, _ = load_suite(path).experiments
    config = tmp_path / "alone.toml"
    config.write_text(compare.dump_config(a.config))
    subprocess.run([sys.executable, "-m", "resdyn", "train", "-c", str(config), "--out", str(tmp_path / "alone")],
                   check=True, capture_output=True)
    alone = RunDir(tmp_path / "alone").read_summary().peak_memory_bytes
    assert big.peak_memory_bytes > 1.2 * alone  # the first run's leftovers would show
    for s in small:
        assert abs(s.peak_memory_bytes - alone) / alone < 0.05, (s.peak_memory_bytes, alone)
