"""The figures of chapters 00 to 02, drawn onto axes the chapter creates.

Each function draws into axes the chapter made with ``plt.subplots`` (so the figure's size
stays in the chapter, where the book's figure checks read it) and returns nothing; the chapter
calls ``plt.show()``.

* `image_grid`: Fashion-MNIST images, one row per class (chapter 00).
* `epsilon_shrinkage`: how ε shrinks low-variance features (chapter 01).
* `preactivation_histograms`: a Dense layer's pre-activations before and after BN (chapter 01).
* `ema_errors`: the error of the moving estimates against the training step (chapter 02).
"""

from helpers import checks
from helpers.bn.moving import noise_floor

import numpy as np

__all__ = ["image_grid", "epsilon_shrinkage", "preactivation_histograms", "ema_errors"]

#: One colour per momentum in `ema_errors`, in the order the momenta are given.
MOMENTUM_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown")


def _axes_grid(axes, rows, cols, what):
    axes = np.asarray(axes, dtype=object)
    if axes.shape != (rows, cols):
        raise ValueError(
            f"axes must be a {rows} × {cols} grid for {what}, got shape {axes.shape}; make them "
            f"with plt.subplots({rows}, {cols})."
        )
    return axes


def image_grid(axes, x, y, class_names, seed):
    """Draw randomly chosen images of each class, one row per class.

    Args:
        axes: a grid of axes, one row per class and one column per image.
        x: images ``[n, height, width]`` with values in [0, 1].
        y: integer labels ``[n]``.
        class_names: the name of each class, one per row of `axes`.
        seed: seed of the draw.

    Raises:
        ValueError: `axes` is not one row per class, or a class has fewer images than columns.
    """
    rng = np.random.default_rng(checks.seed(seed))
    axes = np.asarray(axes, dtype=object)
    if axes.ndim != 2 or len(axes) != len(class_names):
        raise ValueError(
            f"axes must be a grid with one row per class ({len(class_names)}), got shape "
            f"{axes.shape}."
        )
    for label, row in enumerate(axes):
        candidates = np.flatnonzero(np.asarray(y) == label)
        if len(candidates) < len(row):
            raise ValueError(
                f"class {label} has {len(candidates)} images, fewer than the {len(row)} columns "
                "of axes; use fewer columns."
            )
        for ax, i in zip(row, rng.choice(candidates, len(row), replace=False)):
            ax.imshow(x[i], cmap="binary", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(class_names[label], rotation=0, ha="right", va="center")


def epsilon_shrinkage(ax, x, epsilons, colors=("tab:orange", "tab:blue")):
    """Scatter each feature's std of x̂ against its batch std σ_B, with σ_B/√(σ_B² + ε).

    Only features that vary over the batch are drawn; the batch axis is 0.

    Args:
        ax: the axes to draw on.
        x: a batch ``[batch, features]``.
        epsilons: the values of ε to draw, each > 0.
        colors: one colour per ε.

    Raises:
        ValueError: an ε that is not positive, or fewer colours than epsilons.
    """
    if len(colors) < len(epsilons):
        raise ValueError(f"pass one colour per epsilon: {len(epsilons)} epsilons, {len(colors)}.")
    x = np.asarray(x, dtype=np.float64)
    x = x[:, x.var(axis=0) > 0]
    sigma, grid = x.std(axis=0), np.logspace(-4, 0, 200)
    for e, color in zip(epsilons, colors):
        e = checks.positive(e, "epsilon")
        x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + e)
        ax.scatter(sigma, x_hat.std(axis=0), s=6, color=color, label=f"pixels, ε = {e:g}")
        ax.plot(grid, grid / np.sqrt(grid**2 + e), color=color, lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("batch standard deviation σ_B of the pixel (pixel intensity, 0-1 scale)")
    ax.set_ylabel("standard deviation of x̂ (standard units)")
    ax.set_title(f"How ε shrinks low-variance features (batch of {len(x)} images)")
    ax.legend()


def preactivation_histograms(axes, pre, post, n_units):
    """Step histograms of the first `n_units` units, before (left) and after BN (right).

    Args:
        axes: two axes side by side.
        pre: pre-activations ``[batch, units]``.
        post: the same after BN.
        n_units: how many units to draw, >= 1 and at most the number of units.

    Raises:
        ValueError: not two axes, or `n_units` out of range.
    """
    if len(axes) != 2:
        raise ValueError(f"axes must be two axes side by side, got {len(axes)}.")
    checks.integer(n_units, "n_units", minimum=1, maximum=np.shape(pre)[1])
    for ax, values in zip(axes, (pre, post)):
        for unit in range(n_units):
            ax.hist(values[:, unit], bins=30, histtype="step", lw=1.5, label=f"unit {unit}")
        ax.set_xlabel("activation value (dimensionless)")
    axes[0].set_title(f"Dense({np.shape(pre)[1]}) pre-activations, before BN")
    axes[1].set_title("after BN (training mode, γ = 1, β = 0)")
    axes[0].set_ylabel(f"count (of {len(pre)} images)")
    axes[1].legend()


def ema_errors(axes, runs, variance, keras_run=None):
    """The RMS errors of `ema_replay`'s moving estimates against the step, on log-log axes.

    Top row: the moving mean, with each momentum's predicted noise floor (dashed). Bottom
    row: the moving variance, with the RMS bias of the ÷B variance, σ²/B (dotted). One column
    per batch size, one colour per momentum.

    Args:
        axes: a 2 × (number of batch sizes) grid of axes.
        runs: the `runs` of `ema_replay`.
        variance: the true per-feature variances.
        keras_run: optional ``(batch size, momentum, errors)`` of a Keras run, drawn as points
            every tenth step.

    Raises:
        ValueError: `axes` is not 2 × (number of batch sizes), or more momenta than colours.
    """
    batch_sizes = list(dict.fromkeys(B for B, _ in runs))
    momenta = list(dict.fromkeys(m for _, m in runs))
    axes = _axes_grid(axes, 2, len(batch_sizes), "the mean and the variance per batch size")
    if len(momenta) > len(MOMENTUM_COLORS):
        raise ValueError(f"at most {len(MOMENTUM_COLORS)} momenta, got {len(momenta)}.")
    variance = np.asarray(variance, dtype=np.float64)
    for col, B in enumerate(batch_sizes):
        top, bottom = axes[0, col], axes[1, col]
        for m, color in zip(momenta, MOMENTUM_COLORS):
            err_mean, err_var, _ = runs[B, m]
            steps = np.arange(1, len(err_mean) + 1)
            top.plot(steps, err_mean, color=color, lw=1, label=f"momentum {m}")
            top.axhline(noise_floor(m, variance, B), color=color, ls="--", lw=0.8)
            bottom.plot(steps, err_var, color=color, lw=1, label=f"momentum {m}")
        bias = np.sqrt(((variance / B) ** 2).mean())  # RMS of the (B − 1)/B shortfall, σ²/B
        bottom.axhline(bias, color="k", ls=":", lw=1, label="bias of the ÷B variance")
        top.set_title(f"moving mean, batch size {B}")
        bottom.set_title(f"moving variance, batch size {B}")
        bottom.set_xlabel("training step")
    if keras_run is not None:
        B, m, errors = keras_run
        steps = np.arange(1, len(errors) + 1)[::10]
        label = f"Keras fit(), momentum {m}"
        axes[0, batch_sizes.index(B)].plot(steps, errors[::10], "k.", ms=4, label=label)
    axes[0, 0].set_ylabel("RMS error over 784 pixels\n(pixel intensity, 0-1 scale)")
    axes[1, 0].set_ylabel("RMS error over 784 pixels\n(squared intensity)")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax in axes[:, 0]:
        ax.legend()
