"""Fold inference-mode Batch Normalization into a neighbouring Dense or convolution layer.

At inference a BN layer is a fixed per-channel affine map, ``z = s * x + t`` with
``s = gamma / sqrt(moving_variance + epsilon)`` and ``t = beta - s * moving_mean``. An affine
map next to a linear layer can be absorbed into that layer's kernel and bias, so the BN layer
disappears without changing the predictions (Géron, *Hands-On ML*, 2nd ed., p. 341).

The module follows the split of PyTorch's ``torch/nn/utils/fusion.py``:

* array maths, pure NumPy and independent of Keras: `bn_affine`, `fold_into_previous`
  (BN after the linear layer, the book's formula) and `fold_into_next` (BN before it);
* model surgery: `fuse` finds every BN in a Keras model, decides whether it can be folded
  exactly, rebuilds the model without it, and checks the new predictions against the old.

Helpers for looking at models (`layer_table`) and at TensorFlow Lite's conversion of them
(`to_tflite`, `tflite_ops`, `tflite_predict`) live here too, because the chapter on fusion
compares `fuse` with what TFLite's converter does.
"""

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass, field

from helpers import checks

import numpy as np

__all__ = [
    "FoldRecord",
    "FusionError",
    "FusionReport",
    "bn_affine",
    "fold_into_next",
    "fold_into_previous",
    "fuse",
    "layer_table",
    "tflite_ops",
    "tflite_predict",
    "time_interleaved",
    "to_tflite",
]

#: Relative tolerance of `fuse`'s own check (see `fuse` for the justification).
RTOL = 1e-4

# ---------------------------------------------------------------------------------------------
# Array maths
# ---------------------------------------------------------------------------------------------


def _vector(name, value, n=None, allow_none=False):
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} must be an array, got None.")
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
    """The per-channel scale and shift that an inference-mode BN layer applies.

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
        ValueError: a vector is not 1-D, the lengths differ, a variance is negative, or
            epsilon is not a positive number.
    """
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
    gamma = _vector("gamma", gamma, n, allow_none=True)
    beta = _vector("beta", beta, n, allow_none=True)
    s = 1.0 / np.sqrt(var + float(epsilon))
    if gamma is not None:
        s = gamma * s
    t = -s * mean
    if beta is not None:
        t = t + beta
    return s, t


def _kernel(kernel, n, axis_name):
    if kernel is None:
        raise ValueError("kernel must be an array, got None.")
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim < 2:
        raise ValueError(
            f"kernel must have at least 2 dimensions (Dense: (in, out); Conv2D: (kh, kw, in, "
            f"out)), got shape {k.shape}."
        )
    size = k.shape[-1] if axis_name == "out" else k.shape[-2]
    if size != n:
        raise ValueError(
            f"kernel has {size} {axis_name}put channels (shape {k.shape}) but the BN layer has "
            f"{n}; the BN must act on the kernel's {axis_name}put channels."
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


def fold_into_previous(kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon):
    """Fold a BN layer into the Dense or convolution layer *before* it (the book's formula).

    The linear layer computes ``h = x W + b`` and BN then computes
    ``z = gamma * (h - mu) / sigma + beta`` per output channel. Substituting,

        W' = W * (gamma / sigma),    b' = gamma * (b - mu) / sigma + beta,

    where the scaling acts on the kernel's last (output-channel) axis and
    ``sigma = sqrt(moving_variance + epsilon)``, so that ``z = x W' + b'`` exactly.

    Args:
        kernel: kernel of shape ``(..., C_in, C)``: ``(C_in, C)`` for Dense,
            ``(kh, kw, C_in, C)`` for Conv2D.
        bias: vector of shape ``(C,)``, or None for a layer built with ``use_bias=False``.
        gamma: BN scale, shape ``(C,)``, or None (``scale=False``).
        beta: BN offset, shape ``(C,)``, or None (``center=False``).
        moving_mean: shape ``(C,)``.
        moving_variance: shape ``(C,)``, non-negative.
        epsilon: BN's smoothing term, > 0.

    Returns:
        ``(kernel, bias)`` of the fused layer, float64; the bias is always present.

    Raises:
        ValueError: shapes do not match, a variance is negative, or epsilon <= 0.
    """
    s, t = bn_affine(gamma, beta, moving_mean, moving_variance, epsilon)
    k = _kernel(kernel, s.shape[0], "out")
    b = _bias(bias, s.shape[0])
    return k * s, b * s + t


def fold_into_next(gamma, beta, moving_mean, moving_variance, epsilon, kernel, bias):
    """Fold a BN layer into the Dense or convolution layer *after* it.

    BN computes ``z = s * x + t`` per input channel (see `bn_affine`) and the next layer
    ``y = z W + b``. Substituting,

        W'[..., i, o] = s[i] * W[..., i, o], b'[o] = b[o] + sum over (..., i) of t[i] W[..., i, o],

    so that ``y = x W' + b'``. For a convolution the sum runs over every kernel position, which
    is exact only when every kernel position sees a real input (``padding="valid"``): with
    zero padding the padded positions would contribute ``t W`` in the fused layer but nothing
    in the original one.

    Args:
        gamma: BN scale, shape ``(C,)``, or None (``scale=False``).
        beta: BN offset, shape ``(C,)``, or None (``center=False``).
        moving_mean: shape ``(C,)``.
        moving_variance: shape ``(C,)``, non-negative.
        epsilon: BN's smoothing term, > 0.
        kernel: kernel of shape ``(..., C, C_out)``: ``(C, C_out)`` for Dense,
            ``(kh, kw, C, C_out)`` for Conv2D.
        bias: shape ``(C_out,)``, or None for a layer built with ``use_bias=False``.

    Returns:
        ``(kernel, bias)`` of the fused layer, float64; the bias is always present.

    Raises:
        ValueError: shapes do not match, a variance is negative, or epsilon <= 0.
    """
    s, t = bn_affine(gamma, beta, moving_mean, moving_variance, epsilon)
    k = _kernel(kernel, s.shape[0], "in")
    b = _bias(bias, k.shape[-1])
    new_k = k * s[:, None]
    new_b = b + np.einsum("kio,i->o", k.reshape(-1, *k.shape[-2:]), t)
    return new_k, new_b


# ---------------------------------------------------------------------------------------------
# Model surgery
# ---------------------------------------------------------------------------------------------


class FusionError(RuntimeError):
    """`fuse` built a model whose predictions differ from the original's; nothing is returned."""


@dataclass
class FoldRecord:
    """What happened to one BN layer: folded into a layer, or left in place and why."""

    bn: str
    action: str  # "folded into previous", "folded into next" or "left in place"
    target: str = ""
    via: str = ""
    reason: str = ""


@dataclass
class FusionReport:
    """Every BN layer of the model with what `fuse` did to it, and the check it ran.

    Attributes:
        records: one `FoldRecord` per BN layer, in graph order.
        max_abs_diff: largest ``|fused - original|`` over the check inputs and outputs.
        tolerance: the bound that `max_abs_diff` had to meet.
        n_checked: number of input samples the check used.
    """

    records: list = field(default_factory=list)
    max_abs_diff: float = float("nan")
    tolerance: float = float("nan")
    n_checked: int = 0

    @property
    def folded(self):
        """Records of the BN layers that were folded."""
        return [r for r in self.records if r.action != "left in place"]

    @property
    def left(self):
        """Records of the BN layers left in place."""
        return [r for r in self.records if r.action == "left in place"]

    def rows(self):
        """The report as a list of dicts (one per BN), e.g. for ``pandas.DataFrame``."""
        return [
            {
                "BN layer": r.bn,
                "action": r.action,
                "into": r.target,
                "via": r.via,
                "reason": r.reason,
            }
            for r in self.records
        ]

    def __str__(self):
        head = ("BN layer", "action", "into", "via", "reason")
        body = [tuple(row.values()) for row in self.rows()]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head).rstrip(), "  ".join("-" * w for w in widths)]
        lines += [fmt.format(*row).rstrip() for row in body]
        lines.append(
            f"{len(self.folded)} folded, {len(self.left)} left; max |fused - original| = "
            f"{self.max_abs_diff:.1e} on {self.n_checked} samples (tolerance {self.tolerance:.1e})"
        )
        return "\n".join(lines)


def _keras():
    import keras

    return keras


def _linear_types():
    L = _keras().layers
    return (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D)


def _passthrough_types():
    L = _keras().layers
    return (L.Flatten, L.Reshape, L.Permute, L.Dropout, L.Identity)


def _is_linear(layer):
    return type(layer) in _linear_types()


def _is_conv(layer):
    return _is_linear(layer) and not isinstance(layer, _keras().layers.Dense)


def _has_identity_activation(layer):
    act = getattr(layer, "activation", None)
    return act is None or getattr(act, "__name__", "") == "linear"


def _channel_axis(layer, rank):
    """Channel axis (0-based, batch included) of a linear layer's input/output of this rank."""
    if _is_conv(layer) and layer.data_format == "channels_first":
        return 1
    return rank - 1


def _unsupported_linear(layer):
    if getattr(layer, "lora_enabled", False):
        return f"'{layer.name}' uses LoRA; merge it first"
    policy = getattr(layer, "dtype_policy", None)
    if policy is not None and getattr(policy, "quantization_mode", None):
        return f"'{layer.name}' is quantized"
    return ""


class _Graph:
    """The model's layer-call graph, with BN nodes that can be removed (their output rewired)."""

    def __init__(self, model):
        keras = _keras()
        fn = model._functional if isinstance(model, keras.Sequential) else model
        if fn is None or not hasattr(fn, "_nodes_by_depth"):
            raise ValueError(
                "model must be a built Sequential or functional Keras model (give a Sequential "
                "model a `keras.Input` first, or call it once); subclassed models cannot be fused."
            )
        self.fn = fn
        self.inputs = [id(t) for t in fn.inputs]
        self.outputs = [id(t) for t in fn.outputs]
        self.nodes = []
        for depth in sorted(fn._nodes_by_depth, reverse=True):
            for node in fn._nodes_by_depth[depth]:
                if node.operation is not None and not node.is_input:
                    self.nodes.append(node)
        self.calls = {}
        for node in self.nodes:
            self.calls[id(node.operation)] = self.calls.get(id(node.operation), 0) + 1
        self.producer = {}
        for node in self.nodes:
            for t in node.outputs:
                self.producer[id(t)] = node
        self.alias = {}
        self.removed = set()

    def resolve(self, tid):
        while tid in self.alias:
            tid = self.alias[tid]
        return tid

    def live(self):
        return [n for n in self.nodes if id(n) not in self.removed]

    def consumers(self, tid):
        """Live nodes reading tensor `tid`, and whether it is a model output."""
        tid = self.resolve(tid)
        nodes = [
            n for n in self.live() if any(self.resolve(id(x)) == tid for x in n.input_tensors)
        ]
        is_output = any(self.resolve(o) == tid for o in self.outputs)
        return nodes, is_output

    def remove(self, bn_node):
        self.removed.add(id(bn_node))
        self.alias[id(bn_node.outputs[0])] = self.resolve(id(bn_node.input_tensors[0]))


def _shape(tensor):
    return tuple(tensor.shape)


def _fan_out(consumers, is_output):
    n = len(consumers)
    parts = [f"feeds {n} layer{'s' if n != 1 else ''}"] if n else []
    if is_output:
        parts.append("is a model output")
    return " and ".join(parts)


def _try_previous(g, node, bn):
    """(target node, "") when the BN can fold into the layer before it, else (None, reason)."""
    x = node.input_tensors[0]
    src = g.producer.get(g.resolve(id(x)))
    if src is None:
        return None, "its input is a model input; no layer before it"
    prev = src.operation
    if not _is_linear(prev):
        return None, f"'{prev.name}' ({type(prev).__name__}) before it is not Dense/Conv"
    if not _has_identity_activation(prev):
        return None, f"'{prev.name}' applies {prev.activation.__name__} before the BN"
    if g.calls[id(prev)] != 1:
        return None, f"'{prev.name}' is shared (called {g.calls[id(prev)]} times)"
    bad = _unsupported_linear(prev)
    if bad:
        return None, bad
    consumers, is_output = g.consumers(id(x))
    if is_output or len(consumers) != 1:
        return None, f"output of '{prev.name}' {_fan_out(consumers, is_output)}, not only the BN"
    rank = len(_shape(x))
    if bn.axis % rank != _channel_axis(prev, rank):
        return None, f"BN axis {bn.axis} is not the channel axis of '{prev.name}'"
    return src, ""


def _try_next(g, node, bn):
    """(target node, chain of pass-through layers, channel map, "") or (None,) * 3 + (reason,)."""
    keras = _keras()
    chain = []
    tid = id(node.outputs[0])
    while True:
        consumers, is_output = g.consumers(tid)
        if is_output or len(consumers) != 1:
            what = "BN output" if not chain else f"output of '{chain[-1].operation.name}'"
            return None, None, None, f"{what} {_fan_out(consumers, is_output)}"
        nxt = consumers[0]
        op = nxt.operation
        if isinstance(op, _passthrough_types()):
            chain.append(nxt)
            tid = id(nxt.outputs[0])
            continue
        break
    if not _is_linear(op):
        return None, None, None, f"'{op.name}' ({type(op).__name__}) after it is not Dense/Conv"
    if g.calls[id(op)] != 1:
        return None, None, None, f"'{op.name}' is shared (called {g.calls[id(op)]} times)"
    if len(nxt.input_tensors) != 1:
        return None, None, None, f"'{op.name}' takes several inputs"
    bad = _unsupported_linear(op)
    if bad:
        return None, None, None, bad
    if _is_conv(op):
        if op.padding != "valid":
            return None, None, None, f"'{op.name}' pads with zeros (padding='{op.padding}')"
        if op.groups != 1:
            return None, None, None, f"'{op.name}' is a grouped convolution"
    # Which BN channel lands at each element of the linear layer's input? Push the channel
    # index through the pass-through layers (exact: small integers in float32).
    in_shape = _shape(node.input_tensors[0])[1:]
    if any(d is None for d in in_shape):
        return None, None, None, "BN input has unknown dimensions"
    rank = len(in_shape) + 1
    axis = bn.axis % rank
    n_ch = in_shape[axis - 1]
    if n_ch >= 2**24:
        return None, None, None, "too many channels to trace"
    idx = np.arange(n_ch, dtype=np.float32).reshape(
        [-1 if a == axis - 1 else 1 for a in range(len(in_shape))]
    )
    idx = np.broadcast_to(idx, in_shape)[None].copy()
    for link in chain:
        layer = link.operation
        fresh = layer.__class__.from_config(layer.get_config())
        idx = keras.ops.convert_to_numpy(fresh(idx, training=False))
    c_axis = _channel_axis(op, idx.ndim)
    moved = np.moveaxis(idx[0], c_axis - 1, -1).reshape(-1, idx.shape[c_axis])
    if not np.all(moved == moved[:1]):
        return (
            None,
            None,
            None,
            f"BN axis {bn.axis} does not map onto the input channels of '{op.name}'",
        )
    return nxt, chain, moved[0].astype(np.int64), ""


def _bn_stats(bn):
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else None
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else None
    return (
        gamma,
        beta,
        np.asarray(bn.moving_mean.numpy(), np.float64),
        np.asarray(bn.moving_variance.numpy(), np.float64),
        float(bn.epsilon),
    )


def _clone_layer(layer, use_bias=None):
    cfg = layer.get_config()
    if use_bias is not None:
        cfg["use_bias"] = use_bias
    return layer.__class__.from_config(cfg)


def _random_inputs(model, n, seed):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = _shape(t)[1:]
        if any(d is None for d in shape):
            return None
        xs.append(rng.standard_normal((n, *shape)).astype(np.float32))
    return xs


def _predict(model, xs):
    keras = _keras()
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o), np.float64) for o in keras.tree.flatten(out)]


def fuse(model, x=None, *, n_random=64, seed=0, rtol=RTOL):
    """A copy of `model` with every Batch Normalization layer that can be folded folded away.

    Each BN layer ``z = s * x + t`` (see `bn_affine`) is absorbed, exactly, into

    * the Dense/Conv layer *before* it (`fold_into_previous`, the book's formula, p. 341), when
      that layer has no activation, is called once, feeds only this BN, and the BN normalizes
      its channel axis; otherwise into
    * the Dense/Conv layer *after* it (`fold_into_next`), possibly through Flatten, Reshape,
      Permute, Dropout or Identity layers, when every tensor on that path feeds only the next
      layer on it, the convolution uses ``padding="valid"`` and ``groups=1``, and each input
      channel of the linear layer receives a single BN channel.

    Anything else stays in place, with the reason in the report. The fused layers always get
    a bias, even when the original had ``use_bias=False``.

    The new model is then checked against the original on `n_random` standard-normal inputs
    (plus `x` when given): ``max |fused - original| <= rtol * max(1, max |original|)``. Folding
    only reorders float32 arithmetic: each output is a sum of a few hundred products whose
    rounding errors (unit roundoff 6e-8) add up to about 1e-6 of the output's scale, so the
    default ``rtol=1e-4`` leaves a margin of ~100, while a wrong fold changes outputs at the
    scale of the BN statistics themselves.

    Args:
        model: a built Sequential or functional Keras model. It is not modified.
        x: optional array (or list of arrays, one per model input) to include in the check.
        n_random: number of random samples in the check (0 to use only `x`).
        seed: seed of the random check inputs.
        rtol: relative tolerance of the check.

    Returns:
        ``(fused_model, report)``: a new model of the same kind (Sequential stays Sequential),
        named ``<name>_fused``, and a `FusionReport`.

    Raises:
        ValueError: `model` is not a built Sequential/functional model, or the check has no
            input (`n_random=0` and no `x`, or inputs with unknown dimensions and no `x`).
        FusionError: the fused model's predictions differ from the original's beyond the
            tolerance (nothing is returned then).
    """
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    checks.integer(n_random, "n_random", minimum=0)
    rtol = checks.positive(rtol, "rtol")
    g = _Graph(model)

    kernels = {}  # id(linear layer) -> [kernel, bias] in float64, updated fold after fold
    bn_nodes = [n for n in g.nodes if isinstance(n.operation, keras.layers.BatchNormalization)]
    records = {id(n): FoldRecord(n.operation.name, "left in place") for n in bn_nodes}

    def current(layer):
        if id(layer) not in kernels:
            bias = layer.bias.numpy() if layer.use_bias else None
            kernels[id(layer)] = [np.asarray(layer.kernel.numpy(), np.float64), bias]
        return kernels[id(layer)]

    changed = True
    while changed:  # repeat: folding one BN can make a neighbouring BN foldable
        changed = False
        for node in bn_nodes:
            if id(node) in g.removed:
                continue
            bn, rec = node.operation, records[id(node)]
            if g.calls[id(bn)] != 1:
                rec.reason = f"the BN layer is shared (called {g.calls[id(bn)]} times)"
                continue
            stats = _bn_stats(bn)
            prev, why_prev = _try_previous(g, node, bn)
            if prev is not None:
                k, b = current(prev.operation)
                kernels[id(prev.operation)] = list(fold_into_previous(k, b, *stats))
                rec.action, rec.target, rec.reason = (
                    "folded into previous",
                    prev.operation.name,
                    "",
                )
                g.remove(node)
                changed = True
                continue
            nxt, chain, chan, why_next = _try_next(g, node, bn)
            if nxt is not None:
                gamma, beta, mean, var, eps = stats

                def pick(v, chan=chan):
                    return None if v is None else v[chan]

                k, b = current(nxt.operation)
                kernels[id(nxt.operation)] = list(
                    fold_into_next(pick(gamma), pick(beta), mean[chan], var[chan], eps, k, b)
                )
                rec.action, rec.target = "folded into next", nxt.operation.name
                rec.via = ", ".join(link.operation.name for link in chain)
                rec.reason = ""
                g.remove(node)
                changed = True
                continue
            rec.reason = f"before: {why_prev}; after: {why_next}"

    fused = _rebuild(model, g, kernels)

    xs = []
    if n_random:
        rand = _random_inputs(model, n_random, seed)
        if rand is None and x is None:
            raise ValueError(
                "the model's inputs have unknown dimensions: pass sample inputs as x."
            )
        xs.append(rand)
    if x is not None:
        xs.append(
            [np.asarray(a, np.float32) for a in (x if isinstance(x, (list, tuple)) else [x])]
        )
    xs = [v for v in xs if v is not None]
    if not xs:
        raise ValueError("nothing to check the fused model on: use n_random > 0 or pass x.")
    diff, scale, n = 0.0, 1.0, 0
    for batch in xs:
        for a, b in zip(_predict(model, batch), _predict(fused, batch)):
            diff = max(diff, float(np.max(np.abs(a - b))) if a.size else 0.0)
            scale = max(scale, float(np.max(np.abs(a))) if a.size else 0.0)
        n += len(batch[0])
    tol = rtol * scale
    report = FusionReport([records[id(n)] for n in bn_nodes], diff, tol, n)
    if not diff <= tol:
        raise FusionError(
            f"the fused model differs from {model.name!r} by up to {diff:.3g} (tolerance "
            f"{tol:.3g}); this is a bug in fuse, please report it with the model.\n{report}"
        )
    return fused, report


def _rebuild(model, g, kernels):
    keras = _keras()
    new_layers = {}
    for node in g.live():
        layer = node.operation
        if id(layer) in new_layers:
            continue
        if isinstance(layer, keras.Model):
            clone = keras.models.clone_model(layer)
        elif id(layer) in kernels:
            clone = _clone_layer(layer, use_bias=True)
        else:
            clone = _clone_layer(layer)
        new_layers[id(layer)] = clone
    name = f"{model.name}_fused"
    if isinstance(model, keras.Sequential):
        t = model.inputs[0]
        inp = keras.Input(shape=_shape(t)[1:], dtype=t.dtype)
        fused = keras.Sequential(
            [inp] + [new_layers[id(n.operation)] for n in g.live()], name=name
        )
    else:
        tensors = {}
        new_inputs = []
        for t in model.inputs:
            src = getattr(t, "_keras_history", None)
            name_in = src[0].name if src is not None else None
            new = keras.Input(shape=_shape(t)[1:], dtype=t.dtype, name=name_in)
            tensors[id(t)] = new
            new_inputs.append(new)
        for node in g.nodes:
            if id(node) in g.removed:
                continue
            lookup = {id(x): tensors[g.resolve(id(x))] for x in node.input_tensors}
            args, kwargs = node.arguments.fill_in(lookup)
            out = new_layers[id(node.operation)](*args, **kwargs)
            for ref, val in zip(node.outputs, keras.tree.flatten(out)):
                tensors[id(ref)] = val
        outputs = keras.tree.pack_sequence_as(
            model._outputs_struct, [tensors[g.resolve(id(o))] for o in model.outputs]
        )
        fused = keras.Model(
            new_inputs if len(new_inputs) > 1 else new_inputs[0], outputs, name=name
        )
    for node in g.live():
        layer = node.operation
        clone = new_layers[id(layer)]
        if id(layer) in kernels:
            k, b = kernels[id(layer)]
            dtype = layer.kernel.dtype
            clone.set_weights([k.astype(dtype), b.astype(dtype)])
        else:
            clone.set_weights(layer.get_weights())
    return fused


# ---------------------------------------------------------------------------------------------
# Looking at models
# ---------------------------------------------------------------------------------------------


def layer_table(model):
    """One row per layer: name, type, output shape (batch dimension omitted) and parameters.

    A plain, width-independent alternative to ``model.summary()``, so tables of models before
    and after fusion can be compared and asserted on.

    Args:
        model: a built Keras model.

    Returns:
        A list of ``(name, type, output shape, number of parameters)`` tuples.

    Raises:
        ValueError: `model` is not a built Keras model.
    """
    keras = _keras()
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "model must be a built keras.Model (give it a keras.Input or call it once)."
        )
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape[1:])
        except (AttributeError, ValueError):
            shape = ()
        rows.append((layer.name, type(layer).__name__, shape, int(layer.count_params())))
    return rows


@contextlib.contextmanager
def _silenced():
    """Send file-descriptor level stdout/stderr to /dev/null, and collect Python warnings.

    TFLite's converter prints the path of a temporary SavedModel, and its interpreter logs
    from C++ straight to file descriptor 2; neither can be stopped with Python's own streams.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        with (
            warnings.catch_warnings(record=True) as caught,
            open(os.devnull, "w") as out,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            warnings.simplefilter("always")
            yield caught
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _warning_texts(caught):
    texts = []
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in texts:
            texts.append(text)
    return texts


def to_tflite(model):
    """Convert a Keras model with TensorFlow Lite's default converter, quietly.

    Uses ``tf.lite.TFLiteConverter.from_keras_model(model).convert()`` with no optimization
    flags (float32 kept), which is what the book refers to on p. 341.

    Args:
        model: a built Keras model with one input.

    Returns:
        ``(flatbuffer bytes, warning messages)``; the messages are whitespace-normalized texts
        of every Python warning raised during conversion.

    Raises:
        ValueError: `model` is not a built single-input Keras model.
    """
    keras = _keras()
    if not isinstance(model, keras.Model) or not model.built or len(model.inputs) != 1:
        raise ValueError("model must be a built keras.Model with exactly one input.")
    import tensorflow as tf

    with _silenced() as caught:
        content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return content, _warning_texts(caught)


def _interpreter(tflite_model, delegates, num_threads=None):
    if not isinstance(tflite_model, (bytes, bytearray)) or not tflite_model:
        raise ValueError("tflite_model must be the non-empty bytes returned by to_tflite(model).")
    import tensorflow as tf

    kind = tf.lite.experimental.OpResolverType
    resolver = kind.AUTO if delegates else kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with _silenced() as caught:
        it = tf.lite.Interpreter(
            model_content=bytes(tflite_model),
            experimental_op_resolver_type=resolver,
            num_threads=num_threads,
        )
        it.allocate_tensors()
    return it, _warning_texts(caught)


def tflite_ops(tflite_model):
    """The operators of a converted model, in execution order, without delegation.

    Uses the interpreter's ``_get_ops_details()`` (TF 2.21 has no public listing other than
    ``tf.lite.experimental.Analyzer``, which prints rather than returns). The interpreter is
    created without the default XNNPACK delegate, so the list shows the model's own
    operators instead of one opaque ``DELEGATE`` node.

    Args:
        tflite_model: bytes from `to_tflite`.

    Returns:
        ``(operator names, warning messages)``.

    Raises:
        ValueError: `tflite_model` is not non-empty bytes.
    """
    it, msgs = _interpreter(tflite_model, delegates=False)
    return [d["op_name"] for d in it._get_ops_details()], msgs


def tflite_predict(tflite_model, x, batch_size=1024, num_threads=None):
    """Run a converted single-input model on `x`, batch by batch, with the default delegates.

    Args:
        tflite_model: bytes from `to_tflite`.
        x: float array whose first axis is the batch.
        batch_size: positive number of samples per interpreter call.
        num_threads: threads for the interpreter (None: TFLite's default).

    Returns:
        The outputs for every sample, as one float32 array.

    Raises:
        ValueError: bad `tflite_model`, empty `x`, or non-positive `batch_size`.
    """
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    x = np.asarray(x, np.float32)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError("x must hold at least one sample along its first axis.")
    it, _ = _interpreter(tflite_model, delegates=True, num_threads=num_threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results, current = [], None
    with _silenced():
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            if current != len(chunk):
                it.resize_tensor_input(inp["index"], [len(chunk), *x.shape[1:]])
                it.allocate_tensors()
                current = len(chunk)
            it.set_tensor(inp["index"], chunk)
            it.invoke()
            results.append(it.get_tensor(out["index"]).copy())
    return np.concatenate(results)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def keras_inference_fn(model, x):
    """A no-argument callable that runs `model` on `x` in inference mode, as timed code should.

    The model is traced once into a concrete ``tf.function`` for the shape of `x`, so each call
    runs the graph and converts the output to NumPy, without Keras's per-call Python overhead
    (the way both chapter 06 and ``make bench`` time Keras models).

    Args:
        model: a built Keras model.
        x: the input batch (array or tensor); its shape is fixed by the trace.

    Returns:
        A callable with no arguments returning ``model(x, training=False)`` as a NumPy array.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x, dtype=tf.float32)
    f = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec(x.shape, tf.float32)
    )
    return lambda: f(x).numpy()


def time_interleaved(fns, reps=30, inner=1, warmup=3):
    """Time several callables interleaved (A B C A B C ...), warm-up excluded.

    Each repetition calls every function `inner` times in a row and records the mean time per
    call; the order of the functions rotates from one repetition to the next, so slow drifts of
    the machine (other processes, clock changes) hit every function alike.

    Args:
        fns: dict ``name -> callable`` taking no arguments.
        reps: number of repetitions (>= 1) kept for the statistics.
        inner: calls per function per repetition (>= 1).
        warmup: calls per function before timing starts (>= 0), not recorded.

    Returns:
        dict ``name -> numpy array of shape (reps,)`` of seconds per call.

    Raises:
        ValueError: `fns` is empty or holds a non-callable, or a count is out of range.
    """
    import time

    if not isinstance(fns, dict) or not fns or not all(callable(f) for f in fns.values()):
        raise ValueError(
            "fns must be a non-empty dict mapping names to callables without arguments."
        )
    for name, value, low in (("reps", reps, 1), ("inner", inner, 1), ("warmup", warmup, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    out = {name: np.empty(reps) for name in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            f = fns[name]
            start = time.perf_counter()
            for _ in range(inner):
                f()
            out[name][r] = (time.perf_counter() - start) / inner
    return out
