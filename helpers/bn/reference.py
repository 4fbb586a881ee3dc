"""Batch Normalization in plain NumPy: reference implementations independent of Keras.

These functions implement the book's Equation 11-3 (Géron, *Hands-On ML*, 2nd ed., p. 339)
and the moving-average update of p. 343, so that chapters can check Keras's
`keras.layers.BatchNormalization` against an independent computation. Everything is computed
in float64 and returned as float64 arrays; compare with Keras's float32 results using a
tolerance that reflects float32 rounding.

Conventions, matching `keras.layers.BatchNormalization`:

* ``axis`` names the *feature* axis or axes (default ``-1``). Statistics are taken over every
  other axis. Keras 3's layer accepts a single int only; these functions also accept a
  sequence of ints (e.g. ``axis=[1, 2]`` on ``[batch, 28, 28]`` inputs, one statistic per pixel).
* The batch variance divides by N, the number of values averaged per feature (biased, or
  "population", variance). Keras 3 does the same in training mode, both to normalize and to
  update its moving variance.
* ε is added to the variance *inside* the square root.
"""

from helpers import checks

import numpy as np

_EPSILON_HINT = "Keras's default is 1e-3; without it a constant feature divides zero by zero"

__all__ = [
    "batch_moments",
    "batch_norm_train",
    "batch_norm_inference",
    "update_moving",
    "moving_average_trajectory",
]


# --- argument checking -------------------------------------------------------------------


def _as_array(value, name):
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be an array of real numbers, got {type(value).__name__}: {err}"
        ) from err
    return arr


def _feature_axes(axis, ndim):
    """Normalize `axis` (int or sequence of ints) to a sorted tuple of non-negative axes."""
    if ndim < 1:
        raise ValueError(
            "x must have at least one dimension (a batch axis); got a scalar. Pass an array of "
            "shape [batch, features]."
        )
    if checks.is_int(axis):
        axes = [int(axis)]
    elif isinstance(axis, (list, tuple)) and axis and all(checks.is_int(a) for a in axis):
        axes = [int(a) for a in axis]
    else:
        raise ValueError(
            "axis must be an int or a non-empty list/tuple of ints naming the feature axes, got "
            f"{axis!r}."
        )
    normalized = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"axis {a} is out of range for x with {ndim} dimensions; use a value in "
                f"[{-ndim}, {ndim - 1}]."
            )
        normalized.append(a % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(
            f"axis {axis!r} names the same axis twice (for x with {ndim} dimensions); list each "
            "feature axis once."
        )
    if len(normalized) == ndim:
        raise ValueError(
            f"axis {axis!r} makes every axis of x a feature axis, leaving nothing to average "
            "over; keep at least the batch axis out of axis."
        )
    return tuple(sorted(normalized))


def _layout(x, axis):
    """Feature axes, reduction axes, feature shape and broadcast shape of per-feature vectors."""
    feat = _feature_axes(axis, x.ndim)
    reduce_axes = tuple(i for i in range(x.ndim) if i not in feat)
    feature_shape = tuple(x.shape[i] for i in feat)
    broadcast = tuple(x.shape[i] if i in feat else 1 for i in range(x.ndim))
    n = int(np.prod([x.shape[i] for i in reduce_axes]))
    if n == 0:
        raise ValueError(
            f"x has shape {x.shape}: there are no values to average over the non-feature axes "
            f"{reduce_axes}; pass a non-empty batch."
        )
    return feat, reduce_axes, feature_shape, broadcast, n


def _per_feature(value, name, feature_shape, broadcast):
    arr = _as_array(value, name)
    if arr.shape != feature_shape:
        raise ValueError(
            f"{name} has shape {arr.shape}, but the feature shape of x along axis is "
            f"{feature_shape}; "
            f"pass one value per feature (shape {feature_shape})."
        )
    return arr.reshape(broadcast)


# --- the equations -------------------------------------------------------------------------


def batch_moments(x, axis=-1, ddof=0):
    """Per-feature mean and variance of a batch, over every axis except the feature axes.

    With N values per feature (the product of the sizes of the non-feature axes):

        mean = (1/N) Σ x,    variance = (1/(N − ddof)) Σ (x − mean)²

    ``ddof=0`` (the default) is what Keras uses in training mode and what Equation 11-3 writes;
    ``ddof=1`` is the unbiased (Bessel-corrected) estimate, for comparison.

    Args:
        x: array of shape ``[batch, ...]``.
        axis: the feature axis (int) or axes (list/tuple of ints); negative values count from
            the end.
        ddof: 0 (divide by N) or 1 (divide by N − 1).

    Returns:
        ``(mean, variance)``, float64 arrays with the feature shape
        (``x.shape[axis]`` for an int axis).

    Raises:
        ValueError: `axis` is out of range, repeated, or covers every axis; `x` is empty or a
            scalar; `ddof` is not 0 or 1, or N − ddof is not positive.
    """
    x = _as_array(x, "x")
    _, reduce_axes, feature_shape, _, n = _layout(x, axis)
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (divide by N) or 1 (divide by N - 1), got {ddof!r}.")
    if n - ddof <= 0:
        raise ValueError(
            f"ddof={ddof} needs more than {ddof} value(s) per feature, but x has N={n}; pass a "
            "larger batch or ddof=0."
        )
    mean = x.mean(axis=reduce_axes)
    variance = x.var(axis=reduce_axes, ddof=ddof)
    return mean.reshape(feature_shape), variance.reshape(feature_shape)


def batch_norm_train(x, gamma, beta, axis=-1, epsilon=1e-3):
    """Batch Normalization in training mode: the book's Equation 11-3 with batch statistics.

    For every feature (statistics over all non-feature axes, N values each):

        μ_B  = (1/N) Σ x
        σ_B² = (1/N) Σ (x − μ_B)²             (biased: divides by N, as Keras does)
        x̂    = (x − μ_B) / √(σ_B² + ε)
        z    = γ ⊗ x̂ + β

    Args:
        x: array of shape ``[batch, ...]``.
        gamma: scale γ, one value per feature (shape = the feature shape).
        beta: offset β, one value per feature.
        axis: the feature axis (int) or axes (list/tuple of ints), negative allowed.
        epsilon: ε > 0 added to the variance (Keras's default is 1e-3).

    Returns:
        ``(z, batch_mean, batch_variance)``: `z` has the shape of `x`; the statistics have the
        feature shape. All float64.

    Raises:
        ValueError: bad `axis` (out of range, repeated, covering every axis), empty `x`,
            `gamma`/`beta` whose shape is not the feature shape, or `epsilon` not positive.
    """
    x = _as_array(x, "x")
    _, reduce_axes, feature_shape, broadcast, _ = _layout(x, axis)
    g = _per_feature(gamma, "gamma", feature_shape, broadcast)
    b = _per_feature(beta, "beta", feature_shape, broadcast)
    eps = checks.positive(epsilon, "epsilon", _EPSILON_HINT)
    mean, variance = batch_moments(x, axis)
    x_hat = (x - mean.reshape(broadcast)) / np.sqrt(variance.reshape(broadcast) + eps)
    return g * x_hat + b, mean, variance


def batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, axis=-1, epsilon=1e-3):
    """Batch Normalization in inference mode: Equation 11-3 with the stored (moving) statistics.

        z = γ ⊗ (x − μ̂) / √(σ̂² + ε) + β

    where μ̂ and σ̂² are the moving mean and moving variance. Nothing depends on the other
    items of the batch, so a single instance gives the same output as it does inside a batch.

    Args:
        x: array of shape ``[batch, ...]``.
        gamma: scale γ, one value per feature.
        beta: offset β, one value per feature.
        moving_mean: μ̂, one value per feature.
        moving_variance: σ̂², one non-negative value per feature.
        axis: the feature axis (int) or axes (list/tuple of ints), negative allowed.
        epsilon: ε > 0 added to the variance.

    Returns:
        `z`, a float64 array with the shape of `x`.

    Raises:
        ValueError: bad `axis`; any per-feature argument whose shape is not the feature shape;
            a negative `moving_variance`; `epsilon` not positive.
    """
    x = _as_array(x, "x")
    _, _, feature_shape, broadcast, _ = _layout(x, axis)
    g = _per_feature(gamma, "gamma", feature_shape, broadcast)
    b = _per_feature(beta, "beta", feature_shape, broadcast)
    mu = _per_feature(moving_mean, "moving_mean", feature_shape, broadcast)
    var = _per_feature(moving_variance, "moving_variance", feature_shape, broadcast)
    if np.any(var < 0):
        raise ValueError(
            "moving_variance has negative entries; a variance must be >= 0 (did you pass a "
            "standard deviation difference or a log-variance?)."
        )
    eps = checks.positive(epsilon, "epsilon", _EPSILON_HINT)
    return g * (x - mu) / np.sqrt(var + eps) + b


def update_moving(moving, batch_value, momentum):
    """One step of the exponential moving average that BN keeps for inference.

        v̂ ← v̂ × momentum + v × (1 − momentum)

    where v̂ is the running estimate and v the statistic (mean or variance) of the current
    batch (book, p. 343). Keras applies it once per training step to `moving_mean` and
    `moving_variance`. This function is pure: it returns the new value and leaves `moving`
    unchanged.

    Args:
        moving: the current estimate v̂.
        batch_value: the current batch's statistic v, same shape as `moving`.
        momentum: a number in [0, 1]; 1 never moves, 0 forgets everything but the last batch.

    Returns:
        The updated estimate, a float64 array with the shape of `moving`.

    Raises:
        ValueError: `momentum` outside [0, 1], or shapes that differ.
    """
    m = checks.unit_interval(momentum, "momentum", hint="typically 0.9, 0.99 or 0.999")
    moving = _as_array(moving, "moving")
    batch_value = _as_array(batch_value, "batch_value")
    if moving.shape != batch_value.shape:
        raise ValueError(
            f"moving has shape {moving.shape} but batch_value has shape {batch_value.shape}; "
            "pass one statistic per feature for both."
        )
    return moving * m + batch_value * (1.0 - m)


def moving_average_trajectory(batch_values, momentum, initial=0.0):
    """The moving estimate after each of a sequence of batches (`update_moving` repeated).

    With v̂₀ = `initial` and batch statistics v₁ … v_T:

        v̂_t = v̂_{t−1} × momentum + v_t × (1 − momentum),   t = 1 … T

    Unrolled, v̂_t = momentum^t v̂₀ + (1 − momentum) Σ_k momentum^(t−k) v_k: the starting value
    fades like momentum^t, so about 1/(1 − momentum) steps pass before the estimate forgets it.

    Args:
        batch_values: array of shape ``[T, ...]``, one batch statistic per step.
        momentum: a number in [0, 1].
        initial: the starting estimate, a scalar (Keras starts the mean at 0 and the variance
            at 1) or an array of shape ``batch_values.shape[1:]``.

    Returns:
        A float64 array of shape ``[T, ...]``: the estimate after each step.

    Raises:
        ValueError: `momentum` outside [0, 1]; `batch_values` with no step axis or no steps;
            `initial` whose shape is neither scalar nor ``batch_values.shape[1:]``.
    """
    m = checks.unit_interval(momentum, "momentum", hint="typically 0.9, 0.99 or 0.999")
    values = _as_array(batch_values, "batch_values")
    if values.ndim < 1 or values.shape[0] == 0:
        raise ValueError(
            f"batch_values must have shape [T, ...] with T >= 1 steps, got shape {values.shape}."
        )
    start = _as_array(initial, "initial")
    if start.shape == ():
        start = np.full(values.shape[1:], float(start))
    elif start.shape != values.shape[1:]:
        raise ValueError(
            f"initial has shape {start.shape}; pass a scalar or an array of shape "
            f"{values.shape[1:]} (one value per feature)."
        )
    out = np.empty_like(values)
    current = start
    for t in range(values.shape[0]):
        current = update_moving(current, values[t], m)
        out[t] = current
    return out
