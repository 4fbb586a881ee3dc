"""helpers.fusion.tflite: a converted model predicts like Keras; bad arguments are named."""

from helpers.fusion import tflite

import keras
import numpy as np
import pytest

L = keras.layers

pytestmark = pytest.mark.usefixtures("seeded")


def small_bn_model():
    """Dense, BN with moving statistics far from (0, 1), Dense."""
    model = keras.Sequential([keras.Input((6,)), L.Dense(4), L.BatchNormalization(), L.Dense(2)])
    rng = np.random.default_rng(0)
    bn = model.layers[1]
    bn.set_weights(
        [
            rng.uniform(0.2, 3.0, 4),
            rng.normal(size=4),
            rng.normal(size=4) * 2,
            rng.uniform(0.0, 4.0, 4),
        ]
    )
    return model


def test_tflite_round_trip_predicts_like_keras():
    model = small_bn_model()
    content, msgs = tflite.to_tflite(model)
    assert isinstance(content, bytes) and all(isinstance(m, tflite.Caught) for m in msgs)
    ops, load_notes = tflite.tflite_ops(content)
    # the one warning chapter 06 and A2 discuss, found by its category and module
    deprecation = tflite.interpreter_deprecation(msgs + load_notes)
    assert deprecation is None or "tf.lite.Interpreter is deprecated" in deprecation
    assert "FULLY_CONNECTED" in ops and "DELEGATE" not in ops
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(
        tflite.tflite_predict(content, x, batch_size=2), model(x), atol=1e-4
    )


def test_tflite_errors_name_the_argument():
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


def test_a_warning_is_picked_by_its_category_and_module_not_by_its_place():
    Caught = tflite.Caught
    notes = [
        Caught(
            "DeprecationWarning",
            "tensorflow.python.autograph.pyct.parser",
            "Attribute.__init__ got an unexpected keyword argument '___pyct_anno'",
        ),
        Caught("UserWarning", "tensorflow.lite.python.lite", "a converter note, deprecated"),
        Caught(
            "UserWarning",
            "tensorflow.lite.python.interpreter",
            "Warning: tf.lite.Interpreter is deprecated and is scheduled for deletion",
        ),
    ]
    assert tflite.interpreter_deprecation(notes).startswith("Warning: tf.lite.Interpreter")
    assert tflite.interpreter_deprecation(notes[:2]) is None
    assert tflite.select(notes, UserWarning, "tensorflow.lite") == [n.text for n in notes[1:]]
    assert tflite.select(notes, DeprecationWarning, "tensorflow.lite") == []
    assert str(notes[2]) == notes[2].text


def test_the_module_of_a_warning_comes_from_its_file():
    import sys

    tflite.tflite_ops(tflite.to_tflite(small_bn_model())[0])  # loads the interpreter module
    interpreter = sys.modules[tflite.INTERPRETER_MODULE]
    assert tflite._module_of(interpreter.__file__) == tflite.INTERPRETER_MODULE
    assert tflite._module_of("/nowhere/on/the/path/thing.py") == "thing"


def test_select_names_what_it_takes():
    with pytest.raises(ValueError, match="Warning class"):
        tflite.select([], "UserWarning", "tensorflow")
    with pytest.raises(ValueError, match="Caught records"):
        tflite.select(["a text"], UserWarning, "tensorflow")


def test_convert_all_lists_each_conversion_and_agrees_with_keras():
    model = small_bn_model()
    contents, operators, notes = tflite.convert_all({("small", "original"): model})
    assert list(contents) == list(operators) == [("small", "original")]
    assert all(isinstance(n, tflite.Caught) for n in notes)
    table = tflite.operator_table(operators)
    ops = operators["small", "original"]
    assert table.loc[0, "MUL"] == ops.count("MUL") and table.loc[0, "ADD"] == ops.count("ADD")
    assert table.iloc[0, -1].startswith("FULLY_CONNECTED")
    x = np.random.default_rng(0).normal(size=(7, 6)).astype(np.float32)
    gap, changes = tflite.keras_gap(contents["small", "original"], model, x)
    assert gap < 1e-4 and changes == 0
    with pytest.raises(ValueError, match="models"):
        tflite.convert_all({})
