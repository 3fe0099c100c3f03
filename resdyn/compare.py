"""``resdyn compare``: run a suite of experiments into one folder, then report on them.

A suite file is a recipe with a ``[suite]`` table: the recipe's tables (``[model]``, ``[data]``, ``[optim]``,
``[schedule]``, ``[train]``, ``[meta]``) are the base config, and ``[suite]`` says what to vary::

    [suite]
    name = "fmnist-small"               # the report's title; the default out is runs/<name>
    out = "runs/fmnist-small"           # one run folder per experiment in here, and report/
    recipe = "fashion-mnist-resnet20"   # base config under the inline tables: a file relative to this one,
                                        # else a shipped recipe's name (see `resdyn recipes`)
    models = ["resnet20", "lm-resnet20"]        # one row per model (or recipes = [...]: one row per recipe)
    seeds = [0, 1]
    set = ["train.epochs=4"]            # --set overrides for every experiment

    [[suite.variants]]                  # optional: each row is run once per variant
    name = "adamw"
    set = ["optim.name=adamw", "optim.lr=1e-3"]

An experiment is (row, variant, seed), run in ``<out>/<row>[-<variant>]-seed<N>``, seed-major so that one
seed of every model finishes first. Its config is, from lowest precedence: defaults, the recipe (or each
of ``recipes``), the inline tables, ``suite.set``, the variant's ``set``, the command line's ``--set``, the
seed. A recipe's ``[meta]`` (the paper's number) describes the recipe's own model, so a row that swaps in
another model does not inherit it. ``meta.label`` and ``meta.suite`` are added, so the report names rows as
the suite does.

Every experiment's config is built and checked before anything trains. Then a folder with a summary is
skipped, one with a checkpoint is resumed (exactly: see ``resdyn.train.loop``), any other is started; a
folder whose stored config differs from the suite's is an error rather than a silent mix of two
experiments. Every experiment's model, options and data are checked before the first trains. A run that fails
(its loss turns non-finite, it runs out of memory, ...) is logged and named in the report, and the suite goes
on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from resdyn.analysis.report import Report, build_report, write_report
from resdyn.atomic import parse_toml, read_text
from resdyn.errors import ResdynError
from resdyn.recipes import find_recipe
from resdyn.runs import RunDir, RunError
from resdyn.train.config import Config, ConfigError, apply_overrides, build_table, dump_config, load_config
from resdyn.train.loop import train
from resdyn.train.preflight import check_runnable
from resdyn.train.resume import Status, folder_state

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass
class Variant:
    """A named set of overrides; every row of the suite is run once per variant."""

    name: str
    set: list[str] = field(default_factory=list)


@dataclass
class SuiteTable:
    """The ``[suite]`` table of a suite file, as written."""

    name: str
    #: folder for the suite's run folders and report (relative to the working directory); default runs/<name>
    out: str | None = None
    #: base recipe: a file relative to the suite file, else the name of a shipped recipe
    recipe: str | None = None
    #: one row per recipe (each keeps its own model and [meta]); instead of ``recipe`` and ``models``
    recipes: list[str] = field(default_factory=list)
    #: one row per model name, over the base config
    models: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    #: ``section.key=value`` overrides for every experiment
    set: list[str] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Experiment:
    """One run of the suite: its folder and its resolved config."""

    name: str
    label: str
    config: Config
    path: Path


@dataclass(frozen=True)
class Suite:
    name: str
    out: Path
    experiments: list[Experiment]

    @property
    def report_dir(self) -> Path:
        return self.out / "report"


@dataclass(frozen=True)
class Outcome:
    """What ``run_suite`` did with an experiment: skipped, resumed, started, or failed (with the reason)."""

    experiment: Experiment
    action: Literal["skipped", "resumed", "started", "failed"]
    error: str | None = None


# -- reading a suite ----------------------------------------------------------------------------------------
def load_suite(path: str | Path, overrides: Sequence[str] = (), out: str | Path | None = None) -> Suite:
    """Read a suite file and resolve every experiment's config; errors name the file and the key."""
    path = Path(path)
    try:
        data = parse_toml(read_text(path, ConfigError), path, ConfigError)
    except OSError as e:
        raise ConfigError(f"cannot read suite {path}: {e.strerror}") from None
    if "suite" not in data:
        raise ConfigError(f"{path} has no [suite] table: a suite file is a recipe plus [suite] with name, models "
                          "or recipes, and seeds (see `resdyn compare --help`)")
    try:
        table = build_table(SuiteTable, data.pop("suite"), "suite")
        variants = [build_table(Variant, v, f"suite.variants[{i}]") for i, v in enumerate(table.variants)]
        _check_table(table, variants)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    rows = _rows(table, data, path)
    experiments = []
    for seed in table.seeds:
        for row, base in rows:
            for variant in variants or [Variant("")]:
                label = f"{row}-{variant.name}" if variant.name else row
                config = _resolve(base, [*table.set, *variant.set, *overrides], f"{path}: experiment {label}")
                config.train.seed = seed
                config.meta = {**config.meta, "label": label, "suite": table.name}
                name = f"{label}-seed{seed}"
                experiments.append(Experiment(name, label, config.validate(), Path(out or table.out or
                                                                                     f"runs/{table.name}") / name))
    names = [e.name for e in experiments]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"{path}: experiments {', '.join(twice)} appear twice; give rows and variants distinct "
                          "names (rows are named by model, or by recipe file name with recipes = [...])")
    return Suite(table.name, Path(out or table.out or f"runs/{table.name}"), experiments)


def _check_table(table: SuiteTable, variants: Sequence[Variant]) -> None:
    """What the field types cannot say: names usable as folder names, one way to give the rows, seeds."""
    for what, name in [("suite.name", table.name), *(("suite.variants name", v.name) for v in variants)]:
        if not SAFE_NAME.fullmatch(name):
            raise ConfigError(f"{what} {name!r} must be a folder name: letters, digits and . _ + -")
    if table.recipes and (table.recipe or table.models):
        raise ConfigError("give either recipes = [...] (one row per recipe) or recipe and models, not both")
    if not table.seeds or len(set(table.seeds)) < len(table.seeds):
        raise ConfigError(f"suite.seeds must be a non-empty list of distinct integers, got {table.seeds}")
    names = [v.name for v in variants]
    if len(set(names)) < len(names):
        raise ConfigError(f"suite.variants names must be distinct, got {names}")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base`` table by table (nested tables merge; other values replace)."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key),
                                                                                            dict) else value
    return merged


def _recipe(path: Path) -> dict[str, Any]:
    return load_config(path).to_dict()


def _rows(table: SuiteTable, inline: dict[str, Any], path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(row name, base config as nested tables) for each row of the suite."""
    here = path.parent
    if table.recipes:
        return [(Path(r).stem, _merge(_recipe(find_recipe(r, here)), inline)) for r in table.recipes]
    base = _merge(_recipe(find_recipe(table.recipe, here)) if table.recipe else {}, inline)
    if not table.models:
        return [(base.get("model", {}).get("name", Config().model.name), base)]
    rows = []
    for model in table.models:
        row = _merge(base, {"model": {"name": model}})
        if base.get("model", {}).get("name", Config().model.name) != model:
            # The recipe's [meta] (its paper's number) is about the recipe's model, not this one.
            row["meta"] = dict(inline.get("meta", {}))
        rows.append((model, row))
    return rows


def _resolve(base: dict[str, Any], overrides: Sequence[str], where: str) -> Config:
    try:
        return apply_overrides(Config.from_dict(base), list(overrides))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


# -- running ------------------------------------------------------------------------------------------------
def status(experiment: Experiment) -> Status:
    """"done" (summary written), "resume" (checkpoint, no summary) or "start"; a folder holding another
    experiment's run is an error naming the keys that differ."""
    return folder_state(RunDir(experiment.path), experiment.config)


def check_suite(suite: Suite) -> None:
    """Check every experiment's model, options and data (:func:`resdyn.train.preflight.check_runnable`) before
    anything trains: one error naming each experiment that cannot run, and why. Experiments that share their
    model and data are checked once."""
    problems: list[str] = []
    checked: dict[str, str | None] = {}
    for e in suite.experiments:
        c = e.config
        key = json.dumps([c.model.name, c.model.options, c.data.name, c.data.dir, c.data.download, c.data.test_part,
                          c.data.resize, c.data.crop, c.data.progressive_min_size], sort_keys=True, default=str)
        if key not in checked:
            try:
                check_runnable(c)
                checked[key] = None
            except ResdynError as error:
                checked[key] = str(error)
        if checked[key] is not None:
            problems.append(f"- {e.name}: {checked[key]}")
    if problems:
        raise ConfigError(f"{len(problems)} of the suite's {len(suite.experiments)} experiments cannot run, so none "
                          "was started:\n" + "\n".join(problems))


def plan(suite: Suite) -> list[tuple[Experiment, Status]]:
    """Every experiment with what ``run_suite`` will do with it; checks every experiment (:func:`check_suite`)
    and every folder before anything runs."""
    check_suite(suite)
    return [(e, status(e)) for e in suite.experiments]


def run_suite(suite: Suite, command: str | None = None,
              log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
              nproc_per_node: int = 1, isolate: bool = True) -> list[Outcome]:
    """Train what is not finished, in order; an error in one run (a non-finite loss, a run-time error of any
    kind but an interrupt) fails that experiment only, recorded in its Outcome.

    Each run trains in a process of its own (``python -m resdyn train``, or ``torchrun`` with ``nproc_per_node``
    > 1 processes), so that its figures are its own: a process that trained before holds what that left (its
    peak memory would count it). Its progress goes to this process's stderr. ``isolate=False`` trains in this
    process instead (single-process only; the summaries then say their peak memory was measured in a process
    that trained before)."""
    if nproc_per_node < 1:
        raise ConfigError(f"--nproc-per-node must be at least 1, got {nproc_per_node}")
    if not isolate and nproc_per_node > 1:
        raise ConfigError("data-parallel runs are launched as processes of their own: isolate=False needs "
                          "nproc_per_node=1")
    steps = plan(suite)
    outcomes = []
    for i, (experiment, state) in enumerate(steps, 1):
        what = {"done": "finished, skipped", "resume": "resuming", "start": "starting"}[state]
        log(f"[{i}/{len(steps)}] {experiment.name}: {what}")
        if state == "done":
            outcomes.append(Outcome(experiment, "skipped"))
            continue
        try:
            if isolate:
                _train_in_child(experiment, state, nproc_per_node, command)
            else:
                train(experiment.config, experiment.path, resume=state == "resume", overwrite=state == "start",
                      command=command)
        except Exception as e:  # noqa: BLE001 - one run's failure is recorded; the suite goes on
            reason = str(e) if isinstance(e, ResdynError) else f"{type(e).__name__}: {e}"
            if not isinstance(e, ResdynError):
                # Not a user error: keep its traceback for whoever debugs it.
                log("".join(traceback.format_exception(e)).rstrip())
            log(f"[{i}/{len(steps)}] {experiment.name}: failed: {reason}")
            outcomes.append(Outcome(experiment, "failed", reason))
            continue
        outcomes.append(Outcome(experiment, "resumed" if state == "resume" else "started"))
    return outcomes


class RunFailed(RunError):
    """A run's process ended with an error (the message is its last ``resdyn: error:`` line)."""


def _train_in_child(experiment: Experiment, state: Status, nproc_per_node: int, command: str | None) -> None:
    """Train one experiment in a process of its own: ``python -m resdyn train`` on its config, or with
    ``nproc_per_node`` > 1 the same under ``torchrun``. Its stderr is passed through as it comes."""
    experiment.path.mkdir(parents=True, exist_ok=True)
    launch = [sys.executable, "-m", "resdyn", "train"] if nproc_per_node == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}",
        "-m", "resdyn", "train"]
    record = ["--record-command", command] if command else []
    with tempfile.TemporaryDirectory() as tmp:
        if state == "resume":
            # status() has checked that the folder's config is this experiment's.
            args = ["--resume", str(experiment.path)]
        else:
            config = Path(tmp) / "config.toml"
            config.write_text(dump_config(experiment.config))
            args = ["-c", str(config), "--out", str(experiment.path), "--overwrite"]
        returncode, stderr = _passing_stderr_through([*launch, *args, *record])
    if returncode != 0:
        errors = [line for line in stderr.splitlines() if "resdyn: error:" in line]
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:]
        raise RunFailed(errors[-1].split("resdyn: error: ", 1)[1] if errors else
                        f"the run's process exited with {returncode}: {' '.join(last) or 'no output'}")


def _passing_stderr_through(argv: list[str], keep: int = 1 << 16) -> tuple[int, str]:
    """Run ``argv`` with its stderr copied to ours as it comes (progress bars included); its exit status and the
    last ``keep`` bytes of its stderr. An interrupt (Ctrl-C reaches the child too) waits for the child to stop."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    ours = getattr(sys.stderr, "buffer", None)
    tail = b""
    try:
        while chunk := os.read(process.stderr.fileno(), 4096):
            if ours is not None:
                ours.write(chunk)
            else:
                sys.stderr.write(chunk.decode(errors="replace"))
            sys.stderr.flush()
            tail = (tail + chunk)[-keep:]
        return process.wait(), tail.decode(errors="replace")
    except BaseException:
        process.wait()
        raise


def report_suite(suite: Suite, outcomes: Sequence[Outcome] = ()) -> tuple[Report, Path, Path]:
    """The report over every experiment's folder, written to ``<out>/report``; the experiments that failed among
    ``outcomes`` are named with their error."""
    failures = {o.experiment.path: o.error or "failed" for o in outcomes if o.action == "failed"}
    report = build_report([e.path for e in suite.experiments], title=suite.name, failures=failures)
    html_path, md_path = write_report(report, suite.report_dir)
    return report, html_path, md_path
