"""Chapter 05's tools for BN's ``axis`` on ``[batch, 28, 28]`` images (book, p. 344).

* `batch_means` reads the means a BN layer computes on a batch (its moving mean at momentum 0);
* `mean_picture` paints each pixel with the mean BN subtracts from it, and
  `subtracted_means` recovers that mean from the layer's outputs alone, as a check;
* `plot_mean_pictures` draws the pictures side by side;
* `per_pixel_variants` builds the four layers of the chapter's table (axis -1, axis 1, and the
  two per-pixel ones) and `statistics_table` counts their statistics and parameters;
* `copy_random_state` gives two per-pixel layers the same non-trivial γ, β and statistics, and
  `largest_gaps` compares their variables;
* `per_pixel_classifier` is the small classifier the two per-pixel layers are trained in;
* `mode_gap` measures how the inference output catches up with the training output, and
  `plot_mode_gap` draws it.
"""

from helpers import checks
from helpers.bn.layers import MultiAxisBatchNormalization
from helpers.bn.param_counts import keras_counts, param_table
from helpers.runtime.session import setup

import numpy as np

#: The variables of a BN layer, in the order Keras creates them.
BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


def _need_images(x, name="x"):
    x = np.asarray(x)
    if x.ndim != 3 or len(x) < 2:
        raise ValueError(f"{name} must be a batch of at least two 2D images, got shape {x.shape}.")
    return x


def batch_means(layer, x):
    """The per-feature means `layer` computes on `x` in training mode.

    With ``momentum=0`` one training-mode call sets the moving mean to the batch mean, so the
    layer hands over the means it subtracts.

    Args:
        layer: a BN layer (Keras's or `MultiAxisBatchNormalization`) with ``momentum=0``.
        x: a batch of images, shape ``[N, rows, columns]``.

    Returns:
        The moving mean after the call, a NumPy array of the layer's feature shape.

    Raises:
        ValueError: the layer's momentum is not 0, or `x` is not a batch of images.
    """
    if layer.momentum != 0:
        raise ValueError(
            f"layer must have momentum=0 to expose its batch means, got {layer.momentum}."
        )
    layer(_need_images(x), training=True)
    return layer.moving_mean.numpy()


def mean_picture(means, axis, shape=(28, 28)):
    """The mean subtracted from each pixel, as an image.

    Args:
        means: the layer's means (`batch_means`).
        axis: the layer's axis: ``-1`` or ``2`` (one mean per column), ``1`` (per row) or
            ``[1, 2]`` (per pixel).
        shape: the image shape.

    Returns:
        A float array of `shape`.

    Raises:
        ValueError: `axis` is none of these, or `means` does not fit it.
    """
    means = np.asarray(means)
    key = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    expected = {(-1,): shape[1:], (2,): shape[1:], (1,): shape[:1], (1, 2): shape}
    if key not in expected:
        raise ValueError(f"axis must be -1, 1, 2 or [1, 2], got {axis!r}.")
    if means.shape != expected[key]:
        raise ValueError(f"means of shape {means.shape} do not fit axis={axis!r} on {shape}.")
    if key == (1,):
        return np.broadcast_to(means[:, None], shape)
    return np.broadcast_to(means, shape)


def subtracted_means(layer, x, min_difference=0.1):
    """The mean `layer` subtracts at each pixel, recovered from its training outputs alone.

    For two images a and b, ``y_a − y_b = (x_a − x_b)/σ`` gives σ at every pixel where they
    differ, then ``μ = x_a − σ y_a`` (a fresh layer has γ = 1 and β = 0).

    Args:
        layer: a fresh BN layer (γ = 1, β = 0).
        x: a batch of images; its first two are compared.
        min_difference: pixels where the two images differ by less are left out.

    Returns:
        An image of the recovered means, NaN where the two images are too alike.

    Raises:
        ValueError: `x` is not a batch of images or `min_difference` is not positive.
    """
    x = _need_images(x).astype(np.float64)
    checks.positive(min_difference, "min_difference", "0.1 is a tenth of the pixel range")
    y = np.asarray(layer(x.astype(np.float32), training=True), dtype=np.float64)
    dx, dy = x[0] - x[1], y[0] - y[1]
    recovered = np.full(x.shape[1:], np.nan)
    differ = np.abs(dx) > min_difference
    recovered[differ] = x[0][differ] - dx[differ] / dy[differ] * y[0][differ]
    return recovered


def plot_mean_pictures(axes, pictures, vmax):
    """The mean-per-pixel pictures side by side, on one colour scale with one colour bar.

    Args:
        axes: one matplotlib axes per picture.
        pictures: a dict title -> image (`mean_picture`).
        vmax: the top of the colour scale.

    Raises:
        ValueError: `pictures` is empty, or there are not as many axes as pictures.
    """
    axes = np.atleast_1d(axes)
    if not pictures or len(axes) != len(pictures):
        raise ValueError(
            f"give one axes per picture and at least one picture, got {len(axes)} axes and "
            f"{len(pictures)} pictures."
        )
    for ax, (name, picture) in zip(axes, pictures.items()):
        image = ax.imshow(picture, cmap="viridis", vmin=0, vmax=vmax)
        ax.set(title=name, xlabel="pixel column j", ylabel="pixel row i")
    label = "mean pixel value (0 = white, 1 = black)"
    axes[0].figure.colorbar(image, ax=list(axes), label=label, shrink=0.9)


def per_pixel_variants():
    """The four ways of the chapter's table to put BN on ``[batch, 28, 28]`` images.

    Returns:
        A dict name -> ``keras.Sequential`` model with input ``[28, 28]``: the default
        ``BatchNormalization()`` (axis -1), ``BatchNormalization(axis=1)``, ``Flatten →
        BatchNormalization → Reshape`` and ``MultiAxisBatchNormalization(axis=[1, 2])``.
    """
    import keras

    def model(*layers):
        return keras.Sequential([keras.Input(shape=[28, 28]), *layers])

    return {
        "BatchNormalization() (axis=-1)": model(keras.layers.BatchNormalization()),
        "BatchNormalization(axis=1)": model(keras.layers.BatchNormalization(axis=1)),
        "Flatten → BatchNormalization → Reshape": model(
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Reshape([28, 28]),
        ),
        "MultiAxisBatchNormalization(axis=[1, 2])": model(
            MultiAxisBatchNormalization(axis=[1, 2])
        ),
    }


def bn_layer(model):
    """The one BN layer (Keras's or ours) of `model`.

    Raises:
        ValueError: `model` has no BN layer or more than one.
    """
    found = [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]
    if len(found) != 1:
        raise ValueError(f"model must hold exactly one BN layer, got {len(found)}.")
    return found[0]


def statistics_table(variants):
    """Shape of the BN variables, number of statistics and parameter counts of each variant.

    Args:
        variants: a dict name -> built model with one BN layer (`per_pixel_variants`).

    Returns:
        A DataFrame indexed by name: the shapes of γ, β, μ and σ² (one shape when they
        agree), the number of statistics, our `param_table` counts (total, trainable,
        non-trainable) and Keras's total from the weights (``params (Keras)``).

    Raises:
        ValueError: a model has no BN layer or more than one.
    """
    import pandas as pd

    rows = {}
    for name, model in variants.items():
        shapes = {tuple(v.shape) for v in bn_layer(model).variables}
        shape = shapes.pop() if len(shapes) == 1 else "differ"
        table = param_table(model)
        rows[name] = {
            "shape of γ, β, μ, σ²": shape,
            "statistics": int(np.prod(shape)) if shape != "differ" else None,
            "params": int(table["total"].sum()),
            "trainable": int(table["trainable"].sum()),
            "non_trainable": int(table["non_trainable"].sum()),
            "params (Keras)": keras_counts(model)[1]["total"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer(s)")


def copy_random_state(layers, seed):
    """Give several per-pixel BN layers the same random γ, β and moving statistics.

    The values (784 per variable) are drawn once and reshaped to each layer's own shape, so
    that a check in inference mode is not the trivial division by √(1 + ε).

    Args:
        layers: built BN layers, each with 784 values per variable.
        seed: the seed of the draw.

    Raises:
        ValueError: a layer is not built, or does not hold 784 values per variable.
    """
    rng = np.random.default_rng(checks.seed(seed))
    values = {
        "gamma": rng.normal(1, 0.3, 784),
        "beta": rng.normal(0, 0.3, 784),
        "moving_mean": rng.uniform(0, 0.5, 784),
        "moving_variance": rng.uniform(0.05, 0.2, 784),
    }
    for layer in layers:
        for name, value in values.items():
            variable = getattr(layer, name, None)
            if variable is None or int(np.prod(variable.shape)) != 784:
                raise ValueError(f"layer {layer.name!r} must be built with 784 values of {name}.")
            variable.assign(value.reshape(tuple(variable.shape)).astype("float32"))


def largest_gaps(a, b, names=BN_VARIABLES):
    """The largest absolute difference between the same variables of two BN layers.

    Args:
        a, b: two BN layers whose variables hold the same number of values.
        names: the variables to compare.

    Returns:
        A dict name -> the largest difference (float), the values compared flat.

    Raises:
        ValueError: a variable's size differs between the layers.
    """
    gaps = {}
    for name in names:
        va, vb = (np.ravel(getattr(layer, name).numpy()) for layer in (a, b))
        if va.shape != vb.shape:
            raise ValueError(
                f"{name} holds {va.size} values in one layer, {vb.size} in the other."
            )
        gaps[name] = float(np.abs(va - vb).max())
    return gaps


def per_pixel_classifier(norm_layers, seed):
    """``Input([28, 28])`` → `norm_layers` → ``Flatten`` → ``Dense(10, softmax)``, compiled.

    `helpers.setup` runs with `seed` first, so two classifiers built with the same seed start
    with the same output layer. Compiled with SGD at its defaults and the sparse categorical
    cross-entropy.

    Args:
        norm_layers: the layers that normalize the images (a list).
        seed: the seed of the set-up.

    Returns:
        The compiled model.
    """
    import keras

    setup(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=[28, 28]),
            *norm_layers,
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    return model


def mode_gap(layer, x, reference, n_calls):
    """Mean |inference output − `reference`| before each of `n_calls` training-mode calls.

    Each training-mode call on the same batch moves the moving statistics towards the batch's
    own, so the inference output approaches the training output `reference`.

    Args:
        layer: a BN layer.
        x: the batch, fed again and again.
        reference: the training-mode output to approach.
        n_calls: training-mode calls, >= 1.

    Returns:
        An array of ``n_calls + 1`` gaps (the last after the last call).

    Raises:
        ValueError: `n_calls` is not a positive integer.
    """
    checks.integer(n_calls, "n_calls", minimum=1)
    gaps = []
    for _ in range(n_calls + 1):
        gaps.append(float(np.abs(np.asarray(layer(x, training=False)) - reference).mean()))
        layer(x, training=True)
    return np.array(gaps[: n_calls + 1])


def plot_mode_gap(ax, gap, momentum):
    """The gap of `mode_gap` on a log scale, with the ``momentum**k`` rate matched at the end.

    Args:
        ax: the matplotlib axes to draw on.
        gap: the gaps, one per call.
        momentum: the layer's momentum.

    Raises:
        ValueError: `gap` has fewer than two values.
    """
    gap = np.asarray(gap)
    if gap.size < 2:
        raise ValueError(f"gap must hold at least two values, got {gap.size}.")
    n = gap.size - 1
    k = np.arange(n + 1)
    ax.semilogy(k, gap, marker=".", label="mean |inference − training| output")
    ax.semilogy(
        k, gap[-1] * momentum ** (k - n), ls="--", label=f"{momentum}$^k$, matched at k = {n}"
    )
    ax.set(
        xlabel="training-mode calls k on the same batch",
        ylabel="mean absolute difference (normalized units)",
        title=f"Inference output catches up with training output (momentum {momentum})",
    )
    ax.legend()
