"""The report's numbers: runs grouped into experiments, one table per dataset with mean ± std over the seeds.

Runs of the same experiment (the same :func:`resdyn.experiment.identity`) that differ only in their seed are
one row: accuracy and error as mean ± sample standard deviation over the seeds, next to the paper's number
where the recipe's ``[meta]`` table holds one (``paper_test_error``, in percent).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resdyn.analysis.plots import MEMORY_KINDS, OWN_MEMORY_KINDS, nfe, number
from resdyn.analysis.report.collect import Run
from resdyn.analysis.tables import human_bytes
from resdyn.experiment import identity
from resdyn.runs import model_depth

MISSING = "-"


# -- one row per experiment ---------------------------------------------------------------------------------
def family_of(label: str, depth: int | None) -> str:
    """The label without its depth: resnet20 and resnet56 are both "resnet", resnet110-sd is "resnet-sd"."""
    if depth is None:
        return label
    family = re.sub(rf"\s*\bdepth={depth}\b|(?<!\d){depth}(?!\d)", "", label, count=1)
    return re.sub(r"\s+", " ", family).strip(" -") or label


@dataclass
class Group:
    """The runs of one experiment (several seeds, or one)."""

    label: str
    runs: list[Run]

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def depth(self) -> int | None:
        """The summary's depth; for a summary written before it held one, the same rule applied to the config."""
        depth = self.first.summary.depth
        return depth if depth is not None else model_depth(self.first.model, self.first.options)

    @property
    def family(self) -> str:
        return family_of(self.label, self.depth)


def _base_label(run: Run) -> str:
    """``meta.label`` (set by ``resdyn compare``), else the model name with its scalar options."""
    label = run.meta.get("label")
    if isinstance(label, str) and label:
        return label
    options = [f"{k}={v}" for k, v in sorted(run.options.items()) if isinstance(v, (str, int, float, bool))]
    return " ".join([run.model, *options])


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs of the same experiment in one group; labels made unique by naming the config keys that differ."""
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(run.identity_key, []).append(run)
    groups = [Group(_base_label(members[0]), sorted(members, key=lambda r: (r.seed is None, r.seed, r.name)))
              for members in by_key.values()]
    for label in {g.label for g in groups}:
        clash = [g for g in groups if g.label == label]
        if len(clash) > 1:
            configs = [identity(g.first.config, g.first.world_size) for g in clash]
            keys = sorted({k for c in configs for k in c if any(c.get(k) != o.get(k) for o in configs)})
            for group, config in zip(clash, configs, strict=True):
                group.label = f"{label} ({', '.join(f'{k}={config.get(k, MISSING)}' for k in keys)})"
    return sorted(groups, key=lambda g: (g.family, g.depth or 0, g.label))


# -- numbers ------------------------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator); no deviation from a single value."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def mean_of(values: Iterable[Any]) -> float | None:
    numbers = [n for n in map(number, values) if n is not None]
    return statistics.fmean(numbers) if numbers else None


def _nfe(run: Run, direction: str) -> float | None:
    """The last epoch's mean NFE (the summary's where there are no per-epoch records)."""
    reports = [*(r.model for r in run.metrics[-1:]), run.summary.model_metrics]
    return next((v for r in reports for v in [nfe(r, direction)] if v is not None), None)


def _si(n: float | None) -> str:
    if n is None:
        return MISSING
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


def _seconds(s: float | None) -> str:
    if s is None:
        return MISSING
    return f"{s:.2f}" if s < 10 else f"{s:.1f}" if s < 100 else f"{s:,.0f}"


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


@dataclass(frozen=True)
class Table:
    """One dataset's comparison, as text cells; ``colours`` holds each row's model colour."""

    dataset: str
    headers: list[str]
    rows: list[list[str]]
    colours: list[str]
    notes: list[str]
    #: the training budget shared by every row (images, subset or not, epochs); None when rows differ (a column)
    budget: str | None = None

    @property
    def heading(self) -> str:
        return self.dataset if self.budget is None else f"{self.dataset}: {self.budget}"


def budget(run: Run) -> str:
    """What a run was trained on: how many training images (and whether a subset) for how many epochs."""
    images = run.summary.train_images
    epochs = run.summary.epochs if run.summary.epochs is not None else len(run.metrics)
    subset = " (subset)" if run.config.get("data", {}).get("limit_train") is not None else ""
    return f"{MISSING if images is None else format(images, ',')} training images{subset}, {epochs} epochs"


def dataset_table(dataset: str, groups: Sequence[Group], palette: Mapping[str, str]) -> Table:
    """The comparison table of one dataset: one row per experiment, optional columns only where some row has data.

    The training budget is in the heading when every run shares it, else a column: an 8,000-image, 3-epoch
    result must never read like a full-dataset one."""
    runs = [r for g in groups for r in g.runs]
    budgets = {g.label: budget(g.first) for g in groups}
    shared = next(iter(budgets.values())) if len(set(budgets.values())) == 1 else None
    paper = {g.label: number(g.first.meta.get("paper_test_error")) for g in groups}
    with_paper = any(v is not None for v in paper.values())
    paper_train = {g.label: paper_train_error(g.first.meta) for g in groups}
    with_paper_train = any(v is not None for v in paper_train.values())
    with_nfe = any(_nfe(r, "forward") is not None or _nfe(r, "backward") is not None for r in runs)
    headers = ["model", "depth", "seeds"] + (["trained on"] if shared is None else [])
    headers += ["test acc (%)", "test error (%)"]
    headers += ["paper error (%)", "Δ error (pp)"] if with_paper else []
    headers += ["paper train error (%)"] if with_paper_train else []
    headers += ["params", "Mult-Adds per image", "Mult-Adds per batch of 128", "train s/epoch", "eval s/epoch"]
    headers += ["NFE forward", "NFE backward"] if with_nfe else []
    headers += ["peak memory", "checkpoint"]

    rows = []
    for g in groups:
        acc = [100 * r.summary.test_acc for r in g.runs]
        error = mean_std([100 - a for a in acc])
        macs = g.first.summary.mult_adds_per_image
        row = [g.label, MISSING if g.depth is None else str(g.depth), str(len(g.runs))]
        row += [budgets[g.label]] if shared is None else []
        row += [_pm(*mean_std(acc)), _pm(*error)]
        if with_paper:
            p = paper[g.label]
            row += [MISSING, MISSING] if p is None else [f"{p:.2f}", f"{error[0] - p:+.2f}"]
        if with_paper_train:
            row += [paper_train[g.label] or MISSING]
        row += [f"{g.first.summary.params:,}", _si(macs), _si(None if macs is None else 128 * macs),
                _seconds(mean_of(r.summary.train_time_per_epoch_s for r in g.runs)),
                _seconds(mean_of(r.summary.eval_time_per_epoch_s for r in g.runs))]
        if with_nfe:
            row += [_nfe_cell(g, "forward"), _nfe_cell(g, "backward")]
        memory = mean_of(r.summary.peak_memory_bytes for r in g.runs)
        checkpoint = mean_of(r.summary.checkpoint_bytes for r in g.runs)
        row += [human_bytes(None if memory is None else round(memory)),
                human_bytes(None if checkpoint is None else round(checkpoint))]
        rows.append(row)
    return Table(dataset, headers, rows, [palette[g.label] for g in groups],
                 _notes(groups, with_paper, with_nfe, with_paper_train), shared)


def _nfe_cell(group: Group, direction: str) -> str:
    value = mean_of(_nfe(r, direction) for r in group.runs)
    return MISSING if value is None else f"{value:.1f}"


def paper_train_error(meta: Mapping[str, object]) -> str | None:
    """The paper's error on its own *training* data, as a cell ("1.23", or "≤ 4.56" from a least accuracy), from
    a recipe's ``[meta]`` (``paper_train_error``, ``paper_train_accuracy_min``, in percent); None if it has none.
    Never compared with a test error: it is shown apart, with no Δ."""
    error = number(meta.get("paper_train_error"))
    if error is not None:
        return f"{error:.2f}"
    least = number(meta.get("paper_train_accuracy_min"))
    return None if least is None else f"≤ {100 - least:.2f}"


def _notes(groups: Sequence[Group], with_paper: bool, with_nfe: bool, with_paper_train: bool = False) -> list[str]:
    """What the table's numbers are, so that it can be read without this code."""
    runs = [r for g in groups for r in g.runs]
    notes = []
    if any(len(g.runs) > 1 for g in groups):
        notes.append("a ± b: mean and sample standard deviation (n − 1) over the seeds.")
    if with_paper:
        sources = sorted({str(g.first.meta["source"]) for g in groups if "source" in g.first.meta})
        notes.append("Δ error: mean test error minus the paper's, in percentage points"
                     + (f"; papers: {'; '.join(sources)}." if sources else "."))
    if with_paper_train:
        notes.append("paper train error: the error the paper reports on its own training images (Gładzik 2019 "
                     "scored its models on the data they trained on); it is not a test error, so no Δ is given.")
    notes.append("Mult-Adds: multiply-accumulates of one forward pass at the dataset's input size, counted by "
                 "PyTorch's FlopCounterMode in eval mode (convolutions and matrix products) when the run finished; "
                 "- for runs whose summary predates the count.")
    if with_nfe:
        notes.append("NFE: vector-field evaluations per pass in the last epoch, summed over the ODE blocks.")
    kinds = sorted({r.summary.peak_memory_kind for r in runs if r.summary.peak_memory_kind})
    if kinds:
        notes.append("Peak memory: " + ", ".join(MEMORY_KINDS.get(k, k) for k in kinds) + "; checkpoint: size of "
                     "checkpoint.pt (weights, optimiser and resume state).")
        if set(kinds) - OWN_MEMORY_KINDS:
            notes.append("A process max RSS, or a peak measured in a process that trained before (several `fit` "
                         "calls in one notebook), also holds what ran earlier in that process: it is not "
                         "comparable between runs, and the memory plot is left out. `resdyn train` and "
                         "`resdyn compare` train each run in a process of its own.")
    devices = sorted({r.summary.device for r in runs if r.summary.device})
    if devices:
        notes.append("Times measured on " + "; ".join(devices) + ".")
    return notes
