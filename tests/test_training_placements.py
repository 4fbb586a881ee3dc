"""Tests for helpers.training.placements and helpers.training.models.book_model."""

from helpers.training import placements
from helpers.training.models import book_model

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")


@pytest.mark.parametrize(
    "placement,use_bias,total",
    [("after", None, 271_346), ("before", None, 270_946), ("before", True, 271_346)],
)
def test_book_model_has_the_books_counts(placement, use_bias, total):
    model = book_model(placement, use_bias)
    assert model.count_params() == total
    assert isinstance(model.layers[1], keras.layers.BatchNormalization)


def test_book_model_refuses_other_placements():
    with pytest.raises(ValueError, match="placement"):
        book_model("between")
    with pytest.raises(ValueError, match="use_bias"):
        book_model("after", use_bias=0)


def test_sign_flip_p_value():
    assert placements.sign_flip_p_value([0.1, 0.2, 0.3]) == pytest.approx(0.25)
    assert placements.sign_flip_p_value([0.1, -0.1]) == 1.0
    with pytest.raises(ValueError, match="1 to 20"):
        placements.sign_flip_p_value([])


def history(accuracy):
    return pd.DataFrame({"loss": [1.0], "val_loss": [1.0], "val_accuracy": [accuracy]}, index=[1])


def test_final_accuracies_and_plot():
    histories = {(name, s): history(0.8 + 0.01 * i) for s in (1, 2)
                 for i, name in enumerate(placements.PLACEMENTS)}  # fmt: skip
    final = placements.final_accuracies(histories)
    np.testing.assert_allclose(final[placements.DIFFERENCE], [0.01, 0.01])
    fig, axes = plt.subplots(1, 2)
    placements.plot_histories(axes, histories)
    assert len(axes[0].lines) == 8 and len(axes[1].lines) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="missing"):
        placements.final_accuracies(
            {k: v for k, v in histories.items() if k[1] == 1}
            | {("after activation (p. 342)", 2): history(0.8)}
        )


@pytest.mark.integration  # fits two models: several seconds
def test_train_placements_runs_each_placement_per_seed():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(32, 28, 28)).astype("float32"), rng.integers(0, 10, 32)
    histories = placements.train_placements((x, y, x, y), [0], 1, 16, 0.01)
    assert sorted(histories) == sorted((name, 0) for name in placements.PLACEMENTS)
    with pytest.raises(ValueError, match="seeds"):
        placements.train_placements((x, y, x, y), [], 1, 16, 0.01)
