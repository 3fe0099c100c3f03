"""The comparison report: run folders in, one table per dataset and the plots out, as report.html and report.md.

    collect.py   reading run folders (Run; a missing, unfinished or corrupt folder is Skipped with the reason;
                 a folder named twice or copied is a Duplicate, counted once)
    tables.py    runs grouped into experiments (resdyn.experiment's identity), mean ± std over the seeds,
                 one Table per dataset
    sections.py  the protocol for sections from other folders (ReportSection, SectionProvider, the registry)
    build.py     build_report: the Report as data
    render.py    write_report (through atomic_write, never through a link), Markdown, HTML, terminal text

The report never imports the training code, the models or the data: what it shows of a model comes from the
run's summary, so a report can be made from folders copied off another machine.
"""

from resdyn.analysis.report.build import DatasetSection, Report, build_report, stability_plot
from resdyn.analysis.report.collect import Duplicate, Run, Skipped, find_run_folders, read_run, read_runs, unique_runs
from resdyn.analysis.report.render import (
    duplicate_lines,
    render_html,
    render_markdown,
    terminal_table,
    terminal_text,
    write_report,
)
from resdyn.analysis.report.sections import (
    SECTION_PROVIDERS,
    ReportSection,
    SectionProvider,
    register_section_provider,
)
from resdyn.analysis.report.tables import Group, Table, budget, dataset_table, family_of, group_runs, mean_std

__all__ = [
    "SECTION_PROVIDERS", "DatasetSection", "Duplicate", "Group", "Report", "ReportSection", "Run", "SectionProvider",
    "Skipped", "Table", "budget", "build_report", "dataset_table", "duplicate_lines", "family_of",
    "find_run_folders", "group_runs", "mean_std", "read_run", "read_runs", "register_section_provider",
    "render_html", "render_markdown", "stability_plot", "terminal_table", "terminal_text", "unique_runs",
    "write_report",
]
