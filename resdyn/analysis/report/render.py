"""The report written out: ``report.html`` (self-contained: inline CSS, PNGs as base64 data URIs, no scripts, no
network, so it can be mailed or opened from disk), ``report.md`` linking the same PNGs written beside it, and
the tables as plain text for the terminal.
"""

from __future__ import annotations

import base64
import datetime
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import resdyn
from resdyn.analysis.plots import Plot
from resdyn.analysis.report.build import Report
from resdyn.analysis.report.tables import MISSING, Table
from resdyn.analysis.tables import format_table
from resdyn.atomic import atomic_write
from resdyn.runs import Summary


def write_report(report: Report, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` with its PNGs into ``out``; return both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for section in report.sections:
        for plot in section.plots:
            _write(out / _png_name(section.table.dataset, plot), plot.png)
    for extra in report.extra:
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
    if report.extra and not report.runs and not report.skipped:
        return f"{len(report.extra)} result section(s)."
    counted_once = f", {len(report.duplicates)} counted once" if report.duplicates else ""
    return f"{len(report.runs)} run(s) read, {len(report.skipped)} skipped{counted_once}."


def duplicate_lines(report: Report) -> list[str]:
    """One sentence per run that was named again or copied, saying which run it repeats."""
    return [f"{d.path} is {d.reason} as {d.same_as}: counted once" for d in report.duplicates]


#: the terminal's short names for the table's columns, and the order in which columns go when it is too wide
TERMINAL_HEADERS = {"test acc (%)": "acc %", "test error (%)": "error %", "paper error (%)": "paper %",
                    "paper train error (%)": "paper train %",
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
    for extra in report.extra:
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
    for extra in report.extra:
        parts.append(extra.html)
    if report.runs:
        parts += ["<h2>Runs</h2>", "<details><summary>Every run folder read, with its device, commit and "
                  "command</summary>", _html_table(*_provenance(report)), "</details>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
