"""One registry type: names -> builders, for models, datasets, optimisers and schedules.

Strings live only at the edge (CLI, config); a registry turns a name into an object and, for a
name it does not know, says which names it does know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from resdyn.errors import ConfigError, ResdynError

T = TypeVar("T")


class UnknownNameError(ResdynError, KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A mapping from names to builders that refuses unknown names with the valid ones listed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("resnet20")`` adds the decorated builder under ``name``."""

        def add(entry: T) -> T:
            self.add(name, entry, help)
            return entry

        return add

    def add(self, name: str, entry: T, help: str = "") -> None:
        """Register ``entry`` under ``name``. The same entry again is harmless (a notebook cell run twice); another
        entry under a taken name is refused, so that no name silently changes what it builds."""
        if name in self._entries and self._entries[name] is not entry:
            raise ConfigError(f"{self.kind} {name!r} is already registered to {self._entries[name]!r}; register "
                              f"{entry!r} under another name")
        self._entries[name] = entry
        self._help[name] = help

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid {self.kind} names: {valid}") from None

    def help(self, name: str) -> str:
        self.get(name)
        return self._help[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
