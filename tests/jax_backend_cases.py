"""Cases that run under Keras's JAX backend only: `tests/test_jax_backend.py` runs this file in a
pytest subprocess with ``KERAS_BACKEND=jax`` (pytest does not collect it otherwise: its name does
not start with ``test_``).
"""

import helpers
from helpers import fusion
from helpers.bn.layers import ModeRecorder, training_values
from helpers.runtime import supported
from helpers.training.models import book_model

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs under KERAS_BACKEND=jax only"
)


def test_the_backend_is_checked_and_named():
    assert supported.check()[0] == "jax"
    rows = helpers.versions_table()
    assert rows[-1][0] == "Keras backend: jax" and rows[-1][2] == "TensorFlow"
    assert [r[0] for r in rows[:4]] == ["Python", "TensorFlow", "Keras", "NumPy"]


def test_fit_builds_the_model_once_on_traced_values_before_its_first_step():
    helpers.setup(0)
    recorder = ModeRecorder()
    model = keras.Sequential([keras.Input((4,)), recorder, keras.layers.Dense(3)])
    model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 3), "float32")
    seen = training_values(model, recorder, x, y, batch_size=2)
    assert seen["fit"] == [True] * 4 and seen["fit, traced"] == [False]
    assert seen["evaluate"] == seen["predict"] == [False] * 4
    assert "evaluate, traced" not in seen and "predict, traced" not in seen
    # A second fit of the built model makes no traced call.
    assert training_values(model, recorder, x, y, batch_size=2)["fit"] == [True] * 4
    assert recorder.traced == []


@pytest.mark.parametrize("placement", ["after", "before"])
def test_fuse_folds_the_book_models_built_under_jax_with_the_same_check(placement):
    helpers.setup(0)
    model = book_model(placement)
    x = np.random.default_rng(0).random((32, 28, 28)).astype("float32")
    model(x, training=True)  # moving statistics away from their initial values
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.default_rng(1).normal(size=layer.moving_mean.shape))
    fused, report = fusion.fuse(model, x)
    assert len(report.folded) == 3 and not report.left
    assert report.max_abs_diff <= report.tolerance
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in fused.layers)
    np.testing.assert_allclose(fused.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_fuse_folds_a_convolution_and_a_mixed_precision_model_under_jax():
    helpers.setup(0)
    conv = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    _, report = fusion.fuse(conv)
    assert len(report.folded) == 1 and report.max_abs_diff <= report.tolerance
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        mixed = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(5), keras.layers.BatchNormalization()]
        )
        _, report = fusion.fuse(mixed)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert len(report.folded) == 1 and report.compute_dtypes
    assert report.max_abs_diff <= report.tolerance
    assert report.compute_diff <= report.compute_tolerance


def test_the_bn_variables_under_jax_have_no_underlying_name_and_get_jax_gradients():
    from helpers.bn import keras3

    helpers.setup(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(3, "softmax")]
    )
    bn = model.layers[0]
    frame = keras3.variables_frame(bn)
    assert frame["underlying tf.Variable"].tolist() == [keras3.NO_UNDERLYING_NAME] * 4
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.arange(16) % 3
    training = keras3.statistic_gradients(model, bn, x, y, training=True)
    # jax.grad gives exact zeros where TensorFlow's tape gives None.
    assert training["moving_mean"] == training["moving_variance"] == 0.0
    assert training["gamma"] > 0 and training["beta"] > 0
    inference = keras3.statistic_gradients(model, bn, x, y, training=False)
    assert all(g > 0 for g in inference.values())
    # The variables themselves are left as they were (the scope discards the BN's updates).
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(4))


def test_check_watched_says_in_one_sentence_why_jax_is_skipped(capsys):
    from helpers.bn import keras3

    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    x, y = np.zeros((2, 4), "float32"), np.zeros(2)
    assert keras3.check_watched(model, model.layers[0], x, y) is False
    assert capsys.readouterr().out == keras3.NO_TAPE + "\n"
    assert keras3.NO_TAPE.count(". ") == 0 and keras3.no_gradient() == 0.0
