"""Gradient clipping in NumPy, and one real Keras SGD step to hold it against.

`clip_by_value`, `clip_by_norm`, `global_norm`, `clip_by_global_norm` and `angle_between`
follow the definitions that `tf.clip_by_value`, `tf.clip_by_norm` and `tf.clip_by_global_norm`
implement, and that Keras's optimizers apply for ``clipvalue``, ``clipnorm`` and
``global_clipnorm``; the unit tests check them against TensorFlow on random inputs.
`keras_sgd_step` shows what one real SGD step does with a given gradient.

Watching clipping during training is the other modules' job: `helpers.clipping.recording`
(a model that reports its gradient norms), `helpers.clipping.tensorboard` (writing and reading
those values as TensorBoard scalars) and `helpers.clipping.seeds` (the same run over seeds).

Non-finite gradients (NaN or inf) are not rejected, because a diverging run produces them and
the point is to watch it happen. The functions then behave like TensorFlow's: `clip_by_value`
works element by element (NaN stays NaN, inf becomes the limit), while the norm-based functions
return NaN wherever the norm is not finite (documented per function below).
"""

import math

from helpers import checks

# `helpers/__init__.py` has already set TensorFlow's environment defaults by the time a
# submodule is imported, so importing TensorFlow here is safe.
import keras
import numpy as np
import tensorflow as tf

_THRESHOLD_HINT = (
    "a threshold of 0 would zero every gradient; to switch clipping off, pass no clip argument"
)


def _as_float_array(grad, name):
    """Return `grad` as a floating-point NumPy array (float32 stays float32)."""
    try:
        arr = np.asarray(grad)
    except Exception as err:  # ragged lists and the like
        raise ValueError(
            f"{name} must be array-like of numbers, got {type(grad).__name__}: {err}"
        ) from err
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must hold numbers, got an array of dtype {arr.dtype}.")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def clip_by_value(grad, limit):
    """Clip every component of a gradient to the interval [-limit, limit].

    This is what Keras's ``clipvalue=limit`` does to each gradient tensor, and what
    `tf.clip_by_value(grad, -limit, limit)` computes:

        clipped_i = min(max(g_i, -limit), limit)

    Each component is treated on its own, so the direction of the vector can change
    (the book's [0.9, 100.0] becomes [0.9, 1.0] with limit 1.0).

    Args:
        grad: array-like of numbers, any shape. Integers are converted to float64; float
            dtypes are kept. NaN components stay NaN, +-inf become +-limit.
        limit: the threshold, a finite number > 0.

    Returns:
        A NumPy array of the same shape and floating dtype as `grad`.

    Raises:
        ValueError: `limit` is not a finite number > 0, or `grad` does not hold numbers.
    """
    limit = checks.positive(limit, "limit", _THRESHOLD_HINT)
    arr = _as_float_array(grad, "grad")
    return np.clip(arr, -limit, limit).astype(arr.dtype, copy=False)


def clip_by_norm(grad, max_norm):
    """Rescale a gradient so that its L2 norm is at most `max_norm`; keep its direction.

    This is what Keras's ``clipnorm=max_norm`` does to *each* gradient tensor separately, and
    what `tf.clip_by_norm(grad, max_norm)` computes:

        clipped = g * max_norm / max(||g||_2, max_norm)

    A gradient whose norm is already at most `max_norm` comes back unchanged (the factor is
    exactly 1), and a zero gradient stays zero: the denominator is never smaller than
    `max_norm`, so there is no division by zero.

    Args:
        grad: array-like of numbers, any shape; the norm is taken over all its components.
            If the norm is not finite (a NaN or inf component), the result is NaN where
            TensorFlow's is (every component for NaN; the inf components for inf, with the
            finite ones becoming 0).
        max_norm: the threshold, a finite number > 0.

    Returns:
        A NumPy array of the same shape and floating dtype as `grad`.

    Raises:
        ValueError: `max_norm` is not a finite number > 0, or `grad` does not hold numbers.
    """
    max_norm = checks.positive(max_norm, "max_norm", _THRESHOLD_HINT)
    arr = _as_float_array(grad, "grad")
    norm = np.sqrt(np.sum(np.square(arr, dtype=np.float64)))
    with np.errstate(invalid="ignore"):
        return (arr * (max_norm / max(norm, max_norm))).astype(arr.dtype, copy=False)


def global_norm(grads):
    """The L2 norm of several gradient tensors taken together, as if concatenated.

        global_norm = sqrt(sum_k ||g_k||_2^2)

    Args:
        grads: a non-empty list (or tuple) of array-likes, one per variable. `None` entries
            (variables without a gradient) are skipped, as TensorFlow does.

    Returns:
        The global norm as a Python float (inf or NaN when a component is).

    Raises:
        ValueError: `grads` is not a non-empty list or tuple, or holds no array at all.
    """
    arrays = _grad_list(grads)
    return float(
        np.sqrt(sum(np.sum(np.square(a, dtype=np.float64)) for a in arrays if a is not None))
    )


def _grad_list(grads):
    if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
        raise ValueError(
            f"grads must be a list or tuple of gradient arrays (one per variable), got "
            f"{type(grads).__name__}; for a single array use clip_by_norm, or wrap it: [grad]."
        )
    arrays = [
        None if g is None else _as_float_array(g, f"grads[{i}]") for i, g in enumerate(grads)
    ]
    if all(a is None for a in arrays):
        raise ValueError(
            "grads must hold at least one gradient array, got only None entries or an empty list."
        )
    return arrays


def clip_by_global_norm(grads, max_norm):
    """Rescale a list of gradients together so that their global norm is at most `max_norm`.

    This is what Keras's ``global_clipnorm=max_norm`` does, and what
    `tf.clip_by_global_norm(grads, max_norm)` computes. Every tensor is multiplied by the
    same factor, so the direction of the whole gradient (all variables together) is kept:

        clipped_k = g_k * max_norm / max(global_norm, max_norm)

    with ``global_norm`` as in `global_norm`. Like TensorFlow, it returns the global norm
    *before* clipping as well, which is the number worth logging to see gradients explode.
    A zero gradient stays zero (no division by zero). If the global norm is not finite,
    every clipped tensor is all NaN, as with TensorFlow.

    Args:
        grads: a non-empty list (or tuple) of array-likes, one per variable; `None` entries
            are passed through as `None`.
        max_norm: the threshold, a finite number > 0.

    Returns:
        A tuple ``(clipped, norm)``: a list of NumPy arrays (same shapes and float dtypes as
        `grads`, `None` kept) and the global norm before clipping as a Python float.

    Raises:
        ValueError: `max_norm` is not a finite number > 0, or `grads` is not a non-empty list
            or tuple of number arrays.
    """
    max_norm = checks.positive(max_norm, "max_norm", _THRESHOLD_HINT)
    arrays = _grad_list(grads)
    norm = global_norm(arrays)
    scale = max_norm / max(norm, max_norm) if math.isfinite(norm) else math.nan
    clipped = [None if a is None else (a * scale).astype(a.dtype, copy=False) for a in arrays]
    return clipped, norm


def angle_between(a, b):
    """The angle between two vectors, in degrees (0 = same direction, 180 = opposite).

    Both arrays are flattened, so two lists of per-variable gradients can be compared after
    concatenating them. Kahan's formula is used, which stays accurate for tiny angles where
    ``arccos`` of the cosine loses all its digits:

        angle = 2 * atan2(|| a/||a|| - b/||b|| ||, || a/||a|| + b/||b|| ||)

    Args:
        a: array-like of finite numbers, not all zero.
        b: array-like of finite numbers with the same number of components, not all zero.

    Returns:
        The angle in degrees, a Python float in [0, 180].

    Raises:
        ValueError: the sizes differ, a vector is zero (no direction, so no angle) or holds
            NaN or inf.
    """
    u = _as_float_array(a, "a").astype(np.float64).ravel()
    v = _as_float_array(b, "b").astype(np.float64).ravel()
    if u.size != v.size:
        raise ValueError(
            f"a and b must have the same number of components, got {u.size} and {v.size}."
        )
    for name, x in (("a", u), ("b", v)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} holds NaN or inf; an angle needs finite components.")
        if not np.any(x):
            raise ValueError(
                f"{name} is the zero vector, which has no direction; the angle is undefined."
            )
    u = u / np.linalg.norm(u)
    v = v / np.linalg.norm(v)
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v))))


def keras_sgd_step(grads, **clip_kwargs):
    """The step one real Keras SGD update takes when the gradients are exactly `grads`.

    It creates one zero-initialised variable per gradient, differentiates the loss

        L(w) = sum_k <w_k, g_k>        so that  dL/dw_k = g_k  exactly,

    with `tf.GradientTape`, lets ``keras.optimizers.SGD(learning_rate=1.0, **clip_kwargs)``
    apply the gradients once, and reads back how much each variable moved. With a learning
    rate of 1 and plain SGD, ``w_before - w_after`` is exactly the gradient the optimizer
    used after its own clipping, so this shows what ``clipvalue``, ``clipnorm`` or
    ``global_clipnorm`` really do, without re-implementing them.

    Args:
        grads: a non-empty list of array-likes (the gradients to inject, one per variable).
        **clip_kwargs: clipping arguments for `keras.optimizers.SGD`, e.g. ``clipvalue=1.0``;
            Keras itself rejects unknown ones (``lr=...``) or two at once.

    Returns:
        A list of float32 NumPy arrays, ``w_before - w_after`` for each variable.

    Raises:
        ValueError: `grads` is not a non-empty list of number arrays, or `clip_kwargs` sets
            `learning_rate` (fixed at 1 here) or something Keras's SGD rejects.
    """
    if "learning_rate" in clip_kwargs:
        raise ValueError(
            "keras_sgd_step fixes learning_rate at 1.0 so that the step equals the clipped "
            "gradient; do not pass it."
        )
    arrays = _grad_list(grads)
    if any(a is None for a in arrays):
        raise ValueError(
            "grads must not hold None entries here: every variable needs a gradient to inject."
        )
    optimizer = keras.optimizers.SGD(learning_rate=1.0, **clip_kwargs)
    variables = [keras.Variable(np.zeros(a.shape, np.float32)) for a in arrays]
    constants = [tf.constant(a, tf.float32) for a in arrays]
    with tf.GradientTape() as tape:
        loss = tf.add_n([tf.reduce_sum(v * c) for v, c in zip(variables, constants)])
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return [-v.numpy() for v in variables]


def keras_dense_step(x, seed=42, **clip_kwargs):
    """One real Keras SGD step (learning rate 1) of a ``Dense(1)`` layer on ``L = x W + b``.

    The gradient with respect to the kernel ``W`` is `x` itself, and with respect to the bias
    ``b`` it is 1: two weight tensors of very different sizes, on which ``clipnorm`` (each
    tensor by its own norm) and ``global_clipnorm`` (all tensors together) part ways. The
    step is read from the weights before and after ``apply_gradients``.

    Args:
        x: one input, a 1-D array-like of finite numbers.
        seed: the seed `helpers.setup` is called with before the layer is built.
        **clip_kwargs: clipping arguments for `keras.optimizers.SGD`, e.g. ``clipnorm=1.0``.

    Returns:
        ``(grads, step)``: the raw gradients ``[dL/dW, dL/db]`` and the step taken,
        ``w_before - w_after`` for each, as float32 NumPy arrays.

    Raises:
        ValueError: `x` is not a non-empty 1-D array of finite numbers, or `clip_kwargs`
            sets `learning_rate` (fixed at 1 here).
    """
    from helpers.runtime.session import setup

    if "learning_rate" in clip_kwargs:
        raise ValueError(
            "keras_dense_step fixes learning_rate at 1.0 so that the step equals the clipped "
            "gradient; do not pass it."
        )
    arr = _as_float_array(x, "x")
    if arr.ndim != 1 or not arr.size or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"x must be one input: a non-empty 1-D array of finite numbers, got {x!r}"
        )
    setup(seed)
    dense = keras.Sequential([keras.Input((arr.size,)), keras.layers.Dense(1)])
    before = [v.numpy() for v in dense.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(dense(arr[None, :].astype(np.float32)))
    grads = tape.gradient(loss, dense.trainable_variables)
    keras.optimizers.SGD(learning_rate=1.0, **clip_kwargs).apply_gradients(
        zip(grads, dense.trainable_variables)
    )
    after = [v.numpy() for v in dense.trainable_variables]
    return [g.numpy() for g in grads], [b - a for b, a in zip(before, after)]


def step_table(raw, steps, labels):
    """The components of a raw gradient and of the steps taken, with each one's global norm
    and its angle to the raw gradient (the raw row's angle is 0 by definition).

    Args:
        raw: the raw gradients, a list of arrays (one per weight tensor).
        steps: ``{row name: list of arrays}``, the steps taken, shaped like `raw`.
        labels: one column label per component of the flattened gradient.

    Returns:
        A pandas DataFrame: rows ``"raw gradient"`` and the names of `steps`; columns
        `labels`, ``"norm of the whole step"`` and ``"angle to raw gradient (°)"``.

    Raises:
        ValueError: a step has not as many components as `raw`, or `labels` not one per
            component.
    """
    import pandas as pd

    def flat(tensors):
        return np.concatenate([np.ravel(t) for t in _grad_list(tensors)])

    g = flat(raw)
    if len(labels) != g.size:
        raise ValueError(f"labels must name each of the {g.size} components, got {labels!r}")
    rows = {"raw gradient": g}
    rows.update({name: flat(step) for name, step in steps.items()})
    if any(v.size != g.size for v in rows.values()):
        raise ValueError(f"every step must have the {g.size} components of raw")
    table = pd.DataFrame(rows, index=list(labels)).T
    table["norm of the whole step"] = [global_norm([v]) for v in rows.values()]
    table["angle to raw gradient (°)"] = [0.0] + [angle_between(g, v) for v in rows.values()][1:]
    return table
