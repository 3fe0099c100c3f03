"""An ensemble's scores as a folder (``resdyn ensemble RUN... --out DIR`` writes ``ensemble.json``) and the report's
section for it: each seed's test accuracy, their mean ± std, and the "ensemble of seeds" row, the accuracy of their
averaged softmax. Scoring needs the models and the data, so ``resdyn ensemble`` does it where they are; the report
only reads the folder (it imports no training code) through the section-provider seam."""

from __future__ import annotations

import dataclasses
import html
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from resdyn.analysis.report.sections import ReportSection
from resdyn.atomic import atomic_write, parse_json, read_text
from resdyn.runs import RunError
from resdyn.typed import build_table

ENSEMBLE = "ensemble.json"


@dataclass
class EnsembleScore:
    """The ensemble's test accuracy and loss (the mean negative log of its averaged probability of the true class),
    each member's own accuracy on the same images, the run folders, the experiment's label and the command."""

    runs: list[str]
    test_images: int
    test_acc: float
    test_loss: float
    member_acc: list[float]
    label: str = ""
    command: str | None = None


def write_ensemble(folder: str | Path, score: EnsembleScore) -> Path:
    """``folder``/ensemble.json (the folder made if need be); returns its path."""
    path = Path(folder) / ENSEMBLE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dataclasses.asdict(score), indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def read_ensemble(folder: str | Path) -> EnsembleScore:
    path = Path(folder) / ENSEMBLE
    try:
        return build_table(EnsembleScore, parse_json(read_text(path, RunError), path, RunError), "")
    except Exception as e:  # noqa: BLE001 - a ConfigError of the types, said as the file's corruption
        raise RunError(f"{path} is corrupt: {e}") from None


def sections(folder: str | Path) -> list[ReportSection]:
    """One section: the members' and the ensemble's test accuracy."""
    score = read_ensemble(folder)
    rows = [[run, f"{100 * acc:.2f}"] for run, acc in zip(score.runs, score.member_acc, strict=True)]
    accs = [100 * a for a in score.member_acc]
    rows.append([f"mean of {len(accs)} seeds", f"{statistics.fmean(accs):.2f} ± {statistics.stdev(accs):.2f}"])
    rows.append([f"ensemble of seeds ({len(accs)})", f"{100 * score.test_acc:.2f}"])
    headers = ["run", "test accuracy %"]
    title = f"Ensemble of seeds: {score.label or folder}"
    note = (f"The average softmax of the runs' final models on {score.test_images} test images (test loss "
            f"{score.test_loss:.4f})" + (f"; `{score.command}`." if score.command else "."))
    markdown = "\n".join([f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers),
                          *("| " + " | ".join(r) + " |" for r in rows), "", note])
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = (f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"
            f"<p>{html.escape(note)}</p>")
    return [ReportSection(title, markdown, body)]
