"""Frozen BN in transfer learning: the second experiment of chapter 09.

In Keras 3 a BN layer with ``trainable=False`` also runs in inference mode, even inside
``fit``. `class_split` cuts Fashion-MNIST into two sets of classes, `build_base` builds a BN
feature extractor, `transfer_model` puts a new head on it, called with a chosen ``training``
argument, `moving_stats` / `stats_drift` measure how far the moving statistics moved, and
`transfer_run` compares fine-tuning with BN left as it is and with BN frozen. `fit_drift`
fits a model and measures how far its base's statistics moved; `SHOWN` and `draw_transfer`
are the chapter's figure.

Every argument is checked at the boundary with `helpers.checks`, so bad input stops with
one sentence naming it.
"""

from helpers import checks
from helpers.runtime.session import setup
from helpers.training.small_batches import mode_gap
from helpers.training.steps import adam_loop, hidden_widths, images_and_labels, make_batches

import numpy as np


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
    for i, units in enumerate(hidden_widths(hidden)):
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
    import tensorflow as tf

    _, train_steps = adam_loop(model, X, y, learning_rate, training=training)
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
    return images_and_labels(pair[0], pair[1], name)


def fit_drift(model, base, X, y, epochs=1, batch_size=32):
    """Compile `model` (Adam, from-logits cross-entropy), `fit` it, and say how far the moving
    statistics of `base`'s BN layers moved (`stats_drift`; 0 when they did not).

    Args:
        model: an uncompiled Keras model that holds `base`, such as `transfer_model(base)`.
        base: the model whose BN layers are measured.
        X: training images.
        y: integer labels.
        epochs: passes over `X`, >= 1.
        batch_size: examples per step, >= 1.

    Returns:
        A float >= 0.

    Raises:
        ValueError: a bad epoch count or batch size, or `base` has no BN layer.
    """
    import keras

    epochs = checks.integer(epochs, "epochs", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    before = moving_stats(base)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return stats_drift(before, moving_stats(base))


#: The accuracies of `transfer_run` that chapter 09 shows, with their labels.
SHOWN = {
    "acc_frozen": "(a) head, BN frozen",
    "acc_unfrozen_bn": "(b) head, BN trainable",
    "acc_stats_only": "(c) statistics only",
    "acc_affine_only": "(d) γ, β only",
    "acc_train_mode_default": "unfrozen: what step 1 sees",
    "acc_tuned_default": "unfrozen, default, 1 epoch",
    "acc_tuned_bn_frozen": "unfrozen, BN frozen, 1 epoch",
}


def draw_transfer(ax, runs):
    """One dot per seed for each accuracy of `SHOWN` (chapter 09's figure; the chapter makes
    the figure, titles it and shows it).

    Args:
        ax: one matplotlib axes.
        runs: a DataFrame of `transfer_run` results, one row per seed.

    Raises:
        ValueError: `ax` is not an axes, or `runs` lacks a column of `SHOWN`.
    """
    if not hasattr(ax, "scatter"):
        raise ValueError(f"ax must be a matplotlib axes, got {type(ax).__name__}")
    missing = [c for c in SHOWN if c not in runs]
    if missing:
        raise ValueError(f"runs lacks the transfer_run figures {missing}")
    for i, col in enumerate(SHOWN):
        ax.scatter([i] * len(runs), runs[col], color=f"C{i}")
    ax.set_xticks(range(len(SHOWN)), list(SHOWN.values()), rotation=20)
    ax.set_ylabel("accuracy on classes 5-9")


def task_split(train, valid, n_per_task, old=(0, 1, 2, 3, 4), new=(5, 6, 7, 8, 9)):
    """The two tasks of a transfer experiment: pretraining on the `old` classes of the first
    half of `train`, transfer to the `new` classes of its second half (other images), and
    validation on the `new` classes of `valid`; labels renumbered 0, 1, ... (`class_split`).

    Args:
        train: ``(X, y)``, the training split.
        valid: ``(X, y)``, the validation split.
        n_per_task: the most images of each task, an integer >= 1.
        old: the pretraining classes.
        new: the transfer classes.

    Returns:
        ``(pretrain, transfer, valid_new)``, three ``(X, y)`` pairs.

    Raises:
        ValueError: `n_per_task` is not an integer >= 1 (and see `class_split`).
    """
    n_per_task = checks.integer(n_per_task, "n_per_task", minimum=1)
    for pair, name in ((train, "train"), (valid, "valid")):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{name} must be a pair (X, y) of images and labels")
    (X, y), half = train, len(train[0]) // 2
    pre = class_split(X[:half], y[:half], list(old))
    after = class_split(X[half:], y[half:], list(new))
    pre, after = [(Xs[:n_per_task], ys[:n_per_task]) for Xs, ys in (pre, after)]
    return pre, after, class_split(valid[0], valid[1], list(new))
