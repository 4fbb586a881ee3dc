"""Tests for helpers.bn.axis: which values share BN's statistics on [batch, 28, 28] images."""

from helpers.bn import axis as per_axis
from helpers.bn.layers import MultiAxisBatchNormalization

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("seeded_module")


def images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 28, 28)).astype("float32")


@pytest.mark.parametrize(
    "layer,over",
    [
        (lambda: keras.layers.BatchNormalization(momentum=0.0), (0, 1)),
        (lambda: keras.layers.BatchNormalization(axis=1, momentum=0.0), (0, 2)),
        (lambda: MultiAxisBatchNormalization(axis=[1, 2], momentum=0.0), 0),
    ],
)
def test_batch_means_and_what_each_layer_subtracts(layer, over):
    x, bn = images(), layer()
    means = per_axis.batch_means(bn, x)
    np.testing.assert_allclose(means, x.mean(axis=over, dtype=np.float64), atol=1e-5)
    picture = per_axis.mean_picture(means, bn.axis)
    recovered = per_axis.subtracted_means(bn, x)
    known = ~np.isnan(recovered)
    np.testing.assert_allclose(recovered[known], picture[known], atol=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="momentum=0"):
        per_axis.batch_means(keras.layers.BatchNormalization(), images())
    with pytest.raises(ValueError, match="batch of at least two 2D images"):
        per_axis.batch_means(keras.layers.BatchNormalization(momentum=0.0), np.ones((4, 3)))
    with pytest.raises(ValueError, match="axis must be"):
        per_axis.mean_picture(np.zeros(28), 3)
    with pytest.raises(ValueError, match="do not fit"):
        per_axis.mean_picture(np.zeros(27), -1)
    with pytest.raises(ValueError, match="n_calls"):
        per_axis.mode_gap(MultiAxisBatchNormalization(), images(), images(), 0)


def test_statistics_table_of_the_four_variants():
    table = per_axis.statistics_table(per_axis.per_pixel_variants())
    assert table["statistics"].tolist() == [28, 28, 784, 784]
    assert (table["params"] == table["params (Keras)"]).all()
    assert (table["params"] == 4 * table["statistics"]).all()
    with pytest.raises(ValueError, match="exactly one BN layer"):
        per_axis.bn_layer(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


def test_the_two_per_pixel_layers_agree_after_copy_random_state():
    variants = per_axis.per_pixel_variants()
    flat = variants["Flatten → BatchNormalization → Reshape"]
    multi = variants["MultiAxisBatchNormalization(axis=[1, 2])"]
    a, b = per_axis.bn_layer(flat), per_axis.bn_layer(multi)
    per_axis.copy_random_state([a, b], seed=1)
    assert max(per_axis.largest_gaps(a, b).values()) == 0
    assert float(np.abs(a.gamma.numpy() - 1).max()) > 0.1
    x = images()
    np.testing.assert_allclose(flat(x, training=False), multi(x, training=False), atol=1e-5)
    with pytest.raises(ValueError, match="784 values"):
        per_axis.copy_random_state([keras.layers.BatchNormalization()], seed=1)


def test_classifier_and_mode_gap():
    model = per_axis.per_pixel_classifier([MultiAxisBatchNormalization(axis=[1, 2])], seed=0)
    assert model.output_shape == (None, 10) and model.optimizer is not None
    layer, x = MultiAxisBatchNormalization(axis=[1, 2], momentum=0.5), images()
    reference = layer(x, training=True).numpy()
    gap = per_axis.mode_gap(layer, x, reference, 5)
    assert gap.shape == (6,) and np.all(np.diff(gap) < 0)
    fig, ax = plt.subplots()
    per_axis.plot_mode_gap(ax, gap, 0.5)
    assert len(ax.lines) == 2
    fig, axes = plt.subplots(1, 2)
    per_axis.plot_mean_pictures(axes, {"a": np.zeros((28, 28)), "b": np.ones((28, 28))}, 1.0)
    assert len(fig.axes) == 3  # and a colour bar
    with pytest.raises(ValueError, match="one axes per picture"):
        per_axis.plot_mean_pictures(axes, {"a": np.zeros((28, 28))}, 1.0)
    plt.close("all")
