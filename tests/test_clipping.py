"""helpers.clipping.reference: NumPy references against TensorFlow, and the logging loop."""

import math
import os
import warnings

import helpers
from helpers.clipping import reference

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@pytest.fixture(autouse=True, scope="module")
def seeded():
    helpers.setup(0)


SETTINGS = settings(max_examples=30, deadline=None)

# TensorFlow's CPU kernels flush subnormal floats (below 1.2e-38) to zero, NumPy keeps them;
# that is a property of the hardware settings, not of clipping, so subnormals are left out.
finite32 = st.floats(
    -1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32
)
arrays32 = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite32
)
thresholds = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
BAD_THRESHOLDS = [0, 0.0, -1.0, math.nan, math.inf, -math.inf, "1.0", None, True, [1.0]]


# --- clip_by_value ------------------------------------------------------------------------


@SETTINGS
@given(arrays32, thresholds)
def test_clip_by_value_matches_tensorflow(grad, limit):
    ours = reference.clip_by_value(grad, limit)
    theirs = tf.clip_by_value(grad, -np.float32(limit), np.float32(limit)).numpy()
    assert ours.dtype == np.float32 and ours.shape == grad.shape
    np.testing.assert_array_equal(ours, theirs)


def test_clip_by_value_book_vector():
    np.testing.assert_allclose(reference.clip_by_value([0.9, 100.0], 1.0), [0.9, 1.0])


def test_clip_by_value_nan_and_inf():
    out = reference.clip_by_value(np.array([np.nan, np.inf, -np.inf, 0.5], np.float32), 1.0)
    np.testing.assert_array_equal(out, [np.nan, 1.0, -1.0, 0.5])
    theirs = tf.clip_by_value(
        np.array([np.nan, np.inf, -np.inf, 0.5], np.float32), -1.0, 1.0
    ).numpy()
    np.testing.assert_array_equal(out, theirs)


def test_clip_by_value_integers_become_float():
    out = reference.clip_by_value([3, -3, 0], 2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, -2.0, 0.0])


@pytest.mark.parametrize("bad", BAD_THRESHOLDS)
def test_clip_by_value_rejects_bad_limit(bad):
    with pytest.raises(ValueError, match="limit"):
        reference.clip_by_value([1.0, 2.0], bad)


def test_clip_by_value_rejects_non_numbers():
    with pytest.raises(ValueError, match="grad"):
        reference.clip_by_value(["a", "b"], 1.0)


# --- clip_by_norm -------------------------------------------------------------------------


@SETTINGS
@given(arrays32, thresholds)
def test_clip_by_norm_matches_tensorflow(grad, max_norm):
    ours = reference.clip_by_norm(grad, max_norm)
    theirs = tf.clip_by_norm(grad, np.float32(max_norm)).numpy()
    assert ours.dtype == np.float32 and ours.shape == grad.shape
    # float32 results; ours accumulates the norm in float64, hence a few ulps of difference.
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-30)
    assert np.linalg.norm(ours.astype(np.float64)) <= max_norm * (1 + 1e-6)


@SETTINGS
@given(arrays32, thresholds)
def test_clip_by_norm_keeps_direction(grad, max_norm):
    if np.any(grad) and np.all(np.isfinite(grad)):
        clipped = reference.clip_by_norm(grad.astype(np.float64), max_norm)
        assert reference.angle_between(grad, clipped) < 1e-5


def test_clip_by_norm_book_vector():
    # The definition in float64, not the book's printed digits.
    g = np.array([0.9, 100.0])
    np.testing.assert_allclose(
        reference.clip_by_norm(g, 1.0), g / np.hypot(0.9, 100.0), rtol=1e-15
    )


def test_clip_by_norm_small_gradient_unchanged_and_zero_safe():
    g = np.array([0.3, -0.4], np.float32)
    np.testing.assert_array_equal(reference.clip_by_norm(g, 1.0), g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by zero would warn
        np.testing.assert_array_equal(
            reference.clip_by_norm(np.zeros((3, 2), np.float32), 1.0), np.zeros((3, 2))
        )
    np.testing.assert_array_equal(
        tf.clip_by_norm(np.zeros((3, 2), np.float32), 1.0).numpy(), np.zeros((3, 2))
    )


@pytest.mark.parametrize("grad", [[np.nan, 2.0], [np.inf, 2.0], [-np.inf, 0.0]])
def test_clip_by_norm_non_finite_like_tensorflow(grad):
    grad = np.array(grad, np.float32)
    np.testing.assert_array_equal(
        reference.clip_by_norm(grad, 1.0), tf.clip_by_norm(grad, 1.0).numpy()
    )


@pytest.mark.parametrize("bad", BAD_THRESHOLDS)
def test_clip_by_norm_rejects_bad_max_norm(bad):
    with pytest.raises(ValueError, match="max_norm"):
        reference.clip_by_norm([1.0, 2.0], bad)


# --- global_norm and clip_by_global_norm --------------------------------------------------

grad_lists = st.lists(arrays32, min_size=1, max_size=3)


@SETTINGS
@given(grad_lists, thresholds)
def test_clip_by_global_norm_matches_tensorflow(grads, max_norm):
    ours, norm = reference.clip_by_global_norm(grads, max_norm)
    theirs, their_norm = tf.clip_by_global_norm(
        [tf.constant(g) for g in grads], np.float32(max_norm)
    )
    np.testing.assert_allclose(norm, their_norm.numpy(), rtol=2e-6)
    for a, b, g in zip(ours, theirs, grads):
        assert a.shape == g.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b.numpy(), rtol=5e-6, atol=1e-30)
    assert reference.global_norm(ours) <= max_norm * (1 + 1e-6)


@SETTINGS
@given(grad_lists, thresholds)
def test_clip_by_global_norm_keeps_overall_direction(grads, max_norm):
    grads = [g.astype(np.float64) for g in grads]
    if any(np.any(g) for g in grads):
        clipped, _ = reference.clip_by_global_norm(grads, max_norm)
        flat = np.concatenate([g.ravel() for g in grads])
        assert reference.angle_between(flat, np.concatenate([c.ravel() for c in clipped])) < 1e-5


def test_global_norm_value_and_none_entries():
    assert reference.global_norm([[3.0], None, [[4.0]]]) == 5.0
    clipped, norm = reference.clip_by_global_norm([[3.0], None, [4.0]], 1.0)
    assert norm == 5.0 and clipped[1] is None
    np.testing.assert_allclose(np.concatenate([clipped[0], clipped[2]]), [0.6, 0.8])


def test_clip_by_global_norm_zero_and_non_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clipped, norm = reference.clip_by_global_norm(
            [np.zeros(2, np.float32), np.zeros(3, np.float32)], 1.0
        )
    assert norm == 0.0 and all(not np.any(c) for c in clipped)
    for bad in (np.nan, np.inf):
        clipped, norm = reference.clip_by_global_norm(
            [np.array([bad, 1.0], np.float32), np.ones(2, np.float32)], 1.0
        )
        theirs, _ = tf.clip_by_global_norm([tf.constant([bad, 1.0]), tf.ones(2)], 1.0)
        assert not math.isfinite(norm)
        assert all(np.isnan(c).all() for c in clipped)
        assert all(np.isnan(t.numpy()).all() for t in theirs)


@pytest.mark.parametrize("bad", [np.ones(3), [], [None], "abc", 1.0])
def test_global_norm_rejects_bad_grads(bad):
    with pytest.raises(ValueError, match="grads"):
        reference.global_norm(bad)
    with pytest.raises(ValueError, match="grads"):
        reference.clip_by_global_norm(bad, 1.0)


@pytest.mark.parametrize("bad", BAD_THRESHOLDS)
def test_clip_by_global_norm_rejects_bad_max_norm(bad):
    with pytest.raises(ValueError, match="max_norm"):
        reference.clip_by_global_norm([[1.0, 2.0]], bad)


# --- angle_between ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([1, 0], [2, 0], 0.0),
        ([1, 0], [0, 3], 90.0),
        ([1, 0], [-1, 0], 180.0),
        ([1, 0], [1, 1], 45.0),
    ],
)
def test_angle_between_known_angles(a, b, expected):
    assert reference.angle_between(a, b) == pytest.approx(expected, abs=1e-12)


def test_angle_between_tiny_angle_is_accurate():
    # arccos(cos) would return 0 here; the exact angle is atan(1e-9) rad.
    assert reference.angle_between([1.0, 0.0], [1.0, 1e-9]) == pytest.approx(
        math.degrees(1e-9), rel=1e-9
    )


@SETTINGS
@given(
    hnp.arrays(np.float64, 5, elements=st.floats(-100, 100)),
    hnp.arrays(np.float64, 5, elements=st.floats(-100, 100)),
    st.floats(1e-3, 1e3),
)
def test_angle_between_symmetric_scale_invariant_and_matches_arccos(a, b, scale):
    if np.linalg.norm(a) < 1e-6 or np.linalg.norm(b) < 1e-6:
        return
    angle = reference.angle_between(a, b)
    assert 0.0 <= angle <= 180.0
    assert reference.angle_between(b, a) == pytest.approx(angle, abs=1e-9)
    assert reference.angle_between(scale * a, b) == pytest.approx(angle, abs=1e-9)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert angle == pytest.approx(math.degrees(math.acos(np.clip(cos, -1, 1))), abs=1e-5)


@pytest.mark.parametrize(
    "a, b, word",
    [
        ([0, 0], [1, 0], "zero"),
        ([1, 0], [0, 0], "zero"),
        ([1, 0], [1, 0, 0], "same number"),
        ([np.nan, 1], [1, 0], "NaN"),
        ([1, 0], [np.inf, 0], "NaN"),
    ],
)
def test_angle_between_rejects_bad_vectors(a, b, word):
    with pytest.raises(ValueError, match=word):
        reference.angle_between(a, b)


def test_tf_angle_matches_numpy():
    rng = np.random.default_rng(0)
    a = [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    b = [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    flat = lambda xs: np.concatenate([x.ravel() for x in xs])  # noqa: E731
    assert float(reference._tf_angle_degrees(a, b)) == pytest.approx(
        reference.angle_between(flat(a), flat(b)), abs=1e-4
    )


# --- keras_sgd_step ----------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        hnp.arrays(
            np.float32,
            hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
            elements=st.floats(-100, 100, width=32),
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["clipvalue", "clipnorm", "global_clipnorm", None]),
)
def test_keras_sgd_step_matches_numpy_references(grads, how):
    step = reference.keras_sgd_step(grads, **({how: 1.0} if how else {}))
    if how == "clipvalue":
        expected = [reference.clip_by_value(g, 1.0) for g in grads]
    elif how == "clipnorm":
        expected = [reference.clip_by_norm(g, 1.0) for g in grads]
    elif how == "global_clipnorm":
        expected, _ = reference.clip_by_global_norm(grads, 1.0)
    else:
        expected = grads
    for s, e in zip(step, expected):
        np.testing.assert_allclose(s, e, rtol=1e-5, atol=1e-7)


def test_keras_sgd_step_errors():
    with pytest.raises(ValueError, match="learning_rate"):
        reference.keras_sgd_step([[1.0]], learning_rate=0.1)
    with pytest.raises(ValueError, match="None"):
        reference.keras_sgd_step([[1.0], None])
    with pytest.raises(ValueError, match="grads"):
        reference.keras_sgd_step([])
    with pytest.raises(ValueError, match="lr"):  # Keras 3's own message
        reference.keras_sgd_step([[1.0]], lr=0.1)


# --- GradientNormModel, TensorBoardScalars, read_scalars ----------------------------------


class _Keep(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(logs[k]) for k in reference.STEP_KEYS})


def _tiny_problem():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 4)).astype(np.float32)
    y = (X @ np.array([30.0, -20.0, 10.0, 5.0], np.float32))[:, None]
    return X, y


def _tiny_model(seed=0):
    helpers.setup(seed)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)]
    )


@pytest.mark.parametrize(
    "clip",
    [{}, {"clipvalue": 0.5}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}],
    ids=lambda c: str(c),
)
def test_gradient_norm_model_records_what_the_optimizer_applied(clip):
    X, y = _tiny_problem()
    inner = _tiny_model()
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, inner(X, training=True))
    grads = [g.numpy() for g in tape.gradient(loss, inner.trainable_variables)]
    lr = 0.01
    if "clipvalue" in clip:
        clipped = [reference.clip_by_value(g, clip["clipvalue"]) for g in grads]
    elif "clipnorm" in clip:
        clipped = [reference.clip_by_norm(g, clip["clipnorm"]) for g in grads]
    elif "global_clipnorm" in clip:
        clipped, _ = reference.clip_by_global_norm(grads, clip["global_clipnorm"])
    else:
        clipped = grads
    w0 = [v.numpy() for v in inner.trainable_variables]

    model = reference.GradientNormModel(_tiny_model())
    for a, b in zip(w0, model.inner.trainable_variables):  # same start as the reference model
        np.testing.assert_array_equal(a, b.numpy())
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=lr, **clip))
    keep = _Keep()
    model.fit(X, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[keep])
    (logs,) = keep.logs
    w1 = [v.numpy() for v in model.inner.trainable_variables]
    step = [a - b for a, b in zip(w0, w1)]
    flat = lambda xs: np.concatenate([x.ravel() for x in xs])  # noqa: E731
    np.testing.assert_allclose(flat(step), lr * flat(clipped), rtol=1e-4, atol=1e-7)
    assert logs["batch_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert logs["grad_norm"] == pytest.approx(reference.global_norm(grads), rel=1e-5)
    assert logs["update_norm"] == pytest.approx(lr * reference.global_norm(clipped), rel=1e-4)
    assert logs["update_angle"] == pytest.approx(
        reference.angle_between(flat(grads), flat(clipped)), abs=0.05
    )
    if clip:
        assert logs["grad_norm"] > 1.0  # clipping was active in this test


def test_gradient_norm_model_rejects_non_models():
    with pytest.raises(ValueError, match="model"):
        reference.GradientNormModel("not a model")


def test_tensorboard_round_trip(tmp_path):
    X, y = _tiny_problem()
    model = reference.GradientNormModel(_tiny_model())
    model.compile(
        loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.01, global_clipnorm=1.0)
    )
    keep = _Keep()
    history = model.fit(
        X,
        y,
        batch_size=4,
        epochs=2,
        validation_data=(X, y),
        verbose=0,
        callbacks=[keep, reference.TensorBoardScalars(tmp_path / "run")],
    )
    scalars = reference.read_scalars(tmp_path)
    for key in reference.STEP_KEYS:
        steps, values = scalars[f"batch/{key}"]
        np.testing.assert_array_equal(steps, np.arange(8))
        # Written as float32 by tf.summary.scalar.
        np.testing.assert_allclose(values, [log[key] for log in keep.logs], rtol=1e-6)
    steps, values = scalars["epoch/val_loss"]
    np.testing.assert_array_equal(steps, [0, 1])
    np.testing.assert_allclose(values, history.history["val_loss"], rtol=1e-6)


def test_read_scalars_reads_nan_and_simple_values(tmp_path):
    from tensorflow.core.util import event_pb2

    writer = tf.summary.create_file_writer(str(tmp_path / "tf2"))
    with writer.as_default():
        for step, value in enumerate([1.5, float("nan"), float("inf")]):
            tf.summary.scalar("x", value, step=step)
    writer.close()
    with tf.io.TFRecordWriter(str(tmp_path / "events.out.tfevents.0.v1")) as f:
        event = event_pb2.Event(step=7)
        event.summary.value.add(tag="old", simple_value=2.5)
        f.write(event.SerializeToString())
    scalars = reference.read_scalars(tmp_path)
    np.testing.assert_array_equal(scalars["x"][0], [0, 1, 2])
    np.testing.assert_array_equal(scalars["x"][1], [1.5, np.nan, np.inf])
    assert scalars["old"][0].tolist() == [7] and scalars["old"][1].tolist() == [2.5]


def test_read_scalars_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        reference.read_scalars(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        reference.read_scalars(os.path.join(tmp_path, "missing"))
    with pytest.raises(ValueError, match="logdir"):
        reference.read_scalars("")
    with pytest.raises(ValueError, match="logdir"):
        reference.read_scalars(3)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"logdir": ""}, "logdir"),
        ({"logdir": None}, "logdir"),
        ({"logdir": "x", "batch_keys": "grad_norm"}, "batch_keys"),
        ({"logdir": "x", "batch_keys": ()}, "batch_keys"),
    ],
)
def test_tensorboard_scalars_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        reference.TensorBoardScalars(**kwargs)


# --- fit_seeds: one traced model, runs identical to fresh ones ------------------------------


def _tiny_rnn():
    return keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.SimpleRNN(4, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _tiny_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(48, 5, 3)).astype(np.float32), rng.integers(0, 3, 48)


def test_fit_seeds_runs_equal_fresh_runs_bit_for_bit(tmp_path):
    x, y = _tiny_data()

    def sgd():
        return keras.optimizers.SGD(learning_rate=0.5, clipnorm=1.0, momentum=0.5)

    runs = reference.fit_seeds(
        _tiny_rnn,
        sgd,
        [3, 4],
        lambda s: tmp_path / f"reused_{s}",
        x=x,
        y=y,
        epochs=2,
        batch_size=16,
    )
    for seed in (3, 4):
        helpers.setup(seed)
        fresh = reference.GradientNormModel(_tiny_rnn())
        fresh.compile(
            loss="sparse_categorical_crossentropy", metrics=["accuracy"], optimizer=sgd()
        )
        history = fresh.fit(
            x,
            y,
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=[reference.TensorBoardScalars(tmp_path / f"fresh_{seed}")],
        )
        for a, b in zip(fresh.get_weights(), runs[seed][1]):
            np.testing.assert_array_equal(a, b)
        assert history.history["loss"] == runs[seed][0]["loss"]
        reused = reference.read_scalars(tmp_path / f"reused_{seed}")["batch/grad_norm"]
        np.testing.assert_array_equal(
            reused[1], reference.read_scalars(tmp_path / f"fresh_{seed}")["batch/grad_norm"][1]
        )
    assert not np.array_equal(runs[3][1][0], runs[4][1][0])


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": [1, -1]}, "seeds"),
        ({"seeds": [True]}, "seeds"),
        ({"build": None}, "build"),
        ({"logdir": "folder"}, "logdir"),
    ],
)
def test_fit_seeds_errors(kwargs, word):
    args = {
        "build": _tiny_rnn,
        "optimizer": keras.optimizers.SGD,
        "seeds": [0],
        "logdir": str,
        **kwargs,
    }
    with pytest.raises(ValueError, match=word):
        reference.fit_seeds(args["build"], args["optimizer"], args["seeds"], args["logdir"])
