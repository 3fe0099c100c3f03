"""The figures: curves are means over seeds at shared epochs, NFE sums the ODE blocks, empty plots are omitted."""

import io

import matplotlib.image
import numpy as np
import pytest

from resdyn.analysis.plots import Series, all_plots, colours, key, lm_k_final_plot, nfe, nfe_plot, seed_curve
from resdyn.runs import EpochRecord


def records(values, name="test_acc", lr=0.1, **reports):
    """Epoch records with ``name`` taking ``values`` and the model reporting ``reports`` every epoch."""
    base = dict(step=0, lr=lr, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5, epoch_time_s=1.0,
                eval_time_s=1.0, images_per_s=1.0)
    return [EpochRecord(epoch=e, **{**base, name: v}, model=dict(reports)) for e, v in enumerate(values, 1)]


def test_seed_curve_is_mean_and_sample_std_over_shared_epochs():
    seeds = [records([0.1, 0.2, 0.3]), records([0.3, 0.4])]  # the second stopped early
    epochs, mean, std = seed_curve(seeds, key("test_acc"))
    assert epochs.tolist() == [1, 2]
    assert mean == pytest.approx([0.2, 0.3])
    assert std == pytest.approx([np.std([0.1, 0.3], ddof=1)] * 2)
    assert seed_curve([records([0.5], "val_acc")], key("val_loss")) is None


def test_nfe_sums_blocks_prefixed_or_listed():
    record = {"epoch": 1, "nfe_forward_mean": 6, "ode2.nfe_forward_mean": [2, 3], "nfe_forward_max": 40,
              "odenfe_forward_mean": 1000, "nfe_backward_mean": float("nan")}
    assert nfe(record, "forward") == 11 and nfe(record, "backward") is None and nfe({}, "forward") is None


def test_plots_without_data_are_omitted():
    plain = Series("resnet20", "#1f77b4", [records([0.5, 0.6], lr=0.1)])
    assert lm_k_final_plot([plain]) is None and nfe_plot([plain]) is None
    assert [p.slug for p in all_plots([plain], "process_max_rss")] == ["test-accuracy", "loss", "learning-rate"]


def test_plots_are_png_images():
    lm = Series("lm-resnet20", "#ff7f0e", [records([0.5, 0.6], lr=0.1, lm_k=[-0.1, 0.05, 0.0], nfe_forward_mean=8.0)],
                depth=20, family="lm-resnet", peak_memory_bytes=2**28)
    deeper = Series("lm-resnet32", "#2ca02c", [records([0.4, 0.7], lr=0.1, lm_k=[0.0] * 5)], depth=32,
                    family="lm-resnet", peak_memory_bytes=2**29)
    plots = all_plots([lm, deeper], "cuda_max_allocated")
    assert [p.slug for p in plots] == ["test-accuracy", "loss", "learning-rate", "lm-k-final", "lm-k-epochs",
                                       "nfe", "memory-depth"]
    for plot in plots:
        image = matplotlib.image.imread(io.BytesIO(plot.png), format="png")
        assert image.shape[0] > 200 and image.shape[1] > 400


def test_each_label_has_its_own_colour_whatever_the_order():
    labels = [f"model{i}" for i in range(15)]
    palette = colours(labels)
    assert len(set(palette.values())) == 15 and colours(labels[::-1]) == palette
