"""helpers.fusion.folds: each fold against its definition and against the unfused
Keras layer pair, and the errors of the array functions."""

from helpers import fusion
from helpers.fusion import folds

import keras
import numpy as np
import pytest
from bn_stats import stats
from hypothesis import given, settings
from hypothesis import strategies as st

L = keras.layers

pytestmark = pytest.mark.usefixtures("seeded")


# --- direct evaluations, independent of the helpers ----------------------------------------


def bn_direct(x, gamma, beta, mean, var, eps):
    """Inference BN over the last axis of x, straight from the definition."""
    g = 1.0 if gamma is None else gamma
    b = 0.0 if beta is None else beta
    return g * (x - mean) / np.sqrt(var + eps) + b


def conv_valid(x, k, b):
    """Stride-1 'valid' 2-D convolution, x (n, H, W, C), k (kh, kw, C, O)."""
    kh, kw = k.shape[:2]
    n, H, W, _ = x.shape
    out = np.zeros((n, H - kh + 1, W - kw + 1, k.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum(
                "nhwc,co->nhwo", x[:, i : i + H - kh + 1, j : j + W - kw + 1], k[i, j]
            )
    return out + b


# --- array maths ---------------------------------------------------------------------------


def test_bn_affine_matches_definition():
    rng = np.random.default_rng(0)
    gamma, beta, mean, var = stats(rng, 5)
    s, t = folds.bn_affine(gamma, beta, mean, var, 1e-3)
    x = rng.normal(size=(7, 5))
    np.testing.assert_allclose(s * x + t, bn_direct(x, gamma, beta, mean, var, 1e-3), rtol=1e-12)


def test_fold_into_previous_dense_example():
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    gamma, beta, mean, var = stats(rng, 3)
    x = rng.normal(size=(6, 4))
    k2, b2 = folds.fold_into_previous(W, b, *folds.bn_affine(gamma, beta, mean, var, 1e-5))
    np.testing.assert_allclose(
        x @ k2 + b2, bn_direct(x @ W + b, gamma, beta, mean, var, 1e-5), rtol=1e-10, atol=1e-12
    )


def test_fold_into_next_dense_example():
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    gamma, beta, mean, var = stats(rng, 4)
    x = rng.normal(size=(6, 4))
    k2, b2 = folds.fold_into_next(W, b, *folds.bn_affine(gamma, beta, mean, var, 1e-3))
    np.testing.assert_allclose(
        x @ k2 + b2, bn_direct(x, gamma, beta, mean, var, 1e-3) @ W + b, rtol=1e-10, atol=1e-12
    )


def test_none_bias_gamma_beta_mean_defaults():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(4, 3))
    _, _, mean, var = stats(rng, 3)
    x = rng.normal(size=(5, 4))
    k2, b2 = folds.fold_into_previous(W, None, *folds.bn_affine(None, None, mean, var, 1e-3))
    assert b2.shape == (3,)
    np.testing.assert_allclose(
        x @ k2 + b2, bn_direct(x @ W, None, None, mean, var, 1e-3), atol=1e-12
    )
    _, _, mean4, var4 = stats(rng, 4)
    k3, b3 = folds.fold_into_next(W, None, *folds.bn_affine(None, None, mean4, var4, 1e-3))
    np.testing.assert_allclose(
        x @ k3 + b3, bn_direct(x, None, None, mean4, var4, 1e-3) @ W, atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    eps=st.floats(1e-8, 1.0),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_dense_both_folds(n_in, n_out, eps, flags, seed):
    use_bias, scale, center = flags
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_in, n_out))
    b = rng.normal(size=n_out) if use_bias else None
    x = rng.normal(size=(3, n_in))
    bb = 0.0 if b is None else b
    g, be, m, v = stats(rng, n_out, scale, center)
    k2, b2 = folds.fold_into_previous(W, b, *folds.bn_affine(g, be, m, v, eps))
    want = bn_direct(x @ W + bb, g, be, m, v, eps)
    np.testing.assert_allclose(x @ k2 + b2, want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max()))
    g, be, m, v = stats(rng, n_in, scale, center)
    k3, b3 = folds.fold_into_next(W, b, *folds.bn_affine(g, be, m, v, eps))
    want = bn_direct(x, g, be, m, v, eps) @ W + bb
    np.testing.assert_allclose(x @ k3 + b3, want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max()))


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(3, 6),
    kh=st.integers(1, 3),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    eps=st.floats(1e-6, 0.1),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_conv2d_both_folds(size, kh, c_in, c_out, eps, seed):
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(kh, kh, c_in, c_out))
    b = rng.normal(size=c_out)
    x = rng.normal(size=(2, size, size, c_in))
    g, be, m, v = stats(rng, c_out)
    k2, b2 = folds.fold_into_previous(k, b, *folds.bn_affine(g, be, m, v, eps))
    want = bn_direct(conv_valid(x, k, b), g, be, m, v, eps)
    np.testing.assert_allclose(
        conv_valid(x, k2, b2), want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max())
    )
    g, be, m, v = stats(rng, c_in)
    k3, b3 = folds.fold_into_next(k, b, *folds.bn_affine(g, be, m, v, eps))
    want = conv_valid(bn_direct(x, g, be, m, v, eps), k, b)
    np.testing.assert_allclose(
        conv_valid(x, k3, b3), want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max())
    )


def test_fold_matches_keras_layers():
    rng = np.random.default_rng(4)
    dense, bn = L.Dense(3), L.BatchNormalization(epsilon=0.01)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    bn(dense(x))
    bn.set_weights(list(stats(rng, 3)))
    want = np.asarray(bn(dense(x), training=False))
    k, b = folds.fold_into_previous(*dense.get_weights(), *fusion.bn_affine_of(bn))
    np.testing.assert_allclose(x @ k + b, want, rtol=1e-5, atol=1e-5)


# --- every Keras linear layer: fold against the unfused layer pair, in Keras ----------------


def keras_pair(make, x, direction, seed, **bn_kwargs):
    """(BN after/before `make()` in Keras, the fused layer's output) on x, float32."""
    rng = np.random.default_rng(seed)
    layer = make(use_bias=bool(rng.integers(2)))
    layer(x)  # builds the layer
    ws = layer.get_weights()
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in ws])
    c = layer(x).shape[-1] if direction == "previous" else x.shape[-1]
    bn = L.BatchNormalization(epsilon=float(rng.uniform(1e-5, 0.1)), **bn_kwargs)
    bn.build((None,) * (x.ndim - 1) + (c,))
    bn.set_weights([w for w in stats(rng, c, bn.scale, bn.center) if w is not None])
    s, t = fusion.bn_affine_of(bn)
    if direction == "previous":
        want = bn(layer(x), training=False)
    else:
        want = layer(bn(x, training=False))
    return np.asarray(want), layer, (s, t)


def set_and_call(make, x, weights):
    fused = make(use_bias=True)
    fused(x)
    fused.set_weights([np.asarray(w, np.float32) for w in weights])
    return np.asarray(fused(x))


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max()))


FEW = settings(max_examples=12, deadline=None)
SIZES = dict(
    size=st.integers(3, 6),
    k=st.integers(1, 3),
    c_in=st.integers(1, 3),
    mult=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)


@FEW
@given(**SIZES, flags=st.tuples(st.booleans(), st.booleans()))
def test_property_depthwise_both_folds(size, k, c_in, mult, seed, flags):
    scale, center = flags
    x = np.random.default_rng(seed).normal(size=(2, size, size, c_in)).astype(np.float32)

    def make(use_bias):
        return L.DepthwiseConv2D(k, depth_multiplier=mult, use_bias=use_bias)

    want, layer, (s, t) = keras_pair(make, x, "previous", seed, scale=scale, center=center)
    b = layer.bias.numpy() if layer.use_bias else None
    new = folds.fold_depthwise_into_previous(layer.kernel.numpy(), b, s, t)
    close(set_and_call(make, x, new), want)
    want, layer, (s, t) = keras_pair(make, x, "next", seed + 1, scale=scale, center=center)
    b = layer.bias.numpy() if layer.use_bias else None
    new = folds.fold_depthwise_into_next(layer.kernel.numpy(), b, s, t)
    close(set_and_call(make, x, new), want)


@FEW
@given(**SIZES, c_out=st.integers(1, 3))
def test_property_separable_both_folds(size, k, c_in, mult, seed, c_out):
    x = np.random.default_rng(seed).normal(size=(2, size, size, c_in)).astype(np.float32)

    def make(use_bias):
        return L.SeparableConv2D(c_out, k, depth_multiplier=mult, use_bias=use_bias)

    want, layer, (s, t) = keras_pair(make, x, "previous", seed)
    dw, pw, *b = layer.get_weights()
    pw2, b2 = folds.fold_into_previous(pw, b[0] if b else None, s, t)
    close(set_and_call(make, x, [dw, pw2, b2]), want)
    want, layer, (s, t) = keras_pair(make, x, "next", seed + 1)
    dw, pw, *b = layer.get_weights()
    new = folds.fold_separable_into_next(dw, pw, b[0] if b else None, s, t)
    close(set_and_call(make, x, new), want)


@FEW
@given(**SIZES, c_out=st.integers(1, 3), stride=st.integers(1, 2))
def test_property_conv2d_transpose_fold_into_previous(size, k, c_in, mult, seed, c_out, stride):
    x = np.random.default_rng(seed).normal(size=(2, size, size, c_in)).astype(np.float32)

    def make(use_bias):
        return L.Conv2DTranspose(c_out, k, strides=stride, use_bias=use_bias)

    want, layer, (s, t) = keras_pair(make, x, "previous", seed)
    b = layer.bias.numpy() if layer.use_bias else None
    new = folds.fold_into_previous(layer.kernel.numpy(), b, s, t, axis=-2)
    close(set_and_call(make, x, new), want)


@settings(max_examples=6, deadline=None)
@given(
    groups=st.integers(1, 3),
    per_in=st.integers(1, 2),
    per_out=st.integers(1, 2),
    k=st.integers(1, 2),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_grouped_conv_both_folds(groups, per_in, per_out, k, seed):
    x = np.random.default_rng(seed).normal(size=(1, 4, 4, groups * per_in)).astype(np.float32)

    def make(use_bias):
        return L.Conv2D(groups * per_out, k, groups=groups, use_bias=use_bias)

    want, layer, (s, t) = keras_pair(make, x, "previous", seed)
    b = layer.bias.numpy() if layer.use_bias else None
    close(set_and_call(make, x, folds.fold_into_previous(layer.kernel.numpy(), b, s, t)), want)
    want, layer, (s, t) = keras_pair(make, x, "next", seed + 1)
    b = layer.bias.numpy() if layer.use_bias else None
    new = folds.fold_into_next(layer.kernel.numpy(), b, s, t, groups=groups)
    close(set_and_call(make, x, new), want)


def affine(n):
    return folds.bn_affine(None, None, np.zeros(n), np.ones(n), 1e-3)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: folds.fold_into_previous(np.ones((4, 3)), None, *affine(2)),
            "kernel has 3 output",
        ),
        (lambda: folds.fold_into_previous(np.ones((4, 3)), np.ones(2), *affine(3)), "bias must"),
        (
            lambda: folds.fold_into_previous(np.ones((4, 3)), None, np.ones(3), np.ones(2)),
            "t has 2",
        ),
        (lambda: folds.fold_into_previous(np.ones(3), None, *affine(3)), "at least 2 dimensions"),
        (lambda: folds.fold_into_previous(None, None, *affine(3)), "kernel must be an array"),
        (lambda: folds.fold_into_next(np.ones((4, 2)), None, *affine(3)), "kernel has 4 input"),
        (lambda: folds.fold_into_next(np.ones((2, 4)), None, *affine(4), groups=3), "divide"),
        (lambda: folds.fold_into_next(np.ones((2, 3)), None, *affine(4), groups=2), "divide"),
        (
            lambda: folds.fold_depthwise_into_next(np.ones((3, 3, 2, 1)), None, *affine(3)),
            "s must",
        ),
        (
            lambda: folds.fold_depthwise_into_previous(np.ones((3, 2)), None, *affine(2)),
            "depthwise",
        ),
        (lambda: folds.bn_affine(np.ones(2), None, np.zeros(3), np.ones(3), 1e-3), "gamma has 2"),
        (lambda: folds.bn_affine(None, np.ones(4), np.zeros(3), np.ones(3), 1e-3), "beta has 4"),
        (
            lambda: folds.bn_affine(None, None, np.zeros(3), np.ones(4), 1e-3),
            "moving_variance has",
        ),
        (lambda: folds.bn_affine(None, None, np.zeros(3), -np.ones(3), 1e-3), "negative"),
        (lambda: folds.bn_affine(None, None, np.zeros(3), np.ones(3), 0.0), "epsilon must be a"),
        (lambda: folds.bn_affine(None, None, np.zeros(3), np.ones(3), -1e-3), "epsilon must be"),
        (
            lambda: folds.bn_affine(None, None, np.zeros((3, 1)), np.ones(3), 1e-3),
            "moving_mean must",
        ),
        (lambda: folds.bn_affine(None, None, [np.nan, 0, 0], np.ones(3), 1e-3), "NaN"),
        (lambda: folds.bn_affine(None, None, np.zeros(3), None, 1e-3), "must be arrays"),
        (lambda: folds.bn_affine(None, None, np.zeros(3), np.ones(3), "1e-3"), "epsilon"),
        (lambda: fusion.bn_affine_of(L.Dense(3)), "BatchNormalization"),
    ],
)
def test_array_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
