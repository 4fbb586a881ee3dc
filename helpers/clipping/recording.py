"""A Keras model that reports, at every training step, how large its gradient was and what the
optimizer did with it: the gradient's global norm before clipping, and the size and direction of
the step really taken.
"""

import math

import keras
import tensorflow as tf

#: The per-step values that `GradientNormModel.train_step` adds to Keras's logs.
STEP_KEYS = ("batch_loss", "grad_norm", "update_norm", "update_angle")


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
