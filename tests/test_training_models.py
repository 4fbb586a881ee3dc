"""helpers.training.models: network specs, their validation, building and seeded initialization."""

import math

from helpers.training import models

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=30, deadline=None)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 2.5}, "depth"),
        ({"width": 0}, "width"),
        ({"width": True}, "width"),
        ({"activation": "no_such_activation"}, "activation"),
        ({"activation": 3}, "activation"),
        ({"initializer": "no_such_init"}, "initializer"),
        ({"initializer": -0.1}, "initializer"),
        ({"initializer": float("nan")}, "initializer"),
        ({"initializer": None}, "initializer"),
        ({"batch_norm": "middle"}, "batch_norm"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"fixup": True}, "residual=True"),
        ({"residual": True, "fixup": True, "batch_norm": "before"}, "replaces BN"),
        ({"residual": True, "batch_norm": "after"}, "before"),
        ({"residual": True, "dropout": 0.2}, "dropout"),
        ({"residual": 1}, "residual"),
    ],
)
def test_spec_rejects_bad_values_with_a_message_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        models.MLPSpec(**kwargs)


def test_spec_labels_and_init_names():
    assert (
        models.MLPSpec(depth=3, width=16, activation="tanh", initializer=0.01).label
        == "3x16 tanh N(0,0.01) no BN"
    )
    assert (
        models.MLPSpec(batch_norm="before", dropout=0.2).label
        == "10x64 relu he_normal BN-before dropout 0.2"
    )
    assert models.MLPSpec(residual=True, fixup=True).init_name == "Fixup"


@FAST
@given(st.integers(1, 10_000), st.integers(2, 6))
def test_fixup_scale_is_the_papers_power(L, m):
    c = models.fixup_scale(L, m)
    assert 0 < c <= 1
    assert math.isclose(c ** (2 * m - 2) * L, 1.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    "args, word", [((0,), "n_branches"), ((4, 1), "layers_per_branch"), ((2.0,), "n_branches")]
)
def test_fixup_scale_errors(args, word):
    with pytest.raises(ValueError, match=word):
        models.fixup_scale(*args)


def dense_params(i, o, bias=True):
    return i * o + (o if bias else 0)


@pytest.mark.parametrize("bn", [None, "before", "after"])
def test_build_mlp_parameter_counts(bn):
    spec = models.MLPSpec(depth=3, width=5, batch_norm=bn)
    model = models.build_mlp(spec, 7, 4)
    expected = (
        dense_params(7, 5, bn != "before")
        + 2 * dense_params(5, 5, bn != "before")
        + dense_params(5, 4)
    )
    expected += 3 * 4 * 5 if bn else 0  # gamma, beta, moving mean, moving variance
    assert model.count_params() == expected
    assert model.output_shape == (None, 4)


def test_build_mlp_is_deterministic_per_seed_and_uses_the_initializer():
    spec = models.MLPSpec(depth=2, width=300, initializer=0.01)
    a, b, c = (models.build_mlp(spec, 400, seed=s) for s in (1, 1, 2))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    assert (
        abs(float(np.std(a.get_layer("dense_1").kernel.numpy())) - 0.01) < 0.0005
    )  # 120,000 draws
    he = models.build_mlp(models.MLPSpec(depth=1, width=300), 400)
    assert abs(float(np.std(he.get_layer("dense_1").kernel.numpy())) - math.sqrt(2 / 400)) < 0.003


def test_fixup_init_zeroes_each_branch_end_and_scales_inner_layers():
    depth, width = 9, 200
    spec = models.MLPSpec(depth=depth, width=width, residual=True, fixup=True)
    model = models.build_mlp(spec, 30, 3)
    plain = models.build_mlp(models.MLPSpec(depth=depth, width=width, residual=True), 30, 3)
    assert not np.any(model.get_layer("logits").kernel.numpy())
    for i in range(1, depth + 1):
        assert not np.any(model.get_layer(f"block{i}_dense_b").kernel.numpy())
        assert np.any(plain.get_layer(f"block{i}_dense_b").kernel.numpy())
        inner = model.get_layer(f"block{i}_dense_a").kernel.numpy()
        he = plain.get_layer(f"block{i}_dense_a").kernel.numpy()
        # same seeds, so Fixup's inner weights are exactly He's times L^(-1/2)
        np.testing.assert_allclose(inner, he * models.fixup_scale(depth), rtol=1e-5, atol=1e-7)
    # at initialization every residual branch adds zero, so each block passes the (already
    # ReLU-activated) stem output through unchanged, however deep the network is
    import keras

    x = np.random.default_rng(0).normal(size=(4, 30)).astype(np.float32)
    stem = keras.Model(model.input, model.get_layer("stem").output)(x).numpy()
    last = keras.Model(model.input, model.get_layer(f"block{depth}_act_out").output)(x).numpy()
    assert np.any(stem)
    np.testing.assert_allclose(last, stem, rtol=1e-6)
    np.testing.assert_allclose(model(x).numpy(), 0.0)  # the zero output layer: uniform softmax


def test_build_mlp_errors():
    with pytest.raises(ValueError, match="spec"):
        models.build_mlp({"depth": 2}, 4)
    with pytest.raises(ValueError, match="input_dim"):
        models.build_mlp(models.MLPSpec(depth=1), 0)
    with pytest.raises(ValueError, match="n_classes"):
        models.build_mlp(models.MLPSpec(depth=1), 4, n_classes=1)
    with pytest.raises(ValueError, match="seed"):
        models.build_mlp(models.MLPSpec(depth=1), 4, seed=-1)


def test_initialize_weights_restores_a_fresh_model_and_checks_the_architecture():
    spec = models.MLPSpec(depth=2, width=6, batch_norm="after")
    model = models.build_mlp(spec, 5, seed=3)
    fresh = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in fresh])
    models.initialize_weights(model, spec, 3)
    for a, b in zip(model.get_weights(), fresh):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Dense layers"):
        models.initialize_weights(model, models.MLPSpec(depth=4, width=6), 3)
    with pytest.raises(ValueError, match="seed"):
        models.initialize_weights(model, spec, -2)


def test_initialize_weights_refuses_a_model_that_build_mlp_did_not_build():
    import keras

    spec = models.MLPSpec(depth=1, width=4)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, activation="relu", name="dense_1")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(hidden))
    with pytest.raises(ValueError, match="'dense_1' has no initialization role"):
        models.initialize_weights(model, spec, 0)


def test_bn_epsilon_reaches_every_bn_layer():
    spec = models.MLPSpec(depth=2, width=4, batch_norm="before", bn_epsilon=1e-5)
    model = models.build_mlp(spec, 3)
    eps = [layer.epsilon for layer in model.layers if "bn_" in layer.name]
    assert eps == [1e-5, 1e-5]
    assert "ε=1e-05" in spec.label
    default = models.build_mlp(models.MLPSpec(depth=1, width=4, batch_norm="after"), 3)
    assert [layer.epsilon for layer in default.layers if "bn_" in layer.name] == [1e-3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_norm="before", bn_epsilon=0), "bn_epsilon"),
        (dict(batch_norm="before", bn_epsilon="small"), "bn_epsilon"),
        (dict(bn_epsilon=1e-5), "batch_norm is None"),
    ],
)
def test_bn_epsilon_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.MLPSpec(depth=1, width=4, **kwargs)


@pytest.mark.parametrize("placement", ["after", "before"])
def test_book_model_has_the_layers_of_the_book(placement):
    import keras

    model = models.book_model(placement)
    kinds = [type(layer).__name__ for layer in model.layers]
    if placement == "after":  # p. 342
        assert kinds == ["Flatten"] + ["BatchNormalization", "Dense"] * 3
        assert model.count_params() == 271_346  # the book's summary (p. 342)
    else:  # p. 343: BN before the activation, no bias in the hidden Dense layers
        assert kinds == ["Flatten", "BatchNormalization"] + [
            "Dense",
            "BatchNormalization",
            "Activation",
        ] * 2 + ["Dense"]
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        assert [d.use_bias for d in dense] == [False, False, True]
    assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)
    with pytest.raises(ValueError, match="placement"):
        models.book_model("inside")
