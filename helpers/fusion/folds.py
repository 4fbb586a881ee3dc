r"""The algebra of folding an inference-mode BN layer into a neighbouring linear layer.

At inference a BN layer is a fixed per-channel affine map ``z = s * x + t`` (`bn_affine`). An
affine map next to a linear layer can be absorbed into that layer's kernel and bias, so the BN
layer disappears without changing the predictions (Géron, *Hands-On ML*, 2nd ed., p. 341).

Every fold here takes the kernel and bias of the linear layer and the map ``(s, t)``, in that
order, and returns the new ``(kernel, bias)`` in float64. Only `bn_affine` sees γ, β, μ, v and
ε, so their checks live in one place. This module is pure NumPy; `helpers.fusion.plan` decides
which fold applies where in a Keras model, as PyTorch keeps ``fuse_linear_bn_weights`` apart
from its graph fuser.

Kernel layouts (Keras, channels-last):

* Dense ``(in, out)``; Conv1D/2D/3D ``(*window, in / groups, out)``: `fold_into_previous`,
  `fold_into_next` (``groups`` for grouped convolutions);
* DepthwiseConv2D ``(kh, kw, in, multiplier)``, output channel ``i * multiplier + m``:
  `fold_depthwise_into_previous`, `fold_depthwise_into_next`;
* SeparableConv2D: a depthwise kernel, then a pointwise ``(1, 1, in * multiplier, out)`` one
  with the bias: `fold_into_previous` on the pointwise kernel, `fold_separable_into_next`;
* Conv2DTranspose ``(kh, kw, out, in)``: `fold_into_previous` with ``axis=-2``.
"""

from helpers import checks

import numpy as np

__all__ = [
    "bn_affine",
    "fold_depthwise_into_next",
    "fold_depthwise_into_previous",
    "fold_into_next",
    "fold_into_previous",
    "fold_separable_into_next",
]


def _vector(name, value, n=None):
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D vector with one entry per channel, got shape {arr.shape}."
        )
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but the BN layer has {n} channels; "
            "pass the statistics of the BN layer that sits next to this kernel."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; check the trained BN layer.")
    return arr


def bn_affine(gamma, beta, moving_mean, moving_variance, epsilon):
    r"""The per-channel scale and shift that an inference-mode BN layer applies.

    At inference BN computes ``z = gamma * (x - mu) / sigma + beta`` with
    ``sigma = sqrt(moving_variance + epsilon)``, which is the affine map ``z = s * x + t``:

        s = gamma / sigma,    t = beta - s * mu

    Args:
        gamma: scale vector of shape ``(C,)``, or None for a BN with ``scale=False`` (γ = 1).
        beta: offset vector of shape ``(C,)``, or None for a BN with ``center=False`` (β = 0).
        moving_mean: vector ``mu`` of shape ``(C,)``.
        moving_variance: vector of shape ``(C,)``, every entry >= 0.
        epsilon: the BN layer's smoothing term, > 0.

    Returns:
        ``(s, t)``, two float64 vectors of shape ``(C,)``.

    Raises:
        ValueError: a vector is not 1-D or not finite, the lengths differ, a variance is
            negative, or epsilon is not a positive number.
    """
    if moving_mean is None or moving_variance is None:
        raise ValueError("moving_mean and moving_variance must be arrays, got None.")
    mean = _vector("moving_mean", moving_mean)
    n = mean.shape[0]
    var = _vector("moving_variance", moving_variance, n)
    if np.any(var < 0):
        raise ValueError(
            f"moving_variance has negative entries (min {var.min():.3g}); a variance cannot be "
            "negative: pass the BN layer's moving_variance, not a shifted or log value."
        )
    epsilon = checks.positive(
        epsilon, "epsilon", "the BN layer's `epsilon`, 1e-3 by default in Keras"
    )
    s = 1.0 / np.sqrt(var + epsilon)
    if gamma is not None:
        s = _vector("gamma", gamma, n) * s
    t = -s * mean
    if beta is not None:
        t = t + _vector("beta", beta, n)
    return s, t


def _affine(s, t):
    s = _vector("s", s)
    return s, _vector("t", t, s.shape[0])


def _kernel(kernel, axis, n, role):
    if kernel is None:
        raise ValueError("kernel must be an array, got None.")
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim < 2:
        raise ValueError(
            f"kernel must have at least 2 dimensions (Dense: (in, out); Conv2D: (kh, kw, in, "
            f"out)), got shape {k.shape}."
        )
    if k.shape[axis] != n:
        raise ValueError(
            f"kernel has {k.shape[axis]} {role} channels on axis {axis} (shape {k.shape}) but "
            f"the BN layer has {n}; the BN must act on the kernel's {role} channels."
        )
    return k


def _bias(bias, n):
    if bias is None:
        return np.zeros(n)
    b = np.asarray(bias, dtype=np.float64)
    if b.shape != (n,):
        raise ValueError(
            f"bias must have shape ({n},) to match the kernel's output channels, got {b.shape}."
        )
    return b


def fold_into_previous(kernel, bias, s, t, *, axis=-1):
    r"""Fold a BN layer into the linear layer *before* it (the book's formula, p. 341).

    The linear layer computes ``h = x W + b`` and BN then ``z = s * h + t`` per output channel,
    so ``z = x W' + b'`` with

        W' = W * s  (along the output-channel axis),    b' = s * b + t.

    With ``s = gamma / sigma`` and ``t = beta - s * mu`` this is the book's
    ``W' = gamma W / sigma``, ``b' = gamma (b - mu) / sigma + beta``.

    Args:
        kernel: kernel whose `axis` holds the ``C`` output channels: ``(in, C)`` for Dense,
            ``(..., in, C)`` for a convolution (grouped or not) or a pointwise kernel,
            ``(kh, kw, C, in)`` for Conv2DTranspose.
        bias: vector of shape ``(C,)``, or None for a layer built with ``use_bias=False``.
        s: BN scale per channel, shape ``(C,)`` (see `bn_affine`).
        t: BN shift per channel, shape ``(C,)``.
        axis: the output-channel axis of `kernel`: -1, or -2 for Conv2DTranspose.

    Returns:
        ``(kernel, bias)`` of the fused layer, float64; the bias is always present.

    Raises:
        ValueError: the shapes do not match, or `s`, `t` are not finite vectors.
    """
    s, t = _affine(s, t)
    k = _kernel(kernel, axis, s.shape[0], "output")
    b = _bias(bias, s.shape[0])
    shape = [1] * k.ndim
    shape[axis] = -1
    return k * s.reshape(shape), s * b + t


def fold_into_next(kernel, bias, s, t, *, groups=1):
    r"""Fold a BN layer into the Dense or convolution layer *after* it.

    BN computes ``z = s * x + t`` per input channel and the next layer ``y = z W + b``, so
    ``y = x W' + b'`` with

        W'[..., i, o] = s[i] W[..., i, o],
        b'[o] = b[o] + sum over (..., i) of t[i] W[..., i, o].

    For a convolution the sum runs over every kernel position, which is exact only when every
    position reads a real input (``padding="valid"``): with zero padding the padded positions
    would add ``t W`` in the fused layer but nothing in the original one. In a grouped
    convolution, output channel ``o`` of group ``g`` reads input channels
    ``g * C / groups ... (g + 1) * C / groups - 1``, so ``i`` above runs over those only.

    Args:
        kernel: kernel of shape ``(..., C / groups, C_out)``: ``(C, C_out)`` for Dense,
            ``(kh, kw, C / groups, C_out)`` for Conv2D.
        bias: shape ``(C_out,)``, or None for a layer built with ``use_bias=False``.
        s: BN scale per input channel, shape ``(C,)`` (see `bn_affine`).
        t: BN shift per input channel, shape ``(C,)``.
        groups: the convolution's ``groups``, a positive divisor of ``C`` and of ``C_out``.

    Returns:
        ``(kernel, bias)`` of the fused layer, float64; the bias is always present.

    Raises:
        ValueError: the shapes do not match, or `groups` does not divide the channels.
    """
    s, t = _affine(s, t)
    groups = checks.integer(groups, "groups", minimum=1)
    n_in = s.shape[0]
    if n_in % groups:
        raise ValueError(f"groups must divide the BN's {n_in} channels, got groups={groups}.")
    k = _kernel(kernel, -2, n_in // groups, "input")
    if k.shape[-1] % groups:
        raise ValueError(
            f"groups must divide the kernel's {k.shape[-1]} output channels, got {groups}."
        )
    b = _bias(bias, k.shape[-1])
    # s_of[j, o]: the BN scale of the input channel that row j of the kernel reads for output o.
    group_of_out = np.arange(k.shape[-1]) // (k.shape[-1] // groups)
    s_of = s.reshape(groups, -1)[group_of_out].T
    t_of = t.reshape(groups, -1)[group_of_out].T
    flat = k.reshape(-1, *k.shape[-2:])
    return k * s_of, b + np.einsum("pjo,jo->o", flat, t_of)


def _depthwise(kernel):
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim not in (3, 4):
        raise ValueError(
            "a depthwise kernel must have shape (kh, kw, in, multiplier) (DepthwiseConv1D: "
            f"(k, in, multiplier)), got {k.shape}."
        )
    return k


def fold_depthwise_into_previous(kernel, bias, s, t):
    r"""Fold a BN layer into the DepthwiseConv2D layer *before* it.

    Output channel ``i * multiplier + m`` is computed from the kernel slice ``W[:, :, i, m]``
    alone, so BN scales that slice by ``s[i * multiplier + m]`` (`fold_into_previous` on the
    kernel reshaped to ``(kh, kw, 1, in * multiplier)``).

    Args:
        kernel: depthwise kernel of shape ``(kh, kw, in, multiplier)``.
        bias: shape ``(in * multiplier,)``, or None.
        s: BN scale, shape ``(in * multiplier,)``.
        t: BN shift, shape ``(in * multiplier,)``.

    Returns:
        ``(kernel, bias)`` of the fused layer, float64, the kernel in its original shape.

    Raises:
        ValueError: the shapes do not match.
    """
    k = _depthwise(kernel)
    k2, b2 = fold_into_previous(k.reshape(*k.shape[:-2], 1, -1), bias, s, t)
    return k2.reshape(k.shape), b2


def fold_depthwise_into_next(kernel, bias, s, t):
    r"""Fold a BN layer into the DepthwiseConv2D layer *after* it (``padding="valid"`` only).

    A depthwise convolution is a grouped convolution with one group per input channel: seen
    as a kernel of shape ``(kh, kw, 1, in * multiplier)`` with ``groups = in``, it folds with
    `fold_into_next`.

    Args:
        kernel: depthwise kernel of shape ``(kh, kw, in, multiplier)``.
        bias: shape ``(in * multiplier,)``, or None.
        s: BN scale, shape ``(in,)``.
        t: BN shift, shape ``(in,)``.

    Returns:
        ``(kernel, bias)`` of the fused layer, float64, the kernel in its original shape.

    Raises:
        ValueError: the shapes do not match.
    """
    k = _depthwise(kernel)
    if np.shape(s) != (k.shape[-2],):
        raise ValueError(
            f"s must have one entry per input channel of the depthwise kernel ({k.shape[-2]}), "
            f"got shape {np.shape(s)}."
        )
    k2, b2 = fold_into_next(k.reshape(*k.shape[:-2], 1, -1), bias, s, t, groups=k.shape[-2])
    return k2.reshape(k.shape), b2


def fold_separable_into_next(depthwise, pointwise, bias, s, t):
    r"""Fold a BN layer into the SeparableConv2D layer *after* it (``padding="valid"`` only).

    The depthwise step has no bias of its own: its kernel takes the scale, and the shift
    becomes a constant ``c`` per depthwise output channel (`fold_depthwise_into_next`), which
    the pointwise step maps to ``c W_pointwise``, added to the bias.

    Args:
        depthwise: kernel of shape ``(kh, kw, in, multiplier)``.
        pointwise: kernel of shape ``(1, 1, in * multiplier, out)``.
        bias: shape ``(out,)``, or None.
        s: BN scale, shape ``(in,)``.
        t: BN shift, shape ``(in,)``.

    Returns:
        ``(depthwise, pointwise, bias)`` of the fused layer, float64.

    Raises:
        ValueError: the shapes do not match.
    """
    d2, c = fold_depthwise_into_next(depthwise, None, s, t)
    p = _kernel(pointwise, -2, c.shape[0], "input")
    b = _bias(bias, p.shape[-1])
    return d2, p, b + c @ p.reshape(-1, p.shape[-1])
