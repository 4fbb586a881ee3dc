"""Tests for helpers.fusion: array folds against a direct BN evaluation, and `fuse` on models."""

import helpers
from helpers import fusion as F

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

L = keras.layers


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
    s, t = F.bn_affine(gamma, beta, mean, var, 1e-3)
    x = rng.normal(size=(7, 5))
    np.testing.assert_allclose(s * x + t, bn_direct(x, gamma, beta, mean, var, 1e-3), rtol=1e-12)


def test_fold_into_previous_dense_example():
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    gamma, beta, mean, var = stats(rng, 3)
    x = rng.normal(size=(6, 4))
    k2, b2 = F.fold_into_previous(W, b, gamma, beta, mean, var, 1e-5)
    np.testing.assert_allclose(
        x @ k2 + b2, bn_direct(x @ W + b, gamma, beta, mean, var, 1e-5), rtol=1e-10, atol=1e-12
    )


def test_fold_into_next_dense_example():
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    gamma, beta, mean, var = stats(rng, 4)
    x = rng.normal(size=(6, 4))
    k2, b2 = F.fold_into_next(gamma, beta, mean, var, 1e-3, W, b)
    np.testing.assert_allclose(
        x @ k2 + b2, bn_direct(x, gamma, beta, mean, var, 1e-3) @ W + b, rtol=1e-10, atol=1e-12
    )


def test_none_bias_gamma_beta_mean_defaults():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(4, 3))
    _, _, mean, var = stats(rng, 3)
    x = rng.normal(size=(5, 4))
    k2, b2 = F.fold_into_previous(W, None, None, None, mean, var, 1e-3)
    assert b2.shape == (3,)
    np.testing.assert_allclose(
        x @ k2 + b2, bn_direct(x @ W, None, None, mean, var, 1e-3), atol=1e-12
    )
    _, _, mean4, var4 = stats(rng, 4)
    k3, b3 = F.fold_into_next(None, None, mean4, var4, 1e-3, W, None)
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
    k2, b2 = F.fold_into_previous(W, b, g, be, m, v, eps)
    want = bn_direct(x @ W + bb, g, be, m, v, eps)
    np.testing.assert_allclose(x @ k2 + b2, want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max()))
    g, be, m, v = stats(rng, n_in, scale, center)
    k3, b3 = F.fold_into_next(g, be, m, v, eps, W, b)
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
    k2, b2 = F.fold_into_previous(k, b, g, be, m, v, eps)
    want = bn_direct(conv_valid(x, k, b), g, be, m, v, eps)
    np.testing.assert_allclose(
        conv_valid(x, k2, b2), want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max())
    )
    g, be, m, v = stats(rng, c_in)
    k3, b3 = F.fold_into_next(g, be, m, v, eps, k, b)
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
    k, b = F.fold_into_previous(*dense.get_weights(), *bn.get_weights(), bn.epsilon)
    np.testing.assert_allclose(x @ k + b, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, None, None, np.zeros(2), np.ones(2), 1e-3
            ),
            "kernel has 3 output",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), np.ones(2), None, None, np.zeros(3), np.ones(3), 1e-3
            ),
            "bias must have shape",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, np.ones(2), None, np.zeros(3), np.ones(3), 1e-3
            ),
            "gamma has 2 entries",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, None, np.ones(4), np.zeros(3), np.ones(3), 1e-3
            ),
            "beta has 4",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, None, None, np.zeros(3), np.ones(4), 1e-3
            ),
            "moving_variance has 4",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, None, None, np.zeros(3), -np.ones(3), 1e-3
            ),
            "moving_variance has negative",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, None, None, np.zeros(3), np.ones(3), 0.0
            ),
            "epsilon must be a finite number > 0",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones((4, 3)), None, None, None, np.zeros(3), np.ones(3), -1e-3
            ),
            "epsilon must be a finite number > 0",
        ),
        (
            lambda: F.fold_into_previous(
                np.ones(3), None, None, None, np.zeros(3), np.ones(3), 1e-3
            ),
            "at least 2 dimensions",
        ),
        (
            lambda: F.fold_into_previous(None, None, None, None, np.zeros(3), np.ones(3), 1e-3),
            "kernel must be an array",
        ),
        (
            lambda: F.fold_into_next(
                None, None, np.zeros((3, 1)), np.ones(3), 1e-3, np.ones((3, 2)), None
            ),
            "moving_mean must be a 1-D",
        ),
        (
            lambda: F.fold_into_next(
                None, None, np.zeros(3), np.ones(3), 1e-3, np.ones((4, 2)), None
            ),
            "kernel has 4 input",
        ),
        (
            lambda: F.fold_into_next(
                None, None, np.array([np.nan, 0, 0]), np.ones(3), 1e-3, np.ones((3, 2)), None
            ),
            "NaN",
        ),
        (lambda: F.bn_affine(None, None, np.zeros(3), np.ones(3), "1e-3"), "epsilon"),
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


def test_fuse_book_model_1_folds_forward_and_leaves_original():
    helpers.setup(0)
    model = randomize_bn(book_model_1())
    before = [w.copy() for w in model.get_weights()]
    fused, report = F.fuse(model)
    assert isinstance(fused, keras.Sequential) and count_bn(fused) == 0
    assert [r.action for r in report.records] == ["folded into next"] * 3
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert count_bn(model) == 3
    x = np.random.default_rng(1).uniform(size=(50, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(fused(x), model(x, training=False), atol=1e-5)
    assert report.max_abs_diff <= report.tolerance and report.n_checked == 64
    assert "3 folded, 0 left" in str(report)


def test_fuse_book_model_2_needs_bias_and_folds_both_ways():
    helpers.setup(0)
    model = randomize_bn(book_model_2())
    fused, report = F.fuse(model)
    assert [r.action for r in report.records] == [
        "folded into next",
        "folded into previous",
        "folded into previous",
    ]
    dense = [layer for layer in fused.layers if isinstance(layer, L.Dense)]
    assert all(layer.use_bias for layer in dense)
    assert [r[1] for r in F.layer_table(fused)] == [
        "Flatten",
        "Dense",
        "Activation",
        "Dense",
        "Activation",
        "Dense",
    ]


def test_fuse_bn_before_flatten_maps_per_column_stats():
    helpers.setup(0)
    model = randomize_bn(
        keras.Sequential([keras.Input((5, 4)), L.BatchNormalization(), L.Flatten(), L.Dense(3)])
    )
    fused, report = F.fuse(model)
    assert report.records[0].action == "folded into next" and report.records[0].via == "flatten"
    x = np.random.default_rng(2).normal(size=(20, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(fused(x), model(x), atol=1e-5)


def test_fuse_conv2d_cases():
    helpers.setup(0)
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
    fused, report = F.fuse(model)
    assert [r.action for r in report.records] == [
        "folded into next",
        "folded into previous",
        "folded into previous",
        "left in place",
    ]
    assert "padding='same'" in report.records[3].reason
    assert count_bn(fused) == 1


def test_fuse_conv1d_both_ways():
    helpers.setup(0)
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
    _, report = F.fuse(model)
    assert [r.action for r in report.records] == ["folded into next", "folded into previous"]


def test_fuse_leaves_bn_with_wrong_axis():
    helpers.setup(0)
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((6, 5)), L.Dense(5), L.BatchNormalization(axis=1), L.Dense(3)]
        )
    )
    fused, report = F.fuse(model)
    assert report.records[0].action == "left in place"
    assert (
        "not the channel axis" in report.records[0].reason
        and "does not map onto" in report.records[0].reason
    )
    assert count_bn(fused) == 1


def test_fuse_activation_before_bn_folds_forward_only():
    helpers.setup(0)
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((6,)), L.Dense(5, activation="elu"), L.BatchNormalization(), L.ReLU()]
        )
    )
    _, report = F.fuse(model)
    rec = report.records[0]
    assert (
        rec.action == "left in place"
        and "applies elu" in rec.reason
        and "'re_lu' (ReLU)" in rec.reason
    )


def test_fuse_functional_shared_input_and_output():
    helpers.setup(0)
    inp = keras.Input((8,))
    d = L.Dense(6)(inp)
    bn = L.BatchNormalization()(d)
    side = L.Dense(3)(d)  # the BN's input feeds a second layer
    out = L.Concatenate()([L.ReLU()(bn), side])
    model = randomize_bn(keras.Model(inp, out))
    fused, report = F.fuse(model)
    assert report.records[0].action == "left in place" and "feeds 2" in report.records[0].reason
    assert not isinstance(fused, keras.Sequential)
    # the BN's output feeds two layers, its input has only the BN: backward fold is fine
    inp = keras.Input((8,))
    bn = L.BatchNormalization()(L.Dense(6)(inp))
    model = randomize_bn(keras.Model(inp, L.Add()([L.Dense(6)(bn), bn])))
    _, report = F.fuse(model)
    assert report.records[0].action == "folded into previous"
    # output feeding two layers and no linear layer before it: left
    inp = keras.Input((8,))
    bn = L.BatchNormalization()(inp)
    model = randomize_bn(keras.Model(inp, [L.Dense(2)(bn), L.Dense(3)(bn)]))
    fused, report = F.fuse(model, x=np.ones((4, 8)))
    assert (
        report.records[0].action == "left in place"
        and "BN output feeds 2 layers" in report.records[0].reason
    )
    assert report.n_checked == 68 and len(fused.outputs) == 2


def test_fuse_shared_linear_layer_is_not_modified():
    helpers.setup(0)
    dense = L.Dense(4)
    a, b = keras.Input((4,)), keras.Input((4,))
    model = randomize_bn(keras.Model([a, b], [L.BatchNormalization()(dense(a)), dense(b)]))
    _, report = F.fuse(model)
    assert report.records[0].action == "left in place" and "shared" in report.records[0].reason


def test_fuse_two_bns_in_a_row_and_dropout_chain():
    helpers.setup(0)
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
    fused, report = F.fuse(model)
    assert all(r.action == "folded into next" for r in report.records) and count_bn(fused) == 0
    assert report.records[1].via == "dropout"


def test_fuse_errors():
    with pytest.raises(ValueError, match="keras.Model"):
        F.fuse(np.ones(3))
    with pytest.raises(ValueError, match="built Sequential"):
        F.fuse(keras.Sequential([L.Dense(3)]))
    model = keras.Sequential([keras.Input((4,)), L.BatchNormalization(), L.Dense(2)])
    with pytest.raises(ValueError, match="nothing to check"):
        F.fuse(model, n_random=0)
    with pytest.raises(ValueError, match="n_random"):
        F.fuse(model, n_random=-1)
    with pytest.raises(ValueError, match="rtol"):
        F.fuse(model, rtol=0)


def test_fuse_raises_when_check_fails(monkeypatch):
    helpers.setup(0)
    model = randomize_bn(keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()]))
    real = F.fold_into_previous
    monkeypatch.setattr(F, "fold_into_previous", lambda *a: (lambda k, b: (k, b + 1.0))(*real(*a)))
    with pytest.raises(F.FusionError, match="differs"):
        F.fuse(model)


# --- looking at models ----------------------------------------------------------------------


def test_layer_table_and_errors():
    helpers.setup(0)
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()])
    assert F.layer_table(model) == [
        ("dense", "Dense", (3,), 15),
        ("batch_normalization", "BatchNormalization", (3,), 12),
    ]
    with pytest.raises(ValueError, match="built keras.Model"):
        F.layer_table("model")


def test_tflite_roundtrip_and_errors():
    helpers.setup(0)
    model = randomize_bn(
        keras.Sequential([keras.Input((6,)), L.Dense(4), L.BatchNormalization(), L.Dense(2)])
    )
    content, msgs = F.to_tflite(model)
    assert isinstance(content, bytes) and all(isinstance(m, str) for m in msgs)
    ops, _ = F.tflite_ops(content)
    assert "FULLY_CONNECTED" in ops and "DELEGATE" not in ops
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(F.tflite_predict(content, x, batch_size=2), model(x), atol=1e-4)
    with pytest.raises(ValueError, match="tflite_model"):
        F.tflite_ops(b"")
    with pytest.raises(ValueError, match="batch_size"):
        F.tflite_predict(content, x, batch_size=0)
    with pytest.raises(ValueError, match="at least one sample"):
        F.tflite_predict(content, x[:0])
    with pytest.raises(ValueError, match="one input"):
        a, b = keras.Input((2,)), keras.Input((2,))
        F.to_tflite(keras.Model([a, b], L.Concatenate()([a, b])))


def test_time_interleaved_and_errors():
    calls = []
    res = F.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3, inner=2, warmup=1
    )
    assert set(res) == {"a", "b"} and all(v.shape == (3,) and (v >= 0).all() for v in res.values())
    assert calls[:2] == ["a", "b"] and calls.count("a") == 1 + 3 * 2
    assert calls[2:6] == ["a", "a", "b", "b"] and calls[6:10] == [
        "b",
        "b",
        "a",
        "a",
    ]  # order rotates
    with pytest.raises(ValueError, match="fns"):
        F.time_interleaved({})
    with pytest.raises(ValueError, match="reps"):
        F.time_interleaved({"a": lambda: None}, reps=0)
    with pytest.raises(ValueError, match="inner"):
        F.time_interleaved({"a": lambda: None}, inner=1.5)


def test_keras_inference_fn_runs_the_model_in_inference_mode():
    helpers.setup(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model.layers[0].moving_mean.assign([1.0, 2.0, 3.0])
    x = np.arange(12, dtype="float32").reshape(4, 3)
    call = F.keras_inference_fn(model, x)
    np.testing.assert_array_equal(call(), model(x, training=False).numpy())
    assert not np.allclose(call(), model(x, training=True).numpy())
