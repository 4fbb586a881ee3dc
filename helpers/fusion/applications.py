"""The ``keras.applications`` families that BN fusion is for, at small inputs, without downloads.

`application` builds one family with ``weights=None`` at a small input size and gives its BN
layers statistics like a trained network's (`calibrate_bn`), so that chapter 06, the unit
tests and ``make bench`` fuse the same models.

Why calibrate: with moving statistics drawn at random, each BN multiplies its input by
``gamma / sigma`` regardless of its real spread, and over 50 BN layers the activations of,
e.g., EfficientNetB0 grow to 1e5. Such a network is so ill-conditioned that changing one γ by
one float32 ulp moves its outputs by 1e-3 of their scale, so no float32 computation, fused or
not, can be checked against it. After training, each BN's moving statistics are those of its
input, and that is what `calibrate_bn` sets.
"""

from helpers import checks

import numpy as np

__all__ = ["FAMILIES", "application", "calibrate_bn"]

#: Family name -> smallest input size (pixels, square) that its constructor accepts.
FAMILIES = {
    "ResNet50": 32,
    "InceptionV3": 75,
    "MobileNetV2": 32,
    "MobileNetV3Small": 32,
    "MobileNetV3Large": 32,
    "EfficientNetB0": 32,
    "Xception": 71,
    "ResNet50V2": 32,
    "DenseNet121": 32,
}


def _bn_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _bn_layers(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            yield layer


def calibrate_bn(model, x, seed=0):
    """Give every BN layer random γ, β and the moving statistics of its input on `x`.

    γ is drawn from U(0.5, 1.5) and β from N(0, 0.5²), per channel. Then one forward pass in
    training mode with every BN's momentum set to 0 makes each moving mean and variance the
    mean and variance of that BN's input over `x` (BN layers inside nested models included),
    as after training. The model is modified in place.

    Args:
        model: a built Keras model with BN layers.
        x: a batch of inputs for the model (a few dozen samples are enough).
        seed: seed of γ and β.

    Returns:
        `model`, for chaining.

    Raises:
        ValueError: `seed` is not a non-negative integer.
    """
    rng = np.random.default_rng(checks.seed(seed))
    bns = list(_bn_layers(model))
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        n = bn.moving_mean.shape[0]
        if bn.scale:
            bn.gamma.assign(rng.uniform(0.5, 1.5, n).astype(bn.gamma.dtype))
        if bn.center:
            bn.beta.assign(rng.normal(0.0, 0.5, n).astype(bn.beta.dtype))
        bn.momentum = 0.0
    try:
        model(x, training=True)
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
    return model


def application(name, size=None, classes=10, seed=0):
    """A ``keras.applications`` model with calibrated BN layers, built without downloading.

    Args:
        name: a key of `FAMILIES`, e.g. ``"MobileNetV2"``.
        size: input height and width (default: the family's smallest, ``FAMILIES[name]``).
        classes: number of output classes of the softmax top.
        seed: seed of the weights, of γ and β, and of the 16 standard-normal images the BN
            statistics are computed on.

    Returns:
        The built model, with ``weights=None`` and ``include_top=True``.

    Raises:
        ValueError: unknown `name`, or `size` below the family's minimum.
    """
    if name not in FAMILIES:
        raise ValueError(f"name must be one of {', '.join(FAMILIES)}; got {name!r}.")
    size = FAMILIES[name] if size is None else checks.integer(size, "size", FAMILIES[name])
    checks.integer(classes, "classes", minimum=1)
    import keras

    keras.utils.set_random_seed(checks.seed(seed))
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(size, size, 3), classes=classes
    )
    x = np.random.default_rng(seed).standard_normal((16, size, size, 3)).astype(np.float32)
    return calibrate_bn(model, x, seed)
