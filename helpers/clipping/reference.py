"""Gradient clipping: NumPy references, and a way to watch gradient norms in TensorBoard.

Two halves, as in PyTorch's split between array maths and model surgery:

* Array maths (pure NumPy): `clip_by_value`, `clip_by_norm`, `global_norm`,
  `clip_by_global_norm` and `angle_between`. They follow the definitions that
  `tf.clip_by_value`, `tf.clip_by_norm` and `tf.clip_by_global_norm` implement, and that Keras's
  optimizers apply for ``clipvalue``, ``clipnorm`` and ``global_clipnorm``; the unit tests check
  them against TensorFlow on random inputs.
* Keras: `keras_sgd_step` shows what one real SGD step does with a given gradient.
  `GradientNormModel` wraps a Keras model so that every training step also reports
  the gradient's global norm before clipping and the size and direction of the step the
  optimizer really took; `TensorBoardScalars` writes those per-step values to TensorBoard
  event files with `tf.summary`, and `read_scalars` reads them back for plotting.

Non-finite gradients (NaN or inf) are not rejected, because a diverging run produces them and
the point is to watch it happen. The functions then behave like TensorFlow's: `clip_by_value`
works element by element (NaN stays NaN, inf becomes the limit), while the norm-based functions
return NaN wherever the norm is not finite (documented per function below).
"""

import glob
import math
import os

from helpers.book import checks

# `helpers/__init__.py` has already set TensorFlow's environment defaults by the time a
# submodule is imported, so importing TensorFlow here is safe.
import keras
import numpy as np
import tensorflow as tf

#: The per-step values that `GradientNormModel.train_step` adds to Keras's logs.
STEP_KEYS = ("batch_loss", "grad_norm", "update_norm", "update_angle")


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


# --- training: per-step gradient norms, written to and read from TensorBoard ----------------


def _tf_global_norm(tensors):
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(t, tf.float32))) for t in tensors]))


def _tf_angle_degrees(a_list, b_list):
    """`angle_between` in TensorFlow for two lists of tensors (NaN if either is zero)."""
    a = tf.concat([tf.reshape(tf.cast(t, tf.float32), [-1]) for t in a_list], axis=0)
    b = tf.concat([tf.reshape(tf.cast(t, tf.float32), [-1]) for t in b_list], axis=0)
    u = a / tf.norm(a)
    v = b / tf.norm(b)
    return 2.0 * tf.atan2(tf.norm(u - v), tf.norm(u + v)) * (180.0 / math.pi)


class GradientNormModel(keras.Model):
    """Wrap a Keras model so that every training step also reports its gradient's size.

    Keras 3's `fit` does not hand gradients to callbacks, so this wrapper overrides
    `train_step`: it computes the gradients, lets the optimizer apply them (with its own
    ``clipvalue``, ``clipnorm`` or ``global_clipnorm``), and then measures what was applied
    by comparing the trainable weights before and after the step. `fit` otherwise works as
    usual (compile, validation data, callbacks, history). Each step adds to the logs that
    callbacks receive in ``on_train_batch_end``:

    * ``batch_loss``: the loss of this batch (Keras's ``loss`` is the running mean over
      the epoch);
    * ``grad_norm``: the global norm of the raw gradients, before any clipping,
      ``sqrt(sum_k ||g_k||^2)``;
    * ``update_norm``: ``||w_before - w_after||``, the size of the step the optimizer
      really took, clipping included. For plain SGD (no momentum, no weight decay) it
      equals ``learning_rate * ||clipped g||``;
    * ``update_angle``: the angle in degrees between ``g`` and ``w_before - w_after`` (for
      plain SGD, between the raw and the clipped gradient); NaN when either is zero.

    Non-trainable variables (e.g. BN moving statistics) are not part of these values. In
    `History`, these four keys hold the value of each epoch's last step.

    Args:
        model: the Keras model to wrap (e.g. a `keras.Sequential`); it is called with the
            same `training` flag.
        **kwargs: passed on to `keras.Model` (e.g. `name`).

    Raises:
        ValueError: `model` is not a Keras model or layer.
    """

    def __init__(self, model, **kwargs):
        if not isinstance(model, keras.layers.Layer):
            raise ValueError(
                f"model must be a Keras model (e.g. keras.Sequential), got {type(model).__name__}."
            )
        super().__init__(**kwargs)
        self.inner = model

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        before = [tf.identity(v.value) for v in variables]
        with tf.control_dependencies(before):
            self.optimizer.apply_gradients(zip(grads, variables))
        steps = [b - tf.identity(v.value) for b, v in zip(before, variables)]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        logs = {}
        for metric in self.metrics:
            result = metric.result()
            logs.update(result if isinstance(result, dict) else {metric.name: result})
        logs["batch_loss"] = loss
        logs["grad_norm"] = _tf_global_norm(grads)
        logs["update_norm"] = _tf_global_norm(steps)
        logs["update_angle"] = _tf_angle_degrees(grads, steps)
        return logs


class TensorBoardScalars(keras.callbacks.Callback):
    """A Keras callback that writes per-step and per-epoch scalars to TensorBoard.

    At the end of every training batch it writes each of `batch_keys` found in the logs as
    ``batch/<key>`` at step 0, 1, 2, ... (counted across epochs); at the end of every epoch
    it writes every other log entry (``loss``, ``val_loss``, ``val_accuracy``, ...) as
    ``epoch/<key>`` at the epoch number. It uses `tf.summary.create_file_writer`, so
    ``tensorboard --logdir <logdir>`` shows the curves, and `read_scalars` reads them back.
    NaN and inf values are written as they are.

    Args:
        logdir: the folder for the event files (created if needed); the caller chooses it,
            e.g. a `tempfile.TemporaryDirectory`.
        batch_keys: which per-step log entries to write, by default `STEP_KEYS` (what
            `GradientNormModel` adds).

    Raises:
        ValueError: `logdir` is not a non-empty string or path, or `batch_keys` is a string
            or empty.
    """

    def __init__(self, logdir, batch_keys=STEP_KEYS):
        if not isinstance(logdir, (str, os.PathLike)) or not os.fspath(logdir):
            raise ValueError(f"logdir must be a non-empty folder path, got {logdir!r}.")
        if isinstance(batch_keys, str) or not batch_keys:
            raise ValueError(
                f"batch_keys must be a non-empty list of log names such as {STEP_KEYS}, got "
                f"{batch_keys!r}."
            )
        super().__init__()
        self.logdir = os.fspath(logdir)
        self.batch_keys = tuple(batch_keys)
        self.step = 0
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.logdir)

    def on_train_batch_end(self, batch, logs=None):
        with self._writer.as_default():
            for key in self.batch_keys:
                if logs and key in logs:
                    tf.summary.scalar(f"batch/{key}", float(logs[key]), step=self.step)
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default():
            for key, value in (logs or {}).items():
                if key not in self.batch_keys:
                    tf.summary.scalar(f"epoch/{key}", float(value), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        self._writer.flush()
        self._writer.close()


def fit_seeds(build, optimizer, seeds, logdir, **fit_kwargs):
    """Train one network once per seed, watching its gradients, with one traced training step.

    The model is ``GradientNormModel(build())``, compiled once with `optimizer()` and a
    cross-entropy loss. Before each seed's `fit`, everything a fresh run would start from is
    restored: ``keras.utils.set_random_seed(seed)``, the weights of a freshly built ``build()``,
    and the optimizer's initial state (step counter and slots). Each run is therefore
    bit-identical to ``helpers.setup(seed)`` followed by building, compiling and fitting a new
    model (the unit tests check this); sharing the compiled model only saves the tracing of the
    training step, which costs more than a short run itself.

    Args:
        build: a function returning a new, uncompiled Keras model.
        optimizer: a function returning a new Keras optimizer (with its clipping arguments).
        seeds: the seeds, non-negative integers.
        logdir: a function ``seed -> folder`` for that run's `TensorBoardScalars` event files.
        **fit_kwargs: passed to ``fit`` (``x``, ``y``, ``epochs``, ``batch_size``,
            ``validation_data``, ...); ``verbose`` is 0 unless given.

    Returns:
        A dict ``{seed: (history, weights)}``: the `History.history` dict of the run and the
        model's weights after it.

    Raises:
        ValueError: `seeds` is empty or holds something other than a non-negative integer, or
            `build`, `optimizer` or `logdir` is not callable.
    """
    from helpers.book.repro import setup

    seeds = list(seeds)
    if not seeds or not all(checks.is_int(s) and s >= 0 for s in seeds):
        raise ValueError(
            f"seeds must be a non-empty list of non-negative integers, got {seeds!r}."
        )
    for name, fn in (("build", build), ("optimizer", optimizer), ("logdir", logdir)):
        if not callable(fn):
            raise ValueError(f"{name} must be a function, got {type(fn).__name__}.")
    fit_kwargs.setdefault("verbose", 0)
    setup(int(seeds[0]))
    model = GradientNormModel(build())
    model.compile(
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], optimizer=optimizer()
    )
    model.optimizer.build(model.trainable_variables)
    start = [v.numpy() for v in model.optimizer.variables]
    runs = {}
    for seed in seeds:
        keras.utils.set_random_seed(int(seed))
        model.inner.set_weights(build().get_weights())
        for var, value in zip(model.optimizer.variables, start):
            var.assign(value)
        history = model.fit(callbacks=[TensorBoardScalars(logdir(seed))], **fit_kwargs)
        runs[seed] = (history.history, model.get_weights())
    return runs


def read_scalars(logdir):
    """Read every scalar from the TensorBoard event files under a folder.

    Works for scalars written by TF2's `tf.summary.scalar` (stored as tensors) and for the
    older ``simple_value`` form. Event files are read in name order (their names start with
    the creation time); a step written twice keeps the value read last.

    Args:
        logdir: a folder holding ``events.out.tfevents.*`` files, directly or in subfolders.

    Returns:
        A dict ``{tag: (steps, values)}`` with two NumPy arrays per tag: int64 steps and
        float64 values, sorted by step.

    Raises:
        ValueError: `logdir` is not a non-empty path.
        FileNotFoundError: `logdir` is not a folder, or holds no event file.
    """
    from tensorflow.core.util import event_pb2

    if not isinstance(logdir, (str, os.PathLike)) or not os.fspath(logdir):
        raise ValueError(f"logdir must be a non-empty folder path, got {logdir!r}.")
    logdir = os.fspath(logdir)
    if not os.path.isdir(logdir):
        raise FileNotFoundError(
            f"logdir {logdir!r} is not a folder; pass the folder given to TensorBoardScalars."
        )
    files = sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True))
    if not files:
        raise FileNotFoundError(
            f"no TensorBoard event file (events.out.tfevents.*) under {logdir!r}; was the "
            "callback passed to fit()?"
        )
    scalars = {}
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor"):
                    array = tf.make_ndarray(value.tensor)
                    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
                        continue
                    number = float(array.reshape(()))
                else:
                    continue
                scalars.setdefault(value.tag, {})[int(event.step)] = number
    return {
        tag: (
            np.array(sorted(d), dtype=np.int64),
            np.array([d[s] for s in sorted(d)], dtype=np.float64),
        )
        for tag, d in scalars.items()
    }
