"""The pieces every training loop of the companion shares: one gradient step, and the
mini-batches of a run.

`gradient_step` is the custom step of chapter 07's runs (`helpers.training.runner`), of
chapter 09's small-batch and transfer runs (`helpers.training.small_batches`,
`helpers.training.transfer`) and of its replicas (`helpers.replicas.experiments`).
"""

from helpers import checks

import numpy as np

__all__ = ["adam_loop", "gradient_step", "hidden_widths", "images_and_labels", "make_batches"]


def gradient_step(model, optimizer, x, y, loss=None, training=True):
    """One training step: the loss of `model`'s logits on ``(x, y)``, its gradients, applied.

    Works eagerly, traced in a `tf.function`, and in a `tf.distribute` replica context.

    Args:
        model: a Keras model that outputs logits.
        optimizer: a built Keras optimizer.
        x, y: a batch of inputs and integer labels.
        loss: ``loss(y, logits)`` returning a scalar; by default the mean sparse softmax
            cross-entropy.
        training: the mode the model is called in; False trains the weights with BN in
            inference mode (moving statistics used, and left unchanged).

    Returns:
        The loss, a scalar tensor.
    """
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = model(x, training=training)
        value = (
            loss(y, logits)
            if loss is not None
            else tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        )
    grads = tape.gradient(value, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)
    return value


def make_batches(n_examples, batch_size, n_steps, seed):
    r"""Indices of every mini-batch of a run: a fresh shuffle each epoch, remainder dropped.

    Epoch $e$ uses the permutation drawn by ``numpy.random.default_rng(seed)`` for that epoch,
    cut into $\lfloor n / B \rfloor$ batches of $B$ examples.

    Args:
        n_examples: training set size $n$, >= `batch_size`.
        batch_size: $B$, >= 1.
        n_steps: number of batches wanted, >= 0.
        seed: non-negative integer.

    Returns:
        An int32 array of shape ``(n_steps, batch_size)``.

    Raises:
        ValueError: a size is not a positive integer, or the set is smaller than one batch.
    """
    checks.integer(batch_size, "batch_size", minimum=1)
    if not checks.is_int(n_examples) or n_examples < batch_size:
        raise ValueError(
            f"n_examples must be an integer >= batch_size ({batch_size}), got {n_examples!r}; "
            "use more training data or a smaller batch"
        )
    checks.integer(n_steps, "n_steps", minimum=0)
    checks.seed(seed)
    rng = np.random.default_rng(int(seed))
    per_epoch = n_examples // batch_size
    n_epochs = -(-n_steps // per_epoch)
    epochs = [
        rng.permutation(n_examples)[: per_epoch * batch_size].reshape(per_epoch, batch_size)
        for _ in range(n_epochs)
    ]
    if not epochs:
        return np.zeros((0, batch_size), dtype=np.int32)
    return np.concatenate(epochs)[:n_steps].astype(np.int32)


def images_and_labels(X, y, name):
    """`X` as float32 rows of flattened images and `y` as int32 labels, checked.

    Raises:
        ValueError: `X` is not a non-empty batch, or `y` is not one integer label per image.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"{name} images must be a non-empty array of shape (n, ...)")
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} labels must be one integer per image ({len(X)}), got {y.shape}")
    return X.reshape(len(X), -1), y.astype(np.int32)


def adam_loop(model, X, y, learning_rate, training=True):
    """Adam and a compiled loop over `gradient_step`: ``train_steps(batches)`` runs one step per
    row of indices into ``(X, y)``. With ``training=False`` the model is called in inference
    mode in every step.

    Returns:
        ``(optimizer, train_steps)``.
    """
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    optimizer.build(model.trainable_variables)
    X_t, y_t = tf.constant(X), tf.constant(y)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def train_steps(batches):
        for i in tf.range(tf.shape(batches)[0]):
            gradient_step(
                model,
                optimizer,
                tf.gather(X_t, batches[i]),
                tf.gather(y_t, batches[i]),
                training=training,
            )
        return tf.constant(0)

    return optimizer, train_steps


def hidden_widths(hidden):
    """The widths of the hidden layers, checked: a non-empty list of integers >= 1."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple)) or not hidden:
        raise ValueError(
            f"hidden must be a non-empty list of layer widths, such as [64, 64], got {hidden!r}"
        )
    return [checks.integer(u, "each hidden width", minimum=1) for u in hidden]
