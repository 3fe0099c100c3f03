"""Dataclasses from plain tables: the one validation machinery for configs and model options.

``build_table(Options, {"depth": 56})`` returns ``Options(depth=56)`` or raises a :class:`ConfigError` that
names the key, what was expected and, for an unknown key, the valid ones. Used for the run config
(:mod:`resdyn.train.config`) and for typed model options, so both report mistakes the same way.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Literal

from resdyn.errors import ConfigError


def build_table(cls: type, data: Any, where: str) -> Any:
    """Instance of the dataclass ``cls`` from the table ``data`` (``where`` names it in errors), recursively;
    unknown keys are rejected with the valid ones listed and values are checked against the field types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table of {cls.__name__} keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in [{where or 'top level'}]; valid keys: {', '.join(names)}"
        )
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        path = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hint):
            kwargs[key] = build_table(hint, value, path)
        else:
            kwargs[key] = _check(value, hint, path)
    return cls(**kwargs)


def field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comment above each field of the dataclass ``cls`` (and its dataclass bases), by field name:
    the one place an option is described, shown by ``resdyn models --options``."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        for line in lines:
            text = line.strip()
            if text.startswith("#:"):
                comment.append(text[2:].strip())
                continue
            name = text.split(":", 1)[0]
            if comment and name.isidentifier():
                docs[name] = " ".join(comment)
            comment = []
    return docs


def _check(value: Any, hint: Any, path: str) -> Any:
    """Return ``value`` converted to ``hint`` (int -> float only), or raise ConfigError naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check(value, option, path)
            except ConfigError:
                pass
        raise ConfigError(f"{path}: expected {_describe(hint)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{path}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_check(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{path}: expected {_describe(hint)}, got {value!r}")
    return value


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    return "nothing (None)" if hint is type(None) else getattr(hint, "__name__", str(hint))
