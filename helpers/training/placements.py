"""Chapter 04's experiment: BN before or after the activation, trained under the same seeds.

* `train_placements` fits each of the book's two models (`helpers.training.models.book_model`)
  once per seed, with plain SGD and the same data, and keeps each run's history;
* `final_accuracies` is each run's last validation accuracy, one column per placement, with
  the paired difference;
* `sign_flip_p_value` is the exact paired sign-flip test on those differences;
* `plot_histories` draws the loss and validation accuracy of every run.
"""

import itertools

from helpers import checks
from helpers.runtime.session import setup
from helpers.training.models import book_model

import numpy as np

#: The two placements of the book (pp. 342-343), as named in the tables and the figure.
PLACEMENTS = {"after activation (p. 342)": "after", "before activation (p. 343)": "before"}
#: The column of `final_accuracies` that holds the paired difference.
DIFFERENCE = "before − after"


def train_placements(data, seeds, epochs, batch_size, learning_rate):
    """Train both placements once per seed and return every run's history.

    Each run calls `helpers.setup` with its seed first (same initial weights and shuffling for
    both placements of a seed), compiles with ``SGD(learning_rate)`` and the sparse
    categorical cross-entropy, and fits with ``verbose=0``.

    Args:
        data: ``(X_train, y_train, X_valid, y_valid)``.
        seeds: a non-empty list of seeds.
        epochs: epochs per run, >= 1.
        batch_size: >= 1.
        learning_rate: SGD's learning rate, > 0.

    Returns:
        A dict ``(placement name, seed)`` -> DataFrame of the history, indexed by epoch 1..n.

    Raises:
        ValueError: `seeds` is empty, or a size or rate is out of range.
    """
    import keras
    import pandas as pd

    if not seeds:
        raise ValueError("seeds must list at least one seed, e.g. [42, 43, 44].")
    checks.integer(epochs, "epochs", minimum=1)
    checks.integer(batch_size, "batch_size", minimum=1)
    checks.positive(learning_rate, "learning_rate", "SGD's default is 0.01")
    X_train, y_train, X_valid, y_valid = data
    histories = {}
    for seed, (name, placement) in itertools.product(seeds, PLACEMENTS.items()):
        setup(seed)
        model = book_model(placement)
        model.compile(
            loss="sparse_categorical_crossentropy",
            optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
            metrics=["accuracy"],
        )
        history = model.fit(
            X_train,
            y_train,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=(X_valid, y_valid),
            verbose=0,
        )
        histories[name, seed] = pd.DataFrame(history.history, index=range(1, epochs + 1))
    return histories


def final_accuracies(histories):
    """Each run's last validation accuracy: one row per seed, one column per placement.

    Args:
        histories: what `train_placements` returned.

    Returns:
        A DataFrame with a column per placement and `DIFFERENCE` (before minus after).

    Raises:
        ValueError: a seed lacks one of the two placements.
    """
    import pandas as pd

    seeds = sorted({seed for _, seed in histories})
    missing = [(n, s) for n in PLACEMENTS for s in seeds if (n, s) not in histories]
    if missing:
        raise ValueError(f"histories must hold both placements for every seed; missing {missing}.")
    final = pd.DataFrame(
        {
            name: {s: histories[name, s]["val_accuracy"].iloc[-1] for s in seeds}
            for name in PLACEMENTS
        }
    )
    final[DIFFERENCE] = final.iloc[:, 1] - final.iloc[:, 0]
    return final


def sign_flip_p_value(diffs):
    r"""Exact two-sided p-value of the paired sign-flip test.

    Under the hypothesis that the placement does not matter, each paired difference is as
    likely positive as negative; the p-value is the fraction of the $2^n$ sign patterns whose
    mean is at least as large in absolute value as the observed mean. Its smallest possible
    value is $2/2^n$.

    Args:
        diffs: the n paired differences, 1 <= n <= 20.

    Returns:
        The p-value, a float in (0, 1].

    Raises:
        ValueError: there are no differences, or more than 20 (2^n patterns).
    """
    diffs = np.asarray(diffs, dtype=np.float64).ravel()
    if not 1 <= diffs.size <= 20:
        raise ValueError(f"diffs must hold 1 to 20 differences, got {diffs.size}.")
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=diffs.size)))
    means = np.abs((flips * diffs).mean(axis=1))
    return float(np.mean(means >= abs(diffs.mean()) - 1e-12))


def plot_histories(axes, histories):
    """Loss (first axes) and validation accuracy (second) against the epoch, one line per run.

    Args:
        axes: two matplotlib axes, e.g. from ``plt.subplots(1, 2, sharex=True)``.
        histories: what `train_placements` returned.

    Raises:
        ValueError: `histories` is empty, or `axes` are not two.
    """
    if not histories:
        raise ValueError("histories is empty; train at least one run first.")
    if len(axes) != 2:
        raise ValueError(f"axes must be two matplotlib axes, got {len(axes)}.")
    colors = dict(zip(PLACEMENTS, ["tab:blue", "tab:orange"]))
    first = min(seed for _, seed in histories)
    for (name, seed), h in histories.items():
        label = name if seed == first else None
        axes[0].plot(h.index, h["loss"], color=colors[name], alpha=0.7, label=label)
        axes[0].plot(h.index, h["val_loss"], color=colors[name], ls="--", alpha=0.7)
        axes[1].plot(h.index, 100 * h["val_accuracy"], color=colors[name], alpha=0.7, label=label)
    n_seeds = len({seed for _, seed in histories})
    axes[0].set(
        title="Loss (solid: training, dashed: validation)",
        xlabel="epoch",
        ylabel="cross-entropy (nats)",
    )
    axes[1].set(
        title=f"Validation accuracy, {n_seeds} seeds per placement",
        xlabel="epoch",
        ylabel="accuracy (%)",
    )
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    for ax in axes:
        ax.legend()
