"""What the book's BN code meets in Keras 3: its warnings and errors, its variables, its updates.

The book's listings of pp. 342-344 ran on TensorFlow 2.0's bundled ``tf.keras``. Chapters 03,
04, 05 and A2 run them on Keras 3 and compare; this module holds the few steps they share:

* `outcome` runs one call and says how it ended (``"accepted"`` or ``"TypeError: ..."``), so
  a chapter can set what Keras 3 rejects next to what the book did;
* `input_shape_warning` is the message Keras 3 warns with for ``Flatten(input_shape=...)``;
* `summary_text` is ``model.summary()`` as plain text (in a notebook, rich draws HTML);
* `variables_frame` lists a layer's variables: ``name``, ``path``, the ``tf.Variable`` name
  (`underlying_name`; none under JAX);
* `statistic_gradients` and `watched_by_default` show which BN variables get gradients
  (`no_gradient` is each backend's answer where there is none; `check_watched` checks what a
  tape watches, and says in one sentence why JAX has nothing to check);
* `update_lines` are the lines of ``BatchNormalization.call`` that update the moving averages,
  which replaced the ``layer.updates`` operations of p. 343;
* `moving_statistics` and `moved` take and compare snapshots of a model's moving averages;
* `dense_bias_gradients` is the gradient norm of every ``Dense`` bias on one batch (p. 343:
  a bias followed by BN gets none).
"""

import inspect
import warnings

import numpy as np


def _need_callable(call, name):
    if not callable(call):
        raise ValueError(f"{name} must be a callable such as keras.optimizers.SGD, got {call!r}.")


def _need_model(model, name="model"):
    import keras

    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"{name} must be a built keras.Model, got {type(model).__name__}.")


def _need_batch(x, y):
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(
            f"x and y must be one non-empty batch of the same length, got {len(x)} and {len(y)}."
        )


def outcome(call, *args, **kwargs):
    """How ``call(*args, **kwargs)`` ends: ``"accepted"``, or the exception it raised.

    Args:
        call: a callable, e.g. ``keras.optimizers.SGD``.
        *args, **kwargs: its arguments, e.g. ``lr=0.01``.

    Returns:
        ``"accepted"`` when it returns, else ``"ExceptionName: message"``.

    Raises:
        ValueError: `call` is not callable.
    """
    _need_callable(call, "call")
    try:
        call(*args, **kwargs)
    except Exception as err:  # the point is to report any error Keras raises
        return f"{type(err).__name__}: {err}"
    return "accepted"


def input_shape_warning():
    """The warning Keras 3 gives for the book's ``Flatten(input_shape=[28, 28])`` (p. 342).

    Returns:
        The message of the one warning that names ``input_shape``, or None if Keras gave none.
    """
    import keras

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras.layers.Flatten(input_shape=[28, 28])
    messages = [str(w.message) for w in caught if "input_shape" in str(w.message)]
    return messages[0] if messages else None


def summary_text(model):
    """``model.summary()`` as plain text, as the book printed it (p. 342).

    In a notebook Keras 3 draws its summary with rich, as HTML; with a ``print_fn`` it hands
    the same table over as text, which this collects.

    Args:
        model: a built Keras model.

    Returns:
        The summary, one string with its lines.

    Raises:
        ValueError: `model` is not a built Keras model.
    """
    _need_model(model)
    lines = []
    model.summary(print_fn=lambda line, **kwargs: lines.append(line))
    return "\n".join(lines)


def variables_frame(layer):
    """One row per variable of `layer`: its name and path today, its ``tf.Variable``'s name.

    In TF 2.0 a variable's ``name`` held its scope and an output index
    (``batch_normalization_v2/gamma:0``, p. 343); in Keras 3 ``name`` is the bare weight name,
    the scope is in ``path``, and only the wrapped ``tf.Variable`` (``.value``) keeps a
    TF-style name.

    Args:
        layer: a built Keras layer.

    Returns:
        A DataFrame with columns ``name (today)``, ``path (today)``, ``underlying
        tf.Variable``, ``shape`` and ``trainable``.

    Raises:
        ValueError: `layer` has no variables (it is not built, or holds none).
    """
    import pandas as pd

    if not getattr(layer, "variables", None):
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} has no variables; build it.")
    return pd.DataFrame(
        [
            (v.name, v.path, underlying_name(v), tuple(v.shape), v.trainable)
            for v in layer.variables
        ],
        columns=["name (today)", "path (today)", "underlying tf.Variable", "shape", "trainable"],
    )


#: What `underlying_name` gives where the backend's value has no name.
NO_UNDERLYING_NAME = "none: the JAX backend holds a jax.Array, which has no name"


def underlying_name(variable):
    """The name of the backend variable a Keras variable wraps (its ``.value``).

    Under TensorFlow that is a ``tf.Variable`` with a TF-style name (``gamma:0``); under JAX
    the value is a ``jax.Array``, which has none.

    Args:
        variable: a Keras variable.

    Returns:
        The ``tf.Variable``'s name, or `NO_UNDERLYING_NAME`.
    """
    return getattr(variable.value, "name", None) or NO_UNDERLYING_NAME


def _loss(model, x, y, training):
    import keras

    return keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=training))


def statistic_gradients(model, layer, x, y, training):
    """Norm of d(loss)/d(v) for each variable v of `layer`, each watched explicitly.

    The loss is the sparse categorical cross-entropy of `model` on the batch ``(x, y)``. The
    tape is told to watch every variable of `layer`, the non-trainable ones too, so a missing
    gradient means the loss does not depend on that variable.

    ``keras.ops`` has no gradient, so each backend has its own function: TensorFlow's
    ``GradientTape`` gives None where the loss does not depend on a variable; under JAX,
    ``jax.grad`` of the loss as a function of the layer's variables (read through a
    ``keras.StatelessScope``) gives a gradient of exact zeros there, whose norm is 0.0.

    Args:
        model: a built Keras model that outputs class probabilities.
        layer: one of its layers.
        x, y: one batch of inputs and integer labels.
        training: the mode the model is called in.

    Returns:
        A dict variable name -> the gradient's norm (float), or None where there is none
        (TensorFlow; 0.0 under JAX).

    Raises:
        ValueError: `model` is not built, `layer` is not one of its layers, or the batch is
            empty or uneven.
    """
    import keras

    _need_model(model)
    if not any(candidate is layer for candidate in model.layers):
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a layer of the model.")
    _need_batch(x, y)
    if keras.backend.backend() == "jax":
        return _statistic_gradients_jax(model, layer, x, y, training)
    return _statistic_gradients_tensorflow(model, layer, x, y, training)


def _statistic_gradients_jax(model, layer, x, y, training):
    import jax
    import keras

    variables = layer.variables

    def loss_of(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return _loss(model, x, y, training)

    grads = jax.grad(loss_of)([v.value for v in variables])
    return {v.name: float(np.linalg.norm(np.asarray(g))) for v, g in zip(variables, grads)}


def _statistic_gradients_tensorflow(model, layer, x, y, training):
    import tensorflow as tf

    tensors = [v.value for v in layer.variables]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = _loss(model, x, y, training)
    grads = tape.gradient(loss, tensors)
    return {
        v.name: None if g is None else float(tf.norm(g)) for v, g in zip(layer.variables, grads)
    }


def watched_by_default(model, x, y, training=False):
    """The names of the ``tf.Variable``s a tape watches when told nothing.

    Args:
        model: a built Keras model that outputs class probabilities.
        x, y: one batch of inputs and integer labels.
        training: the mode the model is called in.

    Returns:
        A set of ``tf.Variable`` names (compare with a Keras variable's ``.value.name``).

    Raises:
        ValueError: `model` is not built, or the batch is empty or uneven.
    """
    import tensorflow as tf

    _need_model(model)
    _need_batch(x, y)
    with tf.GradientTape() as tape:
        _loss(model, x, y, training)
    return {v.name for v in tape.watched_variables()}


#: What `check_watched` prints under Keras's JAX backend.
NO_TAPE = (
    "Skipped on JAX: it has no tape that watches variables, and jax.grad differentiates "
    "only the arguments it is given."
)


def check_watched(model, layer, x, y, training=False):
    """Check that a tape told nothing watches `layer`'s trainable variables only.

    Under TensorFlow, `watched_by_default` must hold the ``tf.Variable`` of each trainable
    variable of `layer` (γ and β for BN) and of none of the others (the moving statistics).
    Under JAX there is no tape: it prints `NO_TAPE` and checks nothing.

    Args:
        model: a built Keras model that outputs class probabilities.
        layer: one of its layers.
        x, y: one batch of inputs and integer labels.
        training: the mode the model is called in.

    Returns:
        True when checked (TensorFlow), False when skipped (JAX).

    Raises:
        AssertionError: the tape watched a non-trainable variable of `layer`, or missed a
            trainable one.
        ValueError: `model` is not built, or the batch is empty or uneven.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        print(NO_TAPE)
        return False
    watched = watched_by_default(model, x, y, training)
    assert {v.value.name for v in layer.trainable_variables} <= watched
    assert not {v.value.name for v in layer.non_trainable_variables} & watched
    return True


def no_gradient():
    """What `statistic_gradients` gives where the loss does not depend on a variable.

    Returns:
        None under TensorFlow (the tape's answer), 0.0 under JAX (a gradient of exact zeros).
    """
    import keras

    return 0.0 if keras.backend.backend() == "jax" else None


def update_lines():
    """The lines of Keras's ``BatchNormalization.call`` that update the moving averages.

    Returns:
        The stripped source lines holding ``if training and self.trainable`` or ``.assign(``.
    """
    import keras

    source = inspect.getsource(keras.layers.BatchNormalization.call)
    return [
        line.strip()
        for line in source.splitlines()
        if "if training and self.trainable" in line or ".assign(" in line
    ]


def _bn_layers(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def moving_statistics(model):
    """A copy of the moving mean and variance of every BN layer of `model`.

    Args:
        model: a built Keras model with at least one ``BatchNormalization`` layer.

    Returns:
        A dict layer name -> ``(moving_mean, moving_variance)`` as NumPy arrays.

    Raises:
        ValueError: `model` is not built or has no ``BatchNormalization`` layer.
    """
    _need_model(model)
    layers = _bn_layers(model)
    if not layers:
        raise ValueError("model has no BatchNormalization layer, so no moving statistics.")
    return {
        layer.name: (layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy())
        for layer in layers
    }


def moved(before, after):
    """Which layers' moving statistics differ between two `moving_statistics` snapshots.

    Args:
        before, after: two snapshots of the same model.

    Returns:
        A dict layer name -> True if its moving mean or variance changed at all.

    Raises:
        ValueError: the snapshots name different layers.
    """
    if set(before) != set(after):
        raise ValueError(
            f"before and after must be snapshots of the same layers, got {sorted(before)} "
            f"and {sorted(after)}."
        )
    return {
        name: bool(any(np.any(b != a) for b, a in zip(before[name], after[name])))
        for name in before
    }


def dense_bias_gradients(model, x, y, training=True):
    """Norm of the loss's gradient with respect to every ``Dense`` layer's bias.

    Args:
        model: a built Keras model that outputs class probabilities, whose ``Dense`` layers
            all have a bias.
        x, y: one batch of inputs and integer labels.
        training: the mode the model is called in (BN uses batch statistics when True).

    Returns:
        A dict ``Dense`` layer name -> norm of its bias's gradient (float).

    Raises:
        ValueError: `model` is not built, a ``Dense`` layer has no bias, or the batch is empty
            or uneven.
    """
    import keras
    import tensorflow as tf

    _need_model(model)
    _need_batch(x, y)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense or any(layer.bias is None for layer in dense):
        raise ValueError("every Dense layer of the model must have a bias (use_bias=True).")
    with tf.GradientTape() as tape:
        loss = _loss(model, x, y, training)
    grads = tape.gradient(loss, [layer.bias for layer in dense])
    return {layer.name: float(tf.norm(g)) for layer, g in zip(dense, grads)}


def training_values():
    """The ``training`` value a layer receives in ``fit()`` and in ``predict()``.

    A `helpers.bn.layers.ModeRecorder` in a small eager model records it (p. 344: the book
    says ``fit()`` sets it to 1).

    Returns:
        ``(in_fit, in_predict)``: the values of the last call in each.
    """
    from helpers.bn.layers import ModeRecorder

    import keras

    recorder = ModeRecorder()
    probe = keras.Sequential([keras.Input((2,)), recorder, keras.layers.Dense(1)])
    probe.compile(loss="mse", optimizer="sgd", run_eagerly=True)
    x, y = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)
    probe.fit(x, y, batch_size=8, verbose=0)
    in_fit = recorder.modes[-1]
    probe.predict(x, verbose=0)
    return in_fit, recorder.modes[-1]
