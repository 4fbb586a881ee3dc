"""Tests for helpers.bn.layers.MultiAxisBatchNormalization against Keras's own layers."""

import helpers
from helpers.bn.layers import MultiAxisBatchNormalization

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# Both layers run the same float32 operations in the same order, so they agree to within a
# few float32 ulps; 1e-6 relative / 1e-5 absolute leaves room for reduction order only.
TOL = {"rtol": 1e-6, "atol": 1e-5}


pytestmark = pytest.mark.usefixtures("seeded_module")


def batch(shape, seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, shape).astype("float32")


def test_defaults_match_keras():
    ours, theirs = MultiAxisBatchNormalization(), keras.layers.BatchNormalization()
    assert (ours.axis, ours.momentum, ours.epsilon, ours.center, ours.scale) == (
        theirs.axis,
        theirs.momentum,
        theirs.epsilon,
        theirs.center,
        theirs.scale,
    )


@pytest.mark.parametrize(
    "axis,shape", [(-1, (16, 6)), (1, (16, 5, 7)), (-1, (16, 5, 7)), (2, (8, 3, 4, 5))]
)
def test_int_axis_matches_batchnormalization(axis, shape):
    ours = MultiAxisBatchNormalization(axis=axis, momentum=0.9)
    theirs = keras.layers.BatchNormalization(axis=axis, momentum=0.9)
    for step, training in enumerate([True, True, False, True, False]):
        x = batch(shape, seed=step)
        np.testing.assert_allclose(ours(x, training=training), theirs(x, training=training), **TOL)
        np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, **TOL)
        np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, **TOL)


def flatten_bn_reshape(shape):
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Reshape(shape),
        ]
    )


@pytest.mark.parametrize("training", [True, False])
def test_axis_1_2_matches_flatten_bn_reshape(training):
    ours = MultiAxisBatchNormalization(axis=[1, 2])
    ref = flatten_bn_reshape((28, 28))
    x = batch((32, 28, 28))
    ours.build(x.shape)
    bn = ref.layers[1]
    rng = np.random.default_rng(1)
    for name in ["gamma", "beta", "moving_mean"]:  # non-trivial values, same in both
        value = rng.normal(size=784).astype("float32")
        getattr(ours, name).assign(value.reshape(28, 28))
        getattr(bn, name).assign(value)
    var = rng.uniform(0.5, 2, 784).astype("float32")
    ours.moving_variance.assign(var.reshape(28, 28))
    bn.moving_variance.assign(var)
    np.testing.assert_allclose(ours(x, training=training), ref(x, training=training), **TOL)
    np.testing.assert_allclose(np.ravel(ours.moving_mean), bn.moving_mean, **TOL)
    assert ours.gamma.shape == (28, 28) and ours.moving_variance.shape == (28, 28)


def test_axis_1_2_fit_steps_keep_matching():
    def model(norm):
        helpers.setup(3)
        return keras.Sequential(
            [keras.Input((6, 5)), *norm, keras.layers.Flatten(), keras.layers.Dense(3)]
        )

    ours = model([MultiAxisBatchNormalization(axis=[1, 2], momentum=0.9)])
    ref = model(
        [
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.Reshape((6, 5)),
        ]
    )
    x, y = batch((64, 6, 5)), np.random.default_rng(2).integers(0, 3, 64)
    for m in (ours, ref):
        m.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    bn_ours, bn_ref = ours.layers[0], ref.layers[1]
    assert not np.allclose(bn_ours.moving_mean, 0.0)  # the statistics did move
    for name in ["moving_mean", "moving_variance", "gamma", "beta"]:
        np.testing.assert_allclose(
            np.ravel(getattr(bn_ours, name)), getattr(bn_ref, name), rtol=1e-5, atol=1e-5
        )
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )


@settings(max_examples=25, deadline=None)
@given(dims=st.lists(st.integers(2, 5), min_size=2, max_size=3), data=st.data())
def test_any_axes_match_transposed_flatten(dims, data):
    """Any subset of feature axes = move them last, flatten them, BatchNormalization, undo."""
    ndim = len(dims) + 1
    axes = sorted(data.draw(st.sets(st.integers(1, ndim - 1), min_size=1)))
    x = batch((6, *dims), seed=len(axes))
    ours = MultiAxisBatchNormalization(axis=axes)
    others = [i for i in range(ndim) if i not in axes]
    moved = np.transpose(x, others + axes)
    flat = moved.reshape(-1, int(np.prod([x.shape[a] for a in axes])))
    theirs = keras.layers.BatchNormalization()
    for training in (True, False):
        y = np.asarray(ours(x, training=training))
        ref = np.asarray(theirs(flat, training=training)).reshape(moved.shape)
        np.testing.assert_allclose(np.transpose(y, others + axes), ref, **TOL)
    assert ours.gamma.shape == tuple(x.shape[a] for a in axes)


def test_training_flag_changes_output_and_state():
    layer = MultiAxisBatchNormalization(axis=[1, 2])
    x = batch((8, 4, 4))
    y_inf = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(y_inf, x / np.sqrt(1 + 1e-3), rtol=1e-6)  # initial stats 0 and 1
    np.testing.assert_allclose(layer.moving_mean, 0.0)  # inference leaves them alone
    y_train = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(y_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean, 0.01 * x.mean(axis=0), rtol=1e-5)
    layer.trainable = False  # frozen: inference mode even when training=True
    before = np.array(layer.moving_mean)
    layer(x, training=True)
    np.testing.assert_array_equal(layer.moving_mean, before)


def test_weights_trainable_flags_and_center_scale():
    layer = MultiAxisBatchNormalization(axis=[1, 2])
    layer.build((None, 3, 4))
    assert [(w.name, w.trainable, tuple(w.shape)) for w in layer.weights] == [
        ("gamma", True, (3, 4)),
        ("beta", True, (3, 4)),
        ("moving_mean", False, (3, 4)),
        ("moving_variance", False, (3, 4)),
    ]
    bare = MultiAxisBatchNormalization(axis=1, center=False, scale=False)
    bare.build((None, 3, 4))
    assert [w.name for w in bare.weights] == ["moving_mean", "moving_variance"]
    x = batch((5, 3, 4))
    ref = keras.layers.BatchNormalization(axis=1, center=False, scale=False)
    np.testing.assert_allclose(bare(x, training=True), ref(x, training=True), **TOL)


def test_get_config_round_trip():
    layer = MultiAxisBatchNormalization(
        axis=[1, 2], momentum=0.9, epsilon=1e-5, center=False, name="mabn"
    )
    config = layer.get_config()
    assert config["axis"] == [1, 2] and config["momentum"] == 0.9 and config["epsilon"] == 1e-5
    clone = MultiAxisBatchNormalization.from_config(config)
    assert (clone.axis, clone.momentum, clone.epsilon, clone.center, clone.name) == (
        [1, 2],
        0.9,
        1e-5,
        False,
        "mabn",
    )


def test_save_and_load_model(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4, 5)),
            MultiAxisBatchNormalization(axis=[1, 2]),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    x = batch((16, 4, 5))
    model(x, training=True)  # move the statistics away from their initial values
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[0]) is MultiAxisBatchNormalization
    np.testing.assert_array_equal(loaded.layers[0].moving_mean, model.layers[0].moving_mean)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    assert (
        keras.saving.get_registered_name(MultiAxisBatchNormalization)
        == "helpers>MultiAxisBatchNormalization"
    )


@pytest.mark.parametrize(
    "axis,match",
    [
        ([], "at least one"),
        ("1", "int or a list"),
        ([1.0], "int or a list"),
        (True, "int or a list"),
    ],
)
def test_bad_axis_at_construction(axis, match):
    with pytest.raises(ValueError, match=match):
        MultiAxisBatchNormalization(axis=axis)


@pytest.mark.parametrize(
    "axis,match",
    [
        (0, "batch axis"),
        ([1, -3], "batch axis"),
        ([3], "out of range"),
        ([-4], "out of range"),
        ([1, -2], "twice"),
    ],
)
def test_bad_axis_at_build(axis, match):
    with pytest.raises(ValueError, match=match):
        MultiAxisBatchNormalization(axis=axis).build((None, 4, 5))


def test_unknown_axis_size_and_bad_hyperparameters():
    with pytest.raises(ValueError, match="unknown size"):
        MultiAxisBatchNormalization(axis=1).build((None, None, 5))
    with pytest.raises(ValueError, match="momentum"):
        MultiAxisBatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        MultiAxisBatchNormalization(epsilon=0.0)


def test_keras_batchnormalization_rejects_axis_list():
    """What the custom layer is for: Keras 3 refuses the book's axis=[1, 2]."""
    with pytest.raises(TypeError, match="int"):
        keras.layers.BatchNormalization(axis=[1, 2])


def test_mode_recorder_sees_what_each_way_of_running_passes():
    from helpers.bn.layers import ModeRecorder, training_values

    recorder = ModeRecorder()
    model = keras.Sequential([keras.Input((3,)), recorder, keras.layers.Dense(2)])
    model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
    x, y = np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")
    seen = training_values(model, recorder, x, y, batch_size=2)
    assert seen == {
        "fit": [True, True],
        "evaluate": [False, False],
        "predict": [False, False],
        "model(X)": [None],
        "model(X, training=True)": [True],
    }
    assert recorder.traced == []  # under TensorFlow no call is recorded as traced
    with pytest.raises(ValueError, match="ModeRecorder"):
        training_values(model, model.layers[-1], x, y, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        training_values(model, recorder, x, y, batch_size=0)
