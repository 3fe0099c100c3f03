"""Report sections from other folders plug in through one protocol: a provider claims folders by their files."""

import sys
import types

from resdyn.analysis.report import (
    SECTION_PROVIDERS,
    ReportSection,
    SectionProvider,
    build_report,
    register_section_provider,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n not really"


def fake_sections(folder):
    return [ReportSection(f"Fake results of {folder.name}", "## Fake\n\n![figure](figure.png)\n",
                          "<h2>Fake</h2><p>fake body</p>", {"figure.png": PNG})]


def test_a_registered_provider_shows_its_folders_and_their_figures(digits_runs, tmp_path, monkeypatch):
    module = types.ModuleType("fake_report_sections")
    module.sections = fake_sections
    monkeypatch.setitem(sys.modules, "fake_report_sections", module)
    monkeypatch.setitem(SECTION_PROVIDERS, "fake", SectionProvider("fake", ("fake.json",),
                                                                   "fake_report_sections:sections"))
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
        (folder / "fake.json").write_text("{}")
    report = build_report([digits_runs["resnet8-seed0"], *folders])
    assert not report.skipped and len(report.runs) == 1  # a claimed folder is not a run folder that failed
    assert [s.title for s in report.extra] == ["Fake results of a", "Fake results of b"]
    # Each folder's figure keeps its own name in its folder and gets a unique one beside report.md.
    assert [list(s.images) for s in report.extra] == [["fake-0-figure.png"], ["fake-1-figure.png"]]
    html_path, md_path = write_report(report, tmp_path / "report")
    markdown = md_path.read_text()
    assert "](fake-0-figure.png)" in markdown and "](fake-1-figure.png)" in markdown
    assert (tmp_path / "report" / "fake-1-figure.png").read_bytes() == PNG
    assert html_path.read_text().count("<p>fake body</p>") == 2


def test_registering_a_name_again_replaces_it(monkeypatch):
    monkeypatch.setattr("resdyn.analysis.report.sections.SECTION_PROVIDERS", dict(SECTION_PROVIDERS))
    from resdyn.analysis.report import sections

    first = register_section_provider(SectionProvider("x", ("x.json",), "m:f"))
    second = register_section_provider(SectionProvider("x", ("y.json",), "m:f"))
    assert sections.SECTION_PROVIDERS["x"] is second is not first
    assert "meanfield" in sections.SECTION_PROVIDERS
