"""Report sections for a folder holding mean-field results (``curves.json``, ``map.json``).

``sections(folder)`` returns, for each of those files, a title, Markdown (linking the figure by file name, to be
written beside it from ``images``) and self-contained HTML (the figure embedded as base64): what ``resdyn
report`` shows for such a folder. The figures are drawn again from the JSON, so they always match it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resdyn.analysis.report.sections import ReportSection
from resdyn.meanfield.folders import CURVES_PNG, MAP_PNG, read_curves, read_map
from resdyn.meanfield.plots import curves_png, map_png


def sections(folder: str | Path) -> list[ReportSection]:
    """The report sections of ``folder``: one for ``curves.json``, one for ``map.json``, none if neither."""
    folder = Path(folder)
    found = []
    curves = read_curves(folder)
    if curves is not None:
        found.append(curves_section(curves, folder))
    result = read_map(folder)
    if result is not None:
        found.append(map_section(result, folder))
    return found


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _g(value: float | None) -> str:
    return "null (overflow)" if value is None else f"{value:.4g}"


def _settings_line(settings: dict[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{k} = {settings[k]}" for k in keys if settings.get(k) is not None)


def curves_section(curves: dict[str, Any], folder: Path) -> ReportSection:
    """Theory against simulation at the last layer, the figure, the settings and the command."""
    s = curves["settings"]
    title = f"Mean-field curves: {s['net'].upper()} {s['activation']}, depth {s['depth']} ({folder})"
    theory, sim = curves["theory"], curves.get("simulation")
    headers = ["quantity at layer L", "theory"] + (["simulation (mean ± std)"] if sim else [])
    rows = []
    for key in ("p", "e", "s", "chi"):
        row = [key, _g(theory[key][-1] if key != "chi" else theory[key][0])]
        if key == "chi":
            row[0] = "chi at layer 0 (= R)"
        if sim:
            index = 0 if key == "chi" else -1
            row.append(f"{_g(sim[key]['mean'][index])} ± {_g(sim[key]['std'][index])}")
        rows.append(row)
    rows.append(["log R"] + [_g(theory["log_R"])]
                + ([f"{_g(sim['log_R']['mean'])} ± {_g(sim['log_R']['std'])}"] if sim else []))
    facts = _settings_line(s, ["sigma_w2", "sigma_v2", "sigma_a2", "sigma_b2", "alpha", "p0", "e0", "width",
                               "samples", "seed"])
    facts = ". ".join([facts, *(curves[k] for k in ("theory_note", "simulation_note") if k in curves)])
    return _section(title, facts, headers, rows, CURVES_PNG, curves_png(curves), curves.get("command", ""))


def map_section(result: dict[str, Any], folder: Path) -> ReportSection:
    """The test-accuracy grid (depth x axis value) as a table, the heat map, the settings, time and command."""
    s = result["settings"]
    title = f"Trainability map: {s['net'].upper()} {s['activation']} on {s['data']} ({folder})"
    headers = ["depth \\ " + s["axis"]] + [_g(v) for v in s["values"]]
    rows = [[str(d)] + [f"{100 * a:.1f}" + ("*" if bad else "") for a, bad in zip(accs, diverged, strict=True)]
            for d, accs, diverged in zip(s["depths"], result["accuracy"], result["diverged"], strict=True)]
    alpha = ["alpha"] if s["activation"] == "alpha-relu" else []
    facts = (_settings_line(s, ["width", "sigma_w2", "sigma_v2", "sigma_a2", "sigma_b2", *alpha, "limit_train",
                                "limit_test", "epochs", "batch_size", "lr", "momentum", "seed", "device"])
             + f"; trained in {result['wall_time_s']:.0f} s. Test accuracy in %; * diverged.")
    return _section(title, facts, headers, rows, MAP_PNG, map_png(result), result.get("command", ""))


def _section(title: str, facts: str, headers: Sequence[str], rows: Sequence[Sequence[str]], png_name: str,
             png: bytes, command: str) -> ReportSection:
    """Heading, settings, table, figure and command, as Markdown (linking ``png_name``) and as HTML."""
    md = "\n\n".join([f"## {title}", facts, _md_table(headers, rows), f"![{title}]({png_name})",
                      f"Command: `{command}`" if command else ""]).rstrip() + "\n"
    body = "".join([f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(facts)}</p>", _html_table(headers, rows),
                    _img(png, title), f"<p>Command: <code>{html.escape(command)}</code></p>" if command else ""])
    return ReportSection(title, md, body, {png_name: png})
