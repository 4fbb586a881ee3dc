"""helpers.training.steps: the mini-batches of a run, and the checks of the shared pieces."""

from helpers.training.steps import (
    gradient_step,
    hidden_widths,
    images_and_labels,
    make_batches,
)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(st.integers(1, 50), st.integers(1, 8), st.integers(0, 40), st.integers(0, 2**31))
def test_make_batches_shuffles_each_epoch_without_repeats(extra, batch, steps, seed):
    n = batch + extra
    b = make_batches(n, batch, steps, seed)
    assert b.shape == (steps, batch) and b.dtype == np.int32
    assert b.min(initial=0) >= 0 and b.max(initial=0) < n
    per_epoch = n // batch
    for start in range(0, steps, per_epoch):  # within an epoch, no example twice
        epoch = b[start : start + per_epoch].ravel()
        assert len(np.unique(epoch)) == len(epoch)
    np.testing.assert_array_equal(b, make_batches(n, batch, steps, seed))


@pytest.mark.parametrize(
    "args, word",
    [
        ((3, 4, 1, 0), "n_examples"),
        ((10, 0, 1, 0), "batch_size"),
        ((10, 2, -1, 0), "n_steps"),
        ((10, 2, 1, -3), "seed"),
    ],
)
def test_make_batches_errors(args, word):
    with pytest.raises(ValueError, match=word):
        make_batches(*args)


@pytest.mark.parametrize("hidden", [[], "64", (0,), [8, -1], None])
def test_hidden_widths_are_a_non_empty_list_of_positive_integers(hidden):
    with pytest.raises(ValueError, match="hidden"):
        hidden_widths(hidden)
    assert hidden_widths((8, 4)) == [8, 4]


def test_images_and_labels_flattens_and_checks():
    X, y = images_and_labels(np.zeros((3, 2, 2)), np.array([0, 1, 2]), "train")
    assert X.shape == (3, 4) and X.dtype == np.float32 and y.dtype == np.int32
    with pytest.raises(ValueError, match="train labels must be one integer per image"):
        images_and_labels(np.zeros((3, 2)), np.zeros(2, dtype=int), "train")


def test_gradient_step_in_inference_mode_leaves_moving_statistics():
    import keras

    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    optimizer.build(model.trainable_variables)
    bn = model.layers[0]
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 0, 1], dtype=np.int32)
    gamma = bn.gamma.numpy().copy()
    gradient_step(model, optimizer, x, y, training=False)
    assert np.array_equal(bn.moving_mean.numpy(), np.zeros(3))  # not updated
    assert not np.array_equal(bn.gamma.numpy(), gamma)  # but γ trained
    gradient_step(model, optimizer, x, y)  # training mode: the statistics move
    assert not np.array_equal(bn.moving_mean.numpy(), np.zeros(3))
