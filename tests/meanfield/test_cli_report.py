"""`resdyn meanfield curves | map` write their folders; the report sections read them back."""

import base64
import json

import pytest

from resdyn.cli import main
from resdyn.meanfield import theory
from resdyn.meanfield.report import sections

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def curves_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("curves")
    argv = ["meanfield", "curves", "--net", "rrn", "--activation", "relu", "--depth", "6", "--sigma-w2", "0.5",
            "--sigma-b2", "0.1", "--width", "60", "--samples", "3", "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def map_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("map")
    argv = ["meanfield", "map", "--activation", "alpha-relu", "--axis", "alpha", "--values", "0.6:0.9:2",
            "--depths", "2,3", "--width", "16", "--data", "digits", "--limit-train", "200", "--limit-test", "100",
            "--lr", "0.05", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_curves_json_has_the_documented_schema(curves_dir):
    data = json.loads((curves_dir / "curves.json").read_text())
    assert set(data) == {"settings", "layers", "theory", "simulation", "command"}
    assert data["layers"] == list(range(7))
    expected = theory("rrn", "relu", 6, sigma_w2=0.5, sigma_b2=0.1)
    assert data["theory"]["p"] == pytest.approx(expected.p.tolist(), rel=1e-12)
    assert data["theory"]["log_R"] == pytest.approx(float(expected.log_R), rel=1e-12)
    for name in ("p", "e", "s", "chi"):
        assert len(data["simulation"][name]["mean"]) == len(data["simulation"][name]["std"]) == 7
    assert data["settings"]["width"] == 60 and data["settings"]["samples"] == 3
    assert data["command"].startswith("resdyn meanfield curves --net rrn")
    assert (curves_dir / "curves.png").read_bytes().startswith(PNG)


def test_map_json_holds_the_grid_and_the_command(map_dir):
    data = json.loads((map_dir / "map.json").read_text())
    assert data["settings"]["values"] == [0.6, 0.9] and data["settings"]["depths"] == [2, 3]
    assert len(data["accuracy"]) == 2 and len(data["accuracy"][0]) == 2
    assert data["theory"]["quantity"] == "log10_s" and data["command"].startswith("resdyn meanfield map")
    assert (map_dir / "map.png").read_bytes().startswith(PNG)


def test_report_sections_show_curves_and_map(curves_dir, map_dir):
    (curves,) = sections(curves_dir)
    assert curves.title.startswith("Mean-field curves: RRN relu, depth 6")
    assert "| log R |" in curves.markdown and "](curves.png)" in curves.markdown
    assert curves.images["curves.png"].startswith(PNG)
    embedded = curves.html.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(embedded).startswith(PNG)
    (trainability,) = sections(map_dir)
    assert trainability.title.startswith("Trainability map: FRN alpha-relu on digits")
    assert "| depth \\ alpha | 0.6 | 0.9 |" in trainability.markdown
    assert "<table>" in trainability.html and trainability.images["map.png"].startswith(PNG)


def test_a_folder_without_results_has_no_sections(tmp_path):
    assert sections(tmp_path) == []


@pytest.mark.parametrize(("argv", "message"), [
    (["curves", "--activation", "tanh", "--alpha", "0.7"], "--alpha is the exponent"),
    (["curves", "--net", "rrn", "--sigma-a2", "0.5"], "no V or a"),
    (["curves", "--activation", "alpha-relu", "--alpha", "0.3"], "alpha must be > 1/2"),
    (["map", "--values", "a:b:c"], "not a list of numbers"),
    (["map", "--axis", "rho2", "--net", "rrn"], "needs an FRN"),
    (["map", "--activation", "alpha-relu", "--axis", "alpha", "--values", "0.3,0.8"], "alpha must be > 1/2"),
])
def test_bad_input_is_one_line_and_exit_1(argv, message, tmp_path, capsys):
    assert main(["meanfield", *argv, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("resdyn: error:") and not (tmp_path / "out").exists()
