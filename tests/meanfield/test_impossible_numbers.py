"""Impossible numbers at the mean-field command line (issue 29, item 8): non-finite or out-of-range flags are one
line naming the flag; where the theory overflows float64 the folder's JSON stays valid (null, with the layer
named) and the command says so."""

import json
import math

import numpy as np
import pytest

from resdyn.cli import main
from resdyn.meanfield import theory


def strict_json(text: str):
    """Parse as strict JSON: Python's json accepts NaN / Infinity unless told otherwise."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(("argv", "flag"), [
    (["curves", "--sigma-w2", "nan"], "--sigma-w2"),
    (["curves", "--sigma-w2", "inf"], "--sigma-w2"),
    (["curves", "--sigma-v2=-inf"], "--sigma-v2"),
    (["curves", "--sigma-a2", "nan"], "--sigma-a2"),
    (["curves", "--sigma-b2", "inf"], "--sigma-b2"),
    (["curves", "--sigma-w2", "-1"], "--sigma-w2"),
    (["curves", "--p0", "nan"], "--p0"),
    (["curves", "--p0", "inf"], "--p0"),
    (["curves", "--e0", "nan"], "--e0"),
    (["curves", "--activation", "alpha-relu", "--alpha", "nan"], "--alpha"),
    (["map", "--values", "nan"], "--values"),
    (["map", "--values", "0.5,inf"], "--values"),
    (["map", "--values", "0:nan:3"], "--values"),
    (["map", "--sigma-w2", "nan", "--axis", "rho2"], "--sigma-w2"),
    (["map", "--lr", "nan"], "--lr"),
    (["map", "--lr", "0"], "--lr"),
    (["map", "--lr", "-0.1"], "--lr"),
    (["map", "--lr", "inf"], "--lr"),
    (["map", "--momentum", "nan"], "--momentum"),
    (["map", "--momentum", "-0.5"], "--momentum"),
])
def test_impossible_flag_is_one_line_naming_it(argv, flag, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["meanfield", *argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("resdyn: error:") and err.count("\n") == 1 and flag in err, err
    assert not out.exists()


def test_unknown_device_lists_the_valid_ones(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["meanfield", "map", "--device", "tpu", "--values", "1", "--depths", "2", "--data", "digits"]
    assert main([*argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("resdyn: error:") and err.count("\n") == 1
    assert "'tpu'" in err and "cpu" in err and "cuda" in err
    assert not out.exists()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_huge_sigma_writes_valid_json_and_names_the_first_bad_layer(activation, tmp_path, capsys):
    """σ_w² = 1e308 is a finite float: the theory runs until float64 overflows (ReLU: p; tanh saturates, p stays
    finite, but q^l is past what its correlation integral resolves), and the file says from which layer."""
    out = tmp_path / "out"
    argv = ["meanfield", "curves", "--activation", activation, "--sigma-w2", "1e308", "--depth", "4",
            "--samples", "0", "--out", str(out)]
    assert main(argv) == 0
    data = strict_json((out / "curves.json").read_text())
    bad = data["theory_nonfinite"]
    assert "s" in bad and ("p" in bad) == (activation == "relu")
    for name, first in bad.items():
        if name == "chi":
            continue
        assert isinstance(first, int) and 1 <= first <= 4
        assert all(v is None for v in data["theory"][name][first:])
        assert all(v is not None for v in data["theory"][name][:first])
    first = min(v for k, v in bad.items() if k != "chi")
    assert f"from layer {first}" in data["theory_note"]
    assert f"from layer {first}" in capsys.readouterr().err


def test_relu_overflow_at_moderate_sigmas_is_reported_not_written_as_infinity(tmp_path, capsys):
    """A ReLU FRN's p grows by 1 + σ_v² σ_w² / 2 = 5001 = e^8.52 per layer: past 1.8e308 = e^709.8 at layer
    ⌈709.8 / 8.52⌉ = 84. Before this was handled, curves.json held Infinity and NaN."""
    out = tmp_path / "out"
    argv = ["meanfield", "curves", "--activation", "relu", "--sigma-w2", "100", "--sigma-v2", "100",
            "--depth", "120", "--samples", "2", "--width", "8", "--out", str(out)]
    assert main(argv) == 0
    data = strict_json((out / "curves.json").read_text())
    expected = theory("frn", "relu", 120, sigma_w2=100.0, sigma_v2=100.0)
    first = int(np.argmax(~np.isfinite(expected.p)))
    assert first == math.ceil(math.log(np.finfo(float).max) / math.log(5001)) == data["theory_nonfinite"]["p"]
    assert data["theory"]["p"][first - 1] == pytest.approx(float(expected.p[first - 1]))
    assert data["theory"]["p"][first] is None
    # log R is a sum of per-layer logs and stays finite though χ^0 = R itself overflows
    assert math.isfinite(data["theory"]["log_R"]) and data["theory"]["chi"][0] is None
    assert "overflows float64" in data["theory_note"] and "overflows float64" in capsys.readouterr().err


def test_map_json_is_strict_where_the_theory_overflows_and_a_net_diverged(tmp_path):
    """A ReLU FRN's log10 s^L is past float64 at σ_w² = 1e300 from depth 2; a diverged net's loss is inf. map.json
    holds null for both (``diverged`` and the theory's ``note`` say why) and the report still renders it."""
    from resdyn.meanfield.folders import write_map
    from resdyn.meanfield.report import sections
    from resdyn.meanfield.sweep import MapResult, MapSettings, theory_grid

    settings = MapSettings(activation="relu", values=[1.0, 1e300], depths=[2, 3], data="digits")
    grid = theory_grid(settings, points=3)
    assert "from depth 2" in grid["note"] and "null" in grid["note"]
    result = MapResult(settings, accuracy=[[0.5, 0.1], [0.4, 0.1]], train_loss=[[1.0, math.inf], [1.1, math.inf]],
                       diverged=[[False, True], [False, True]], wall_time_s=1.0, theory=grid)
    write_map(tmp_path, result.to_dict())
    data = strict_json((tmp_path / "map.json").read_text())
    assert data["train_loss"] == [[1.0, None], [1.1, None]] and data["diverged"][0] == [False, True]
    assert data["theory"]["grid"][3][-1] is None and data["theory"]["grid"][1][0] is not None
    (section,) = sections(tmp_path)
    assert "| 3 | 40.0 | 10.0* |" in section.markdown


@pytest.mark.parametrize("kwargs", [{"sigma_w2": math.nan}, {"sigma_w2": 1.0, "sigma_b2": math.inf},
                                    {"sigma_w2": np.array([1.0, np.nan])}])
def test_library_refuses_non_finite_variances(kwargs):
    from resdyn.errors import ConfigError
    from resdyn.meanfield import simulate

    with pytest.raises(ConfigError, match="finite"):
        theory("frn", "tanh", 3, **kwargs)
    if np.ndim(kwargs["sigma_w2"]) == 0:
        with pytest.raises(ConfigError, match="finite"):
            simulate("frn", "tanh", 3, width=4, samples=1, seed=0, **kwargs)
