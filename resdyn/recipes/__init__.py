"""The recipes and suites that ship with resdyn, by name.

Every ``.toml`` file under this folder, in any subfolder, is a shipped recipe, named by its path here without
``.toml``: ``fashion-mnist-resnet20``, ``cifar10/lm-resnet56``, ``suites/demo-fashion-mnist``. A recipe is a
run config (``resdyn train -c NAME``); a suite is a recipe plus a ``[suite]`` table (``resdyn compare -c
NAME``). ``-c`` and a suite's ``recipe``/``recipes`` read a file where one exists at the path given and fall
back to the shipped recipe of that name, so a recipe copied out with ``resdyn recipes show NAME`` keeps working.
A renamed recipe's former name (:data:`RENAMED`) still resolves, with a one-line notice on stderr naming the new one.
"""

from __future__ import annotations

import difflib
import sys
from importlib.resources import files
from pathlib import Path, PurePosixPath

from resdyn.atomic import parse_toml, read_text
from resdyn.errors import ConfigError

SUFFIX = ".toml"

#: former name prefixes -> current ones: a former name resolves to the renamed recipe, with a notice on stderr
RENAMED: dict[str, str] = {
    "seed004/": "gladzik2019/",
    "suites/seed004-": "suites/gladzik2019-",
}


def recipes_root() -> Path:
    """The folder of the shipped recipes, wherever resdyn is installed."""
    root = files(__name__)
    # Configs are read by path (a suite names its recipes relative to itself), so they must be real files:
    # true of every install pip makes; only a zip import would break it.
    if not isinstance(root, Path):
        raise RuntimeError(f"resdyn's recipes must be installed as files on disk, not inside {root}")
    return root


def recipe_names() -> list[str]:
    """The names of every shipped recipe and suite, sorted."""
    root = recipes_root()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob(f"*{SUFFIX}"))


def current_name(key: str) -> str | None:
    """The current name of a recipe shipped formerly as ``key`` (``.toml`` stripped), or None if not renamed."""
    for old, new in RENAMED.items():
        if key.startswith(old):
            return new + key.removeprefix(old)
    return None


def recipe_path(name: str) -> Path:
    """The file of the shipped recipe ``name`` (``.toml`` optional); an unknown name lists the valid ones.

    A former name (:data:`RENAMED`) gives the renamed recipe's file and prints a one-line notice on stderr."""
    key = PurePosixPath(name).as_posix().removesuffix(SUFFIX)
    names = recipe_names()
    renamed = current_name(key)
    if key not in names and renamed in names:
        print(f"resdyn: recipe {key!r} is now {renamed!r}; the old name will stop working in a later release",
              file=sys.stderr)
        key = renamed
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(f"no shipped recipe {key!r}; {hint}shipped recipes: {', '.join(names)} "
                          "(`resdyn recipes` lists them with their papers)")
    return recipes_root() / f"{key}{SUFFIX}"


def find_recipe(ref: str | Path, base: Path | None = None) -> Path:
    """The config file ``ref`` names: the file at ``ref`` (relative to ``base`` when given) if there is one,
    else the shipped recipe of that name; neither is a ConfigError that lists the shipped names."""
    path = Path(ref) if base is None else base / ref
    if path.is_file():
        return path
    try:
        return recipe_path(str(ref))
    except ConfigError as e:
        raise ConfigError(f"no config file {path}, and {e}") from None


def is_suite(path: Path) -> bool:
    """Whether the TOML file at ``path`` is a suite (has a ``[suite]`` table) rather than a run recipe."""
    return "suite" in parse_toml(read_text(path, ConfigError), path, ConfigError)
