"""The mean-field output folders: the one reader and writer of their files.

    curves.json, curves.png    ``resdyn meanfield curves``: settings, layers, theory, simulation, command
    map.json, map.png          ``resdyn meanfield map``: settings, accuracy grid, theory grid, wall time, command

Files are written atomically (``resdyn.atomic``), as a run folder's are. They are strict JSON: a non-finite
number (the theory past float64's range, a diverged net's loss) is written as null, and the file says why
(``theory_note``, ``simulation_note``, ``diverged``, the theory grid's ``note``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from resdyn.atomic import atomic_write, parse_json, read_text
from resdyn.meanfield.plots import curves_png, map_png
from resdyn.runs import RunError

CURVES, CURVES_PNG = "curves.json", "curves.png"
MAP, MAP_PNG = "map.json", "map.png"


def finite(value: Any) -> Any:
    """``value`` with every NaN and infinity inside its dicts and lists replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def strict_json(value: Any) -> bytes:
    """``value`` as strict JSON (non-finite numbers as null, see :func:`finite`), indented, with a newline."""
    return (json.dumps(finite(value), indent=1, allow_nan=False) + "\n").encode()


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / name, lambda f: f.write(data))
    return folder / name


def write_curves(folder: str | Path, curves: dict[str, Any]) -> list[Path]:
    """Write ``curves.json`` and its figure ``curves.png`` into ``folder``; return their paths."""
    folder = Path(folder)
    return [_write(folder, CURVES, strict_json(curves)),
            _write(folder, CURVES_PNG, curves_png(curves))]


def write_map(folder: str | Path, result: dict[str, Any]) -> list[Path]:
    """Write ``map.json`` and its heat map ``map.png`` into ``folder``; return their paths."""
    folder = Path(folder)
    return [_write(folder, MAP, strict_json(result)),
            _write(folder, MAP_PNG, map_png(result))]


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` if there is no such file."""
    if not path.exists():
        return None
    return parse_json(read_text(path, RunError), path, RunError)


def read_curves(folder: str | Path) -> dict[str, Any] | None:
    return read_json(Path(folder) / CURVES)


def read_map(folder: str | Path) -> dict[str, Any] | None:
    return read_json(Path(folder) / MAP)
