"""helpers.setup: repeatable models, fresh layer names; the versions table."""

import helpers
from helpers import setup, versions_table

import keras
import numpy as np
import pytest


def _model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])


def test_same_seed_same_weights_and_names():
    setup(7)
    a = _model()
    first = [w.copy() for w in a.get_weights()]
    names = [layer.name for layer in a.layers]
    setup(7)
    b = _model()
    assert [layer.name for layer in b.layers] == names == ["dense", "dense_1"]
    for x, y in zip(first, b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_other_seed_other_weights():
    setup(7)
    a = _model().get_weights()[0]
    setup(8)
    assert not np.array_equal(a, _model().get_weights()[0])


def test_numpy_is_seeded_too():
    setup(3)
    a = np.random.rand(3)
    setup(3)
    np.testing.assert_array_equal(a, np.random.rand(3))


@pytest.mark.parametrize("bad", [-1, 1.5, "42", True])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        setup(bad)


def test_versions_table():
    rows = versions_table()
    assert [r[0] for r in rows] == ["Python", "TensorFlow", "Keras", "NumPy"]
    assert {r[0]: r[1] for r in rows}["Keras"] == keras.__version__
    assert {r[0]: r[2] for r in rows}["TensorFlow"] == "2.0.0"


def test_versions_frame_matches_the_table():
    frame = helpers.versions_frame()
    assert list(frame.columns) == ["package", "this run", "the book (TF 2.0)"]
    assert [tuple(row) for row in frame.itertuples(index=False)] == versions_table()


def test_setup_turns_tensor_float_32_off():
    import tensorflow as tf

    setup(0)
    assert not tf.config.experimental.tensor_float_32_execution_enabled()
