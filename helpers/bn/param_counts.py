"""Parameter counts from each layer's configuration, by our own rules, not by asking Keras.

Keras's `model.summary()` and `count_params()` read the sizes of the weights a layer has
created. This module instead derives every count from what a layer was *asked* to be (its
configuration: units, filters, kernel size, `use_bias`, `center`, `scale`, `axis`, ...) and
from the shape of its input, the way one counts by hand in the book (p. 342: "4 × 784").
When the two agree, the count is explained, not just reported.

Rules (``n_in`` is the size of the input's last axis, ``c_in`` the input channels):

* ``Dense(units)``: ``n_in · units`` kernel weights, plus ``units`` biases if ``use_bias``.
* ``Conv2D(filters, (k_h, k_w), groups)``: ``k_h · k_w · c_in / groups · filters`` kernel
  weights, plus ``filters`` biases if ``use_bias``.
* ``BatchNormalization`` (and our ``MultiAxisBatchNormalization``) over ``m`` features:
  ``m`` for γ if ``scale``, ``m`` for β if ``center`` (trainable), and ``2 m`` for the moving
  mean and variance (non-trainable). ``m`` is the product of the input sizes along ``axis``.
* ``Flatten``, ``Activation``, ``Dropout``, ``Reshape``, ``InputLayer``: no parameters.

A layer whose ``trainable`` flag is off has all its parameters counted as non-trainable,
as Keras does. A layer without a rule raises `UnknownLayerError` rather than being guessed.
"""

import math

import numpy as np
import pandas as pd

#: Columns of the table `param_table` returns.
COLUMNS = ["layer", "class", "output shape", "total", "trainable", "non_trainable"]


class UnknownLayerError(ValueError):
    """`param_table` has no counting rule for a layer's class; the message names the layer."""


def _shape(shape):
    return tuple(None if d is None else int(d) for d in shape)


def _need_known(layer, shape, axes, what):
    for a in axes:
        if shape[a] is None:
            raise ValueError(
                f"layer {layer.name!r}: the {what} (axis {a} of input shape {shape}) is unknown, "
                "so its parameters cannot be counted; give the model a fully known input shape "
                "such as keras.Input(shape=[28, 28])."
            )


def _no_params(layer, shape):
    return shape, 0, 0


def _flatten(layer, shape):
    rest = shape[1:]
    n = None if any(d is None for d in rest) else math.prod(rest)
    return (shape[0], n), 0, 0


def _reshape(layer, shape):
    target = list(layer.get_config()["target_shape"])
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = math.prod(shape[1:]) // known
    return (shape[0], *target), 0, 0


def _dense(layer, shape):
    cfg = layer.get_config()
    _need_known(layer, shape, [len(shape) - 1], "number of input features")
    units = cfg["units"]
    trainable = shape[-1] * units + (units if cfg["use_bias"] else 0)
    return (*shape[:-1], units), trainable, 0


def _conv_out(n, k, s, d, padding):
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    return (n - d * (k - 1) - 1) // s + 1


def _conv2d(layer, shape):
    cfg = layer.get_config()
    if len(shape) != 4:
        raise ValueError(f"layer {layer.name!r}: Conv2D expects a 4D input, got shape {shape}.")
    first = cfg["data_format"] == "channels_first"
    ch, rows, cols = (1, 2, 3) if first else (3, 1, 2)
    _need_known(layer, shape, [ch], "number of input channels")
    (kh, kw), (sh, sw), (dh, dw) = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
    filters, groups = cfg["filters"], cfg.get("groups", 1)
    trainable = kh * kw * (shape[ch] // groups) * filters + (filters if cfg["use_bias"] else 0)
    h = _conv_out(shape[rows], kh, sh, dh, cfg["padding"])
    w = _conv_out(shape[cols], kw, sw, dw, cfg["padding"])
    out = (shape[0], filters, h, w) if first else (shape[0], h, w, filters)
    return out, trainable, 0


def _batchnorm(layer, shape):
    cfg = layer.get_config()
    axes = cfg["axis"] if isinstance(cfg["axis"], (list, tuple)) else [cfg["axis"]]
    axes = [a % len(shape) for a in axes]
    _need_known(layer, shape, axes, "size of a normalized axis")
    m = math.prod(shape[a] for a in axes)
    trainable = m * (int(cfg["scale"]) + int(cfg["center"]))
    return shape, trainable, 2 * m


def _rules():
    # Kept inside, as Keras is: helpers.bn.layers imports Keras, which this module loads only
    # when a count is asked for.
    from helpers.bn.layers import MultiAxisBatchNormalization

    import keras

    return {
        keras.layers.InputLayer: _no_params,
        keras.layers.Flatten: _flatten,
        keras.layers.Reshape: _reshape,
        keras.layers.Activation: _no_params,
        keras.layers.Dropout: _no_params,
        keras.layers.Dense: _dense,
        keras.layers.Conv2D: _conv2d,
        keras.layers.BatchNormalization: _batchnorm,
        MultiAxisBatchNormalization: _batchnorm,
    }


def supported_layers():
    """Names of the layer classes `param_table` knows how to count.

    Returns:
        A sorted list of class names.
    """
    return sorted(cls.__name__ for cls in _rules())


def count_layer(layer, input_shape):
    """Count one layer's parameters from its configuration and its input shape.

    Args:
        layer: a Keras layer of one of the classes in `supported_layers()` (exact class; a
            subclass may create other weights, so it is not counted).
        input_shape: the layer's input shape, batch axis first (``None`` allowed there).

    Returns:
        ``(output_shape, trainable, non_trainable)``: the output shape by our own shape rule
        and the two counts, with everything non-trainable when ``layer.trainable`` is False.

    Raises:
        UnknownLayerError: there is no rule for the layer's class.
        ValueError: an axis whose size the count needs is unknown.
    """
    rules = _rules()
    rule = rules.get(type(layer))
    if rule is None:
        raise UnknownLayerError(
            f"layer {getattr(layer, 'name', layer)!r} is a {type(layer).__name__}, for which "
            f"param_table has no counting rule (it knows {', '.join(supported_layers())}). "
            "Add a rule in helpers/bn/param_counts.py, or count that layer yourself."
        )
    out, trainable, non_trainable = rule(layer, _shape(input_shape))
    if not layer.trainable:
        trainable, non_trainable = 0, trainable + non_trainable
    return _shape(out), trainable, non_trainable


def _input_shapes(model):
    import keras

    if not model.built:
        raise ValueError(
            "model is not built, so its input shape is unknown; start it with "
            "keras.Input(shape=...) or call model.build(input_shape) first."
        )
    if isinstance(model, keras.Sequential):
        shape = _shape(model.inputs[0].shape)
        for layer in model.layers:
            yield layer, shape
            shape = count_layer(layer, shape)[0]
    else:
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer.input, (list, tuple, dict)):
                raise UnknownLayerError(
                    f"layer {layer.name!r} ({type(layer).__name__}) has several inputs; "
                    "param_table only counts single-input layers."
                )
            yield layer, _shape(layer.input.shape)


def param_table(model):
    """One row per layer with its parameter counts, computed by our own rules.

    For a `keras.Sequential` model, shapes are propagated from the model's input by our own
    shape rules too; for a functional model each layer's input shape is read from the graph.
    No weight is read and `count_params` is never called.

    Args:
        model: a built Keras model (`Sequential` or functional) of supported layers.

    Returns:
        A `pandas.DataFrame` with the columns `COLUMNS`: layer name, class name, output shape
        (as text, like ``(None, 784)``), total, trainable and non-trainable counts. The input
        layer of a functional model is left out, as in `model.summary()`.

    Raises:
        ValueError: `model` is not a Keras model, or is not built.
        UnknownLayerError: a layer has no counting rule.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    rows = []
    for layer, shape in _input_shapes(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        out, trainable, non_trainable = count_layer(layer, shape)
        rows.append(
            (
                layer.name,
                type(layer).__name__,
                str(out),
                trainable + non_trainable,
                trainable,
                non_trainable,
            )
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    for col in COLUMNS[3:]:
        table[col] = table[col].astype(np.int64)
    return table


def param_totals(table):
    """Totals of a `param_table`, as `model.summary()` prints them at its foot.

    Args:
        table: a DataFrame returned by `param_table`.

    Returns:
        ``{"total": ..., "trainable": ..., "non_trainable": ...}`` as Python ints.

    Raises:
        ValueError: `table` lacks the count columns.
    """
    missing = [c for c in COLUMNS[3:] if c not in getattr(table, "columns", [])]
    if missing:
        raise ValueError(f"table must come from param_table; it lacks the columns {missing}.")
    return {c: int(table[c].sum()) for c in COLUMNS[3:]}


def keras_counts(model):
    """Keras's own counts per layer and in total, for comparison with `param_table`.

    Args:
        model: a built Keras model.

    Returns:
        ``(per_layer, totals)``: a dict layer name -> ``(total, trainable, non_trainable)``
        from the layer's weights, and a dict like `param_totals` for the whole model.
    """

    def size(weights):
        return int(sum(np.prod(w.shape) for w in weights))

    per_layer = {
        layer.name: (
            layer.count_params(),
            size(layer.trainable_weights),
            size(layer.non_trainable_weights),
        )
        for layer in model.layers
    }
    totals = {
        "total": model.count_params(),
        "trainable": size(model.trainable_weights),
        "non_trainable": size(model.non_trainable_weights),
    }
    return per_layer, totals
