"""The report as data: each dataset's table and figures, the runs read, the folders skipped, and the sections
of the registered providers (:mod:`resdyn.analysis.report.sections`)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resdyn.analysis.gradstats import gradstats_plots
from resdyn.analysis.plots import Plot, Series, all_plots, colours
from resdyn.analysis.report.collect import Duplicate, Run, Skipped, read_runs, unique_runs
from resdyn.analysis.report.sections import ReportSection, provided_sections, provider_of
from resdyn.analysis.report.tables import Group, Table, dataset_table, group_runs, mean_of


@dataclass(frozen=True)
class DatasetSection:
    """One dataset: its table and its figures."""

    table: Table
    plots: list[Plot]


@dataclass(frozen=True)
class Report:
    title: str
    #: one per dataset
    sections: list[DatasetSection]
    runs: list[Run]
    skipped: list[Skipped]
    labels: dict[Path, str] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)
    #: the sections of folders a registered provider claims (mean-field results: curves.json, map.json)
    extra: list[ReportSection] = field(default_factory=list)


def build_report(paths: Iterable[str | Path], title: str = "resdyn comparison") -> Report:
    """Read the runs, group them into experiments, and make each dataset's table and figures; a folder that a
    section provider claims is shown as that provider's sections instead."""
    paths = [Path(p) for p in paths]
    claimed = [(p, provider) for p in paths for provider in [provider_of(p)] if provider is not None]
    claimed_paths = {p for p, _ in claimed}
    runs, skipped = read_runs(p for p in paths if p not in claimed_paths)
    runs, duplicates = unique_runs(runs)
    by_dataset: dict[str, list[Run]] = {}
    for run in runs:
        by_dataset.setdefault(run.dataset, []).append(run)
    grouped = {name: group_runs(members) for name, members in sorted(by_dataset.items())}
    palette = colours([g.label for groups in grouped.values() for g in groups])
    sections = []
    for name, groups in grouped.items():
        series = [Series(g.label, palette[g.label], [r.metrics for r in g.runs], g.depth, g.family,
                         mean_of(r.summary.peak_memory_bytes for r in g.runs)) for g in groups]
        kinds = {r.summary.peak_memory_kind for g in groups for r in g.runs}
        plots = all_plots(series, kinds.pop() if len(kinds) == 1 else None) + gradstats_plots(groups)
        stability = stability_plot(groups)
        sections.append(DatasetSection(dataset_table(name, groups, palette),
                                       plots + ([stability] if stability else [])))
    labels = {r.path: g.label for groups in grouped.values() for g in groups for r in g.runs}
    return Report(title, sections, runs, skipped, labels, duplicates, provided_sections(claimed))


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
