"""Tests for helpers.bn.param_counts: our own parameter counts agree with Keras's."""

from helpers.bn.layers import MultiAxisBatchNormalization
from helpers.bn.param_counts import (
    COLUMNS,
    UnknownLayerError,
    count_layer,
    keras_counts,
    param_table,
    param_totals,
    supported_layers,
)

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("seeded_module")


def assert_agrees(model):
    table = param_table(model)
    per_layer, totals = keras_counts(model)
    assert list(table.columns) == COLUMNS
    assert param_totals(table) == totals
    for row in table.itertuples(index=False):
        assert (row.total, row.trainable, row.non_trainable) == per_layer[row.layer], row.layer
        layer = model.get_layer(row.layer)
        assert row[2] == str(tuple(layer.output.shape)), row.layer
    return table


def book_model():
    return keras.Sequential(
        [
            keras.Input(shape=[28, 28]),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(300, activation="elu", kernel_initializer="he_normal"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(100, activation="elu", kernel_initializer="he_normal"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def test_book_model_counts():
    table = assert_agrees(book_model())
    assert table["total"].tolist() == [0, 3136, 235500, 1200, 30100, 400, 1010]
    assert param_totals(table) == {"total": 271_346, "trainable": 268_978, "non_trainable": 2_368}


def test_dense_with_and_without_bias():
    model = keras.Sequential(
        [keras.Input((7,)), keras.layers.Dense(5), keras.layers.Dense(3, use_bias=False)]
    )
    table = assert_agrees(model)
    assert table["total"].tolist() == [7 * 5 + 5, 5 * 3]


def test_dense_on_3d_input_and_dropout_activation_reshape():
    model = keras.Sequential(
        [
            keras.Input((4, 6)),
            keras.layers.Dense(2),
            keras.layers.Dropout(0.5),
            keras.layers.Activation("relu"),
            keras.layers.Reshape((-1,)),
        ]
    )
    table = assert_agrees(model)
    assert table["output shape"].tolist()[-1] == "(None, 8)"


@pytest.mark.parametrize(
    "padding,strides,data_format",
    [("valid", 1, "channels_last"), ("same", 2, "channels_last"), ("valid", 2, "channels_first")],
)
def test_conv2d(padding, strides, data_format):
    shape = (3, 11, 9) if data_format == "channels_first" else (11, 9, 3)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(
                4, (3, 2), strides=strides, padding=padding, data_format=data_format
            ),
            keras.layers.Conv2D(2, 3, use_bias=False, padding=padding, data_format=data_format),
            keras.layers.Flatten(),
        ]
    )
    assert_agrees(model)


@pytest.mark.parametrize(
    "center,scale", [(True, True), (False, True), (True, False), (False, False)]
)
def test_batchnorm_center_scale(center, scale):
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.BatchNormalization(center=center, scale=scale)]
    )
    table = assert_agrees(model)
    assert table["trainable"].item() == 6 * (center + scale)
    assert table["non_trainable"].item() == 12


def test_batchnorm_axis_and_multi_axis():
    model = keras.Sequential(
        [
            keras.Input((5, 7)),
            keras.layers.BatchNormalization(axis=1),
            MultiAxisBatchNormalization(axis=[1, 2]),
            MultiAxisBatchNormalization(axis=[-1], center=False),
        ]
    )
    table = assert_agrees(model)
    assert table["total"].tolist() == [4 * 5, 4 * 35, 3 * 7]


def test_frozen_layer_is_non_trainable():
    model = book_model()
    model.layers[2].trainable = False
    table = assert_agrees(model)
    assert table.loc[2, "trainable"] == 0 and table.loc[2, "non_trainable"] == 235_500


def test_functional_model():
    inputs = keras.Input((28, 28))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(8, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Activation("elu")(x)
    table = assert_agrees(keras.Model(inputs, outputs))
    assert "InputLayer" not in table["class"].tolist()


@settings(max_examples=25, deadline=None)
@given(
    n_in=st.integers(1, 40),
    units=st.lists(st.integers(1, 30), min_size=1, max_size=3),
    bias=st.booleans(),
)
def test_random_dense_bn_stacks(n_in, units, bias):
    layers = [keras.Input((n_in,))]
    for u in units:
        layers += [keras.layers.Dense(u, use_bias=bias), keras.layers.BatchNormalization()]
    assert_agrees(keras.Sequential(layers))


def test_unknown_layer_error_names_layer():
    model = keras.Sequential([keras.Input((4,)), keras.layers.LayerNormalization(name="ln")])
    with pytest.raises(UnknownLayerError, match=r"'ln' is a LayerNormalization.*no counting rule"):
        param_table(model)
    assert issubclass(UnknownLayerError, ValueError)


def test_subclass_is_not_guessed():
    class MyDense(keras.layers.Dense):
        pass

    model = keras.Sequential([keras.Input((4,)), MyDense(2)])
    with pytest.raises(UnknownLayerError, match="MyDense"):
        param_table(model)


def test_multi_input_layer_rejected():
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(UnknownLayerError, match="several inputs"):
        param_table(model)


def test_unbuilt_model_and_non_model():
    with pytest.raises(ValueError, match="not built"):
        param_table(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="model must be a keras.Model"):
        param_table("model")


def test_unknown_feature_size():
    with pytest.raises(ValueError, match="unknown"):
        count_layer(keras.layers.Dense(3), (None, None))


def test_param_totals_rejects_other_tables():
    with pytest.raises(ValueError, match="must come from param_table"):
        param_totals({"total": [1]})


def test_supported_layers_lists_rules():
    names = supported_layers()
    assert {
        "Dense",
        "Conv2D",
        "BatchNormalization",
        "Flatten",
        "Activation",
        "MultiAxisBatchNormalization",
    } <= set(names)
