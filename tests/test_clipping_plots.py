"""helpers.clipping.plots: each function draws on the axes it is given, and refuses others."""

from helpers.chapter import figures
from helpers.clipping import plots

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest


@pytest.fixture
def style():
    with matplotlib.rc_context(figures.RC):
        yield
    plt.close("all")


def _texts(fig):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def test_draw_book_arrows(style):
    fig, axes = plt.subplots(1, 2)
    raw = np.float32([0.9, 100.0])
    clipped = {"clipvalue=1.0": np.float32([0.9, 1.0]), "clipnorm=1.0": raw / np.linalg.norm(raw)}
    plots.draw_book_arrows(axes, raw, clipped, {"clipvalue=1.0": 41.3, "clipnorm=1.0": 0.0})
    assert "by value 41.3°, by norm 0.0°" in axes[1].get_title()
    labels = axes[1].get_legend_handles_labels()[1]
    assert labels[0] == "raw gradient [0.9, 100]" and "norm 1" in labels
    assert min(t.get_fontsize() for t in _texts(fig)) >= figures.SMALLEST_PT


def _run(n, bad_at=None):
    loss = np.linspace(2, 1, n)
    if bad_at is not None:
        loss[bad_at:] = np.nan
    steps = np.arange(n)
    return {"batch/batch_loss": (steps, loss), "batch/grad_norm": (steps, loss * 3)}


def test_draw_curves_marks_the_first_non_finite_loss(style):
    fig, axes = plt.subplots(1, 2)
    scalars = {("no clipping", 42): _run(10, bad_at=6), ("global_clipnorm=1.0", 42): _run(10)}
    plots.draw_curves(axes, scalars, ["no clipping", "global_clipnorm=1.0"], 42, 64, 1.0)
    labels = axes[1].get_legend_handles_labels()[1]
    assert "first non-finite loss, no clipping" in labels and "threshold 1.0" in labels
    assert axes[0].get_yscale() == "log" and "seed 42" in axes[0].get_title()


def test_draw_angles_leaves_out_settings_without_clipped_steps(style):
    fig, ax = plt.subplots()
    angles = {("a", 1): np.array([1.0, 20.0]), ("b", 1): np.array([]), ("c", 1): np.zeros(3)}
    plots.draw_angles(ax, angles, ["a", "b", "c"], [1])
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["a\n(2 steps)", "c\n(3 steps)"]
    assert min(t.get_fontsize() for t in _texts(fig)) >= figures.SMALLEST_PT


def test_plots_errors(style):
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="axes must be 2"):
        plots.draw_book_arrows(axes[:1], [1, 2], {}, {})
    with pytest.raises(ValueError, match="two components"):
        plots.draw_book_arrows(axes, [1, 2, 3], {}, {})
    with pytest.raises(ValueError, match="names must hold"):
        plots.draw_curves(axes, {}, [], 42, 64, 1.0)
    with pytest.raises(ValueError, match="no run of"):
        plots.draw_curves(axes, {}, ["no clipping"], 42, 64, 1.0)
    with pytest.raises(ValueError, match="no setting"):
        plots.draw_angles(axes[0], {("a", 1): np.array([])}, ["a"], [1])
