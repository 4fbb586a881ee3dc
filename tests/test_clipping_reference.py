"""helpers.clipping.reference: NumPy references against TensorFlow, and one real SGD step."""

import math
import warnings

from helpers.clipping import reference

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytestmark = pytest.mark.usefixtures("seeded_module")

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
    # The same flush reaches the squares: an entry below sqrt(1.2e-38) = 1.1e-19 squares to a
    # subnormal, which TensorFlow counts as 0, so a norm made of such entries may read 0 there.
    size = sum(g.size for g in grads)
    np.testing.assert_allclose(norm, their_norm.numpy(), rtol=2e-6, atol=1.1e-19 * size**0.5)
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


# --- keras_dense_step and step_table --------------------------------------------------------


def test_keras_dense_step_clips_each_tensor_or_all_together():
    x = np.float32([0.9, 100.0])
    grads, raw = reference.keras_dense_step(x)
    np.testing.assert_array_equal(grads[0], x[:, None])
    np.testing.assert_array_equal(grads[1], [1.0])
    np.testing.assert_allclose(raw[0], grads[0], atol=1e-5)
    _, per_tensor = reference.keras_dense_step(x, clipnorm=1.0)
    _, together = reference.keras_dense_step(x, global_clipnorm=1.0)
    assert reference.global_norm(per_tensor) == pytest.approx(np.sqrt(2), abs=1e-6)
    assert reference.global_norm(together) == pytest.approx(1.0, abs=1e-6)
    table = reference.step_table(
        grads, {"per tensor": per_tensor, "global": together}, ["w0", "w1", "b"]
    )
    assert list(table.index) == ["raw gradient", "per tensor", "global"]
    assert table.loc["raw gradient", "angle to raw gradient (°)"] == 0.0
    assert table.loc["per tensor", "angle to raw gradient (°)"] > 40
    assert table.loc["global", "angle to raw gradient (°)"] < 0.01


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: reference.keras_dense_step([[1.0, 2.0]]), "1-D"),
        (lambda: reference.keras_dense_step([1.0], learning_rate=0.1), "learning_rate"),
        (lambda: reference.step_table([[1.0, 2.0]], {}, ["a"]), "labels"),
        (lambda: reference.step_table([[1.0, 2.0]], {"s": [[1.0]]}, ["a", "b"]), "components"),
    ],
)
def test_dense_step_and_step_table_errors(call, word):
    with pytest.raises(ValueError, match=word):
        call()
