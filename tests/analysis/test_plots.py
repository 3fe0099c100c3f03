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


def scored_once(train_accs, final, at=None):
    """A run scored only after its last epoch (train.eval_every = its epochs), as `make demo`'s runs are."""
    at = at or len(train_accs)
    base = dict(step=0, lr=0.1, train_loss=1.0, epoch_time_s=1.0, eval_time_s=0.0, images_per_s=1.0)
    return [EpochRecord(epoch=e, train_acc=a, test_loss=1.0 if e == at else None, test_acc=final if e == at else None,
                        **base) for e, a in enumerate(train_accs, 1)]


def colour_pixels(png: bytes, colour: str) -> int:
    image = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    target = np.array(matplotlib.colors.to_rgb(colour))
    return int((np.abs(image - target).max(-1) < 0.02).sum())


def test_runs_scored_once_get_an_accuracy_figure_that_can_be_read():
    """Issue 29.13: `make demo` scores only the last epoch, and "Test accuracy per epoch" was four lone dots on an
    x-axis from 2.85 to 3.15. With few scored epochs the figure shows the training accuracy per epoch with the
    scored points on it, beside the final test accuracy of each model with its seeds' spread."""
    from resdyn.analysis.plots import accuracy_figure

    palette = colours(["resnet20", "lm-resnet20", "revnet38", "odenet"])
    series = [Series(name, palette[name], [scored_once([0.6 + 0.05 * i, 0.7 + 0.05 * i, 0.75 + 0.05 * i],
                                                       0.80 + 0.02 * i + 0.01 * seed) for seed in range(2)])
              for i, name in enumerate(palette)]
    figure, title = accuracy_figure(series)
    assert "final test accuracy" in title.lower()
    epochs_axis, final_axis = figure.axes
    low, high = epochs_axis.get_xlim()
    assert low <= 1 and high >= 3  # every epoch on the axis, not 2.85 to 3.15
    ticks = [t for t in epochs_axis.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks) and {1, 2, 3} <= set(ticks)
    assert [t.get_text() for t in final_axis.get_xticklabels()] == list(palette)
    plot = next(p for p in all_plots(series, None) if p.slug == "test-accuracy")
    for colour in palette.values():
        assert colour_pixels(plot.png, colour) > 400  # a line and a bar per model, not a lone dot
    many = Series("resnet20", palette["resnet20"], [records([0.5, 0.6, 0.7, 0.8])])
    assert "per epoch" in accuracy_figure([many])[1] and len(accuracy_figure([many])[0].axes) == 1


def test_epoch_ticks_are_whole_numbers_for_a_single_epoch():
    from resdyn.analysis.plots import accuracy_figure

    figure, _ = accuracy_figure([Series("a", "#1f77b4", [records([0.5])])])
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    assert all(float(t).is_integer() for t in ax.get_xticks() if low <= t <= high)
    assert high - low >= 1
