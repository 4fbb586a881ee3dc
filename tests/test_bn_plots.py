"""helpers.bn.plots and helpers.bn.tables: the figures and tables of chapters 00-02 draw and
check their arguments (nothing is shown: pytest is not IPython)."""

from helpers.bn import plots, tables
from helpers.bn.moving import ema_replay

import matplotlib.pyplot as plt
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_grid_draws_one_row_per_class():
    x = np.random.default_rng(0).uniform(0, 1, (40, 4, 4))
    y = np.arange(40) % 2
    fig, axes = plt.subplots(2, 3, squeeze=False)
    plots.image_grid(axes, x, y, ["a", "b"], seed=0)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["a", "b"]
    assert all(len(ax.images) == 1 for ax in axes.flat)
    with pytest.raises(ValueError, match="one row per class"):
        plots.image_grid(axes, x, y, ["a", "b", "c"], seed=0)
    fig, axes = plt.subplots(2, 30, squeeze=False)
    with pytest.raises(ValueError, match="fewer columns"):
        plots.image_grid(axes, x, y, ["a", "b"], seed=0)


def test_epsilon_shrinkage_and_histograms_draw():
    x = np.random.default_rng(0).normal(0, 0.1, (16, 5))
    fig, ax = plt.subplots()
    plots.epsilon_shrinkage(ax, x, [1e-5, 1e-3])
    assert len(ax.collections) == 2 and len(ax.lines) == 2
    with pytest.raises(ValueError, match="colour"):
        plots.epsilon_shrinkage(ax, x, [1e-5, 1e-4, 1e-3])
    with pytest.raises(ValueError, match="epsilon"):
        plots.epsilon_shrinkage(ax, x, [0.0])
    fig, axes = plt.subplots(1, 2)
    plots.preactivation_histograms(axes, x, x, n_units=3)
    assert axes[1].get_legend() is not None
    with pytest.raises(ValueError, match="n_units"):
        plots.preactivation_histograms(axes, x, x, n_units=6)
    with pytest.raises(ValueError, match="two axes"):
        plots.preactivation_histograms(axes[:1], x, x, n_units=1)


def test_ema_errors_draws_every_run():
    x = np.random.default_rng(0).uniform(0, 1, (500, 3))
    target = x.mean(axis=0), x.var(axis=0)
    runs, _ = ema_replay(x, target, [4, 8], [0.9, 0.99], steps=100, seed=0)
    fig, axes = plt.subplots(2, 2)
    plots.ema_errors(axes, runs, target[1], keras_run=(4, 0.9, runs[4, 0.9][0]))
    assert axes[0, 0].get_yscale() == "log"
    assert "Keras fit(), momentum 0.9" in [line.get_label() for line in axes[0, 0].lines]
    fig, axes = plt.subplots(2, 1, squeeze=False)
    with pytest.raises(ValueError, match="2 × 2 grid"):
        plots.ema_errors(axes, runs, target[1])


def test_split_table():
    splits = {"train": (np.zeros((3, 2, 2), "float32"), np.zeros(3, int))}
    table = tables.split_table(splits)
    assert table.loc["train", "pixel range"] == "[0.0, 0.0]"
    assert table.loc["train", "images"] == (3, 2, 2)
    with pytest.raises(ValueError, match="one label each"):
        tables.split_table({"train": (np.zeros((3, 2)), np.zeros(2))})
    with pytest.raises(ValueError, match="splits is empty"):
        tables.split_table({})
