"""Keras layers written for this companion.

`MultiAxisBatchNormalization` gives back what the book's ``BatchNormalization(axis=[1, 2])``
meant (p. 344): one mean, variance, γ and β per *position* across several feature axes (for
28 × 28 images, one per pixel: 784 of each). Keras 3's `keras.layers.BatchNormalization`
only accepts a single integer axis.

`ModeRecorder` records the `training` value of every call, and `training_values` runs a model
every way Keras can (``fit``, ``evaluate``, ``predict``, direct calls) to see what each passes
(chapter 01).
"""

from helpers import checks

import keras
from keras import ops


def _as_axes(axis):
    """A list of ints from `axis`, or ValueError naming the argument."""
    items = [axis] if not isinstance(axis, (list, tuple)) else list(axis)
    if not items:
        raise ValueError(
            "axis must name at least one feature axis, e.g. axis=-1 or axis=[1, 2]; got []."
        )
    for a in items:
        if not checks.is_int(a):
            raise ValueError(f"axis must be an int or a list of ints, got {axis!r}.")
    return items


@keras.saving.register_keras_serializable(package="helpers")
class MultiAxisBatchNormalization(keras.layers.Layer):
    r"""Batch normalization over one or several feature axes.

    Like `keras.layers.BatchNormalization`, but `axis` may be a list. The statistics are
    computed over every *other* axis (the batch axis and any axis not listed). For inputs of
    shape ``(batch, 28, 28)`` and ``axis=[1, 2]`` there are 784 means and variances, one per
    pixel, each taken over the batch; with ``axis=-1`` there are 28, one per column.

    With ``F`` the listed axes and ``R`` the others, in training mode

    $$\mu = \operatorname{mean}_R(x),\quad \sigma^2 = \operatorname{mean}_R\big((x-\mu)^2\big),
    \quad y = \gamma\,\frac{x-\mu}{\sqrt{\sigma^2+\varepsilon}} + \beta,$$

    and the moving statistics are updated as Keras does,
    ``moving = moving · momentum + batch · (1 − momentum)`` (the variance is the biased one).
    In inference mode the moving statistics replace μ and σ². As in Keras, a layer whose
    ``trainable`` is False always runs in inference mode and leaves its statistics alone.

    Args:
        axis: int or list of ints, the feature axes (not the batch axis 0). Negative values
            count from the end. Defaults to -1, which matches `BatchNormalization`.
        momentum: momentum of the moving averages; Keras's default 0.99.
        epsilon: added to the variance before the square root; Keras's default 1e-3.
        center: if True, add the trainable offset β.
        scale: if True, multiply by the trainable scale γ.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: initializers, as in `BatchNormalization`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: a tensor of rank > max axis.
        training: Python bool. True: normalize with the batch statistics and update the
            moving averages. False or None: normalize with the moving averages.
            `fit()` passes True; `predict()` and `evaluate()` pass False.

    Raises:
        ValueError: `axis` is not an int or list of distinct ints, names the batch axis or an
            axis the input does not have, or an axis of unknown size; `momentum` is not in
            [0, 1]; `epsilon` is not positive.
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        axes = _as_axes(axis)
        self.axis = axis if isinstance(axis, int) else axes
        self.momentum = checks.unit_interval(momentum, "momentum", hint="typically 0.9 to 0.999")
        self.epsilon = checks.positive(epsilon, "epsilon", "Keras's default is 1e-3")
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.supports_masking = False
        self.gamma = self.beta = None

    def _normalized_axes(self, ndim):
        axes = []
        for a in _as_axes(self.axis):
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"axis {a} is out of range for inputs of rank {ndim} (valid: 1..{ndim - 1} "
                    f"or -{ndim - 1}..-1); got axis={self.axis!r}."
                )
            a %= ndim
            if a == 0:
                raise ValueError(
                    f"axis must not include the batch axis 0 (statistics are taken over the "
                    f"batch); got axis={self.axis!r}. Use feature axes such as [1, 2]."
                )
            if a in axes:
                raise ValueError(f"axis lists the same axis twice: axis={self.axis!r}.")
            axes.append(a)
        return sorted(axes)

    def build(self, input_shape):
        ndim = len(input_shape)
        self._axes = self._normalized_axes(ndim)
        for a in self._axes:
            if input_shape[a] is None:
                raise ValueError(
                    f"axis {a} of the input shape {tuple(input_shape)} has unknown size; "
                    "the normalized axes need a known size to create γ, β and the statistics."
                )
        self._reduction_axes = [i for i in range(ndim) if i not in self._axes]
        self._param_shape = tuple(int(input_shape[a]) for a in self._axes)
        self._broadcast_shape = [
            int(input_shape[i]) if i in self._axes else 1 for i in range(ndim)
        ]
        # γ and β are learned (when scale / center are on); the moving statistics are not.
        for name, initializer, trainable, wanted in (
            ("gamma", self.gamma_initializer, True, self.scale),
            ("beta", self.beta_initializer, True, self.center),
            ("moving_mean", self.moving_mean_initializer, False, True),
            ("moving_variance", self.moving_variance_initializer, False, True),
        ):
            if wanted:
                weight = self.add_weight(
                    shape=self._param_shape,
                    name=name,
                    initializer=initializer,
                    trainable=trainable,
                    autocast=False,
                )
                setattr(self, name, weight)
        self.input_spec = keras.layers.InputSpec(
            ndim=ndim, axes={a: int(input_shape[a]) for a in self._axes}
        )

    def compute_output_shape(self, input_shape):
        self._normalized_axes(len(input_shape))
        return input_shape

    def call(self, inputs, training=None):
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        inputs = ops.cast(inputs, dtype)
        if training and self.trainable:
            mean, variance = ops.moments(inputs, axes=self._reduction_axes)
            mean = ops.reshape(mean, self._param_shape)
            variance = ops.reshape(variance, self._param_shape)
            m = self.momentum
            self.moving_mean.assign(ops.cast(self.moving_mean, dtype) * m + mean * (1.0 - m))
            self.moving_variance.assign(
                ops.cast(self.moving_variance, dtype) * m + variance * (1.0 - m)
            )
        else:
            mean = ops.cast(self.moving_mean, dtype)
            variance = ops.cast(self.moving_variance, dtype)
        # Same arithmetic as tf.nn.batch_normalization, which Keras's layer uses:
        # y = x * inv + (β − μ · inv), with inv = γ / sqrt(σ² + ε).
        shape = self._broadcast_shape
        inv = ops.rsqrt(ops.reshape(variance, shape) + self.epsilon)
        if self.scale:
            inv = inv * ops.reshape(ops.cast(self.gamma, dtype), shape)
        shift = -ops.reshape(mean, shape) * inv
        if self.center:
            shift = shift + ops.reshape(ops.cast(self.beta, dtype), shape)
        return ops.cast(inputs * inv + shift, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": keras.initializers.serialize(
                    self.moving_mean_initializer
                ),
                "moving_variance_initializer": keras.initializers.serialize(
                    self.moving_variance_initializer
                ),
            }
        )
        return config


class ModeRecorder(keras.layers.Layer):
    """The identity, which records the ``training`` value of every call it receives.

    Put in a model, it shows what Keras passes to a layer's ``call``: ``True`` in ``fit()``,
    ``False`` in ``predict()`` and ``evaluate()``, nothing (``None``) in a direct call; the
    book says 1 (p. 344). Run the model eagerly (``compile(run_eagerly=True)``), so that every
    call reaches Python.

    Under Keras's JAX backend a call on traced values (a JAX tracer: no data, only shapes) is
    recorded in ``traced`` instead of ``modes``. Eagerly, the only such call in ``fit()`` is the
    one Keras's JAX trainer makes before the first step to build the model's, loss's and
    metrics' state (``Trainer._symbolic_build`` runs the model through
    ``backend.compute_output_spec`` with ``training=False``); TensorFlow's trainer skips that
    build unless a distribution strategy is set.

    Call arguments:
        inputs: any tensor, returned unchanged.
        training: the value to record.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.modes = []
        self.traced = []

    def call(self, inputs, training=None):
        (self.traced if _is_jax_tracer(inputs) else self.modes).append(training)
        return inputs


def _is_jax_tracer(x):
    """Whether `x` is a JAX tracer (Keras's JAX backend only; never under TensorFlow)."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def training_values(model, recorder, x, y, batch_size):
    """The `training` value that each way of running `model` passes to `recorder`.

    Runs ``fit``, ``evaluate`` and ``predict`` (with `batch_size`), then ``model(x)`` and
    ``model(x, training=True)``. Compile `model` with ``run_eagerly=True`` so that ``call``
    runs once per batch instead of once when the step function is traced.

    Args:
        model: a compiled model containing `recorder`.
        recorder: a `ModeRecorder` inside `model`.
        x: inputs.
        y: targets for ``fit`` and ``evaluate``.
        batch_size: batch size of ``fit``, ``evaluate`` and ``predict``, >= 1.

    Returns:
        dict ``{way of running: list of the training values recorded}``. A way of running
        whose calls included traced ones (`ModeRecorder`: under JAX, ``fit`` builds the model
        once on traced values before its first step) adds a key ``"<way>, traced"`` with
        their values, after its own.

    Raises:
        ValueError: `recorder` is not a `ModeRecorder` or `batch_size` not a positive integer.
    """
    if not isinstance(recorder, ModeRecorder):
        raise ValueError(f"recorder must be a ModeRecorder, got {type(recorder).__name__}.")
    checks.integer(batch_size, "batch_size", minimum=1)
    runs = {
        "fit": lambda: model.fit(x, y, batch_size=batch_size, verbose=0),
        "evaluate": lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0),
        "predict": lambda: model.predict(x, batch_size=batch_size, verbose=0),
        "model(X)": lambda: model(x),
        "model(X, training=True)": lambda: model(x, training=True),
    }
    seen = {}
    for name, run in runs.items():
        recorder.modes.clear()
        recorder.traced.clear()
        run()
        seen[name] = list(recorder.modes)
        if recorder.traced:
            seen[f"{name}, traced"] = list(recorder.traced)
    return seen
