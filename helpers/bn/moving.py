"""BN's moving statistics against the update rule and against exact statistics (chapter 02).

* `fit_with_snapshots` trains a model for one epoch in order and keeps every weight before and
  after each batch; `replay_update_rule` recomputes, in float64 NumPy, the moving statistics
  of the two BN layers of chapter 02's small network from those snapshots.
* `ema_replay` replays the moving mean and variance of a first BN layer over many steps of
  shuffled batches, for several batch sizes and momenta; `keras_moving_means` runs the same
  batches through a real Keras layer; `settling_table` summarizes how fast and how close each
  estimate settles.
* `with_exact_statistics`, `statistics_gap` and `compare_statistics` put a trained model's
  moving statistics beside the exact statistics of one pass over its training data.

The update rule itself is `helpers.bn.reference.update_moving`.
"""

from helpers import checks
from helpers.bn.reference import (
    batch_moments,
    batch_norm_train,
    moving_average_trajectory,
    update_moving,
)

import numpy as np
import pandas as pd

__all__ = [
    "fit_with_snapshots",
    "replay_update_rule",
    "rms_error",
    "noise_floor",
    "ema_replay",
    "keras_moving_means",
    "settling_table",
    "shown_settling",
    "with_exact_statistics",
    "statistics_gap",
    "accuracy",
    "compare_statistics",
]

#: Decimals shown for each column of `settling_table` (steps are whole numbers).
SETTLING_DIGITS = {
    "steps to within 2× floor": 0,
    "settled RMS error": 5,
    "noise floor (ema-noise)": 5,
    "settled / floor": 2,
    "settled RMS error, variance": 5,
    "moving var / true var": 4,
    "(B − 1)/B": 4,
}


def _bn_layers(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def fit_with_snapshots(model, x, y, batch_size):
    """Train a compiled model for one epoch, in order, keeping its weights around every batch.

    Args:
        model: a compiled `keras.Model`.
        x: the training inputs, in the order the batches take them.
        y: the training targets.
        batch_size: images per batch, >= 1.

    Returns:
        ``(before, after)``: two lists, one entry per batch, each ``model.get_weights()``
        just before and just after that batch's training step.

    Raises:
        ValueError: `batch_size` is not a positive integer.
    """
    import keras

    checks.integer(batch_size, "batch_size", minimum=1)
    before, after = [], []
    snapshots = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: before.append(model.get_weights()),
        on_train_batch_end=lambda batch, logs: after.append(model.get_weights()),
    )
    model.fit(
        x, y, batch_size=batch_size, shuffle=False, epochs=1, verbose=0, callbacks=[snapshots]
    )
    return before, after


def _elu(a):
    return np.where(a > 0, a, np.expm1(np.minimum(a, 0.0)))


def replay_update_rule(before, after, x, momentum, epsilon):
    """Replay the moving statistics of chapter 02's network in float64 and compare with Keras.

    The network is ``Flatten -> BN 1 -> Dense(elu) -> BN 2 -> Dense``, whose weights come in
    the order γ₁, β₁, μ̂₁, σ̂²₁, W, b, γ₂, β₂, μ̂₂, σ̂²₂, W_out, b_out. For each batch k, BN 1's
    inputs are its pixels and BN 2's are ``elu(BN_1(x) W + b)`` with the weights before the
    step; both moving statistics start where Keras starts them (0 and 1) and follow

        v̂ ← v̂ × momentum + v × (1 − momentum)

    with the batch variance divided by N, and, as a counter-check, by N − 1.

    Args:
        before: the weights before each batch (from `fit_with_snapshots`).
        after: the weights after each batch, one entry per entry of `before`.
        x: the batches' inputs, shape ``[steps, batch, ...]``.
        momentum: the layers' momentum, in [0, 1].
        epsilon: the layers' ε, > 0.

    Returns:
        ``(errors, ours)``: `errors` is a DataFrame with one row per step and layer and the
        columns ``step``, ``layer``, ``mean``, ``variance (÷N)`` and ``variance (÷(N−1))``
        (the largest |Keras − ours| of each); `ours` maps ``"BN 1"`` and ``"BN 2"`` to the
        final ``(moving mean, moving variance)`` of the ÷N replay.

    Raises:
        ValueError: `before` and `after` differ in length, a snapshot does not hold 12 arrays,
            or `x` does not hold one batch per snapshot.
    """
    if len(before) != len(after) or not before:
        raise ValueError(
            f"before and after must hold one snapshot per batch each, got {len(before)} and "
            f"{len(after)}; pass both lists of fit_with_snapshots."
        )
    if any(len(w) != 12 for w in [*before, *after]):
        raise ValueError(
            "each snapshot must hold the 12 weight arrays of Flatten, BN, Dense, BN, Dense; "
            "pass the snapshots of chapter 02's network."
        )
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 3 or len(x) != len(before):
        raise ValueError(
            f"x must have shape [steps, batch, ...] with {len(before)} steps, got shape {x.shape}."
        )
    sizes = {"BN 1": len(before[0][0]), "BN 2": len(before[0][6])}
    ours = {name: (np.zeros(n), np.ones(n)) for name, n in sizes.items()}  # Keras's start
    var_unbiased = {name: var for name, (_, var) in ours.items()}
    rows = []
    for k, (w, w_after) in enumerate(zip(before, after)):
        pixels = x[k].reshape(len(x[k]), -1)
        h, _, _ = batch_norm_train(pixels, w[0], w[1], epsilon=epsilon)
        inputs = {"BN 1": pixels, "BN 2": _elu(h @ w[4] + w[5])}
        keras_state = {"BN 1": (w_after[2], w_after[3]), "BN 2": (w_after[8], w_after[9])}
        for name, a in inputs.items():
            mean, var = batch_moments(a)
            _, var1 = batch_moments(a, ddof=1)
            ours[name] = (
                update_moving(ours[name][0], mean, momentum),
                update_moving(ours[name][1], var, momentum),
            )
            var_unbiased[name] = update_moving(var_unbiased[name], var1, momentum)
            k_mean, k_var = keras_state[name]
            rows.append(
                (
                    k + 1,
                    name,
                    np.abs(k_mean - ours[name][0]).max(),
                    np.abs(k_var - ours[name][1]).max(),
                    np.abs(k_var - var_unbiased[name]).max(),
                )
            )
    columns = ["step", "layer", "mean", "variance (÷N)", "variance (÷(N−1))"]
    return pd.DataFrame(rows, columns=columns), ours


def rms_error(estimates, target):
    """Root mean square over the features of ``estimates − target``, one value per step.

    Args:
        estimates: array ``[steps, features]``.
        target: array ``[features]``.

    Returns:
        A float64 array ``[steps]``.

    Raises:
        ValueError: the feature sizes differ.
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if estimates.shape[-1:] != target.shape:
        raise ValueError(
            f"estimates have shape {estimates.shape} and target {target.shape}; pass one "
            "target value per feature."
        )
    return np.sqrt(((estimates - target) ** 2).mean(axis=-1))


def noise_floor(momentum, variance, batch_size):
    """Predicted RMS noise of a settled moving mean: √((1 − m)/(1 + m)) · s/√B.

    Args:
        momentum: m, in [0, 1).
        variance: the per-feature variances s², whose mean is used.
        batch_size: B, >= 1.

    Returns:
        The floor, a float.

    Raises:
        ValueError: `momentum` outside [0, 1) or `batch_size` not a positive integer.
    """
    m = checks.unit_interval(momentum, "momentum", closed_high=False)
    checks.integer(batch_size, "batch_size", minimum=1)
    return float(np.sqrt((1 - m) / (1 + m) * np.mean(variance) / batch_size))


def ema_replay(x, target, batch_sizes, momenta, steps, seed):
    """Replay a first BN layer's moving mean and variance over `steps` shuffled batches.

    Each batch size draws its batches from `x` reshuffled at every epoch, as ``fit()`` does;
    the batch statistics are means and biased variances (`batch_moments`), and each momentum's
    estimates start at 0 (mean) and 1 (variance), as Keras's do.

    Args:
        x: the training inputs, shape ``[n, features]``.
        target: ``(mean, variance)`` the estimates are compared with, one value per feature.
        batch_sizes: the batch sizes, each >= 1.
        momenta: the momenta, each in [0, 1].
        steps: the training steps, a positive multiple of 100 (statistics are computed
            100 steps at a time).
        seed: seed of the shuffles.

    Returns:
        ``(runs, orders)``: `runs` maps ``(batch size, momentum)`` to ``(RMS error of the
        moving mean, RMS error of the moving variance, moving variance)`` after each step;
        `orders` maps each batch size to the image indices in the order they were used.

    Raises:
        ValueError: a bad size, momentum or seed.
    """
    x = np.asarray(x)
    checks.integer(steps, "steps", minimum=100)
    if steps % 100:
        raise ValueError(f"steps must be a multiple of 100, got {steps}.")
    rng = np.random.default_rng(checks.seed(seed))
    runs, orders = {}, {}
    for B in batch_sizes:
        checks.integer(B, "batch size", minimum=1)
        n_epochs = steps * B // len(x) + 1
        order = np.concatenate([rng.permutation(len(x)) for _ in range(n_epochs)])
        orders[B] = order[: steps * B]
        means, variances = np.empty((steps, x.shape[1])), np.empty((steps, x.shape[1]))
        for start in range(0, steps, 100):
            block = x[orders[B][start * B : (start + 100) * B]].reshape(100, B, -1)
            means[start : start + 100] = block.mean(axis=1)
            variances[start : start + 100] = block.var(axis=1)
        for m in momenta:
            est_mean = moving_average_trajectory(means, m, initial=0.0)
            est_var = moving_average_trajectory(variances, m, initial=1.0)
            runs[B, m] = (rms_error(est_mean, target[0]), rms_error(est_var, target[1]), est_var)
    return runs, orders


def keras_moving_means(x, batch_size, momentum):
    """Train a model holding one Keras BN layer on `x`, in order, and read its moving mean.

    The optimizer's learning rate is 0, so only the moving statistics change.

    Args:
        x: inputs ``[n, features]``, in the order of the batches.
        batch_size: images per batch, >= 1.
        momentum: the layer's momentum, in [0, 1].

    Returns:
        A float64 array ``[steps, features]``: ``moving_mean`` after each batch.

    Raises:
        ValueError: a bad batch size or momentum.
    """
    import keras

    checks.integer(batch_size, "batch_size", minimum=1)
    m = checks.unit_interval(momentum, "momentum")
    x = np.asarray(x, dtype=np.float32)
    layer = keras.layers.BatchNormalization(momentum=m)
    probe = keras.Sequential([keras.Input(x.shape[1:]), layer])
    probe.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.0))
    means = []
    reader = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: means.append(layer.moving_mean.numpy())
    )
    probe.fit(x, np.zeros_like(x), batch_size=batch_size, shuffle=False, verbose=0,
              callbacks=[reader])  # fmt: skip
    return np.array(means, dtype=np.float64)


def settling_table(runs, variance, steps):
    """How fast each moving estimate of `ema_replay` settles, and how close.

    For each (batch size B, momentum m): the first step whose mean error is within twice
    `noise_floor`, and, when that comes within the first half of the run, the RMS errors of
    the mean and the variance over the second half and the ratio of the moving variance to
    the true one there (NaN otherwise), beside (B − 1)/B.

    Args:
        runs: the `runs` of `ema_replay`.
        variance: the true per-feature variances.
        steps: the number of steps of the replay.

    Returns:
        A DataFrame, one row per (batch size, momentum), with the columns of `SETTLING_DIGITS`.

    Raises:
        ValueError: `runs` is empty.
    """
    if not runs:
        raise ValueError("runs is empty; pass the runs of ema_replay.")
    rows, half = [], steps // 2
    for (B, m), (err_mean, err_var, est_var) in runs.items():
        floor = noise_floor(m, variance, B)
        reached = np.flatnonzero(err_mean < 2 * floor)
        first = reached[0] + 1.0 if len(reached) else np.nan
        settled = np.sqrt((err_mean[half:] ** 2).mean())
        settled_var = np.sqrt((err_var[half:] ** 2).mean())
        var_ratio = (est_var[half:].sum(axis=1) / np.sum(variance)).mean()
        if not first < half:  # not settled for the whole second half: no steady state
            settled = settled_var = var_ratio = np.nan
        rows.append((B, m, first, settled, floor, settled / floor, settled_var, var_ratio,
                     (B - 1) / B))  # fmt: skip
    return pd.DataFrame(rows, columns=["batch size", "momentum", *SETTLING_DIGITS])


def shown_settling(table):
    """`settling_table` rounded for display, "—" where an estimate never settled.

    Args:
        table: a DataFrame from `settling_table`.

    Returns:
        A DataFrame of text indexed by batch size and momentum.

    Raises:
        ValueError: `table` lacks a column of `SETTLING_DIGITS`.
    """
    missing = [c for c in ["batch size", "momentum", *SETTLING_DIGITS] if c not in table]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; pass a table of settling_table.")
    shown = table.copy()
    for column, d in SETTLING_DIGITS.items():
        shown[column] = [f"{v:.{d}f}" if np.isfinite(v) else "—" for v in table[column]]
    return shown.set_index(["batch size", "momentum"])


def with_exact_statistics(model, x):
    """A copy of `model` whose BN layers hold the exact statistics of one pass over `x`.

    The layers are switched in order, so each layer's inputs are computed with the layers
    before it already holding their exact statistics; the variance divides by N.

    Args:
        model: a `keras.Sequential` or functional model.
        x: the inputs to measure the statistics on.

    Returns:
        A new model with `model`'s weights, except the BN layers' moving statistics.

    Raises:
        ValueError: `model` has no BN layer.
    """
    import keras

    if not _bn_layers(model):
        raise ValueError("model has no BatchNormalization layer; there is nothing to replace.")
    exact = keras.models.clone_model(model)
    exact.set_weights(model.get_weights())
    for layer in _bn_layers(exact):
        inputs = keras.Model(exact.inputs, layer.input).predict(x, batch_size=1000, verbose=0)
        mean, var = batch_moments(inputs, axis=layer.axis)
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(var)
    return exact


def statistics_gap(model, exact):
    """How far each BN layer's moving statistics are from the exact ones, in x̂'s units.

    With μ, σ² exact and μ̂, σ̂² moving, per feature the shift is (μ̂ − μ)/√(σ² + ε) and the
    scale error is √((σ² + ε)/(σ̂² + ε)) − 1; each is summarized as an RMS over the features.

    Args:
        model: the trained model (moving statistics).
        exact: its copy from `with_exact_statistics`.

    Returns:
        A list of ``(layer label, RMS shift, RMS scale error)``, one per BN layer.

    Raises:
        ValueError: the two models do not have the same BN layers.
    """
    pairs = list(zip(_bn_layers(model), _bn_layers(exact)))
    if not pairs or len(_bn_layers(model)) != len(_bn_layers(exact)):
        raise ValueError(
            "model and exact must hold the same BN layers; pass a model and its copy."
        )
    rows = []
    for i, (moving, ex) in enumerate(pairs, start=1):
        mu_hat, var_hat = moving.moving_mean.numpy(), moving.moving_variance.numpy()
        mu, var = ex.moving_mean.numpy(), ex.moving_variance.numpy()
        shift = (mu_hat - mu) / np.sqrt(var + moving.epsilon)
        scale = np.sqrt((var + moving.epsilon) / (var_hat + moving.epsilon)) - 1
        label = f"BN {i} ({len(mu)} features)"
        rows.append((label, np.sqrt((shift**2).mean()), np.sqrt((scale**2).mean())))
    return rows


def accuracy(model, x, y):
    """The share of `x` whose most probable class is `y`.

    Args:
        model: a classifier returning one score per class.
        x: inputs.
        y: integer labels, one per input.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: `x` and `y` differ in length.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} inputs but y has {len(y)} labels; pass one each.")
    return float((model.predict(x, batch_size=1000, verbose=0).argmax(axis=1) == y).mean())


def compare_statistics(trained, x, y):
    """Moving against exact statistics for every trained model: the gaps and the accuracies.

    Args:
        trained: dict ``{(training label, seed): (model, its with_exact_statistics copy)}``.
        x: validation inputs.
        y: validation labels.

    Returns:
        ``(gaps, accuracies)``: `gaps` has one row per model and BN layer (``training``,
        ``seed``, ``layer`` and the two RMS measures of `statistics_gap`); `accuracies` one
        row per model (``training``, ``seed``, ``moving averages``, ``exact statistics``,
        ``exact − moving``).

    Raises:
        ValueError: `trained` is empty.
    """
    if not trained:
        raise ValueError("trained is empty; pass {(label, seed): (model, exact copy)}.")
    gap_columns = ["RMS shift of x̂ (std units)", "RMS relative scale error of x̂"]
    gaps = pd.DataFrame(
        [
            (label, s, *row)
            for (label, s), pair in trained.items()
            for row in statistics_gap(*pair)
        ],
        columns=["training", "seed", "layer", *gap_columns],
    )
    acc = pd.DataFrame(
        [
            (label, s, accuracy(m, x, y), accuracy(e, x, y))
            for (label, s), (m, e) in trained.items()
        ],
        columns=["training", "seed", "moving averages", "exact statistics"],
    )
    acc["exact − moving"] = acc["exact statistics"] - acc["moving averages"]
    return gaps, acc
