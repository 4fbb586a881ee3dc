"""A model beside its fused version (chapter 06): layers, parameters, predictions, what ε
costs, the operations of the inference graph, and what `fuse` leaves in real networks.

Each function measures one comparison and returns plain numbers or a pandas table; the chapter
asserts on them and shows them.
"""

import re
from collections import Counter

from helpers import checks
from helpers.fusion import applications, tflite, timing
from helpers.fusion.engine import fuse, layer_table
from helpers.runtime.session import setup

import numpy as np

#: Graph operations that cost nothing at run time and are left out of `op_counts`.
FREE_OPS = frozenset({"Placeholder", "ReadVariableOp", "Identity", "NoOp", "Const"})

#: The columns of `survey`'s rows.
SURVEY_COLUMNS = (
    "family",
    "input",
    "BN layers",
    "left by fuse",
    "why left",
    "TFLite: extra MUL + ADD",
)


def _model(model, name="model"):
    import keras

    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"{name} must be a built keras.Model, got {type(model).__name__}")
    return model


def _bns(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def side_by_side(model, fused):
    """The layer tables of `model` and `fused` next to each other (`layer_table`'s rows).

    Args:
        model: the original built Keras model.
        fused: its fused version.

    Returns:
        A pandas DataFrame with two column groups, ``"original"`` and ``"fused"`` (layer, type,
        output, params), the shorter one padded with empty strings.
    """
    import pandas as pd

    def table(m):
        rows = [(n, kind, str(shape), f"{p:,}") for n, kind, shape, p in layer_table(_model(m))]
        return pd.DataFrame(rows, columns=["layer", "type", "output", "params"])

    return pd.concat({"original": table(model), "fused": table(fused)}, axis=1).fillna("")


def parameter_change(model, fused):
    """Parameter counts before and after fusion, and the two reasons they differ.

    Args:
        model: the original built Keras model.
        fused: its fused version.

    Returns:
        A dict: ``"before"`` and ``"after"`` (``count_params()`` of each model), ``"BN"`` (the
        parameters of `model`'s BN layers) and ``"new biases"`` (the units of its Dense layers
        built with ``use_bias=False``, which a fold gives a bias).
    """
    import keras

    _model(model), _model(fused, "fused")
    return {
        "before": model.count_params(),
        "after": fused.count_params(),
        "BN": sum(layer.count_params() for layer in _bns(model)),
        "new biases": sum(
            layer.units
            for layer in model.layers
            if isinstance(layer, keras.layers.Dense) and not layer.use_bias
        ),
    }


def prediction_gap(model, other, x, batch_size=1000):
    """How far the predictions of two models are apart on `x`.

    Args:
        model, other: built Keras models with the same input and output shapes.
        x: the inputs, batch axis first.
        batch_size: samples per ``predict`` call, >= 1.

    Returns:
        ``(largest |Δp|, fraction of samples with the same predicted class)``.

    Raises:
        ValueError: a model is not built or `x` is empty.
    """
    _model(model), _model(other, "other")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if len(x) == 0:
        raise ValueError("x must hold at least one sample")
    p = model.predict(x, batch_size=batch_size, verbose=0)
    q = other.predict(x, batch_size=batch_size, verbose=0)
    return float(np.abs(p - q).max()), float((p.argmax(1) == q.argmax(1)).mean())


def without_epsilon(model):
    """A copy of `model` with the same weights whose BN layers all use ε = 0.

    Args:
        model: a built Keras model.

    Returns:
        The copy (``keras.models.clone_model``).
    """
    import keras

    _model(model)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            config = {**config, "epsilon": 0.0}
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def epsilon_dropped(model, x):
    """What dropping ε from every BN of `model` does to its predictions on `x`.

    Args:
        model: a built Keras model with BN layers.
        x: the inputs.

    Returns:
        ``(smallest moving variance of any BN, largest |Δp|, number of samples whose class
        changes)``.

    Raises:
        ValueError: `model` has no BN layer.
    """
    bns = _bns(_model(model))
    if not bns:
        raise ValueError("model has no BatchNormalization layer, so there is no ε to drop")
    p = model.predict(x, batch_size=1000, verbose=0)
    p0 = without_epsilon(model).predict(x, batch_size=1000, verbose=0)
    smallest = min(float(bn.moving_variance.numpy().min()) for bn in bns)
    return smallest, float(np.abs(p - p0).max()), int((p.argmax(1) != p0.argmax(1)).sum())


def op_counts(model):
    """The TensorFlow operations of `model`'s inference graph, by type, after its `Flatten`.

    The layers after any ``Flatten`` are traced in inference mode on a flat input; reads of
    variables, identities and constants (`FREE_OPS`) are left out, and so is the ``Flatten``,
    which Keras lowers differently from one version to the next.

    Args:
        model: a built Sequential-like Keras model whose first layer after the input is a
            ``Flatten`` (or none).

    Returns:
        A pandas Series: operation type -> count.
    """
    import keras
    import pandas as pd
    import tensorflow as tf

    _model(model)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.Flatten)]

    def call(x):
        for layer in layers:
            x = layer(x, training=False)
        return x

    spec = tf.TensorSpec([None, int(np.prod(model.input_shape[1:]))], tf.float32)
    graph = tf.function(call).get_concrete_function(spec).graph
    kinds = [op.type for op in graph.get_operations() if op.type not in FREE_OPS]
    return pd.Series(kinds, dtype=object).value_counts()


def no_bn_twin(model, fused):
    """`model` without its BN layers (Dense layers with a bias), holding `fused`'s weights.

    It is the network that fusion can at best produce: the same layers, no BN.

    Args:
        model: a built ``keras.Sequential`` with BN layers.
        fused: `model` fused (same layers but the BN ones, every Dense with a bias).

    Returns:
        A built ``keras.Sequential``.
    """
    import keras

    _model(model), _model(fused, "fused")
    layers = [
        layer.__class__.from_config(
            {
                **layer.get_config(),
                **({"use_bias": True} if isinstance(layer, keras.layers.Dense) else {}),
            }
        )
        for layer in model.layers
        if not isinstance(layer, keras.layers.BatchNormalization)
    ]
    twin = keras.Sequential([keras.Input(model.input_shape[1:]), *layers])
    twin.set_weights(fused.get_weights())
    return twin


def why_left(record):
    """``"Add before, ReLU after"`` from a left BN's `FoldRecord`, or its reason as it is.

    Args:
        record: a `FoldRecord` of `fuse`'s report.

    Returns:
        The kinds of the two neighbours that are not linear layers, or the whole reason.
    """
    kinds = re.findall(r"\((\w+)\) (?:before|after) is not", record.reason)
    return f"{kinds[0]} before, {kinds[1]} after" if len(kinds) == 2 else record.reason


def survey(name, seed=0, convert=False):
    """Build one ``keras.applications`` family, fuse it, and count what `fuse` left and why.

    Args:
        name: a key of `helpers.fusion.applications.FAMILIES`.
        seed: seed of the network's weights, its BN statistics and the check's inputs.
        convert: also convert the original and the fused network with TFLite's converter
            (about 25 s a network) and count the ``MUL`` and ``ADD`` operators the original's
            conversion has beyond the fused one's.

    Returns:
        ``(network, fused network, report, row)``, the row with the values of
        `SURVEY_COLUMNS`; the last is ``"not converted"`` without `convert`.

    Raises:
        ValueError: `name` is not a known family.
    """
    if name not in applications.FAMILIES:
        raise ValueError(f"name must be one of {', '.join(applications.FAMILIES)}, got {name!r}")
    setup(seed)
    net = applications.application(name, seed=seed)
    net_fused, report = fuse(net, n_random=8, seed=seed)
    extra = "not converted"
    if convert:
        ops = [tflite.tflite_ops(tflite.to_tflite(m)[0])[0] for m in (net, net_fused)]
        extra = sum(ops[0].count(op) - ops[1].count(op) for op in ("MUL", "ADD"))
    why = ", ".join(f"{n} × {w}" for w, n in Counter(map(why_left, report.left)).items())
    row = (
        name,
        f"{net.input_shape[1]}²",
        len(report.records),
        len(report.left),
        why or "-",
        extra,
    )
    return net, net_fused, report, row


def new_input_gap(model, fused, n=4, seed=1):
    """The largest difference of the two models' outputs on `n` new standard-normal inputs.

    Args:
        model, fused: built Keras models with the same input.
        n: number of inputs, >= 1.
        seed: seed of the inputs.

    Returns:
        ``max |model(x) - fused(x)|`` in inference mode, a float.
    """
    _model(model), _model(fused, "fused")
    n = checks.integer(n, "n", minimum=1)
    x = np.random.default_rng(seed).standard_normal((n, *model.input_shape[1:]), np.float32)
    p, q = (np.asarray(m(x, training=False)) for m in (model, fused))
    return float(np.abs(p - q).max())


def latency_ratio(model, fused, seed=0, reps=8):
    """Median time of `model` over that of `fused`, one input at a time, timed interleaved.

    Args:
        model, fused: built Keras models with the same input.
        seed: seed of the input.
        reps: repetitions, >= 1.

    Returns:
        The median over the repetitions of the ratio of the two times.
    """
    import tensorflow as tf

    _model(model), _model(fused, "fused")
    shape = (1, *model.input_shape[1:])
    x = tf.constant(np.random.default_rng(seed).standard_normal(shape), tf.float32)
    fns = {
        "original": timing.keras_inference_fn(model, x),
        "fused": timing.keras_inference_fn(fused, x),
    }
    t = timing.time_interleaved(fns, reps=reps, inner=1, warmup=1)
    return float(np.median(t["original"] / t["fused"]))
