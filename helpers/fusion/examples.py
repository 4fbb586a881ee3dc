"""Small worked examples of fusion (chapter 06): BN layers with statistics far from their
initial values, the forward fold checked on a convolution, and the small models that `fuse`
cannot fold.

A freshly built BN layer has γ = 1, β = 0, μ = 0 and v = 1, which makes every fold almost
trivial; these examples draw γ, β, μ and v at random instead, as a trained network would have
them, so that a wrong fold shows.
"""

from helpers import checks
from helpers.fusion.folds import fold_into_next
from helpers.fusion.plan import bn_affine_of
from helpers.runtime.session import setup

import numpy as np

#: The range of the random moving variances of `random_statistics`.
VARIANCE_RANGE = (0.01, 3.0)


def random_statistics(n, rng, variance=VARIANCE_RANGE):
    """γ ~ U(0.5, 2), β ~ N(0, 1), μ ~ N(0, 1) and v ~ U(`variance`) for `n` channels.

    Args:
        n: number of channels, >= 1.
        rng: a NumPy ``Generator``; drawn from in the order γ, β, μ, v.
        variance: ``(low, high)`` with 0 < low < high, the range of v.

    Returns:
        ``[gamma, beta, moving_mean, moving_variance]``, four float64 arrays of shape ``(n,)``.

    Raises:
        ValueError: `n` is not a positive integer, `rng` is not a Generator, or `variance` is
            not an increasing pair of positive numbers.
    """
    n = checks.integer(n, "n", minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if (
        len(variance) != 2
        or not all(checks.is_real(v) for v in variance)
        or not 0 < variance[0] < variance[1]
    ):
        raise ValueError(f"variance must be a pair 0 < low < high, got {variance!r}")
    return [
        rng.uniform(0.5, 2, n),
        rng.normal(size=n),
        rng.normal(size=n),
        rng.uniform(*variance, n),
    ]


def bn_with_statistics(input_shape, rng, variance=VARIANCE_RANGE):
    """A Keras BN layer built for `input_shape` (channels last) with `random_statistics`.

    Args:
        input_shape: the shape of the layer's input, batch axis first (None allowed there).
        rng: a NumPy ``Generator``.
        variance: the range of the moving variances.

    Returns:
        A built ``keras.layers.BatchNormalization``.

    Raises:
        ValueError: `input_shape` has fewer than two axes, or as `random_statistics`.
    """
    import keras

    if len(input_shape) < 2:
        raise ValueError(f"input_shape must include a batch axis and channels, got {input_shape}")
    bn = keras.layers.BatchNormalization()
    bn.build(tuple(input_shape))
    bn.set_weights(random_statistics(int(input_shape[-1]), rng, variance))
    return bn


def forward_fold_errors(bn, images, paddings=("valid", "same"), filters=4, seed=0):
    """How far the forward fold (BN before the layer) into a 3 × 3 Conv2D is from the real thing.

    For each padding, a ``Conv2D(filters, 3, padding=...)`` reads the output of `bn` (in
    inference mode); the fused convolution applies the folded kernel and bias to the raw
    images. The error is measured over all pixels and over the interior ones (one pixel in
    from the border), where the kernel never overlaps the padding.

    Args:
        bn: a built BN layer over the images' last axis.
        images: float array ``(n, h, w, c)``, h and w at least 3.
        paddings: the Conv2D paddings to try, each ``"valid"`` or ``"same"``.
        filters: output channels of the convolution, >= 1.
        seed: seed of the convolution's initial weights.

    Returns:
        A pandas DataFrame indexed by padding, columns ``"all pixels"`` and
        ``"interior pixels"``: the largest absolute error.

    Raises:
        ValueError: `images` is not a 4-D array with h, w >= 3, or a padding is unknown.
    """
    import keras
    import pandas as pd
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    if images.ndim != 4 or min(images.shape[1:3]) < 3:
        raise ValueError(f"images must have shape (n, h, w, c) with h, w >= 3, got {images.shape}")
    bad = [p for p in paddings if p not in ("valid", "same")]
    if bad or not paddings:
        raise ValueError(f"paddings must be 'valid' or 'same', got {list(paddings)}")
    rows = {}
    for padding in paddings:
        conv = keras.layers.Conv2D(
            filters, 3, padding=padding, kernel_initializer=keras.initializers.GlorotUniform(seed)
        )
        want = conv(bn(images, training=False)).numpy()
        kernel, bias = fold_into_next(*conv.get_weights(), *bn_affine_of(bn))
        got = tf.nn.conv2d(images, kernel.astype(np.float32), 1, padding.upper()).numpy() + bias
        err = np.abs(got - want)
        rows[padding] = {"all pixels": err.max(), "interior pixels": err[:, 1:-1, 1:-1].max()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("Conv2D padding")


def small_model(*layers, shape=(6,), seed=0):
    """A Sequential model of `layers` on an input of `shape`, its BN layers with random statistics.

    The session is reset with ``helpers.setup(seed)`` first, so layer names start afresh.

    Args:
        *layers: Keras layers, not yet built.
        shape: the input shape, without the batch axis.
        seed: seed of the initial weights and of the BN statistics (variances in [0.1, 2]).

    Returns:
        A built ``keras.Sequential``.

    Raises:
        ValueError: no layer is given.
    """
    import keras

    if not layers:
        raise ValueError("layers must hold at least one Keras layer, e.g. BatchNormalization()")
    setup(seed)
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input(shape), *layers])
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            stats = random_statistics(layer.moving_mean.shape[0], rng, (0.1, 2.0))
            on = [layer.scale, layer.center, True, True]
            layer.set_weights([w for w, kept in zip(stats, on) if kept])
    return model


def unfoldable_cases(seed=0):
    """Five small models, each with one BN that no fold can remove without changing its outputs.

    Args:
        seed: seed of the models' weights and BN statistics.

    Returns:
        A dict ``{what makes the fold impossible: model}``.
    """
    import keras

    L = keras.layers
    setup(seed)
    inp = keras.Input((6,))
    d = L.Dense(4, name="dense")(inp)
    shared = keras.Model(
        inp, [L.ReLU()(L.BatchNormalization(name="bn")(d)), L.Dense(2, name="other")(d)]
    )
    return {
        "BN input also feeds another layer": shared,
        "Conv2D with same padding after BN": small_model(
            L.BatchNormalization(), L.Conv2D(2, 3, padding="same"), shape=(5, 5, 3), seed=seed
        ),
        "non-linear layer between BN and Dense": small_model(
            L.BatchNormalization(), L.ReLU(), L.Dense(3), seed=seed
        ),
        "BN axis is not the Dense channel axis": small_model(
            L.BatchNormalization(axis=1), L.Dense(3), shape=(4, 6), seed=seed
        ),
        "Dense(activation='elu') before, output after": small_model(
            L.Dense(4, activation="elu"), L.BatchNormalization(), seed=seed
        ),
    }


def random_bn_weights(model, seed=0):
    """`model`'s weights with every BN's γ, β, μ and v drawn at random, the rest unchanged.

    γ ~ U(0.5, 2), β and μ ~ N(0, 1), v ~ U(0.1, 2), as the fusion tests use.

    Args:
        model: a built Keras model.
        seed: seed of the draws.

    Returns:
        A list of arrays for ``set_weights``.
    """
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    rng = np.random.default_rng(seed)
    draw = {
        "gamma": lambda shape: rng.uniform(0.5, 2, shape),
        "beta": lambda shape: rng.normal(size=shape),
        "moving_mean": lambda shape: rng.normal(size=shape),
        "moving_variance": lambda shape: rng.uniform(0.1, 2, shape),
    }
    random = {id(v): draw[v.name] for bn in bns for v in bn.weights if v.name in draw}
    return [
        random[id(v)](w.shape) if id(v) in random else w
        for v, w in zip(model.weights, model.get_weights())
    ]


def rebuilt(model, weights, seed=0):
    """A new Sequential model of `model`'s layers, from their configs, holding `weights`.

    It was never compiled or fit: what TFLite's converter makes of it depends on its weights
    alone.

    Args:
        model: a built ``keras.Sequential``.
        weights: a list of arrays for ``set_weights``.
        seed: the seed of ``helpers.setup`` before building.

    Returns:
        A built ``keras.Sequential``.

    Raises:
        ValueError: `model` is not a built Sequential model.
    """
    import keras

    if not isinstance(model, keras.Sequential) or not model.built:
        raise ValueError(f"model must be a built keras.Sequential, got {type(model).__name__}")
    setup(seed)
    copy = keras.Sequential(
        [
            keras.Input(model.input_shape[1:]),
            *[layer.__class__.from_config(layer.get_config()) for layer in model.layers],
        ]
    )
    copy.set_weights(weights)
    return copy
