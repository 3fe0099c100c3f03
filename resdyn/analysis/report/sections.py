"""Report sections that come from folders other than run folders, through one small protocol.

A *section provider* turns a folder into :class:`ReportSection` s (a title, Markdown, self-contained HTML and
the PNGs the Markdown links by name). A provider is registered with the file names that mark its folders
(a folder holding one is the provider's, not a run folder) and where its ``sections(folder)`` function lives,
as ``"module:function"``: the module is imported only when such a folder is given, so the report never loads
a provider's dependencies (the mean-field package brings the models with it) for run folders alone.

    register_section_provider(SectionProvider("meanfield", ("curves.json", "map.json"),
                                              "resdyn.meanfield.report:sections"))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class ReportSection:
    """One part of a report: a title, its Markdown and HTML bodies, and the PNGs the Markdown links by name."""

    title: str
    markdown: str
    html: str
    images: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SectionProvider:
    """Where the sections of a kind of folder come from."""

    #: names the provider; also the prefix of its figures' file names beside report.md
    name: str
    #: a folder holding any of these files is this provider's
    files: tuple[str, ...]
    #: ``"module:function"``, the function taking a folder and returning its list of ReportSection
    load: str

    def claims(self, folder: Path) -> bool:
        return any((folder / name).is_file() for name in self.files)

    def function(self) -> Callable[[Path], list[ReportSection]]:
        module, name = self.load.split(":")
        return getattr(importlib.import_module(module), name)


#: the registered providers by name; registering a name again replaces it (a notebook cell may run twice)
SECTION_PROVIDERS: dict[str, SectionProvider] = {}


def register_section_provider(provider: SectionProvider) -> SectionProvider:
    """Add ``provider`` (or replace the one of its name); return it."""
    SECTION_PROVIDERS[provider.name] = provider
    return provider


register_section_provider(SectionProvider("meanfield", ("curves.json", "map.json"), "resdyn.meanfield.report:sections"))
register_section_provider(SectionProvider("ensemble", ("ensemble.json",), "resdyn.analysis.ensembles:sections"))


def provider_of(folder: Path) -> SectionProvider | None:
    """The provider that claims ``folder``, if any (the first registered)."""
    return next((p for p in SECTION_PROVIDERS.values() if p.claims(folder)), None)


def provided_sections(folders: Iterable[tuple[Path, SectionProvider]]) -> list[ReportSection]:
    """Each folder's sections from its provider, the figures renamed ``<provider>-<i>-<name>`` so that every
    folder's (each calls its own ``curves.png``) can lie side by side beside report.md."""
    found = []
    for i, (folder, provider) in enumerate(folders):
        for section in provider.function()(folder):
            found.append(_renamed(section, {name: f"{provider.name}-{i}-{name}" for name in section.images}))
    return found


def _renamed(section: ReportSection, names: dict[str, str]) -> ReportSection:
    markdown = section.markdown
    for name, unique in names.items():
        markdown = markdown.replace(f"]({name})", f"]({unique})")
    return replace(section, markdown=markdown, images={names[n]: png for n, png in section.images.items()})

