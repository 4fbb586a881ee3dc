"""Batch Normalization across replicas: the experiments of chapter 09.

The book trains on one device (pp. 339-345). Under `tf.distribute`, each replica receives a
slice of the global batch, and a BN layer normalizes it with the statistics of that slice
unless it is built with ``synchronized=True``, which all-reduces the sums over the replicas.
This module runs one custom training step (the same code in a notebook kernel, where
`tf.distribute.MirroredStrategy` spreads it over logical CPU devices, and in worker processes
under `tf.distribute.MultiWorkerMirroredStrategy`, see `helpers.replicas.worker`), trains small
networks for the accuracy comparison, and derives the float32 tolerance that two synchronized
runs must agree within. Starting and stopping worker processes is
`helpers.replicas.supervisor`'s job; the strategies come from `helpers.replicas.strategy`.
"""

from helpers import checks
from helpers.replicas.strategy import mirrored_strategy
from helpers.runtime import session
from helpers.training.steps import gradient_step

import numpy as np

__all__ = [
    "accuracy_run",
    "bound_ratio",
    "flat_batch",
    "one_step_model",
    "one_step_stats",
    "prediction_differences",
    "replica_table",
    "slice_tolerance",
    "sync_tolerance",
    "within",
    "worker_ratios",
]

#: float32's unit roundoff, 2**-24: the largest relative error of one rounding.
U32 = 2.0**-24


# --- one training step ------------------------------------------------------------------------


def flat_batch(x, y, n_replicas, name="x"):
    """The batch ``(x, y)`` checked and flattened, ready to split evenly over the replicas.

    Args:
        x: a non-empty batch of examples, shape ``(B, ...)``.
        y: its integer labels, shape ``(B,)``.
        n_replicas: number of replicas; ``B`` must be a multiple of it.
        name: what to call `x` in an error message.

    Returns:
        ``(x, y)``: `x` flattened to float32 of shape ``(B, d)``, `y` as int32.

    Raises:
        ValueError: bad shapes, or the batch does not split evenly over the replicas.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty batch of examples, got shape {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(
            f"y must hold one label per example of {name} ({len(x)}), got shape {y.shape}"
        )
    if len(x) % n_replicas:
        raise ValueError(
            f"the batch size ({len(x)}) must be a multiple of n_replicas ({n_replicas}), so "
            "that every replica gets the same number of examples"
        )
    return x.reshape(len(x), -1).astype(np.float32), y.astype(np.int32)


def _replica_slice(xg, yg, b):
    """This replica's `b` examples of the global batch ``(xg, yg)`` (inside `strategy.run`)."""
    import tensorflow as tf

    i = tf.distribute.get_replica_context().replica_id_in_sync_group
    return xg[i * b : (i + 1) * b], yg[i * b : (i + 1) * b]


def one_step_model(n_features, synchronized):
    """The network of `one_step_stats`: BN(momentum=0) then Dense(10), on `n_features` inputs.

    The BN layer gets ``synchronized=synchronized``. Build the model inside the scope of the
    strategy that will run it (a worker fits it under MultiWorkerMirroredStrategy).
    """
    import keras

    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.BatchNormalization(momentum=0.0, synchronized=synchronized),
            keras.layers.Dense(10),
        ]
    )


def one_step_stats(x, y, n_replicas=4, synchronized=False, seed=42, strategy=None):
    r"""One SGD step of BN(momentum=0) + Dense(10) under a strategy, and what BN recorded.

    With momentum 0, the moving statistics after one step are the statistics the layer
    used in that step: $\hat\mu \leftarrow 0 \cdot \hat\mu + 1 \cdot \mu_B$, exactly.
    Replica $r$ receives examples $r b, \dots, (r + 1) b - 1$ of the global batch, with
    $b = B / R$.

    Args:
        x: the global batch, shape ``(B, ...)`` (flattened to ``(B, d)``).
        y: its integer labels, shape ``(B,)``.
        n_replicas: number of replicas R; ``B`` must be a multiple of it.
        synchronized: the BN layer's ``synchronized`` argument.
        seed: seed for `helpers.setup` before the model is built.
        strategy: a `tf.distribute` strategy with `n_replicas` replicas in sync (default:
            `mirrored_strategy(n_replicas)`); workers pass a MultiWorkerMirroredStrategy.

    Returns:
        A dict of float64 NumPy arrays: ``moving_mean`` and ``moving_variance`` (d,), as the
        variable reads after the step; ``local_moving_mean`` (local replicas, d), each local
        copy of the variable; ``outputs_mean`` (local replicas, d), the mean of each local
        replica's BN output over its own examples; ``replica_means`` (R, d) and
        ``global_mean`` (d,), computed by NumPy in float64 from `x`; and ``local_replicas``,
        the global ids of this process's replicas.

    Raises:
        ValueError: bad shapes, or the batch does not split evenly over the replicas.
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=1)
    seed = checks.seed(seed)
    if not isinstance(synchronized, bool):
        raise TypeError(f"synchronized must be True or False, got {synchronized!r}")
    x, y = flat_batch(x, y, n_replicas)
    import keras
    import tensorflow as tf

    strategy = mirrored_strategy(n_replicas) if strategy is None else strategy
    if strategy.num_replicas_in_sync != n_replicas:
        raise ValueError(
            f"strategy has {strategy.num_replicas_in_sync} replicas in sync, but "
            f"n_replicas is {n_replicas}"
        )
    b = len(x) // n_replicas
    session.setup(seed)  # before the scope: clearing the session inside it breaks the scope
    with strategy.scope():
        model = one_step_model(x.shape[1], synchronized)
        optimizer = keras.optimizers.SGD(learning_rate=0.01)
        optimizer.build(model.trainable_variables)
    bn = model.layers[0]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def replica_step(xg, yg):
        i = tf.distribute.get_replica_context().replica_id_in_sync_group
        xb, yb = _replica_slice(xg, yg, b)
        with tf.GradientTape() as tape:
            z = bn(xb, training=True)
            loss = tf.reduce_sum(loss_fn(yb, model.layers[1](z))) / len(x)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.reduce_mean(z, axis=0), tf.reshape(i, [1])

    @tf.function
    def step(xg, yg):
        return strategy.run(replica_step, args=(xg, yg))

    out_means, ids = step(tf.constant(x), tf.constant(y))
    local = strategy.experimental_local_results
    replica_ids = [int(t.numpy()[0]) for t in local(ids)]
    x64 = x.astype(np.float64)
    return {
        "moving_mean": bn.moving_mean.numpy().astype(np.float64),
        "moving_variance": bn.moving_variance.numpy().astype(np.float64),
        "local_moving_mean": np.stack(
            [np.asarray(v, np.float64) for v in local(bn.moving_mean.value)]
        ),
        "outputs_mean": np.stack([t.numpy().astype(np.float64) for t in local(out_means)]),
        "replica_means": x64.reshape(n_replicas, b, -1).mean(axis=1),
        "global_mean": x64.mean(axis=0),
        "local_replicas": replica_ids,
    }


# --- accuracy with small per-replica batches --------------------------------------------------


def _mlp(n_features, hidden, synchronized, momentum=0.9):
    import keras

    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.BatchNormalization(momentum=momentum, synchronized=synchronized),
            keras.layers.Dense(hidden, activation="relu", kernel_initializer="he_normal"),
            keras.layers.BatchNormalization(momentum=momentum, synchronized=synchronized),
            keras.layers.Dense(10),
        ]
    )


class _Trainer:
    """A model under a strategy with its traced step; `run` re-initializes it for a seed."""

    def __init__(self, strategy, n_features, hidden, synchronized, global_batch, learning_rate):
        import keras
        import tensorflow as tf

        self.strategy, self.n_features, self.hidden = strategy, n_features, hidden
        self.synchronized = synchronized
        with strategy.scope():
            self.model = model = _mlp(n_features, hidden, synchronized)
            self.optimizer = optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
            optimizer.build(model.trainable_variables)
        b = global_batch // strategy.num_replicas_in_sync
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

        def replica_step(xg, yg):
            xb, yb = _replica_slice(xg, yg, b)
            gradient_step(
                model,
                optimizer,
                xb,
                yb,
                loss=lambda t, logits: tf.reduce_sum(loss_fn(t, logits)) / global_batch,
            )

        @tf.function
        def steps(xs, ys):
            for k in tf.range(tf.shape(xs)[0]):
                strategy.run(replica_step, args=(xs[k], ys[k]))

        self.steps = steps

    def run(self, x, y, x_test, y_test, epochs, global_batch, seed):
        import tensorflow as tf

        session.setup(seed)
        fresh = _mlp(self.n_features, self.hidden, self.synchronized)  # seeded initial weights
        for var, value in zip(self.model.weights, fresh.weights):
            var.assign(value.numpy())
        self.optimizer.iterations.assign(0)  # plain SGD keeps no other state
        rng = np.random.default_rng(seed)
        n_steps = len(x) // global_batch
        for _ in range(epochs):
            idx = rng.permutation(len(x))[: n_steps * global_batch].reshape(n_steps, -1)
            self.steps(tf.constant(x[idx]), tf.constant(y[idx]))
        predicted = np.argmax(self.model(x_test, training=False).numpy(), axis=1)
        return float(np.mean(predicted == y_test)), predicted


def accuracy_run(
    data,
    seeds,
    n_replicas=4,
    per_replica_batch=8,
    epochs=2,
    hidden=100,
    learning_rate=0.05,
    predictions=False,
):
    """Test accuracy of a small BN network trained three ways, for each seed.

    The three ways see the same global batches in the same order: R replicas with
    ``synchronized=False`` (each BN normalizes with its replica's `per_replica_batch`
    examples), R replicas with ``synchronized=True`` (statistics of the whole global batch),
    and one device with the global batch. The network is Dense input → BN → Dense(`hidden`,
    ReLU) → BN → Dense(10), trained with plain SGD from initial weights set by
    `helpers.setup(seed)`; each configuration is traced once and re-initialized per seed.

    Args:
        data: ``(x_train, y_train, x_test, y_test)``, images of any shape (flattened).
        seeds: a non-empty list of seeds.
        n_replicas: replicas R, an integer >= 2.
        per_replica_batch: examples per replica and step, an integer >= 2.
        epochs: passes over `x_train`, an integer >= 1.
        hidden: units of the hidden layer, an integer >= 1.
        learning_rate: SGD's learning rate, a number > 0.
        predictions: also return each trained network's predicted classes.

    Returns:
        A dict ``{configuration: {seed: accuracy}}`` with configurations ``"unsynchronized"``,
        ``"synchronized"`` and ``"one device"``; with ``predictions=True``, the pair of that
        dict and ``{configuration: {seed: predicted class of each test image}}``.

    Raises:
        ValueError: a bad argument, or fewer training examples than one global batch.
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=2)
    per_replica_batch = checks.integer(per_replica_batch, "per_replica_batch", minimum=2)
    epochs = checks.integer(epochs, "epochs", minimum=1)
    hidden = checks.integer(hidden, "hidden", minimum=1)
    learning_rate = checks.positive(learning_rate, "learning_rate")
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of seeds, got {seeds!r}")
    if not isinstance(predictions, bool):
        raise ValueError(f"predictions must be True or False, got {predictions!r}")
    seeds = [checks.seed(s, "seeds[]") for s in seeds]
    if not isinstance(data, (list, tuple)) or len(data) != 4:
        raise ValueError("data must be (x_train, y_train, x_test, y_test)")
    global_batch = n_replicas * per_replica_batch
    x, y = flat_batch(data[0], data[1], 1, "x_train")
    x_test, y_test = flat_batch(data[2], data[3], 1, "x_test")
    if len(x) < global_batch:
        raise ValueError(
            f"x_train must hold at least one global batch ({global_batch} examples), got {len(x)}"
        )
    import tensorflow as tf

    configs = {
        "unsynchronized": (mirrored_strategy(n_replicas), False),
        "synchronized": (mirrored_strategy(n_replicas), True),
        "one device": (tf.distribute.get_strategy(), False),
    }
    results, predicted = {}, {}
    for name, (strategy, synchronized) in configs.items():
        session.setup(seeds[0])
        trainer = _Trainer(strategy, x.shape[1], hidden, synchronized, global_batch, learning_rate)
        runs = {s: trainer.run(x, y, x_test, y_test, epochs, global_batch, s) for s in seeds}
        results[name] = {s: acc for s, (acc, _) in runs.items()}
        predicted[name] = {s: labels for s, (_, labels) in runs.items()}
    return (results, predicted) if predictions else results


# --- the tolerance two synchronized runs must agree within -------------------------------------


def _gamma(k):
    """Higham's gamma_k = k u / (1 - k u): the relative error bound of k float32 roundings."""
    return k * U32 / (1.0 - k * U32)


def sync_tolerance(x):
    r"""Per-feature bounds on how far two synchronized BN runs on batch `x` can differ.

    Keras's synchronized BN (TensorFlow backend) all-reduces per-replica sums in float32 and
    computes $\mu = S_1 / B$ and $\sigma^2 = S_2 / B - \mu^2$ with $S_1 = \sum_i x_i$,
    $S_2 = \sum_i x_i^2$. Any order of summing $B$ terms (replicas' local sums, then the
    all-reduce, in whatever tree) makes at most $B - 1$ roundings on the way to each result,
    so (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2) with
    $\gamma_k = k u / (1 - k u)$, $u = 2^{-24}$:

    $$|\hat\mu - \mu| \le \delta_\mu = \gamma_B \, \overline{|x|}$$

    (B − 1 additions and one division), and, with $\overline{x^2} = S_2 / B$,

    $$|\hat\sigma^2 - \sigma^2| \le \delta_{\sigma^2} =
        \gamma_{B+1} \overline{x^2} + (2 |\mu| \delta_\mu + \delta_\mu^2)(1 + u)
        + u \mu^2 + u (\overline{x^2} + \mu^2)$$

    (squares, sum and division for $\overline{x^2}$; the square of an inexact mean; the
    subtraction). The cancellation in $\overline{x^2} - \mu^2$ is why the variance's bound is
    set by $\overline{x^2}$, not by $\sigma^2$. Two runs that each obey a bound differ by at
    most twice it; a run and the exact value by at most once.

    Args:
        x: the global batch, shape ``(B, ...)``; statistics are per feature of the flattened
            examples.

    Returns:
        ``(delta_mean, delta_variance)``: float64 arrays of shape ``(d,)``, the bound for one
        run against the exact statistics.

    Raises:
        ValueError: `x` is empty, not finite, or its batch is too large for the bound
            (``B u >= 1``).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or len(x) == 0 or x.size == 0:
        raise ValueError(f"x must be a non-empty batch of examples, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must hold finite numbers only")
    n = len(x)
    if (n + 1) * U32 >= 0.5:
        raise ValueError(f"x's batch ({n} examples) is too large for a float32 bound")
    x = x.reshape(n, -1)
    mean_abs = np.abs(x).mean(axis=0)
    mean_sq = (x**2).mean(axis=0)
    mu = x.mean(axis=0)
    d_mean = _gamma(n) * mean_abs
    d_var = (
        _gamma(n + 1) * mean_sq
        + (2 * np.abs(mu) * d_mean + d_mean**2) * (1 + U32)
        + U32 * mu**2
        + U32 * (mean_sq + mu**2)
    )
    return d_mean, d_var


def slice_tolerance(x, n_replicas):
    """The bound of `sync_tolerance` on the mean of each replica's slice, the largest per feature.

    Args:
        x: the global batch, shape ``(B, ...)``; ``B`` a multiple of `n_replicas`.
        n_replicas: replicas R, an integer >= 1; replica r holds examples r b .. (r + 1) b - 1.

    Returns:
        A float64 array of shape ``(d,)``: per feature, the largest of the R slices' bounds.

    Raises:
        ValueError: the batch does not split evenly over the replicas (and see
            `sync_tolerance`).
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=1)
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0 or len(x) % n_replicas:
        raise ValueError(
            f"x must be a batch whose size is a multiple of n_replicas ({n_replicas}), got shape "
            f"{x.shape}"
        )
    b = len(x) // n_replicas
    return np.max([sync_tolerance(x[r * b : (r + 1) * b])[0] for r in range(n_replicas)], axis=0)


def within(got, want, bound):
    """Whether every ``|got - want|`` is at most `bound` (arrays broadcast against each other).

    Returns:
        True or False.

    Raises:
        ValueError: the shapes do not broadcast together.
    """
    try:
        diff = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
        return bool(np.all(diff <= np.asarray(bound, np.float64)))
    except ValueError as err:
        raise ValueError(f"got, want and bound must have matching shapes: {err}") from err


def bound_ratio(got, want, bound):
    """The largest ``|got - want| / bound`` over the features.

    A feature whose bound is 0 counts 0 if ``got == want`` there and infinity otherwise, so
    that a ratio of at most 1 means every feature is within its bound.

    Args:
        got: values, array-like.
        want: values of the same shape.
        bound: bounds >= 0 of the same shape.

    Returns:
        A float >= 0 (inf when a zero bound is exceeded).

    Raises:
        ValueError: the shapes differ or a bound is negative.
    """
    got, want, bound = (np.asarray(a, np.float64) for a in (got, want, bound))
    if not got.shape == want.shape == bound.shape:
        raise ValueError(
            f"got, want and bound must have one shape, got {got.shape}, {want.shape} and "
            f"{bound.shape}"
        )
    if np.any(bound < 0):
        raise ValueError("bound must be >= 0 everywhere")
    diff = np.abs(got - want)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            bound > 0, diff / np.where(bound > 0, bound, 1.0), np.where(diff > 0, np.inf, 0.0)
        )
    return float(ratio.max()) if ratio.size else 0.0


def worker_ratios(workers, kernel, bounds):
    """`bound_ratio` of each worker's moving statistics against the kernel's, per statistic.

    Args:
        workers: the workers' results (dicts with ``moving_mean`` and ``moving_variance``).
        kernel: `one_step_stats` of the same batch and replica count in the kernel.
        bounds: ``{"mean": bound, "variance": bound}``, per feature.

    Returns:
        A dict ``{"worker w, stat": ratio}``.

    Raises:
        ValueError: `workers` is empty or `bounds` names other statistics.
    """
    if not workers:
        raise ValueError("workers must hold at least one worker's results")
    if not bounds or set(bounds) - {"mean", "variance"}:
        raise ValueError(f"bounds must be keyed by 'mean' and/or 'variance', got {list(bounds)}")
    return {
        f"worker {w}, {stat}": bound_ratio(result[f"moving_{stat}"], kernel[f"moving_{stat}"], d)
        for w, result in enumerate(workers)
        for stat, d in bounds.items()
    }


def replica_table(unsync, sync):
    """The mean over the features of what each replica recorded, unsynchronized and
    synchronized, beside the means of each slice and of the whole batch (NumPy, float64).

    Args:
        unsync: `one_step_stats` with ``synchronized=False``.
        sync: `one_step_stats` of the same batch with ``synchronized=True``.

    Returns:
        A DataFrame: one row per replica and a last row for the whole batch (for the layers:
        the variable read outside the replicas).

    Raises:
        ValueError: the two runs have not the same number of replicas.
    """
    import pandas as pd

    n = len(unsync["replica_means"])
    if len(sync["local_moving_mean"]) != n or len(unsync["local_moving_mean"]) != n:
        raise ValueError("unsync and sync must be one_step_stats of the same replicas")
    return pd.DataFrame(
        {
            "replica means (NumPy)": [
                *unsync["replica_means"].mean(1),
                unsync["global_mean"].mean(),
            ],
            "unsynchronized: each copy": [
                *unsync["local_moving_mean"].mean(1),
                unsync["moving_mean"].mean(),
            ],
            "synchronized: each copy": [
                *sync["local_moving_mean"].mean(1),
                sync["moving_mean"].mean(),
            ],
        },
        index=[f"replica {r}" for r in range(n)] + ["whole batch / variable read"],
    )


def prediction_differences(predicted, reference="one device"):
    """The share of test images each way's network classifies differently from the reference's.

    Args:
        predicted: ``{way: {seed: predicted classes}}``, as `accuracy_run` returns with
            ``predictions=True``.
        reference: the way to compare with.

    Returns:
        A DataFrame, one row per seed (index named ``"seed"``), one column per other way.

    Raises:
        ValueError: `reference` is not a way of `predicted`.
    """
    import pandas as pd

    if reference not in predicted:
        raise ValueError(f"reference must be one of {list(predicted)}, got {reference!r}")
    ref = predicted[reference]
    return pd.DataFrame(
        {
            way: {s: float(np.mean(np.asarray(p) != np.asarray(ref[s]))) for s, p in runs.items()}
            for way, runs in predicted.items()
            if way != reference
        }
    ).rename_axis("seed")
