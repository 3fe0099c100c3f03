"""The comparison report: run folders in, one table per dataset and the plots out, as report.html and report.md.

Runs are read only through :class:`resdyn.runs.RunDir` (never by importing the training code), so a report
can be made from folders copied off another machine. Runs of the same experiment that differ only in their
seed are one row: accuracy and error as mean ± sample standard deviation over the seeds, next to the paper's
number where the recipe's ``[meta]`` table holds one (``paper_test_error``, in percent).

A folder that is missing, unfinished or corrupt is named with the reason in the report and skipped; it never
silently disappears from a comparison.

``report.html`` is self-contained (inline CSS, PNGs as base64 data URIs, no scripts, no network), so it can be
mailed or opened from disk; ``report.md`` links the same PNGs, written beside it.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import resdyn
from resdyn.analysis.plots import MEMORY_KINDS, Plot, Series, all_plots, colours, nfe, number
from resdyn.analysis.tables import format_table, human_bytes
from resdyn.atomic import atomic_write
from resdyn.runs import EpochRecord, RunDir, RunError, Summary, model_depth

#: config keys that say how a run was executed, not what was run: runs differing only here are one experiment
RUN_ONLY_KEYS = frozenset({"train.seed", "train.progress", "train.device", "data.dir", "data.download"})
RUN_FILES = (RunDir.CONFIG, RunDir.METRICS, RunDir.CHECKPOINT, RunDir.SUMMARY)
#: what `resdyn meanfield curves | map` write: a folder holding one is shown as its mean-field sections
MEANFIELD_FILES = ("curves.json", "map.json")
MISSING = "-"


# -- reading run folders ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A finished run as read from its folder."""

    path: Path
    #: the config the weights were last trained with (after any resume's overrides)
    config: dict[str, Any]
    summary: Summary
    metrics: list[EpochRecord]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> str:
        return self.config.get("model", {}).get("name", self.summary.model)

    @property
    def options(self) -> dict[str, Any]:
        return self.config.get("model", {}).get("options", {})

    @property
    def dataset(self) -> str:
        return self.config.get("data", {}).get("name", self.summary.data)

    @property
    def seed(self) -> int | None:
        return self.config.get("train", {}).get("seed", self.summary.seed)

    @property
    def meta(self) -> dict[str, Any]:
        return self.config.get("meta", {})


@dataclass(frozen=True)
class Skipped:
    """A folder that was asked for but could not be used, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """A run read more than once (the same folder named twice, or a copy: the same config and seed), counted once."""

    path: Path
    same_as: Path
    reason: str


def find_run_folders(paths: Iterable[str | Path]) -> list[Path]:
    """The run folders named by ``paths``: a run folder stands for itself, and a folder that is not one but holds
    run folders (a suite's ``out``) stands for those. Anything else is kept, to be reported as unreadable."""
    found: list[Path] = []
    for path in map(Path, paths):
        children = sorted(p for p in path.iterdir() if _looks_like_run(p)) if path.is_dir() else []
        if path.is_dir() and not _looks_like_run(path) and children:
            found.extend(children)
        else:
            found.append(path)
    return found


def _looks_like_run(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def read_run(path: Path) -> Run:
    """Read one finished run; a RunError says what is missing or corrupt."""
    if not path.exists():
        raise RunError("no such folder")
    if not path.is_dir():
        raise RunError("not a folder")
    run = RunDir(path)
    config = run.current_config()
    metrics = run.read_metrics()
    summary = run.read_summary()
    if summary is None:
        raise RunError(f"unfinished: no {RunDir.SUMMARY} ({len(metrics)} epoch(s) in {RunDir.METRICS}); "
                       f"continue it with `resdyn train --resume {path}`")
    return Run(path, config, summary, metrics)


def read_runs(paths: Iterable[str | Path]) -> tuple[list[Run], list[Skipped]]:
    """The readable runs among ``paths`` and, for every other one, why it was skipped."""
    runs, skipped = [], []
    for path in find_run_folders(paths):
        try:
            runs.append(read_run(path))
        except RunError as e:
            skipped.append(Skipped(path, str(e)))
    return runs, skipped


def unique_runs(runs: Sequence[Run]) -> tuple[list[Run], list[Duplicate]]:
    """The runs with each counted once: a folder named twice (``A A ./A``) is one run, and so is a folder whose
    config and seed are those of another (a copy of it), since seeds are what the table's statistics count."""
    kept: list[Run] = []
    duplicates: list[Duplicate] = []
    by_path: dict[Path, Run] = {}
    by_config: dict[str, Run] = {}
    for run in runs:
        where = run.path.resolve()
        config = json.dumps([experiment(run), run.seed], sort_keys=True, default=str)
        if where in by_path:
            duplicates.append(Duplicate(run.path, by_path[where].path, "the same folder"))
        elif config in by_config:
            duplicates.append(Duplicate(run.path, by_config[config].path, "the same config and seed"))
        else:
            kept.append(run)
            by_path[where], by_config[config] = run, run
    return kept, duplicates


# -- one row per experiment ---------------------------------------------------------------------------------
def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: ``{"model": {"options": {"depth": 8}}}`` -> ``{"model.options.depth": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def experiment(run: Run) -> dict[str, Any]:
    """What makes a run the experiment it is: its flattened config less the seed and how it was executed."""
    return {k: v for k, v in flatten(run.config).items() if k not in RUN_ONLY_KEYS}


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
        by_key.setdefault(json.dumps(experiment(run), sort_keys=True, default=str), []).append(run)
    groups = [Group(_base_label(members[0]), sorted(members, key=lambda r: (r.seed is None, r.seed, r.name)))
              for members in by_key.values()]
    for label in {g.label for g in groups}:
        clash = [g for g in groups if g.label == label]
        if len(clash) > 1:
            configs = [experiment(g.first) for g in clash]
            keys = sorted({k for c in configs for k in c if any(c.get(k) != o.get(k) for o in configs)})
            for group, config in zip(clash, configs, strict=True):
                group.label = f"{label} ({', '.join(f'{k}={config.get(k, MISSING)}' for k in keys)})"
    return sorted(groups, key=lambda g: (g.family, g.depth or 0, g.label))


# -- numbers ------------------------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator); no deviation from a single value."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _mean(values: Iterable[Any]) -> float | None:
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
    with_nfe = any(_nfe(r, "forward") is not None or _nfe(r, "backward") is not None for r in runs)
    headers = ["model", "depth", "seeds"] + (["trained on"] if shared is None else [])
    headers += ["test acc (%)", "test error (%)"]
    headers += ["paper error (%)", "Δ error (pp)"] if with_paper else []
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
        row += [f"{g.first.summary.params:,}", _si(macs), _si(None if macs is None else 128 * macs),
                _seconds(_mean(r.summary.train_time_per_epoch_s for r in g.runs)),
                _seconds(_mean(r.summary.eval_time_per_epoch_s for r in g.runs))]
        if with_nfe:
            row += [_nfe_cell(g, "forward"), _nfe_cell(g, "backward")]
        memory = _mean(r.summary.peak_memory_bytes for r in g.runs)
        checkpoint = _mean(r.summary.checkpoint_bytes for r in g.runs)
        row += [human_bytes(None if memory is None else round(memory)),
                human_bytes(None if checkpoint is None else round(checkpoint))]
        rows.append(row)
    return Table(dataset, headers, rows, [palette[g.label] for g in groups],
                 _notes(groups, with_paper, with_nfe), shared)


def _nfe_cell(group: Group, direction: str) -> str:
    value = _mean(_nfe(r, direction) for r in group.runs)
    return MISSING if value is None else f"{value:.1f}"


def _notes(groups: Sequence[Group], with_paper: bool, with_nfe: bool) -> list[str]:
    """What the table's numbers are, so that it can be read without this code."""
    runs = [r for g in groups for r in g.runs]
    notes = []
    if any(len(g.runs) > 1 for g in groups):
        notes.append("a ± b: mean and sample standard deviation (n − 1) over the seeds.")
    if with_paper:
        sources = sorted({str(g.first.meta["source"]) for g in groups if "source" in g.first.meta})
        notes.append("Δ error: mean test error minus the paper's, in percentage points"
                     + (f"; papers: {'; '.join(sources)}." if sources else "."))
    notes.append("Mult-Adds: multiply-accumulates of one forward pass at the dataset's input size, counted by "
                 "PyTorch's FlopCounterMode in eval mode (convolutions and matrix products) when the run finished; "
                 "- for runs whose summary predates the count.")
    if with_nfe:
        notes.append("NFE: vector-field evaluations per pass in the last epoch, summed over the ODE blocks.")
    kinds = sorted({r.summary.peak_memory_kind for r in runs if r.summary.peak_memory_kind})
    if kinds:
        notes.append("Peak memory: " + ", ".join(MEMORY_KINDS.get(k, k) for k in kinds) + "; checkpoint: size of "
                     "checkpoint.pt (weights, optimiser and resume state).")
        if "process_max_rss" in kinds:
            notes.append("A process max RSS also holds whatever that process ran before the run (earlier runs of a "
                         "`resdyn compare`): it is not comparable between runs, and the memory plot is left out.")
    devices = sorted({r.summary.device for r in runs if r.summary.device})
    if devices:
        notes.append("Times measured on " + "; ".join(devices) + ".")
    return notes


# -- the report ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """One dataset: its table and its figures."""

    table: Table
    plots: list[Plot]


@dataclass(frozen=True)
class Report:
    title: str
    sections: list[Section]
    runs: list[Run]
    skipped: list[Skipped]
    labels: dict[Path, str] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)
    #: sections of folders that hold mean-field results (curves.json, map.json) rather than a run
    meanfield: list[Any] = field(default_factory=list)


def build_report(paths: Iterable[str | Path], title: str = "resdyn comparison") -> Report:
    """Read the runs, group them into experiments, and make each dataset's table and figures."""
    paths = [Path(p) for p in paths]
    meanfield = [p for p in paths if any((p / name).is_file() for name in MEANFIELD_FILES)]
    runs, skipped = read_runs(p for p in paths if p not in meanfield)
    runs, duplicates = unique_runs(runs)
    by_dataset: dict[str, list[Run]] = {}
    for run in runs:
        by_dataset.setdefault(run.dataset, []).append(run)
    grouped = {name: group_runs(members) for name, members in sorted(by_dataset.items())}
    palette = colours([g.label for groups in grouped.values() for g in groups])
    sections = []
    for name, groups in grouped.items():
        series = [Series(g.label, palette[g.label], [r.metrics for r in g.runs], g.depth, g.family,
                         _mean(r.summary.peak_memory_bytes for r in g.runs)) for g in groups]
        kinds = {r.summary.peak_memory_kind for g in groups for r in g.runs}
        plots = all_plots(series, kinds.pop() if len(kinds) == 1 else None)
        stability = stability_plot(groups)
        sections.append(Section(dataset_table(name, groups, palette), plots + ([stability] if stability else [])))
    labels = {r.path: g.label for groups in grouped.values() for g in groups for r in g.runs}
    return Report(title, sections, runs, skipped, labels, duplicates, _meanfield_sections(meanfield))


def stability_plot(groups: Sequence[Group]) -> Plot | None:
    """The linear stability regions of the compared schemes (the summaries' ``scheme``), LM-ResNet's with the mean
    of its learned k_n; None where no run records a scheme (summaries written before they did)."""
    schemes: dict[str, dict[str, float]] = {}
    for g in groups:
        name = g.first.summary.scheme
        if name is None or name in schemes:
            continue
        k = [v for r in g.runs for v in (r.summary.model_metrics.get("lm_k") or [])]
        schemes[name] = {"k": statistics.fmean(k)} if name == "lm" and k else {}
    if not schemes:
        return None
    # Imported here: the figure needs each scheme's characteristic polynomial (maths only; no models or data).
    from resdyn.analysis.stability import stability_png

    return Plot("stability", "Linear stability regions of the schemes",
                "Where each scheme's step is stable for the test equation u' = λu, in the plane of z = hλ (the field "
                "absorbs the step size): inside the curve every root of the step's characteristic polynomial has "
                "|ρ| ≤ 1; the first scheme's region is shaded. LM-ResNet is drawn with the mean of its learned k_n "
                "(paper convention) over layers and seeds.",
                stability_png([(name, c) if c else name for name, c in schemes.items()]))


def _meanfield_sections(folders: Sequence[Path]) -> list[Any]:
    if not folders:
        return []
    # Imported only for such folders: the mean-field package brings the models with it.
    from resdyn.meanfield.report import sections

    found = []
    for i, folder in enumerate(folders):
        for section in sections(folder):
            # Each folder's figures keep their names in it (curves.png); beside report.md they need unique ones.
            names = {name: f"meanfield-{i}-{name}" for name in section.images}
            markdown = section.markdown
            for name, unique in names.items():
                markdown = markdown.replace(f"]({name})", f"]({unique})")
            found.append(replace(section, markdown=markdown,
                                 images={names[n]: png for n, png in section.images.items()}))
    return found


def write_report(report: Report, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` with its PNGs into ``out``; return both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for section in report.sections:
        for plot in section.plots:
            _write(out / _png_name(section.table.dataset, plot), plot.png)
    for extra in report.meanfield:
        for name, png in extra.images.items():
            _write(out / name, png)
    html_path, md_path = out / "report.html", out / "report.md"
    _write(html_path, render_html(report).encode())
    _write(md_path, render_markdown(report).encode())
    return html_path, md_path


def _write(path: Path, data: bytes) -> None:
    """Atomically, and never through a link a report folder may hold (``report.md -> ~/notes.md`` is refused)."""
    atomic_write(path, lambda f: f.write(data))


def _png_name(dataset: str, plot: Plot) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{dataset}-{plot.slug}.png")


def _provenance(report: Report) -> tuple[list[str], list[list[str]]]:
    headers = ["run folder", "model", "seed", "epochs", "test acc (%)", "weights", "device", "commit", "command"]
    rows = [[str(r.path), report.labels.get(r.path, r.model), str(r.seed), _text(r.summary.epochs),
             f"{100 * r.summary.test_acc:.2f}", _text(r.summary.final_weights), _text(r.summary.device),
             _versions(r.summary), _text(r.summary.command)] for r in report.runs]
    return headers, rows


def _text(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


def _versions(summary: Summary) -> str:
    """The commits that trained a run, shortened, in order ("a1b2c3d4e5-dirty -> f6a7b8c9d0" after a resume)."""
    versions = summary.commits or [summary.commit]
    return " -> ".join(v[:10] + ("-dirty" if v.endswith("-dirty") else "") if v else MISSING for v in versions)


def _generated() -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"Generated {now} by resdyn {resdyn.__version__}"


def _read_count(report: Report) -> str:
    if report.meanfield and not report.runs and not report.skipped:
        return f"{len(report.meanfield)} mean-field section(s)."
    counted_once = f", {len(report.duplicates)} counted once" if report.duplicates else ""
    return f"{len(report.runs)} run(s) read, {len(report.skipped)} skipped{counted_once}."


def duplicate_lines(report: Report) -> list[str]:
    """One sentence per run that was named again or copied, saying which run it repeats."""
    return [f"{d.path} is {d.reason} as {d.same_as}: counted once" for d in report.duplicates]


#: the terminal's short names for the table's columns, and the order in which columns go when it is too wide
TERMINAL_HEADERS = {"test acc (%)": "acc %", "test error (%)": "error %", "paper error (%)": "paper %",
                    "Δ error (pp)": "Δ pp", "Mult-Adds per image": "MAdds/img", "train s/epoch": "s/epoch",
                    "NFE forward": "NFE fwd", "NFE backward": "NFE bwd", "peak memory": "memory"}
TERMINAL_DROP_ORDER = ("Mult-Adds per batch of 128", "checkpoint", "eval s/epoch", "test error (%)", "depth",
                       "peak memory", "NFE backward", "Mult-Adds per image", "train s/epoch")
TERMINAL_WIDTH = 100
TERMINAL_NAME = 32


def terminal_table(table: Table, width: int = TERMINAL_WIDTH) -> str:
    """A table in at most ``width`` columns: short headers and model names of at most 32 characters, then the
    least telling columns left out, then names shortened further (report.md and report.html keep everything)."""
    rows = [[_shorten(row[0], TERMINAL_NAME), *row[1:]] for row in table.rows]
    keep = list(range(len(table.headers)))
    for name in TERMINAL_DROP_ORDER:
        if _terminal_width(table.headers, rows, keep) <= width:
            break
        if name in table.headers:
            keep.remove(table.headers.index(name))
    overflow = _terminal_width(table.headers, rows, keep) - width
    if overflow > 0:
        room = max(12, max(len(r[0]) for r in rows) - overflow)
        rows = [[_shorten(r[0], room), *r[1:]] for r in rows]
    return format_table([TERMINAL_HEADERS.get(table.headers[i], table.headers[i]) for i in keep],
                        [[row[i] for i in keep] for row in rows])


def _shorten(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "…"


def _terminal_width(headers: Sequence[str], rows: Sequence[Sequence[str]], keep: Sequence[int]) -> int:
    widths = [max(len(TERMINAL_HEADERS.get(headers[i], headers[i])), *(len(r[i]) for r in rows)) for i in keep]
    return sum(widths) + 2 * (len(widths) - 1)


def terminal_text(report: Report) -> str:
    """Each dataset's table as plain text that fits a 100-column terminal."""
    parts = []
    for section in report.sections:
        table = section.table
        parts.append(f"{table.heading}\n{terminal_table(table)}")
    return "\n\n".join(parts) or "no runs could be read"


# -- Markdown -----------------------------------------------------------------------------------------------
def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "| " + " | ".join("---" for _ in headers) + " |", *map(line, rows)])


def render_markdown(report: Report) -> str:
    """The report as Markdown; figures are the PNG files written beside it."""
    lines = [f"# {report.title}", "", f"{_generated()}. {_read_count(report)}", ""]
    if report.skipped:
        lines += ["## Runs that could not be read", ""]
        lines += [f"- `{s.path}`: {s.reason}" for s in report.skipped] + [""]
    if report.duplicates:
        lines += ["## Runs counted once", ""] + [f"- {line}" for line in duplicate_lines(report)] + [""]
    for section in report.sections:
        table = section.table
        lines += [f"## {table.heading}", "", _md_table(table.headers, table.rows), ""]
        lines += [f"- {note}" for note in table.notes] + [""]
        for plot in section.plots:
            lines += [f"### {plot.title}", "", f"![{plot.title}]({_png_name(table.dataset, plot)})", "",
                      plot.caption, ""]
    for extra in report.meanfield:
        lines += [extra.markdown]
    if report.runs:
        lines += ["## Runs", "", _md_table(*_provenance(report)), ""]
    return "\n".join(lines)


# -- HTML ---------------------------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; margin: 2rem auto;
       max-width: 1400px; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.8rem 0 0.4rem; }
.meta { color: #666; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { padding: 0.3rem 0.55rem; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
th { background: #f4f5f7; text-align: left; font-weight: 600; white-space: normal; vertical-align: bottom;
     min-width: 3.5em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } th.num { text-align: right; }
tbody tr:nth-child(even) { background: #fafbfc; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.45em;
          vertical-align: -0.05em; }
.notes { color: #444; font-size: 0.85rem; padding-left: 1.2rem; }
.skipped { background: #fff4e5; border-left: 4px solid #e08a00; padding: 0.6rem 1rem; margin: 1rem 0; }
.skipped h2 { margin-top: 0; border: none; font-size: 1.15rem; }
figure { margin: 0.4rem 0 1.4rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85rem; max-width: 900px; }
details summary { cursor: pointer; color: #444; }
"""


NUMERIC_CELL = re.compile(r"[-+]?[\d,.]+( ± [\d.]+)?( [KMG]i?B?| B)?|-")


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_colours: Sequence[str] = ()) -> str:
    """A table with numeric columns right-aligned and, given ``row_colours``, each row's model colour."""
    e = html.escape
    numeric = [bool(rows) and all(NUMERIC_CELL.fullmatch(row[j]) for row in rows) for j in range(len(headers))]
    css = [' class="num"' if n else "" for n in numeric]
    # Non-breaking hyphens: a narrow header may wrap between words, never inside "Mult-Adds".
    head = "".join(f"<th{c}>{e(h).replace('-', '&#8209;')}</th>" for h, c in zip(headers, css, strict=True))
    body = []
    for i, row in enumerate(rows):
        cells = [f"<td{c}>{e(cell)}</td>" for cell, c in zip(row, css, strict=True)]
        if row_colours:
            swatch = f'<span class="swatch" style="background:{e(row_colours[i])}"></span>'
            cells[0] = f"<td{css[0]}>{swatch}{e(row[0])}</td>"
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table></div>")


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: Report) -> str:
    """The report as one HTML page with everything inline."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No favicon request: the page must not ask for any file, even one that would merely be missing.
        '<link rel="icon" href="data:,">',
        f"<title>{e(report.title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>{e(report.title)}</h1>", f'<p class="meta">{e(_generated())}. {e(_read_count(report))}</p>',
    ]
    if report.skipped:
        items = "".join(f"<li><code>{e(str(s.path))}</code>: {e(s.reason)}</li>" for s in report.skipped)
        parts.append(f'<div class="skipped"><h2>Runs that could not be read</h2><ul>{items}</ul></div>')
    if report.duplicates:
        items = "".join(f"<li>{e(line)}</li>" for line in duplicate_lines(report))
        parts.append(f'<div class="skipped"><h2>Runs counted once</h2><ul>{items}</ul></div>')
    for section in report.sections:
        table = section.table
        parts += [f"<h2>{e(table.heading)}</h2>", _html_table(table.headers, table.rows, table.colours),
                  '<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in table.notes) + "</ul>"]
        for plot in section.plots:
            parts.append(f'<h3>{e(plot.title)}</h3><figure><img src="{_data_uri(plot.png)}" alt="{e(plot.title)}">'
                         f"<figcaption>{e(plot.caption)}</figcaption></figure>")
    for extra in report.meanfield:
        parts.append(extra.html)
    if report.runs:
        parts += ["<h2>Runs</h2>", "<details><summary>Every run folder read, with its device, commit and "
                  "command</summary>", _html_table(*_provenance(report)), "</details>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
