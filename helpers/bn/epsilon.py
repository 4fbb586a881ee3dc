"""ε, BN's smoothing term, in practice (chapter 01).

* `bn_layers`: every `BatchNormalization` layer of a model, nested models included.
* `family_epsilons`: the ε of every BN layer of `keras.applications` families, built without
  weights, and whether each family's ε is of the book's "typical" order.
* `nonfinite_outputs`: how many outputs of a fresh BN layer in training mode are not finite.
"""

from helpers import checks

import numpy as np
import pandas as pd

__all__ = ["bn_layers", "family_epsilons", "nonfinite_outputs"]


def bn_layers(model):
    """Every `keras.layers.BatchNormalization` of `model`, looking inside nested models.

    Args:
        model: a `keras.Model`.

    Returns:
        A list of layers, in the order of ``model.layers``.

    Raises:
        ValueError: `model` is not a `keras.Model`.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += bn_layers(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
    return found


def family_epsilons(families, low, high):
    """The ε of the BN layers of `keras.applications` families, built with ``weights=None``.

    Args:
        families: dict ``{family name: input size}``, e.g.
            `helpers.fusion.applications.FAMILIES`.
        low: the smallest ε counted as the book's value, > 0.
        high: the largest, >= `low`.

    Returns:
        ``(table, epsilons)``: `table` is indexed by family, with the columns ``BN layers``
        (their number), ``ε`` (the distinct values, as text) and ``ε about 1e-5`` (every ε in
        [low, high]); `epsilons` maps each family to its sorted distinct ε values.

    Raises:
        ValueError: `families` is empty, a name is not a `keras.applications` constructor, or
            the bounds are not 0 < low <= high.
    """
    import keras

    low, high = checks.positive(low, "low"), checks.positive(high, "high")
    if low > high:
        raise ValueError(f"low must be <= high, got low={low} and high={high}.")
    if not families:
        raise ValueError("families is empty; pass {name: input size}, e.g. FAMILIES.")
    rows, epsilons = [], {}
    for name, size in families.items():
        if not callable(getattr(keras.applications, name, None)):
            raise ValueError(f"{name!r} is not a keras.applications constructor; e.g. 'ResNet50'.")
        net = getattr(keras.applications, name)(
            weights=None, input_shape=(size, size, 3), classes=10
        )
        layers = bn_layers(net)
        epsilons[name] = sorted({layer.epsilon for layer in layers})
        text = ", ".join(f"{e:g}" for e in epsilons[name])
        rows.append((name, len(layers), text, all(low <= e <= high for e in epsilons[name])))
        del net
        keras.backend.clear_session()
    table = pd.DataFrame(rows, columns=["family", "BN layers", "ε", "ε about 1e-5"])
    return table.set_index("family"), epsilons


def nonfinite_outputs(x, epsilon):
    """How many outputs of a fresh BN layer, called on `x` in training mode, are not finite.

    Args:
        x: a batch ``[batch, features]``.
        epsilon: the layer's ε, >= 0 (0 is what the book's ε prevents).

    Returns:
        The number of NaN or infinite outputs, an int.

    Raises:
        ValueError: `epsilon` is negative or not a number.
    """
    import keras

    if not checks.is_real(epsilon) or not epsilon >= 0:
        raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}.")
    layer = keras.layers.BatchNormalization(epsilon=float(epsilon))
    out = keras.ops.convert_to_numpy(layer(np.asarray(x, dtype=np.float32), training=True))
    return int((~np.isfinite(out)).sum())
