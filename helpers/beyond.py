"""Batch Normalization beyond one batch: small batches, and frozen BN in transfer learning.

Two experiments of chapter 09, each in a few functions:

* **Small batches.** `build_normalized_mlp` builds the same multilayer perceptron with a
  BatchNormalization, GroupNormalization or LayerNormalization layer after every hidden Dense
  layer. `SmallBatchRunner` trains it with Adam at several batch sizes for the same number of
  epochs (the same images seen), reusing one compiled training loop per normalization, and
  measures the validation accuracy and `mode_gap`, the difference between training-mode and
  inference-mode outputs on validation batches as large as the training batches.
  `check_groups` states GroupNormalization's condition on Dense features: the group count
  must divide the number of units.
* **Frozen BN.** In Keras 3 a BN layer with ``trainable=False`` also runs in inference mode,
  even inside ``fit``. `class_split` cuts Fashion-MNIST into two sets of classes,
  `build_base` builds a BN feature extractor, `transfer_model` puts a new head on it, called
  with a chosen ``training`` argument, and `moving_stats` / `stats_drift` measure how far the
  moving statistics moved.

Every argument is checked at the boundary with `helpers.checks`, so bad input stops with one
sentence naming it.
"""

from helpers import checks
from helpers.training import gradient_step

import numpy as np

#: The normalizations compared, by the names the chapter uses.
NORMS = ("batch", "group", "layer")


def _kind(kind):
    if kind not in NORMS:
        raise ValueError(f"kind must be one of {', '.join(NORMS)}, got {kind!r}")
    return kind


def _hidden(hidden):
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple)) or not hidden:
        raise ValueError(
            f"hidden must be a non-empty list of layer widths, such as [64, 64], got {hidden!r}"
        )
    return [checks.integer(u, "each hidden width", minimum=1) for u in hidden]


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
    for i, units in enumerate(_hidden(hidden)):
        layers += [
            keras.layers.Dense(units, use_bias=False, name=f"dense_{i}"),
            normalization(kind, units, groups, name=f"{kind}_norm_{i}", momentum=momentum),
            keras.layers.Activation("relu", name=f"relu_{i}"),
        ]
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name=f"mlp_{kind}")


def _xy(X, y, name):
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"{name} images must be a non-empty array of shape (n, ...)")
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} labels must be one integer per image ({len(X)}), got {y.shape}")
    return X.reshape(len(X), -1), y.astype(np.int32)


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
    X, y = _xy(X, y, "X/y")
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


def _trainer(model, X, y, learning_rate, training=True):
    """Adam and a compiled loop: ``train_steps(batches)`` runs one step per row of indices.

    With ``training=False`` the model is called in inference mode in every step.
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


class SmallBatchRunner:
    """Trains `build_normalized_mlp` networks at several batch sizes with one compiled loop each.

    A run trains with Adam on the softmax cross-entropy for `epochs` epochs: every batch size
    sees the same images the same number of times (the budget is in images, not steps), in a
    fresh shuffle per epoch (`helpers.training.make_batches`, remainder dropped). One model and
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
        self.X_tr, self.y_tr = _xy(data[0], data[1], "training")
        self.X_va, self.y_va = _xy(data[2], data[3], "validation")
        if self.X_tr.shape[1] != self.X_va.shape[1]:
            raise ValueError("training and validation images must have the same shape")
        self.hidden = _hidden(hidden)
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
        optimizer, train_steps = _trainer(model, self.X_tr, self.y_tr, self.learning_rate)
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
        from helpers.repro import setup
        from helpers.training import make_batches

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


# --- Frozen BN in transfer learning --------------------------------------------------------


def class_split(X, y, classes):
    """The images of some classes only, with their labels renumbered 0, 1, ... in that order.

    Args:
        X: images, shape ``(n, ...)``.
        y: integer labels, one per image.
        classes: the labels to keep, a non-empty list of distinct integers; ``classes[k]``
            becomes label ``k``.

    Returns:
        ``(X_kept, y_kept)``: the kept images in their original order, and int32 labels.

    Raises:
        ValueError: bad arrays, a bad class list, or a class with no image.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 1 or y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold one integer label per image ({len(X)}), got {y.shape}")
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (list, tuple, range)):
        raise ValueError(f"classes must be a list of labels, such as [0, 1, 2], got {classes!r}")
    classes = [checks.integer(c, "each class", minimum=0) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list of distinct labels, got {classes}")
    missing = [c for c in classes if not np.any(y == c)]
    if missing:
        raise ValueError(f"classes {missing} have no image in y; labels present: {np.unique(y)}")
    keep = np.isin(y, classes)
    relabel = np.zeros(int(max(y.max(), max(classes))) + 1, dtype=np.int32)
    relabel[classes] = np.arange(len(classes), dtype=np.int32)
    return X[keep], relabel[y[keep]]


def build_base(input_shape=(28, 28), hidden=(128, 64), name="base"):
    """A feature extractor: Flatten, then Dense (no bias) -> BatchNormalization -> ReLU.

    Args:
        input_shape: shape of one image, a tuple of integers >= 1.
        hidden: widths of the hidden layers, a non-empty list of integers >= 1.
        name: the model's name.

    Returns:
        An uncompiled ``keras.Sequential`` whose output is the last hidden layer's features.

    Raises:
        ValueError: a bad shape or width.
    """
    import keras

    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise ValueError(f"input_shape must be a tuple such as (28, 28), got {input_shape!r}")
    shape = tuple(checks.integer(d, "each input dimension", minimum=1) for d in input_shape)
    layers = [keras.Input(shape), keras.layers.Flatten()]
    for i, units in enumerate(_hidden(hidden)):
        layers += [
            keras.layers.Dense(units, use_bias=False, name=f"{name}_dense_{i}"),
            keras.layers.BatchNormalization(name=f"{name}_bn_{i}"),
            keras.layers.Activation("relu", name=f"{name}_relu_{i}"),
        ]
    return keras.Sequential(layers, name=name)


def bn_layers(model):
    """Every BatchNormalization layer of `model`, nested models included, in order.

    Raises:
        ValueError: `model` is not a Keras layer.
    """
    import keras

    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"model must be a Keras model or layer, got {type(model).__name__}")
    if isinstance(model, keras.layers.BatchNormalization):
        return [model]
    found = []
    for layer in getattr(model, "layers", []):
        found += bn_layers(layer)
    return found


def moving_stats(model):
    """Copies of the moving means and variances of every BN layer of `model`.

    Returns:
        A list of ``(moving_mean, moving_variance)`` NumPy arrays, one pair per BN layer.

    Raises:
        ValueError: `model` has no BatchNormalization layer.
    """
    layers = bn_layers(model)
    if not layers:
        raise ValueError("model has no BatchNormalization layer, so it has no moving statistics")
    return [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]


def stats_drift(before, after):
    r"""How far the moving means moved, in units of the earlier standard deviations.

    For each BN layer, the mean over its features $j$ of
    $|\mu^{\text{after}}_j - \mu^{\text{before}}_j| / \sqrt{\sigma^{2,\text{before}}_j}$;
    the largest over the layers is returned. It is exactly 0 when nothing moved.

    Args:
        before: `moving_stats` of the model earlier.
        after: `moving_stats` of the same model later.

    Returns:
        A float >= 0.

    Raises:
        ValueError: the two do not describe the same layers.
    """
    if (
        not isinstance(before, list)
        or not isinstance(after, list)
        or not before
        or len(before) != len(after)
        or any(np.shape(b[0]) != np.shape(a[0]) for b, a in zip(before, after))
    ):
        raise ValueError(
            "before and after must be moving_stats() of the same model, with the same layers"
        )
    drifts = [
        float(np.mean(np.abs(ma - mb) / np.sqrt(np.maximum(vb, 1e-12))))
        for (mb, vb), (ma, _) in zip(before, after)
    ]
    return max(drifts)


def transfer_model(base, n_classes, training=None):
    """``base`` followed by a new Dense head of logits, as a functional model.

    Args:
        base: a Keras model (the feature extractor), already built.
        n_classes: number of output logits, >= 2.
        training: None calls ``base(inputs)``, so that ``fit`` runs it in training mode;
            False calls ``base(inputs, training=False)``, which keeps its BN layers in
            inference mode whatever their ``trainable`` flag (the Keras transfer-learning
            guide's recommendation).

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        ValueError: a bad base, class count or `training` value.
    """
    import keras

    if not isinstance(base, keras.Model) or not base.built:
        raise ValueError("base must be a built Keras model, such as build_base()")
    n_classes = checks.integer(n_classes, "n_classes", minimum=2)
    if training not in (None, False):
        raise ValueError(f"training must be None or False, got {training!r}")
    inputs = keras.Input(base.input_shape[1:])
    features = base(inputs) if training is None else base(inputs, training=False)
    return keras.Model(inputs, keras.layers.Dense(n_classes, name="head")(features))


#: How `transfer_run` unfreezes the base after training the head on frozen features:
#: ``"default"`` sets ``base.trainable = True``; ``"bn_frozen"`` then sets every BN layer's
#: ``trainable`` back to False, which keeps them in inference mode. (Calling the base with
#: ``training=False``, the Keras guide's advice, behaves like ``"default"`` in Keras 3.15:
#: ``fit``'s ``training=True`` overrides it; the chapter shows it with `transfer_model`.)
TUNING_VARIANTS = ("default", "bn_frozen")


def _accuracy(model, X, y):
    return float((model(X, training=False).numpy().argmax(axis=1) == y).mean())


def _fit(model, X, y, learning_rate, epochs, batch_size, seed, training=True):
    """What ``fit`` does with Adam and from-logits cross-entropy, in one compiled loop.

    Returns the number of steps. ``training=False`` calls the model in inference mode, which
    ``fit`` cannot do (see `transfer_run`, variant "affine only").
    """
    from helpers.training import make_batches

    import tensorflow as tf

    _, train_steps = _trainer(model, X, y, learning_rate, training=training)
    steps = len(X) // batch_size * epochs
    train_steps(tf.constant(make_batches(len(X), batch_size, steps, seed)))
    return steps


def transfer_run(
    pretrain,
    new,
    valid,
    seed,
    hidden=(128, 64),
    epochs=(3, 3, 1),
    learning_rates=(1e-3, 1e-4),
    batch_size=32,
):
    """Pretrain a BN base on some classes, then reuse it on others in four ways; one seed.

    1. Pretrain ``base`` + head on `pretrain` (``epochs[0]`` epochs, Adam at
       ``learning_rates[0]``), then keep the base's weights.
    2. (a) *BN frozen*: ``base.trainable = False`` (BN layers included, hence in inference
       mode), a new head trained on `new` for ``epochs[1]`` epochs.
       (b) *BN not frozen*: the Dense layers frozen, the BN layers trainable (so in training
       mode: batch statistics, moving statistics and gamma/beta adapting to `new`), the same
       head training.
       (c) *statistics only*: as (b), but gamma and beta frozen (their variables'
       ``trainable`` set to False): BN runs in training mode and its moving statistics move
       towards those of `new`, while its scale and offset keep their pretrained values.
       (d) *gamma and beta only*: as (b), but every step calls the model with
       ``training=False``: BN normalizes with the pretrained moving statistics, which stay
       as they are, while gamma and beta train.
    3. From (a), unfreeze the base (``base.trainable = True``) and fine-tune everything for
       ``epochs[2]`` epochs at ``learning_rates[1]``, in each of the `TUNING_VARIANTS`.

    Every training loop is `fit`'s: Adam on the from-logits cross-entropy, the model called
    with ``training=True``, a fresh shuffle per epoch, compiled once per model.

    Args:
        pretrain: ``(X, y)`` of the pretraining classes, labels 0 .. k - 1.
        new: ``(X, y)`` of the new classes, labels 0 .. m - 1.
        valid: ``(X, y)`` validation images of the new classes.
        seed: non-negative integer; `helpers.setup` is called with it before pretraining,
            and Keras's random generators are re-seeded with it before every later model
            (the same head initialization in every variant).
        hidden: widths of the base's hidden layers.
        epochs: ``(pretraining, head, fine-tuning)`` epochs, integers >= 1.
        learning_rates: ``(pretraining and head, fine-tuning)``, numbers > 0.
        batch_size: examples per step, >= 1.

    Returns:
        A dict of figures: ``acc_frozen``, ``acc_unfrozen_bn``, ``acc_stats_only``,
        ``acc_affine_only`` (validation accuracy after 2a, 2b, 2c, 2d), ``drift_frozen``,
        ``drift_unfrozen_bn``, ``drift_stats_only``, ``drift_affine_only`` (`stats_drift` of
        the base during each), ``old_stats_weight`` (the weight that the pretrained moving
        statistics keep after the head's steps in 2b and 2c, momentum to the power of the
        steps), ``acc_before_tuning`` (= ``acc_frozen``), and per variant ``v`` of step 3:
        ``acc_train_mode_v`` (accuracy on validation batches of `batch_size` with
        ``training=True`` right before fine-tuning: what the training loop's first step
        sees), ``acc_tuned_v`` and ``drift_v`` (after fine-tuning).

    Raises:
        ValueError: an argument is invalid.
    """
    from helpers.repro import setup

    import keras

    seed = checks.seed(seed)
    X_p, y_p = _pair(pretrain, "pretrain")
    X_n, y_n = _pair(new, "new")
    X_v, y_v = _pair(valid, "valid")
    if not isinstance(epochs, (tuple, list)) or len(epochs) != 3:
        raise ValueError(f"epochs must be (pretraining, head, fine-tuning), got {epochs!r}")
    e_pre, e_head, e_tune = (checks.integer(e, "each epoch count", minimum=1) for e in epochs)
    if not isinstance(learning_rates, (tuple, list)) or len(learning_rates) != 2:
        raise ValueError(
            f"learning_rates must be (pretraining, fine-tuning), got {learning_rates!r}"
        )
    lr, lr_tune = (checks.positive(r, "each learning rate") for r in learning_rates)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    shape = (X_p.shape[1],)
    k_pre, k_new = int(y_p.max()) + 1, int(max(y_n.max(), y_v.max())) + 1

    setup(seed)
    base = build_base(shape, hidden)
    _fit(transfer_model(base, max(k_pre, 2)), X_p, y_p, lr, e_pre, batch_size, seed)
    pretrained = base.get_weights()

    def fresh_base(trainable):
        keras.utils.set_random_seed(seed)  # the same head initialization in every variant
        b = build_base(shape, hidden)
        b.set_weights(pretrained)
        b.trainable = trainable
        return b

    out = {}
    base_a = fresh_base(False)
    model_a = transfer_model(base_a, k_new)
    before = moving_stats(base_a)
    _fit(model_a, X_n, y_n, lr, e_head, batch_size, seed)
    out["acc_frozen"] = _accuracy(model_a, X_v, y_v)
    out["drift_frozen"] = stats_drift(before, moving_stats(base_a))

    base_b = fresh_base(True)
    for layer in base_b.layers:
        layer.trainable = layer in bn_layers(base_b)
    model_b = transfer_model(base_b, k_new)
    head_steps = _fit(model_b, X_n, y_n, lr, e_head, batch_size, seed)
    out["acc_unfrozen_bn"] = _accuracy(model_b, X_v, y_v)
    out["drift_unfrozen_bn"] = stats_drift(before, moving_stats(base_b))
    out["old_stats_weight"] = float(bn_layers(base_b)[0].momentum) ** head_steps

    for variant, training in (("stats_only", True), ("affine_only", False)):
        base_v = fresh_base(True)
        for layer in base_v.layers:
            layer.trainable = layer in bn_layers(base_v)
        if variant == "stats_only":
            for layer in bn_layers(base_v):
                layer.gamma.trainable = False
                layer.beta.trainable = False
        model_v = transfer_model(base_v, k_new)
        _fit(model_v, X_n, y_n, lr, e_head, batch_size, seed, training=training)
        out[f"acc_{variant}"] = _accuracy(model_v, X_v, y_v)
        out[f"drift_{variant}"] = stats_drift(before, moving_stats(base_v))

    out["acc_before_tuning"] = out["acc_frozen"]
    tuned = model_a.get_weights()
    for variant in TUNING_VARIANTS:
        b = fresh_base(True)
        model = transfer_model(b, k_new)
        model.set_weights(tuned)
        if variant == "bn_frozen":
            for layer in bn_layers(b):
                layer.trainable = False
        out[f"acc_train_mode_{variant}"] = mode_gap(model, X_v, y_v, batch_size)["acc_train_mode"]
        start = moving_stats(b)
        _fit(model, X_n, y_n, lr_tune, e_tune, batch_size, seed)
        out[f"acc_tuned_{variant}"] = _accuracy(model, X_v, y_v)
        out[f"drift_{variant}"] = stats_drift(start, moving_stats(b))
    return out


def _pair(pair, name):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{name} must be a pair (X, y) of images and labels")
    return _xy(pair[0], pair[1], name)
