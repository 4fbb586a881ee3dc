"""Tests for helpers.bn.keras3: what the book's BN code meets in Keras 3."""

from helpers.bn import keras3
from helpers.bn.layers import ModeRecorder

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("seeded_module")


def small_model():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def batch(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 2, n)


def test_outcome_says_accepted_or_names_the_error():
    assert keras3.outcome(int, "3") == "accepted"
    assert keras3.outcome(int, "x").startswith("ValueError: invalid literal")
    assert keras3.outcome(keras.optimizers.SGD, lr=0.01).startswith("ValueError")
    with pytest.raises(ValueError, match="callable"):
        keras3.outcome(3)


def test_input_shape_warning_is_keras_message():
    assert "input_shape" in keras3.input_shape_warning()


def test_summary_text_holds_the_counts_and_needs_a_built_model():
    model = small_model()
    assert f"Total params: {model.count_params():,}" in keras3.summary_text(model)
    with pytest.raises(ValueError, match="built keras.Model"):
        keras3.summary_text(keras.Sequential([keras.layers.Dense(1)]))


def test_variables_frame_lists_name_path_and_tf_name():
    frame = keras3.variables_frame(small_model().layers[1])
    assert frame["name (today)"].tolist() == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert frame["trainable"].tolist() == [True, True, False, False]
    assert all(frame["underlying tf.Variable"].str.endswith(":0"))
    with pytest.raises(ValueError, match="no variables"):
        keras3.variables_frame(keras.layers.Flatten())


def test_statistics_get_no_gradient_in_training_mode_only():
    model, (x, y) = small_model(), batch()
    bn = model.layers[1]
    training = keras3.statistic_gradients(model, bn, x, y, training=True)
    assert training["moving_mean"] is None and training["moving_variance"] is None
    assert training["gamma"] > 0 and training["beta"] > 0
    inference = keras3.statistic_gradients(model, bn, x, y, training=False)
    assert all(g is not None for g in inference.values())
    watched = keras3.watched_by_default(model, x, y)
    assert bn.gamma.value.name in watched and bn.moving_mean.value.name not in watched
    with pytest.raises(ValueError, match="not a layer of the model"):
        keras3.statistic_gradients(model, keras.layers.Dense(1), x, y, training=True)
    with pytest.raises(ValueError, match="same length"):
        keras3.statistic_gradients(model, bn, x, y[:3], training=True)


def test_update_lines_are_the_assignments_of_call():
    lines = keras3.update_lines()
    assert len(lines) == 3 and lines[0].startswith("if training and self.trainable")


def test_moving_statistics_move_in_training_calls_only():
    model, (x, _) = small_model(), batch()
    start = keras3.moving_statistics(model)
    model(x, training=False)
    middle = keras3.moving_statistics(model)
    model(x, training=True)
    assert keras3.moved(start, middle) == {model.layers[1].name: False}
    assert keras3.moved(middle, keras3.moving_statistics(model)) == {model.layers[1].name: True}
    with pytest.raises(ValueError, match="same layers"):
        keras3.moved(start, {})
    with pytest.raises(ValueError, match="no BatchNormalization"):
        keras3.moving_statistics(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))


def test_a_bias_before_bn_gets_no_gradient():
    model, (x, y) = small_model(), batch(64)
    grads = list(keras3.dense_bias_gradients(model, x, y).values())
    assert grads[0] < 1e-6 < 1e-3 < grads[1]
    no_bias = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, use_bias=False)])
    with pytest.raises(ValueError, match="bias"):
        keras3.dense_bias_gradients(no_bias, x, y)


def test_training_values_and_the_recorder():
    assert keras3.training_values() == (True, False)
    recorder = ModeRecorder()
    recorder(np.ones((1, 2)))
    assert recorder.modes == [None]


def test_check_watched_and_no_gradient_under_tensorflow(capsys):
    model, (x, y) = small_model(), batch()
    assert keras3.check_watched(model, model.layers[1], x, y) is True
    assert capsys.readouterr().out == ""
    assert keras3.no_gradient() is None
    assert keras3.underlying_name(model.layers[1].gamma).endswith(":0")
