"""Batch Normalization with small batches, against GroupNormalization and LayerNormalization.

The first experiment of chapter 09 (the second, frozen BN in transfer learning, is
`helpers.training.transfer`). `build_normalized_mlp` builds the same multilayer perceptron with a
BatchNormalization, GroupNormalization or LayerNormalization layer after every hidden Dense
layer. `SmallBatchRunner` trains it with Adam at several batch sizes for the same number of
epochs (the same images seen), reusing one compiled training loop per normalization, and
measures the validation accuracy and `mode_gap`, the difference between training-mode and
inference-mode outputs on validation batches as large as the training batches.
`check_groups` states GroupNormalization's condition on Dense features: the group count
must divide the number of units. `run_grid` runs a grid of seeds, normalizations and batch
sizes into one table, `compare_small_batches` sets BN against the better alternative, and
`draw_small_batches` draws the chapter's figure of both.

Every argument is checked at the boundary with `helpers.checks`, so bad input stops with one
sentence naming it.
"""

from helpers import checks
from helpers.runtime.session import setup
from helpers.training.steps import adam_loop, hidden_widths, images_and_labels, make_batches

import numpy as np

#: The normalizations compared, by the names the chapter uses.
NORMS = ("batch", "group", "layer")


def _kind(kind):
    if kind not in NORMS:
        raise ValueError(f"kind must be one of {', '.join(NORMS)}, got {kind!r}")
    return kind


def check_groups(units, groups):
    """The group count of a GroupNormalization layer on `units` Dense features, checked.

    GroupNormalization splits the features of each example into `groups` groups of
    ``units // groups`` features and normalizes each group by its own mean and variance, so
    `groups` must divide `units`. With ``groups == units`` every group holds one feature,
    whose value minus its own mean is 0: the layer then outputs its offset beta whatever the
    input, so the count must be below `units` too (unless there is one unit, where nothing
    can be done).

    Args:
        units: number of features of the Dense layer, >= 1.
        groups: number of groups, >= 1.

    Returns:
        `groups` as an ``int``.

    Raises:
        ValueError: a count is not a positive integer, `groups` does not divide `units`, or
            every group would hold a single feature.
    """
    units = checks.integer(units, "units", minimum=1)
    groups = checks.integer(groups, "groups", minimum=1)
    if units % groups:
        divisors = [d for d in range(1, units + 1) if units % d == 0]
        raise ValueError(
            f"groups must divide the {units} units of the layer, got {groups}; "
            f"choose one of {divisors}"
        )
    if groups == units and units > 1:
        raise ValueError(
            f"groups must be below units ({units}): with one feature per group the layer "
            "outputs a constant; use groups=1 (LayerNormalization's statistics) or a divisor "
            "in between"
        )
    return groups


def normalization(kind, units, groups=None, name=None, momentum=0.99):
    """A fresh normalization layer for `units` Dense features.

    Args:
        kind: ``"batch"`` (``BatchNormalization``), ``"group"`` (``GroupNormalization`` with
            `groups` groups) or ``"layer"`` (``LayerNormalization``).
        units: number of features, >= 1.
        groups: group count, only for ``"group"`` (checked by `check_groups`).
        name: the layer's name, or None.
        momentum: BN's moving-average momentum, in [0, 1) (Keras's default 0.99).

    Returns:
        A Keras layer with Keras's default epsilon.

    Raises:
        ValueError: an unknown kind, or a bad group count.
    """
    import keras

    kind = _kind(kind)
    units = checks.integer(units, "units", minimum=1)
    momentum = checks.unit_interval(momentum, "momentum", closed_high=False)
    if kind == "group":
        if groups is None:
            raise ValueError("groups must be given for kind='group'; for example groups=8")
        return keras.layers.GroupNormalization(groups=check_groups(units, groups), name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(momentum=momentum, name=name)
    return keras.layers.LayerNormalization(name=name)


def build_normalized_mlp(kind, input_dim, hidden=(64, 64), groups=8, n_classes=10, momentum=0.99):
    """Dense -> normalization -> ReLU for every hidden layer, then a Dense layer of logits.

    The hidden Dense layers have no bias (the normalization's beta replaces it).

    Args:
        kind: one of `NORMS`.
        input_dim: number of input features, >= 1.
        hidden: the widths of the hidden layers, a non-empty list of integers >= 1.
        groups: group count for ``kind="group"``, checked against every width.
        n_classes: number of output logits, >= 2.
        momentum: BN's moving-average momentum, for ``kind="batch"``.

    Returns:
        An uncompiled ``keras.Sequential``.

    Raises:
        ValueError: an argument is invalid.
    """
    import keras

    kind = _kind(kind)
    input_dim = checks.integer(input_dim, "input_dim", minimum=1)
    n_classes = checks.integer(n_classes, "n_classes", minimum=2)
    layers = [keras.Input((input_dim,))]
    for i, units in enumerate(hidden_widths(hidden)):
        layers += [
            keras.layers.Dense(units, use_bias=False, name=f"dense_{i}"),
            normalization(kind, units, groups, name=f"{kind}_norm_{i}", momentum=momentum),
            keras.layers.Activation("relu", name=f"relu_{i}"),
        ]
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name=f"mlp_{kind}")


def _saved(variables):
    return [v.numpy() for v in variables]


def _restore(variables, values):
    for v, value in zip(variables, values):
        v.assign(value)


def _gap_function(model):
    """A compiled function: batches ``(k, B, d)`` -> softmax outputs in both modes.

    The signature keeps the model's feature size ``d``: a layer such as ``Flatten`` in a
    nested model cannot reshape a batch whose feature size is unknown at tracing time
    (Keras 3.10 fails there with InvalidArgumentError in ``Reshape``).
    """
    import tensorflow as tf

    features = model.input_shape[1:]

    @tf.function(input_signature=[tf.TensorSpec([None, None, *features], tf.float32)])
    def both(batches):
        train = tf.TensorArray(tf.float32, size=tf.shape(batches)[0])
        infer = tf.TensorArray(tf.float32, size=tf.shape(batches)[0])
        for i in tf.range(tf.shape(batches)[0]):
            train = train.write(i, tf.nn.softmax(model(batches[i], training=True)))
            infer = infer.write(i, tf.nn.softmax(model(batches[i], training=False)))
        return train.stack(), infer.stack()

    return both


def _eager_both(model):
    """`_gap_function`'s result without compiling: cheaper for a few large batches."""
    import tensorflow as tf

    def both(batches):
        pairs = [
            (tf.nn.softmax(model(xb, training=True)), tf.nn.softmax(model(xb, training=False)))
            for xb in tf.constant(batches)
        ]
        return tf.stack([p for p, _ in pairs]), tf.stack([q for _, q in pairs])

    return both


def _mode_gap(model, both, X, y, batch_size):
    n = len(X) // batch_size * batch_size
    kept = _saved(model.non_trainable_variables)
    try:
        p, q = both(np.reshape(X[:n], (n // batch_size, batch_size, -1)))
    finally:
        _restore(model.non_trainable_variables, kept)
    p = p.numpy().reshape(n, -1).astype(np.float64)
    q = q.numpy().reshape(n, -1).astype(np.float64)
    labels = y[:n]
    return {
        "gap": float(0.5 * np.abs(p - q).sum(axis=1).mean()),
        "acc_train_mode": float((p.argmax(axis=1) == labels).mean()),
        "acc_infer_mode": float((q.argmax(axis=1) == labels).mean()),
    }


def mode_gap(model, X, y, batch_size):
    r"""How much a model's predictions depend on its mode, on batches of `batch_size` examples.

    Each complete batch of $B$ examples is passed once with ``training=True`` (BN normalizes
    by the batch's own statistics) and once with ``training=False`` (moving statistics).
    With $p$ and $q$ the two softmax outputs of an example, the gap is the mean over the
    examples of the total-variation distance
    $\tfrac12 \sum_k |p_k - q_k|$, in [0, 1]. The moving statistics that the training-mode
    pass updates are put back afterwards, so the model is left as it was. Up to 64 batches
    run eagerly, more in one compiled loop (tracing costs more than a few eager calls).

    Args:
        model: a Keras model that outputs logits.
        X: images, shape ``(n, ...)`` with ``n >= batch_size``; flattened.
        y: integer labels, one per image.
        batch_size: $B$, >= 1; the last ``n mod B`` examples are left out.

    Returns:
        A dict: ``gap``, ``acc_train_mode``, ``acc_infer_mode`` (accuracies of the two passes).

    Raises:
        ValueError: bad arrays or a batch larger than the data.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a Keras model, got {type(model).__name__}")
    X, y = images_and_labels(X, y, "X/y")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if batch_size > len(X):
        raise ValueError(
            f"batch_size must be at most the number of examples ({len(X)}), got {batch_size}"
        )
    both = _gap_function(model) if len(X) // batch_size > 64 else _eager_both(model)
    return _mode_gap(model, both, X, y, batch_size)


def reinitialize(model, seed):
    """Give every weight of `model` the value a freshly built model would draw at `seed`.

    Kernels are drawn with Glorot's uniform initializer (Keras's default for Dense), seeded
    from `seed` and the weight's position; BN's ``gamma`` and ``moving_variance`` become 1;
    every other weight (biases, ``beta``, ``moving_mean``) becomes 0. This is much cheaper
    than building a new model, and the same `seed` always gives the same weights.

    Args:
        model: a Keras model whose weights are kernels, biases and normalization weights.
        seed: non-negative integer.

    Raises:
        ValueError: a bad seed, or a weight of another kind (which would stay unset).
    """
    import keras

    seed = checks.seed(seed)
    for i, var in enumerate(model.weights):
        name = var.path.rsplit("/", 1)[-1]
        if name == "kernel":
            init = keras.initializers.GlorotUniform(seed=seed * 1000 + i)
        elif name in ("gamma", "moving_variance"):
            init = keras.initializers.Ones()
        elif name in ("beta", "bias", "moving_mean"):
            init = keras.initializers.Zeros()
        else:
            raise ValueError(f"model holds a weight reinitialize does not know: {var.path}")
        var.assign(init(var.shape, dtype=var.dtype))


class SmallBatchRunner:
    """Trains `build_normalized_mlp` networks at several batch sizes with one compiled loop each.

    A run trains with Adam on the softmax cross-entropy for `epochs` epochs: every batch size
    sees the same images the same number of times (the budget is in images, not steps), in a
    fresh shuffle per epoch (`helpers.training.steps.make_batches`, remainder dropped). One model
    and
    one compiled loop are kept per normalization and reused for every batch size and seed: its
    weights are set to those of a fresh model built after ``helpers.setup(seed)`` and its
    optimizer is reset, which gives the same result as a fresh model.

    Args:
        data: ``(X_train, y_train, X_valid, y_valid)``; images are flattened, labels are
            integers 0 .. n_classes - 1.
        hidden: hidden widths, as for `build_normalized_mlp`.
        groups: group count of GroupNormalization.
        learning_rate: Adam's learning rate, > 0.
        n_gap: the first this many validation images are used for `mode_gap`, >= 1.
        momentum: BN's moving-average momentum, in [0, 1).

    Raises:
        ValueError: bad data or settings.
    """

    def __init__(
        self, data, hidden=(64, 64), groups=8, learning_rate=1e-3, n_gap=256, momentum=0.99
    ):
        if not isinstance(data, (tuple, list)) or len(data) != 4:
            raise ValueError("data must be a tuple (X_train, y_train, X_valid, y_valid)")
        self.X_tr, self.y_tr = images_and_labels(data[0], data[1], "training")
        self.X_va, self.y_va = images_and_labels(data[2], data[3], "validation")
        if self.X_tr.shape[1] != self.X_va.shape[1]:
            raise ValueError("training and validation images must have the same shape")
        self.hidden = hidden_widths(hidden)
        for units in self.hidden:
            check_groups(units, groups)
        self.groups = int(groups)
        self.learning_rate = checks.positive(learning_rate, "learning_rate")
        self.n_classes = max(2, int(max(self.y_tr.max(), self.y_va.max())) + 1)
        self.n_gap = checks.integer(n_gap, "n_gap", minimum=1)
        self.momentum = checks.unit_interval(momentum, "momentum", closed_high=False)
        self._compiled = {}

    def _build(self, kind):
        return build_normalized_mlp(
            kind, self.X_tr.shape[1], self.hidden, self.groups, self.n_classes, self.momentum
        )

    def _compile(self, kind):
        model = self._build(kind)
        optimizer, train_steps = adam_loop(model, self.X_tr, self.y_tr, self.learning_rate)
        return model, optimizer, train_steps, _gap_function(model)

    def run(self, kind, batch_size, epochs, seed):
        """Train one network and measure it.

        Args:
            kind: one of `NORMS`.
            batch_size: examples per step, from 1 to the training set's size.
            epochs: passes over the training set, >= 1.
            seed: non-negative integer (initial weights and shuffles).

        Returns:
            A dict: ``kind``, ``batch_size``, ``seed``, ``steps``, ``val_acc`` (inference
            mode, whole validation set), and the `mode_gap` figures on the first `n_gap`
            validation images, in batches of `batch_size`.

        Raises:
            ValueError: an argument is invalid.
        """
        import tensorflow as tf

        kind = _kind(kind)
        batch_size = checks.integer(batch_size, "batch_size", minimum=1)
        most = min(len(self.X_tr), len(self.X_va), self.n_gap)
        if batch_size > most:
            raise ValueError(
                f"batch_size must be at most the number of training images, of validation "
                f"images and n_gap ({most}), got {batch_size}"
            )
        epochs = checks.integer(epochs, "epochs", minimum=1)
        seed = checks.seed(seed)
        if kind not in self._compiled:
            setup(seed)
            self._compiled[kind] = self._compile(kind)
        model, optimizer, train_steps, both = self._compiled[kind]
        reinitialize(model, seed)
        for var in optimizer.variables:  # moments and step count; the rate is set again below
            var.assign(tf.zeros_like(var))
        optimizer.learning_rate = self.learning_rate
        steps = len(self.X_tr) // batch_size * epochs
        train_steps(tf.constant(make_batches(len(self.X_tr), batch_size, steps, seed)))
        logits = model(self.X_va, training=False).numpy()
        return {
            "kind": kind,
            "batch_size": batch_size,
            "seed": seed,
            "steps": steps,
            "val_acc": float((logits.argmax(axis=1) == self.y_va).mean()),
            **_mode_gap(model, both, self.X_va[: self.n_gap], self.y_va, batch_size),
        }


def run_grid(data, kinds, batch_sizes, seeds, epochs, momentum=0.99, **runner_kwargs):
    """`SmallBatchRunner.run` for every seed, normalization and batch size, as one table.

    Args:
        data: ``(X_train, y_train, X_valid, y_valid)``, as for `SmallBatchRunner`.
        kinds: normalizations, each one of `NORMS`.
        batch_sizes: batch sizes, integers >= 1.
        seeds: seeds, non-negative integers.
        epochs: passes over the training set, >= 1.
        momentum: BN's moving-average momentum, in [0, 1).
        **runner_kwargs: the other arguments of `SmallBatchRunner` (``hidden``, ``groups``,
            ``n_gap``, ``learning_rate``).

    Returns:
        A DataFrame, one row per run (the dict of `SmallBatchRunner.run` plus ``momentum``),
        in the order seed, normalization, batch size.

    Raises:
        ValueError: `kinds`, `batch_sizes` or `seeds` is empty (and see `SmallBatchRunner`).
    """
    import pandas as pd

    for name, values in (("kinds", kinds), ("batch_sizes", batch_sizes), ("seeds", seeds)):
        if isinstance(values, str) or not list(values):
            raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    runner = SmallBatchRunner(data, momentum=momentum, **runner_kwargs)
    rows = [
        {**runner.run(kind, b, epochs, s), "momentum": momentum}
        for s in seeds
        for kind in kinds
        for b in batch_sizes
    ]
    return pd.DataFrame(rows)


def compare_small_batches(runs, bn_runs):
    """BN against the better of GroupNorm and LayerNorm, per seed and batch size.

    Args:
        runs: `run_grid` of the three normalizations at one BN momentum.
        bn_runs: BN's runs at every momentum tried (those of `runs` included).

    Returns:
        A tuple of per-seed figures: ``bn_minus_best`` (DataFrame, seed x batch size: BN's
        validation accuracy minus the better alternative's, at `runs`' momentum), ``gap``
        (DataFrame, seed x batch size: BN's mode gap), and at the smallest batch size
        ``bn_best_momentum`` (Series: BN's best validation accuracy over the momenta minus
        the better alternative's) and ``bn_train_mode`` (Series: BN's training-mode accuracy
        minus the better alternative's, on the mode gap's images), in that order.

    Raises:
        ValueError: a table lacks a normalization or the smallest batch size.
    """
    if set(runs["kind"]) != set(NORMS) or set(bn_runs["kind"]) != {"batch"}:
        raise ValueError("runs must hold the three normalizations, and bn_runs BN's runs only")
    acc = runs.pivot_table("val_acc", ["seed", "batch_size"], "kind")
    bn_minus_best = (acc["batch"] - acc[["group", "layer"]].max(axis=1)).unstack("batch_size")
    bn = runs[runs["kind"] == "batch"]
    gap = bn.pivot(index="seed", columns="batch_size", values="gap")
    b_min = runs["batch_size"].min()
    at_min = bn_runs[bn_runs["batch_size"] == b_min]
    if at_min.empty:
        raise ValueError(f"bn_runs must hold runs at the smallest batch size, {b_min}")
    alternatives = runs[(runs["kind"] != "batch") & (runs["batch_size"] == b_min)]
    best_alt = alternatives.groupby("seed")[["val_acc", "acc_infer_mode"]].max()
    by_seed = at_min.groupby("seed")
    return (
        bn_minus_best,
        gap,
        by_seed["val_acc"].max() - best_alt["val_acc"],
        by_seed["acc_train_mode"].first() - best_alt["acc_infer_mode"],
    )


def draw_small_batches(axes, runs, batch_sizes):
    """Validation accuracy and mode gap against the batch size, one line per normalization
    and seed (chapter 09's figure; the chapter makes the figure and shows it).

    Args:
        axes: two matplotlib axes (accuracy, mode gap).
        runs: `run_grid`'s table.
        batch_sizes: the batch sizes, for the ticks.

    Raises:
        ValueError: not two axes.
    """
    axes = list(np.ravel(axes))
    if len(axes) != 2 or not all(hasattr(ax, "plot") for ax in axes):
        raise ValueError(f"axes must be 2 matplotlib axes, got {len(axes)} object(s)")
    ax_acc, ax_gap = axes
    first_seed = runs["seed"].min()
    for kind, group in runs.groupby("kind"):
        color = f"C{NORMS.index(kind)}"
        for s, run in group.groupby("seed"):
            kw = dict(marker="o", alpha=0.7, color=color, label=kind if s == first_seed else None)
            ax_acc.plot(run["batch_size"], run["val_acc"], **kw)
            ax_gap.plot(run["batch_size"], run["gap"], **kw)
    for ax, label in [(ax_acc, "validation accuracy"), (ax_gap, "mode gap (train vs infer)")]:
        ax.set(xscale="log", xticks=list(batch_sizes), xticklabels=list(batch_sizes))
        ax.set(ylabel=label, xlabel="batch size (same images seen)")
        ax.minorticks_off()  # a log axis would label its minor ticks over the batch sizes
    ax_acc.legend()
