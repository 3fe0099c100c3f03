"""The report: its table agrees with the run summaries, bad folders are named and skipped, the HTML stands alone."""

import base64
import html
import json
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from resdyn.analysis.profile import mult_adds
from resdyn.analysis.report import (
    Run,
    build_report,
    family_of,
    group_runs,
    mean_std,
    write_report,
)
from resdyn.cli import main
from resdyn.nets import build_model
from resdyn.runs import EpochRecord, RunDir, Summary, model_depth

UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def md_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first Markdown table after ``## heading``, as one dict per row keyed by the headers."""
    lines = text.split(f"## {heading}", 1)[1].splitlines()[1:]  # the heading may go on with the budget
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("|")):]
    table = [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("|"))]]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


def value(cell: str) -> float:
    """A cell such as "75,002", "747 K" or "409.4 MiB" as a number."""
    number, _, unit = cell.partition(" ")
    return float(number.replace(",", "")) * UNITS.get(unit, 1)


def mean_and_std(cell: str) -> tuple[float, float | None]:
    mean, _, std = cell.partition(" ± ")
    return float(mean), float(std) if std else None


def summaries(*paths: Path) -> list[dict]:
    return [RunDir(p).read_summary().to_json() for p in paths]


def test_table_numbers_match_the_summaries(digits_runs, tmp_path):
    report = build_report(digits_runs.values(), title="digits")
    _, md_path = write_report(report, tmp_path)
    rows = {r["model"]: r for r in md_table(md_path.read_text(), "digits")}
    assert set(rows) == {"resnet depth=8", "lm-resnet depth=14"}

    resnet = summaries(digits_runs["resnet8-seed0"], digits_runs["resnet8-seed1"])
    acc = [100 * s["test_acc"] for s in resnet]
    row = rows["resnet depth=8"]
    assert (row["depth"], row["seeds"]) == ("8", "2")
    mean, std = mean_and_std(row["test acc (%)"])
    assert mean == pytest.approx(statistics.fmean(acc), abs=0.005)
    assert std == pytest.approx(statistics.stdev(acc), abs=0.005)
    mean, std = mean_and_std(row["test error (%)"])
    assert mean == pytest.approx(100 - statistics.fmean(acc), abs=0.005)
    assert std == pytest.approx(statistics.stdev(acc), abs=0.005)
    assert value(row["params"]) == resnet[0]["params"]
    macs = mult_adds(build_model("resnet", 1, 10, depth=8), (1, 8, 8))
    assert value(row["Mult-Adds per image"]) == pytest.approx(macs, rel=5e-3)
    assert value(row["Mult-Adds per batch of 128"]) == pytest.approx(128 * macs, rel=5e-3)
    for column, key in (("train s/epoch", "train_time_per_epoch_s"), ("eval s/epoch", "eval_time_per_epoch_s")):
        # Printed to 2 decimals below 10 s, 1 below 100 s, whole seconds above.
        expected = statistics.fmean(s[key] for s in resnet)
        assert value(row[column]) == pytest.approx(expected, rel=5e-3, abs=0.0051)
    assert value(row["peak memory"]) == pytest.approx(statistics.fmean(s["peak_memory_bytes"] for s in resnet),
                                                      abs=0.051 * 2**20)
    assert value(row["checkpoint"]) == pytest.approx(resnet[0]["checkpoint_bytes"], rel=1e-3)
    assert (row["paper error (%)"], row["Δ error (pp)"]) == ("-", "-")

    (lm,) = summaries(digits_runs["lm14-seed0"])
    row = rows["lm-resnet depth=14"]
    assert row["seeds"] == "1" and row["test acc (%)"] == f"{100 * lm['test_acc']:.2f}"  # no ± for one seed
    assert row["paper error (%)"] == "4.50"
    assert row["Δ error (pp)"] == f"{100 * (1 - lm['test_acc']) - 4.5:+.2f}"
    assert "NFE forward" not in row  # no ODE in these runs: no NFE columns

    page = (tmp_path / "report.html").read_text()
    for row in rows.values():
        for cell in row.values():
            assert html.escape(cell) in page
    assert "a made-up paper" in page  # the paper's source, from [meta]


def test_plots_are_drawn_only_where_there_is_data(digits_runs):
    with_lm = build_report(digits_runs.values())
    resnet_only = build_report([digits_runs["resnet8-seed0"], digits_runs["resnet8-seed1"]])
    slugs = [p.slug for p in with_lm.sections[0].plots]
    assert slugs == ["test-accuracy", "loss", "learning-rate", "lm-k-final", "lm-k-epochs", "memory-depth",
                     "stability"]
    # No LM-ResNet: no k_n plots; one depth: no memory-against-depth plot; no ODE anywhere: no NFE plot.
    assert [p.slug for p in resnet_only.sections[0].plots] == ["test-accuracy", "loss", "learning-rate", "stability"]
    assert {r.summary.scheme for r in with_lm.runs} == {"euler", "lm"}


def test_missing_corrupt_and_unfinished_folders_are_named_and_skipped(digits_runs, tmp_path, capsys):
    corrupt = tmp_path / "corrupt-run"
    shutil.copytree(digits_runs["resnet8-seed0"], corrupt)
    (corrupt / "summary.json").write_text('{"model": "resnet", "test_')
    unfinished = tmp_path / "unfinished-run"
    shutil.copytree(digits_runs["resnet8-seed1"], unfinished)
    (unfinished / "summary.json").unlink()
    missing = tmp_path / "no-such-run"
    paths = [*digits_runs.values(), corrupt, unfinished, missing]

    report = build_report(paths)
    reasons = {s.path.name: s.reason for s in report.skipped}
    assert reasons.keys() == {"corrupt-run", "unfinished-run", "no-such-run"}
    assert "summary.json is corrupt" in reasons["corrupt-run"]
    assert "unfinished" in reasons["unfinished-run"] and "--resume" in reasons["unfinished-run"]
    assert reasons["no-such-run"] == "no such folder"
    assert len(report.runs) == 3

    out = tmp_path / "report"
    assert main(["report", *map(str, paths), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    for name in reasons:
        assert f"skipped {tmp_path / name}" in err
        assert name in (out / "report.md").read_text() and name in (out / "report.html").read_text()
    # The readable runs are all in the table: two seeds of ResNet-8 despite the broken copies.
    assert {r["model"]: r["seeds"] for r in md_table((out / "report.md").read_text(), "digits")} == {
        "resnet depth=8": "2", "lm-resnet depth=14": "1"}


def test_report_fails_only_when_no_run_can_be_read(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "nothing-here"), "--out", str(out)]) == 1
    assert "nothing-here: no such folder" in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_of_runs_stands_for_its_runs(digits_runs):
    report = build_report([digits_runs["lm14-seed0"].parent])
    assert sorted(r.name for r in report.runs) == sorted(digits_runs) and not report.skipped


def test_html_is_self_contained(digits_runs, tmp_path):
    report = build_report(digits_runs.values())
    html_path, md_path = write_report(report, tmp_path)
    page = html_path.read_text()
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(link.startswith("data:") for link in links)
    assert "<script" not in page and "http" not in page
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(report.sections[0].plots)
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    # The Markdown links the same figures, written beside it.
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_path.read_text()):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_nfe_columns_sum_the_ode_blocks_of_the_last_epoch(digits_runs, tmp_path):
    ode = tmp_path / "ode-run"
    shutil.copytree(digits_runs["lm14-seed0"], ode)
    run = RunDir(ode)
    records = run.read_metrics()
    run.file(RunDir.METRICS).unlink()
    for r in records:
        # Two ODE blocks, one logging under a prefix and one a value per sub-block.
        run.append_metrics(EpochRecord.from_json({
            **r.to_json(), "block1.nfe_forward_mean": 10.0 + r.epoch, "nfe_forward_mean": [2.0, 3.0],
            "block1.nfe_backward_mean": 20.0 * r.epoch, "block1.nfe_forward_max": 99}, "test"))
    report = build_report([digits_runs["resnet8-seed0"], ode])
    rows = {r["model"]: r for r in md_table(render(report, tmp_path), "digits")}
    assert rows["lm-resnet depth=14"]["NFE forward"] == "17.0"  # 10 + 2 (last epoch) + 2 + 3
    assert rows["lm-resnet depth=14"]["NFE backward"] == "40.0"
    assert rows["resnet depth=8"]["NFE forward"] == "-"
    assert "nfe" in [p.slug for p in report.sections[0].plots]


def render(report, out: Path) -> str:
    return write_report(report, out)[1].read_text()


def fake_run(name: str, seed: int, **config) -> Run:
    base = {"model": {"name": "resnet", "options": {"depth": 8}}, "data": {"name": "digits"},
            "optim": {"lr": 0.1}, "train": {"seed": seed, "device": "cpu"}}
    for section, values in config.items():
        base[section] = {**base.get(section, {}), **values}
    return Run(Path(name), base, Summary(model="resnet", data="digits", params=1, test_acc=0.5), [])


def test_runs_differing_only_in_seed_and_device_are_one_experiment():
    runs = [fake_run("a", 0), fake_run("b", 1, train={"device": "cuda"}), fake_run("c", 0, optim={"lr": 0.05})]
    groups = group_runs(runs)
    assert sorted((g.label, [r.name for r in g.runs]) for g in groups) == [
        ("resnet depth=8 (optim.lr=0.05)", ["c"]), ("resnet depth=8 (optim.lr=0.1)", ["a", "b"])]
    (labelled,) = group_runs([fake_run("d", 0, meta={"label": "resnet8-adamw"})])
    assert labelled.label == "resnet8-adamw" and labelled.family == "resnet-adamw"


def test_depth_family_and_statistics():
    assert model_depth("lm-resnet56", {}) == 56 and model_depth("resnet", {"depth": 8}) == 8
    assert model_depth("lm-resnext29-8x64d", {}) == 29 and model_depth("odenet", {}) is None
    assert family_of("resnet110-sd", 110) == "resnet-sd" and family_of("resnet depth=8", 8) == "resnet"
    assert mean_std([1.0, 2.0, 6.0]) == (3.0, statistics.stdev([1.0, 2.0, 6.0])) and mean_std([4.0]) == (4.0, None)


def test_report_never_imports_the_training_code(digits_runs, tmp_path):
    """Nor the models or the data: what it shows of a model (Mult-Adds, depth) comes from the summary."""
    # resdyn.schemes may load (pure maths, no models or data): the stability figure needs the polynomials.
    training = ("resdyn.train", "resdyn.nets", "resdyn.data", "resdyn.fields", "resdyn.distributed")
    code = ("import sys; from resdyn.analysis.report import build_report, write_report; "
            f"write_report(build_report({json.dumps([str(p) for p in digits_runs.values()])}), {str(tmp_path)!r}); "
            f"print([m for m in sys.modules if m.startswith({training!r})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_folder_written_before_the_summary_held_mult_adds_and_depth_still_reads(digits_runs, tmp_path):
    old = tmp_path / "old-run"
    shutil.copytree(digits_runs["resnet8-seed0"], old)
    summary = json.loads((old / "summary.json").read_text())
    for key in ("mult_adds_per_image", "depth", "world_size"):
        del summary[key]
    (old / "summary.json").write_text(json.dumps(summary))
    report = build_report([old])
    (row,) = md_table(render(report, tmp_path / "report"), "digits")
    assert row["depth"] == "8"  # from the config, by the rule the summary's depth follows
    assert row["Mult-Adds per image"] == "-" and row["test acc (%)"] == f"{100 * summary['test_acc']:.2f}"


def test_the_runs_table_shows_each_code_version_and_whether_it_was_dirty():
    from resdyn.analysis.report.render import _versions

    a, b = "a" * 40, "b" * 40
    base = Summary(model="resnet", data="digits", params=1, test_acc=0.5)
    assert _versions(replace(base, commit=a, commits=[a, f"{b}-dirty"])) == f"{'a' * 10} -> {'b' * 10}-dirty"
    assert _versions(replace(base, commit=a)) == "a" * 10  # summaries written before `commits` existed
    assert _versions(base) == "-"


def test_the_same_run_named_again_or_copied_counts_once_with_a_note(digits_runs, tmp_path, capsys, monkeypatch):
    """Issue 14.9: `resdyn report A A ./A` used to count one run as three seeds ("seeds 3, 69.20 ± 0.00")."""
    a = digits_runs["resnet8-seed0"]
    copy = tmp_path / "copy-of-a"
    shutil.copytree(a, copy)
    monkeypatch.chdir(a.parent)
    report = build_report([a, a, Path(".") / a.name, copy])
    assert [r.path for r in report.runs] == [a]
    assert [(d.path, d.same_as, d.reason) for d in report.duplicates] == [
        (a, a, "the same folder"), (Path(".") / a.name, a, "the same folder"), (copy, a, "the same config and seed")]
    (row,) = md_table(render(report, tmp_path / "report"), "digits")
    assert row["seeds"] == "1"
    assert "## Runs counted once" in (tmp_path / "report" / "report.md").read_text()
    assert main(["report", str(a), str(a), "--out", str(tmp_path / "cli")]) == 0
    assert f"resdyn: {a} is the same folder as {a}: counted once" in capsys.readouterr().err


def test_the_training_budget_is_in_the_heading_or_a_column(digits_runs, tmp_path):
    """Issue 14.10: a subset or short run must not read like a full-dataset result."""
    resnets = [digits_runs["resnet8-seed0"], digits_runs["resnet8-seed1"]]
    report = build_report(resnets)
    train_images = RunDir(resnets[0]).read_summary().train_images
    assert report.sections[0].table.heading == f"digits: {train_images:,} training images, 2 epochs"
    assert f"## digits: {train_images:,} training images, 2 epochs" in render(report, tmp_path / "one")
    assert report.sections[0].table.heading.splitlines()[0] in report_terminal(report)

    subset = tmp_path / "subset"
    shutil.copytree(digits_runs["lm14-seed0"], subset)
    config = (subset / RunDir.CONFIG).read_text().replace("[data]\n", "[data]\nlimit_train = 100\n")
    (subset / RunDir.CONFIG).write_text(config)
    summary = RunDir(subset).read_summary()
    RunDir(subset).write_summary(replace(summary, train_images=100, epochs=2))
    mixed = build_report([*resnets, subset])
    table = mixed.sections[0].table
    assert table.budget is None and "trained on" in table.headers
    rows = {r["model"]: r for r in md_table(render(mixed, tmp_path / "mixed"), "digits")}
    assert rows["lm-resnet depth=14"]["trained on"] == "100 training images (subset), 2 epochs"
    assert rows["resnet depth=8"]["trained on"] == f"{train_images:,} training images, 2 epochs"


def report_terminal(report) -> str:
    from resdyn.analysis.report import terminal_text

    return terminal_text(report)


def test_the_terminal_table_fits_100_columns_and_keeps_what_matters():
    """Issue 14.12: the comparison table was 194 characters wide."""
    from resdyn.analysis.report import Table, terminal_table

    headers = ["model", "depth", "seeds", "test acc (%)", "test error (%)", "paper error (%)", "Δ error (pp)",
               "params", "Mult-Adds per image", "Mult-Adds per batch of 128", "train s/epoch", "eval s/epoch",
               "NFE forward", "NFE backward", "peak memory", "checkpoint"]
    rows = [["lm-resnet depth=56 noise=stochastic-depth (optim.lr=0.05)", "56", "3", "93.69 ± 0.12",
             "6.31 ± 0.12", "6.31", "+0.00", "856,789", "126 M", "16.1 G", "31.4", "2.10", "-", "-",
             "1.2 GiB", "10.4 MiB"],
            ["odenet", "-", "3", "90.00 ± 1.00", "10.00 ± 1.00", "-", "-", "208,266", "37.6 M", "4.81 G", "40.1",
             "3.20", "26.3", "31.2", "980.0 MiB", "2.4 MiB"]]
    text = terminal_table(Table("cifar10", headers, rows, ["#000", "#111"], []))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    for kept in ("model", "seeds", "acc %", "paper %", "Δ pp", "params", "s/epoch"):
        assert kept in lines[0]
    assert "93.69 ± 0.12" in lines[2] and "856,789" in lines[2] and "+0.00" in lines[2] and "31.4" in lines[2]
    assert lines[2].startswith("lm-resnet depth=56 noise=stocha…")  # a long name is shortened, not dropped
    narrow = [["resnet20", *r[1:]] for r in rows]
    assert "MAdds/img" in terminal_table(Table("x", headers, narrow, ["#000", "#111"], [])).splitlines()[0]


def test_memory_against_depth_is_left_out_when_a_figure_is_not_the_runs_own(digits_runs):
    """Issue 14.11: a process's lifetime max RSS grows across a suite's runs; only a run's own peak is plotted
    (issue 29.2: nor a peak measured in a process that trained before)."""
    from resdyn.analysis.plots import memory_depth_plot

    report = build_report(digits_runs.values())
    assert {r.summary.peak_memory_kind for r in report.runs} == {"peak_rss"}  # reset at each training's start
    assert "memory-depth" in [p.slug for p in report.sections[0].plots]
    from resdyn.analysis.plots import Series
    series = [Series("a", "#000", [], 8, "resnet", 1e8), Series("b", "#111", [], 14, "lm-resnet", 2e8)]
    assert memory_depth_plot(series, "peak_rss") is not None
    assert memory_depth_plot(series, "cuda_max_allocated") is not None
    assert memory_depth_plot(series, "process_max_rss") is None
    assert memory_depth_plot(series, "peak_rss_reused") is None


def test_a_folder_of_mean_field_results_is_shown_beside_the_runs(digits_runs, tmp_path, capsys):
    """`resdyn report` on a `resdyn meanfield curves` folder shows its section, with its own figure."""
    curves = tmp_path / "curves"
    assert main(["meanfield", "curves", "--net", "frn", "--activation", "tanh", "--depth", "6", "--sigma-w2", "1",
                 "--sigma-v2", "1", "--sigma-a2", "0.25", "--width", "64", "--samples", "2", "--out",
                 str(curves)]) == 0
    out = tmp_path / "report"
    assert main(["report", str(digits_runs["resnet8-seed0"]), str(curves), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "Mean-field curves: FRN tanh, depth 6" in md and "![" in md
    linked = re.findall(r"\((meanfield-[^)]+\.png)\)", md)
    assert linked and all((out / name).read_bytes().startswith(b"\x89PNG") for name in linked)
    assert "Mean-field curves: FRN tanh" in (out / "report.html").read_text()
    assert main(["report", str(curves), "--out", str(tmp_path / "alone")]) == 0  # no run at all is fine too


def test_a_papers_training_set_error_is_shown_apart_and_never_compared_to_test_error():
    """Gładzik 2019 scored on its training images: [meta] paper_train_error / paper_train_accuracy_min are a
    column of their own with a note, and no Δ against the runs' test error."""
    from resdyn.analysis.report.tables import dataset_table

    runs = [fake_run("a", 0, meta={"paper_train_error": 1.5, "paper_metric": "train accuracy"}),
            fake_run("b", 0, optim={"lr": 0.05}, meta={"paper_train_accuracy_min": 97.0})]
    groups = group_runs(runs)
    table = dataset_table("digits", groups, {g.label: "#000" for g in groups})
    assert "paper train error (%)" in table.headers and "Δ error (pp)" not in table.headers
    column = table.headers.index("paper train error (%)")
    assert sorted(row[column] for row in table.rows) == ["1.50", "≤ 3.00"]
    assert any("not a test error" in note for note in table.notes)


def test_runs_that_differ_in_world_size_are_different_experiments(digits_runs, tmp_path):
    """Issue 29.4: a copy of a run trained with two processes was "counted once" with the one-process run (which
    one showed depended on the order of the arguments): the processes change the result (each process's batch
    norm sees its share of a batch), so world size is part of an experiment's identity."""
    one = digits_runs["resnet8-seed0"]
    two = tmp_path / "two-processes"
    shutil.copytree(one, two)
    summary = json.loads((two / "summary.json").read_text())
    summary["world_size"], summary["test_acc"] = 2, summary["test_acc"] / 2
    summary["test_error"] = 1 - summary["test_acc"]
    (two / "summary.json").write_text(json.dumps(summary))
    for order in ([one, two], [two, one]):
        report = build_report(order)
        assert report.duplicates == [] and sorted(r.path for r in report.runs) == sorted([one, two])
        rows = md_table(render(report, tmp_path / "report"), "digits")
        assert sorted(r["model"] for r in rows) == ["resnet depth=8 (train.world_size=1)",
                                                     "resnet depth=8 (train.world_size=2)"]
        assert [r["seeds"] for r in rows] == ["1", "1"]
    a, b = fake_run("a", 0), fake_run("b", 1)
    assert len(group_runs([a, b])) == 1  # one process each, as a summary without world_size says
