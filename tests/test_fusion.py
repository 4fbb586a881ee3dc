"""helpers.fusion.folds, helpers.fusion.graph: folds against unfused layers; `fuse` on models."""

import helpers
from helpers.fusion import applications, folds, graph, tflite, timing

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

L = keras.layers


@pytest.fixture
def seeded():
    """A fresh Keras session, seeded: layer names and initial weights repeat in every test."""
    helpers.setup(0)


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


def stats(rng, n, scale=True, center=True):
    return (
        rng.uniform(0.2, 3.0, n) * rng.choice([-1, 1], n) if scale else None,
        rng.normal(size=n) if center else None,
        rng.normal(size=n) * 2,
        rng.uniform(0.0, 4.0, n),
    )


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
    k, b = folds.fold_into_previous(*dense.get_weights(), *graph.bn_affine_of(bn))
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
    s, t = graph.bn_affine_of(bn)
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
        (lambda: graph.bn_affine_of(L.Dense(3)), "BatchNormalization"),
    ],
)
def test_array_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- fuse ----------------------------------------------------------------------------------


def randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            g, b, m, v = stats(rng, layer.moving_mean.shape[0], layer.scale, layer.center)
            layer.set_weights([w for w in (g, b, m, v) if w is not None])
    return model


def book_model_1():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            L.Flatten(),
            L.BatchNormalization(),
            L.Dense(30, activation="elu"),
            L.BatchNormalization(),
            L.Dense(10, activation="elu"),
            L.BatchNormalization(),
            L.Dense(4, activation="softmax"),
        ]
    )


def book_model_2():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            L.Flatten(),
            L.BatchNormalization(),
            L.Dense(30, use_bias=False),
            L.BatchNormalization(),
            L.Activation("elu"),
            L.Dense(10, use_bias=False),
            L.BatchNormalization(),
            L.Activation("elu"),
            L.Dense(4, activation="softmax"),
        ]
    )


def count_bn(model):
    return sum(isinstance(layer, L.BatchNormalization) for layer in model.layers)


def test_fuse_book_model_1_folds_forward_and_leaves_original(seeded):
    model = randomize_bn(book_model_1())
    before = [w.copy() for w in model.get_weights()]
    fused, report = graph.fuse(model)
    assert isinstance(fused, keras.Sequential) and count_bn(fused) == 0
    assert [r.action for r in report.records] == ["folded into next"] * 3
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert count_bn(model) == 3
    x = np.random.default_rng(1).uniform(size=(50, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(fused(x), model(x, training=False), atol=1e-5)
    assert report.max_abs_diff <= report.tolerance and report.n_checked == 64
    assert "3 folded, 0 left" in str(report)


def test_fuse_book_model_2_needs_bias_and_folds_both_ways(seeded):
    model = randomize_bn(book_model_2())
    fused, report = graph.fuse(model)
    assert [r.action for r in report.records] == [
        "folded into next",
        "folded into previous",
        "folded into previous",
    ]
    dense = [layer for layer in fused.layers if isinstance(layer, L.Dense)]
    assert all(layer.use_bias for layer in dense)
    assert [r[1] for r in graph.layer_table(fused)] == [
        "Flatten",
        "Dense",
        "Activation",
        "Dense",
        "Activation",
        "Dense",
    ]


def test_fuse_bn_before_flatten_maps_per_column_stats(seeded):
    model = randomize_bn(
        keras.Sequential([keras.Input((5, 4)), L.BatchNormalization(), L.Flatten(), L.Dense(3)])
    )
    fused, report = graph.fuse(model)
    assert report.records[0].action == "folded into next" and report.records[0].via == "flatten"
    x = np.random.default_rng(2).normal(size=(20, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(fused(x), model(x), atol=1e-5)


def test_fuse_conv2d_cases(seeded):
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((9, 9, 2)),
                L.BatchNormalization(),
                L.Conv2D(3, 3),  # forward, valid
                L.BatchNormalization(),  # backward
                L.Conv2D(4, 3, padding="same", use_bias=False),
                L.BatchNormalization(center=False),  # backward
                L.ReLU(),
                L.BatchNormalization(scale=False),
                L.Conv2D(2, 3, padding="same"),  # same: left
                L.GlobalAveragePooling2D(),
            ]
        )
    )
    fused, report = graph.fuse(model)
    assert [r.action for r in report.records] == [
        "folded into next",
        "folded into previous",
        "folded into previous",
        "left in place",
    ]
    assert "padding='same'" in report.records[3].reason
    assert count_bn(fused) == 1


def test_fuse_conv1d_both_ways(seeded):
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((10, 3)),
                L.BatchNormalization(),
                L.Conv1D(4, 3),
                L.BatchNormalization(),
            ]
        )
    )
    _, report = graph.fuse(model)
    assert [r.action for r in report.records] == ["folded into next", "folded into previous"]


def test_fuse_leaves_bn_with_wrong_axis(seeded):
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((6, 5)), L.Dense(5), L.BatchNormalization(axis=1), L.Dense(3)]
        )
    )
    fused, report = graph.fuse(model)
    assert report.records[0].action == "left in place"
    assert (
        "not the channel axis" in report.records[0].reason
        and "does not map onto" in report.records[0].reason
    )
    assert count_bn(fused) == 1


def test_fuse_activation_before_bn_folds_forward_only(seeded):
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((6,)), L.Dense(5, activation="elu"), L.BatchNormalization(), L.ReLU()]
        )
    )
    _, report = graph.fuse(model)
    rec = report.records[0]
    assert (
        rec.action == "left in place"
        and "applies elu" in rec.reason
        and "'re_lu' (ReLU)" in rec.reason
    )


def test_fuse_functional_shared_input_and_output(seeded):
    inp = keras.Input((8,))
    d = L.Dense(6)(inp)
    bn = L.BatchNormalization()(d)
    side = L.Dense(3)(d)  # the BN's input feeds a second layer
    out = L.Concatenate()([L.ReLU()(bn), side])
    model = randomize_bn(keras.Model(inp, out))
    fused, report = graph.fuse(model)
    assert report.records[0].action == "left in place" and "feeds 2" in report.records[0].reason
    assert not isinstance(fused, keras.Sequential)
    # the BN's output feeds two layers, its input has only the BN: backward fold is fine
    inp = keras.Input((8,))
    bn = L.BatchNormalization()(L.Dense(6)(inp))
    model = randomize_bn(keras.Model(inp, L.Add()([L.Dense(6)(bn), bn])))
    _, report = graph.fuse(model)
    assert report.records[0].action == "folded into previous"
    # output feeding two layers and no linear layer before it: left
    inp = keras.Input((8,))
    bn = L.BatchNormalization()(inp)
    model = randomize_bn(keras.Model(inp, [L.Dense(2)(bn), L.Dense(3)(bn)]))
    fused, report = graph.fuse(model, x=np.ones((4, 8)))
    assert (
        report.records[0].action == "left in place"
        and "BN output feeds 2 layers" in report.records[0].reason
    )
    assert report.n_checked == 68 and len(fused.outputs) == 2


def test_fuse_shared_linear_layer_is_not_modified(seeded):
    dense = L.Dense(4)
    a, b = keras.Input((4,)), keras.Input((4,))
    model = randomize_bn(keras.Model([a, b], [L.BatchNormalization()(dense(a)), dense(b)]))
    _, report = graph.fuse(model)
    assert report.records[0].action == "left in place" and "shared" in report.records[0].reason


def test_fuse_two_bns_in_a_row_and_dropout_chain(seeded):
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((7,)),
                L.BatchNormalization(),
                L.BatchNormalization(),
                L.Dropout(0.5),
                L.Dense(3),
            ]
        )
    )
    fused, report = graph.fuse(model)
    assert all(r.action == "folded into next" for r in report.records) and count_bn(fused) == 0
    assert report.records[1].via == "dropout"


def test_fuse_errors():
    with pytest.raises(ValueError, match="keras.Model"):
        graph.fuse(np.ones(3))
    with pytest.raises(ValueError, match="built Sequential"):
        graph.fuse(keras.Sequential([L.Dense(3)]))
    model = keras.Sequential([keras.Input((4,)), L.BatchNormalization(), L.Dense(2)])
    with pytest.raises(ValueError, match="nothing to check"):
        graph.fuse(model, n_random=0)
    with pytest.raises(ValueError, match="n_random"):
        graph.fuse(model, n_random=-1)
    with pytest.raises(ValueError, match="rtol"):
        graph.fuse(model, rtol=0)


def test_fuse_raises_when_check_fails(seeded, monkeypatch):
    model = randomize_bn(keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()]))
    real = folds.fold_into_previous
    monkeypatch.setattr(
        folds, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b + 1.0))(*real(*a, **k))
    )
    with pytest.raises(graph.FusionError, match="differs"):
        graph.fuse(model)


def test_fuse_raises_when_the_fused_model_outputs_nan(seeded, monkeypatch):
    model = randomize_bn(keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()]))
    real = folds.fold_into_previous
    monkeypatch.setattr(
        folds, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b * np.nan))(*real(*a, **k))
    )
    with pytest.raises(graph.FusionError, match="differs .* by up to inf"):
        graph.fuse(model)


def test_fuse_checks_logits_not_saturated_probabilities(seeded, monkeypatch):
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((4,)),
                L.Dense(3),
                L.BatchNormalization(),
                L.Dense(5, activation="softmax"),
            ]
        )
    )
    dense = model.layers[-1]
    dense.set_weights([dense.kernel.numpy() * 0.05, np.array([0, 0, 0, 0, 40], "float32")])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    assert model(x).numpy()[:, 4].min() > 1 - 1e-6  # saturated: probabilities hide errors
    real = folds.fold_into_previous
    monkeypatch.setattr(
        folds, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b + 1.0))(*real(*a, **k))
    )
    with pytest.raises(graph.FusionError, match="differs"):
        graph.fuse(model)


def test_fuse_depthwise_separable_transpose_grouped(seeded):
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((9, 9, 4)),
                L.BatchNormalization(),
                L.DepthwiseConv2D(3, depth_multiplier=2),  # forward (valid)
                L.BatchNormalization(),  # backward into the depthwise conv
                L.ReLU(),
                L.BatchNormalization(),
                L.SeparableConv2D(4, 3),  # forward (valid)
                L.BatchNormalization(),  # backward into the pointwise kernel
                L.ReLU(),
                L.BatchNormalization(),
                L.Conv2D(4, 1, groups=2),  # forward, grouped
                L.BatchNormalization(),  # backward, grouped
                L.ReLU(),
                L.Conv2DTranspose(3, 3, strides=2, use_bias=False),
                L.BatchNormalization(),  # backward, kernel axis -2
                L.ReLU(),
                L.BatchNormalization(),
                L.Conv2DTranspose(2, 3),  # forward into a transposed conv: left
                L.DepthwiseConv2D(3, padding="same"),
                L.BatchNormalization(),
            ]
        )
    )
    fused, report = graph.fuse(model)
    actions = [r.action.split()[-1] for r in report.records]
    assert actions == ["next", "previous", "next", "previous", "next", "previous", "previous"] + [
        "place",
        "previous",
    ]
    assert "transposed convolution" in report.records[7].reason
    assert count_bn(fused) == 1


def hard_sigmoid_block(x):
    """MobileNetV3's activation: operators on tensors, which are not layers."""
    return x * (L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0))


def test_fuse_graph_with_operations_that_are_not_layers(seeded):
    inp = keras.Input((8, 8, 3))
    x = L.BatchNormalization()(L.Conv2D(4, 3, use_bias=False)(inp))
    x = hard_sigmoid_block(x)
    x = L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x))
    out = L.GlobalAveragePooling2D()(hard_sigmoid_block(x) + x)
    model = randomize_bn(keras.Model(inp, out))
    fused, report = graph.fuse(model)
    assert not report.left and count_bn(fused) == 0


def test_fuse_nested_model_shared_layers_several_inputs_and_outputs(seeded):
    base_in = keras.Input((6, 6, 2))
    y = L.BatchNormalization(name="inner_bn")(L.Conv2D(3, 3, name="inner_conv")(base_in))
    base = keras.Model(base_in, L.ReLU()(y), name="base")
    head = keras.Sequential(
        [keras.Input((6, 6, 2)), base, L.GlobalAveragePooling2D(), L.BatchNormalization()]
    )
    a, b = keras.Input((6, 6, 2), name="a"), keras.Input((6, 6, 2), name="b")
    shared = L.Dense(3, name="shared")
    out1 = L.BatchNormalization(name="after_shared")(shared(head(a)))
    out2 = L.Dense(2, activation="sigmoid")(shared(head(b)))
    model = keras.Model({"a": a, "b": b}, {"one": out1, "two": out2})
    for layer in (model, head, base):
        randomize_bn(layer)
    fused, report = graph.fuse(model)
    rec = {r.bn: r for r in report.records}
    assert rec["sequential/base/inner_bn"].action == "folded into previous"
    assert rec["after_shared"].action == "left in place" and "shared" in rec["after_shared"].reason
    assert set(fused.output) == {"one", "two"}
    x = {k: np.random.default_rng(3).normal(size=(5, 6, 6, 2)).astype(np.float32) for k in "ab"}
    want, got = model(x), fused(x)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-4)


def test_fuse_transfer_learning_application_base(seeded):
    base = applications.application("MobileNetV3Small")
    base = keras.Model(base.inputs, base.get_layer("global_average_pooling2d").output)
    model = keras.Sequential([keras.Input((32, 32, 3)), base, L.Dense(2, activation="softmax")])
    fused, report = graph.fuse(model, n_random=8)
    assert len(report.records) == 34 and not report.left
    assert all(r.bn.startswith(f"{base.name}/") for r in report.records)


@keras.saving.register_keras_serializable(package="test_fusion")
class Apply(L.Layer):
    """A layer with a weight and a Python function, which Keras cannot put in its config."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer="ones")

    def call(self, x):
        return self.fn(x) * self.w


class Sub(keras.Model):
    """A subclassed model: its layer graph cannot be read."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense, self.bn = L.Dense(3), L.BatchNormalization()

    def call(self, x):
        return self.bn(self.dense(x))


def test_fuse_names_the_layer_it_cannot_rebuild(seeded):
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((4,)), L.Dense(3), L.BatchNormalization(), Apply(lambda x: 2 * x)]
        )
    )
    with pytest.raises(graph.FusionError, match="'apply' \\(Apply\\)"):
        graph.fuse(model)


def test_fuse_shares_stateless_layers_and_reports_subclassed_ones(seeded):
    lam = L.Lambda(lambda x: keras.ops.relu(x) * 2)  # a lambda cannot be rebuilt from config
    model = randomize_bn(
        keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization(), lam, Sub()])
    )
    fused, report = graph.fuse(model)
    assert fused.layers[1] is lam
    assert [r.action for r in report.records] == ["folded into previous", "left in place"]
    assert report.records[1].bn == "sub/batch_normalization_1"
    assert "subclassed" in report.records[1].reason


def test_fuse_leaves_bn_called_in_training_mode(seeded):
    inp = keras.Input((4,))
    model = randomize_bn(keras.Model(inp, L.BatchNormalization()(L.Dense(3)(inp), training=True)))
    _, report = graph.fuse(model)
    assert "training=True" in report.records[0].reason


# --- python -m helpers.fusion ----------------------------------------------------------------


def test_cli_fuses_a_saved_model(seeded, tmp_path, capsys):
    model = randomize_bn(book_model_2())
    src, out = tmp_path / "model.keras", tmp_path / "fused.keras"
    model.save(src)
    assert graph.main([str(src), "-o", str(out)]) == 0
    assert "3 folded, 0 left" in capsys.readouterr().out
    fused = keras.models.load_model(out)
    x = np.random.default_rng(0).normal(size=(6, 28, 28)).astype(np.float32)
    assert count_bn(fused) == 0
    np.testing.assert_allclose(fused(x), model(x), atol=1e-5)


def test_cli_fails_cleanly(seeded, tmp_path, capsys, monkeypatch):
    out = tmp_path / "fused.keras"
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    src = tmp_path / "model.keras"
    randomize_bn(book_model_2()).save(src)
    real = folds.fold_into_previous
    broken = lambda *a, **k: (lambda w, b: (w, b + 1.0))(*real(*a, **k))  # noqa: E731
    cases = [
        ([str(tmp_path / "missing.keras"), "-o", str(out)], "no such file"),
        ([str(text), "-o", str(out)], "is not a Keras model"),
        ([str(src), "-o", str(tmp_path / "fused.h5")], "must be a .keras file"),
        ([str(src), "-o", str(out)], "differs from"),
    ]
    for i, (argv, message) in enumerate(cases):
        if i == 3:
            monkeypatch.setattr(folds, "fold_into_previous", broken)
        assert graph.main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
            "model.keras",
            "notes.keras",
        ]


# --- keras.applications: the floor of issue 10 -----------------------------------------------

#: Family -> BN layers left by fuse (those between an Add, Concatenate or pooling and a ReLU).
FLOOR = {
    "MobileNetV2": 0,
    "EfficientNetB0": 0,
    "MobileNetV3Large": 0,
    "ResNet50V2": 17,
    "DenseNet121": 62,
    # Slow: the same layer patterns as the families above (convolution, BN and ReLU chains,
    # Add and Concatenate, depthwise and squeeze-excitation blocks); separable convolutions
    # have their own fold tests, and chapter 06 fuses MobileNetV3Small and Xception.
    "MobileNetV3Small": 0,
    "Xception": 0,
    "ResNet50": 0,
    "InceptionV3": 0,
}
SLOW_FAMILIES = {"MobileNetV3Small", "Xception", "ResNet50", "InceptionV3"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FAMILIES else n for n in FLOOR],
)
def test_fuse_applications_floor(seeded, name):
    model = applications.application(name)
    fused, report = graph.fuse(model, n_random=8)
    assert len(report.left) == FLOOR[name] == count_bn(fused)
    for r in report.left:
        assert "(Add)" in r.reason or "(Concatenate)" in r.reason or "Pooling2D)" in r.reason
        assert "(ReLU)" in r.reason or "(Activation)" in r.reason
    assert report.max_abs_diff <= report.tolerance


# --- looking at models ----------------------------------------------------------------------


def test_layer_table_lists_name_type_shape_and_parameters(seeded):
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()])
    assert graph.layer_table(model) == [
        ("dense", "Dense", (3,), 15),
        ("batch_normalization", "BatchNormalization", (3,), 12),
    ]


def test_layer_table_refuses_what_is_not_a_built_model():
    with pytest.raises(ValueError, match="built keras.Model"):
        graph.layer_table("model")


def small_bn_model():
    return randomize_bn(
        keras.Sequential([keras.Input((6,)), L.Dense(4), L.BatchNormalization(), L.Dense(2)])
    )


def test_tflite_round_trip_predicts_like_keras(seeded):
    model = small_bn_model()
    content, msgs = tflite.to_tflite(model)
    assert isinstance(content, bytes) and all(isinstance(m, str) for m in msgs)
    ops, _ = tflite.tflite_ops(content)
    assert "FULLY_CONNECTED" in ops and "DELEGATE" not in ops
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(
        tflite.tflite_predict(content, x, batch_size=2), model(x), atol=1e-4
    )


def test_tflite_errors_name_the_argument(seeded):
    content, _ = tflite.to_tflite(small_bn_model())
    x = np.zeros((5, 6), np.float32)
    with pytest.raises(ValueError, match="tflite_model"):
        tflite.tflite_ops(b"")
    with pytest.raises(ValueError, match="batch_size"):
        tflite.tflite_predict(content, x, batch_size=0)
    with pytest.raises(ValueError, match="at least one sample"):
        tflite.tflite_predict(content, x[:0])
    a, b = keras.Input((2,)), keras.Input((2,))
    with pytest.raises(ValueError, match="one input"):
        tflite.to_tflite(keras.Model([a, b], L.Concatenate()([a, b])))


def test_time_interleaved_rotates_the_order_and_repeats_each_call():
    calls = []
    res = timing.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3, inner=2, warmup=1
    )
    assert set(res) == {"a", "b"} and all(v.shape == (3,) and (v >= 0).all() for v in res.values())
    assert calls[:2] == ["a", "b"] and calls.count("a") == 1 + 3 * 2
    # the order rotates from one repetition to the next
    assert calls[2:6] == ["a", "a", "b", "b"] and calls[6:10] == ["b", "b", "a", "a"]


def test_time_interleaved_errors_name_the_argument():
    with pytest.raises(ValueError, match="fns"):
        timing.time_interleaved({})
    with pytest.raises(ValueError, match="reps"):
        timing.time_interleaved({"a": lambda: None}, reps=0)
    with pytest.raises(ValueError, match="inner"):
        timing.time_interleaved({"a": lambda: None}, inner=1.5)


def test_keras_inference_fn_runs_the_model_in_inference_mode(seeded):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model.layers[0].moving_mean.assign([1.0, 2.0, 3.0])
    x = np.arange(12, dtype="float32").reshape(4, 3)
    call = timing.keras_inference_fn(model, x)
    np.testing.assert_array_equal(call(), model(x, training=False).numpy())
    assert not np.allclose(call(), model(x, training=True).numpy())
