"""helpers.bn.reference: hand-checked cases, Keras agreement, properties, every error."""

from helpers.bn.reference import (
    batch_moments,
    batch_norm_inference,
    batch_norm_train,
    moving_average_trajectory,
    update_moving,
)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=30, deadline=None)
# Keras computes in float32: relative rounding ~6e-8 per operation, a few operations per value
# and |x̂| up to √N ≈ 3 here. 1e-5 absolute leaves a wide margin yet catches any formula change
# (N vs N − 1 alone changes outputs by > 1e-2 at these batch sizes).
KERAS_ATOL = 1e-5


# --- hand-checked cases ---------------------------------------------------------------------


def test_batch_norm_train_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    z, mean, var = batch_norm_train(x, gamma=[2.0, 1.0], beta=[0.0, 1.0], epsilon=1e-3)
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(var, [1.0, 4.0])  # divides by N = 2, not N - 1 = 1
    expected = np.array(
        [
            [2 * -1 / np.sqrt(1.001), -2 / np.sqrt(4.001) + 1],
            [2 * 1 / np.sqrt(1.001), 2 / np.sqrt(4.001) + 1],
        ]
    )
    np.testing.assert_allclose(z, expected, rtol=1e-12)


def test_batch_norm_inference_by_hand():
    x = np.array([[0.0], [4.0]])
    z = batch_norm_inference(
        x, [3.0], [1.0], moving_mean=[2.0], moving_variance=[3.999], epsilon=1e-3
    )
    np.testing.assert_allclose(z, [[-2.0], [4.0]])  # 3 * (x - 2) / 2 + 1


def test_batch_moments_ddof():
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    m0, v0 = batch_moments(x)
    m1, v1 = batch_moments(x, ddof=1)
    assert m0 == m1 == pytest.approx(3.0)
    assert v0 == pytest.approx(14.0 / 4) and v1 == pytest.approx(14.0 / 3)


def test_update_moving_by_hand():
    np.testing.assert_allclose(update_moving([0.0, 1.0], [1.0, 3.0], 0.9), [0.1, 1.2])
    moving = np.array([5.0])
    update_moving(moving, [1.0], 0.5)
    assert moving[0] == 5.0  # pure: the input is not modified
    np.testing.assert_allclose(update_moving([5.0], [1.0], 1.0), [5.0])
    np.testing.assert_allclose(update_moving([5.0], [1.0], 0.0), [1.0])


def test_trajectory_by_hand_and_closed_form():
    values = np.array([[1.0], [1.0], [1.0]])
    traj = moving_average_trajectory(values, 0.5, initial=0.0)
    np.testing.assert_allclose(traj[:, 0], [0.5, 0.75, 0.875])  # 1 - 0.5**t
    traj = moving_average_trajectory(values, 0.5, initial=np.array([2.0]))
    np.testing.assert_allclose(traj[:, 0], [1.5, 1.25, 1.125])


def test_constant_feature_maps_to_beta():
    x = np.zeros((5, 3))
    z, _, var = batch_norm_train(x, np.ones(3), np.array([0.5, -1.0, 2.0]))
    assert np.all(var == 0)
    np.testing.assert_array_equal(z, np.broadcast_to([0.5, -1.0, 2.0], (5, 3)))


def test_sequence_axis_equals_flattened_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4, 5))
    g, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    z, mean, var = batch_norm_train(x, g, b, axis=[1, 2])
    z2, mean2, var2 = batch_norm_train(x.reshape(6, 20), g.reshape(20), b.reshape(20))
    np.testing.assert_allclose(z.reshape(6, 20), z2)
    np.testing.assert_allclose(mean.reshape(20), mean2)
    np.testing.assert_allclose(var.reshape(20), var2)
    # [-1, 1] names the same axes in another order and another spelling
    z3, _, _ = batch_norm_train(x, g, b, axis=[-1, 1])
    np.testing.assert_allclose(z3, z)


# --- properties -----------------------------------------------------------------------------

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=2).flatmap(
    lambda rest: st.tuples(st.integers(2, 6), st.just(tuple(rest)))
)


@FAST
@given(shapes, st.integers(0, 2**31 - 1), st.data())
def test_training_output_statistics(shape, seed, data):
    batch, rest = shape
    full = (batch, *rest)
    axis = data.draw(
        st.integers(-len(full), len(full) - 1).filter(lambda a: a % len(full) != 0), label="axis"
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, size=full)
    n_feat = full[axis]
    gamma, beta = rng.uniform(0.5, 2.0, n_feat), rng.normal(size=n_feat)
    z, mean, var = batch_norm_train(x, gamma, beta, axis=axis, epsilon=1e-3)
    others = tuple(i for i in range(len(full)) if i != axis % len(full))
    np.testing.assert_allclose(z.mean(axis=others), beta, atol=1e-9)
    np.testing.assert_allclose(
        z.var(axis=others), gamma**2 * var / (var + 1e-3), rtol=1e-9, atol=1e-12
    )
    # inference with the batch's own statistics reproduces training mode
    z_inf = batch_norm_inference(x, gamma, beta, mean, var, axis=axis, epsilon=1e-3)
    np.testing.assert_allclose(z_inf, z, rtol=1e-12, atol=1e-12)


@FAST
@given(st.integers(1, 30), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_trajectory_matches_closed_form(steps, momentum, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(steps, 3))
    traj = moving_average_trajectory(v, momentum, initial=1.0)
    weights = (1 - momentum) * momentum ** np.arange(steps - 1, -1, -1)
    expected = momentum**steps * 1.0 + weights @ v
    np.testing.assert_allclose(traj[-1], expected, rtol=1e-9, atol=1e-12)


# --- agreement with Keras -------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras(seeded_module):
    import keras

    return keras


def _keras_bn(
    keras, x, axis, momentum, epsilon, gamma, beta, moving_mean=None, moving_variance=None
):
    layer = keras.layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon)
    layer.build(x.shape)
    layer.gamma.assign(gamma.astype("float32"))
    layer.beta.assign(beta.astype("float32"))
    if moving_mean is not None:
        layer.moving_mean.assign(moving_mean.astype("float32"))
        layer.moving_variance.assign(moving_variance.astype("float32"))
    return layer


def _random_case(shape, seed, data):
    """A random float32 batch, a feature axis (never the batch axis), and gamma/beta for it."""
    batch, rest = shape
    full = (batch, *rest)
    axis = data.draw(
        st.integers(-len(full), len(full) - 1).filter(lambda a: a % len(full) != 0), label="axis"
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, size=full).astype("float32")
    n_feat = full[axis]
    gamma, beta = rng.uniform(0.5, 2.0, n_feat), rng.normal(size=n_feat)
    return rng, x, axis, n_feat, gamma, beta


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1), st.sampled_from([0.9, 0.99, 0.5]), st.data())
def test_agrees_with_keras_training_mode(keras, shape, seed, momentum, data):
    rng, x, axis, n_feat, gamma, beta = _random_case(shape, seed, data)
    layer = _keras_bn(keras, x, axis, momentum, 1e-3, gamma, beta)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    z, mean, var = batch_norm_train(x, gamma, beta, axis=axis, epsilon=1e-3)
    np.testing.assert_allclose(out, z, atol=KERAS_ATOL, rtol=1e-5)
    # Keras started from moving_mean = 0 and moving_variance = 1 and applied one update.
    np.testing.assert_allclose(
        layer.moving_mean.numpy(), update_moving(np.zeros(n_feat), mean, momentum), atol=1e-6
    )
    np.testing.assert_allclose(
        layer.moving_variance.numpy(),
        update_moving(np.ones(n_feat), var, momentum),
        atol=1e-6,
        rtol=1e-6,
    )


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1), st.data())
def test_agrees_with_keras_inference_mode(keras, shape, seed, data):
    rng, x, axis, n_feat, gamma, beta = _random_case(shape, seed, data)
    mm, mv = rng.normal(size=n_feat), rng.uniform(0.1, 3.0, n_feat)
    layer = _keras_bn(keras, x, axis, 0.99, 1e-3, gamma, beta, mm, mv)
    out = keras.ops.convert_to_numpy(layer(x, training=False))
    expected = batch_norm_inference(
        x, gamma, beta, mm.astype("float32"), mv.astype("float32"), axis=axis, epsilon=1e-3
    )
    np.testing.assert_allclose(out, expected, atol=KERAS_ATOL, rtol=1e-5)
    # inference never touches the moving statistics
    np.testing.assert_allclose(layer.moving_mean.numpy(), mm.astype("float32"))


def test_keras_default_epsilon_is_the_helpers_default(keras):
    import inspect

    config = keras.layers.BatchNormalization().get_config()
    assert inspect.signature(batch_norm_train).parameters["epsilon"].default == config["epsilon"]


# --- errors ---------------------------------------------------------------------------------

X3 = np.zeros((4, 2, 3))


@pytest.mark.parametrize(
    "axis, match",
    [
        (3, "out of range"),
        (-4, "out of range"),
        ([1, -2], "same axis twice"),
        ([0, 1, 2], "every axis"),
        (True, "int or a non-empty"),
        (1.0, "int or a non-empty"),
        ([], "int or a non-empty"),
        ("1", "int or a non-empty"),
    ],
)
def test_bad_axis(axis, match):
    with pytest.raises(ValueError, match=match):
        batch_norm_train(X3, np.ones(3), np.zeros(3), axis=axis)
    with pytest.raises(ValueError, match=match):
        batch_moments(X3, axis=axis)


def test_bad_x():
    with pytest.raises(ValueError, match="at least one dimension"):
        batch_norm_train(np.float64(1.0), np.ones(()), np.zeros(()))
    with pytest.raises(ValueError, match="no values to average"):
        batch_norm_train(np.zeros((0, 3)), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="x must be an array of real numbers"):
        batch_norm_train([["a", "b"]], np.ones(2), np.zeros(2))


@pytest.mark.parametrize("name", ["gamma", "beta"])
def test_bad_gamma_beta_shape(name):
    args = {"gamma": np.ones(3), "beta": np.zeros(3)}
    args[name] = np.ones(2)
    with pytest.raises(ValueError, match=rf"{name} has shape \(2,\).*\(3,\)"):
        batch_norm_train(X3, **args)
    with pytest.raises(ValueError, match=rf"{name} has shape"):
        batch_norm_inference(X3, moving_mean=np.zeros(3), moving_variance=np.ones(3), **args)


@pytest.mark.parametrize("name", ["moving_mean", "moving_variance"])
def test_bad_moving_shape(name):
    args = {"moving_mean": np.zeros(3), "moving_variance": np.ones(3)}
    args[name] = np.ones((2, 3))
    with pytest.raises(ValueError, match=rf"{name} has shape \(2, 3\)"):
        batch_norm_inference(X3, np.ones(3), np.zeros(3), **args)


def test_negative_moving_variance():
    with pytest.raises(ValueError, match="moving_variance has negative"):
        batch_norm_inference(X3, np.ones(3), np.zeros(3), np.zeros(3), np.array([1.0, -0.1, 1.0]))


@pytest.mark.parametrize("epsilon", [0.0, -1e-3, float("nan"), float("inf"), True, "1e-3", None])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
        batch_norm_train(X3, np.ones(3), np.zeros(3), epsilon=epsilon)
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
        batch_norm_inference(X3, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), epsilon=epsilon)


@pytest.mark.parametrize("momentum", [-0.1, 1.01, float("nan"), True, "0.9", None])
def test_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum must be a number in"):
        update_moving(np.zeros(2), np.ones(2), momentum)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        moving_average_trajectory(np.ones((3, 2)), momentum)


def test_update_moving_shape_mismatch():
    with pytest.raises(
        ValueError, match=r"moving has shape \(2,\) but batch_value has shape \(3,\)"
    ):
        update_moving(np.zeros(2), np.ones(3), 0.9)


def test_trajectory_errors():
    with pytest.raises(ValueError, match="batch_values must have shape"):
        moving_average_trajectory(np.ones((0, 2)), 0.9)
    with pytest.raises(ValueError, match="batch_values must have shape"):
        moving_average_trajectory(np.float64(1.0), 0.9)
    with pytest.raises(ValueError, match=r"initial has shape \(3,\)"):
        moving_average_trajectory(np.ones((4, 2)), 0.9, initial=np.zeros(3))


@pytest.mark.parametrize(
    "ddof, x, match",
    [(2, X3, "ddof must be 0"), (True, X3, "ddof must be 0"), (1, np.zeros((1, 3)), "N=1")],
)
def test_bad_ddof(ddof, x, match):
    with pytest.raises(ValueError, match=match):
        batch_moments(x, ddof=ddof)
