"""Fold every inference-mode BN layer of a Keras model into a neighbouring linear layer.

`fuse` is the model surgery: it finds each BN layer in a Sequential or functional model
(nested models included), decides whether it folds exactly into the linear layer before or
after it, rebuilds the model without it, and checks the new model's predictions against the
original's. The algebra of each fold is in `helpers.fusion.folds`, pure NumPy.

Layers a BN folds into (exact types; a subclass may change ``call``):

=================================  ====================  ===================================
layer                              BN after it           BN before it
=================================  ====================  ===================================
Dense                              yes                   yes
Conv1D/2D/3D, grouped too          yes                   ``padding="valid"`` only
DepthwiseConv1D/2D                 yes                   ``padding="valid"`` only
SeparableConv1D/2D                 yes (pointwise)       ``padding="valid"`` only
Conv1D/2D/3DTranspose              yes                   no: not exact at the borders
=================================  ====================  ===================================

Models that compute in float16 or bfloat16 (``mixed_float16``, ``mixed_bfloat16`` and the pure
policies) fold too, and are checked both in float32 and in their own precision (see `fuse`).

Also here: `layer_table`, a plain listing of a model's layers to compare models before and
after fusion. Run as ``python -m helpers.fusion model.keras -o fused.keras`` to fuse a saved
model (see `main`).
"""

import argparse
import os
import sys
from dataclasses import dataclass, field

from helpers import internals
from helpers.book import checks
from helpers.fusion import folds

import numpy as np

__all__ = [
    "NOISE_FACTOR",
    "RTOL",
    "FoldRecord",
    "FusionError",
    "FusionReport",
    "bn_affine_of",
    "fuse",
    "layer_table",
    "main",
]

#: Relative tolerance of `fuse`'s own check (see `fuse` for the justification).
RTOL = 1e-4
#: How many times the model's own float32 noise the check allows (see `fuse`).
NOISE_FACTOR = 10


class FusionError(RuntimeError):
    """`fuse` could not build a model that predicts what the original does; nothing returned."""


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
        records: one `FoldRecord` per BN layer, in graph order; a BN inside a nested model
            is named ``"<nested model>/<BN layer>"``.
        max_abs_diff: largest ``|fused - original|`` over the check inputs and outputs,
            compared before a final softmax or sigmoid.
        tolerance: the bound that `max_abs_diff` had to meet.
        n_checked: number of input samples the check used.
        noise: largest change of the fused model's outputs when each of its weights moves by
            one ulp of its dtype (float32's, or float16's or bfloat16's when the layer stores
            its weights so): how much rounding alone moves this network's outputs.
        compute_dtypes: the dtypes below float32 that the model computes or stores weights
            in, e.g. ``("float16",)`` under ``mixed_float16``; empty for a float32 model. For
            such a model, the three figures above are those of both models computing in float32.
        compute_diff, compute_tolerance, compute_noise: the same three with both models
            computing as their dtype policies say, `noise` in ulps of the compute dtype (NaN for
            a float32 model).
    """

    records: list = field(default_factory=list)
    max_abs_diff: float = float("nan")
    tolerance: float = float("nan")
    n_checked: int = 0
    noise: float = float("nan")
    compute_dtypes: tuple = ()
    compute_diff: float = float("nan")
    compute_tolerance: float = float("nan")
    compute_noise: float = float("nan")

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
        if self.compute_dtypes:
            lines[-1] += ", both computing in float32"
            lines.append(
                f"and {self.compute_diff:.1e} computing in {' and '.join(self.compute_dtypes)}, "
                f"as the model's dtype policy says (tolerance {self.compute_tolerance:.1e})"
            )
        return "\n".join(lines)


def _keras():
    import keras

    return keras


def bn_affine_of(bn):
    """The map ``(s, t)`` of a Keras BN layer (`helpers.fusion.folds.bn_affine` on its weights).

    Reads γ and β only when the layer has them (``scale=True``, ``center=True``), so it works
    where ``bn_affine(*bn.get_weights(), bn.epsilon)`` would misplace the vectors.

    Args:
        bn: a built ``keras.layers.BatchNormalization`` layer.

    Returns:
        ``(s, t)``, two float64 vectors with one entry per channel.

    Raises:
        ValueError: `bn` is not a built BatchNormalization layer.
    """
    keras = _keras()
    if not isinstance(bn, keras.layers.BatchNormalization) or not bn.built:
        raise ValueError(f"bn must be a built keras.layers.BatchNormalization, got {bn!r}.")
    return folds.bn_affine(
        bn.gamma.numpy() if bn.scale else None,
        bn.beta.numpy() if bn.center else None,
        bn.moving_mean.numpy(),
        bn.moving_variance.numpy(),
        bn.epsilon,
    )


# ---------------------------------------------------------------------------------------------
# The layers a BN folds into
# ---------------------------------------------------------------------------------------------


def _kinds():
    """The Keras classes a BN folds into, each with its kind."""
    L = _keras().layers
    return {
        L.Dense: "dense",
        L.Conv1D: "conv",
        L.Conv2D: "conv",
        L.Conv3D: "conv",
        L.DepthwiseConv1D: "depthwise",
        L.DepthwiseConv2D: "depthwise",
        L.SeparableConv1D: "separable",
        L.SeparableConv2D: "separable",
        L.Conv1DTranspose: "transpose",
        L.Conv2DTranspose: "transpose",
        L.Conv3DTranspose: "transpose",
    }


def _kind(layer):
    """ "dense", "conv", "depthwise", "separable", "transpose", or "" for any other layer.

    Exact types only: a subclass may change ``call``, so it gets "" (and `_why_not_linear`
    names the class it derives from). tests/test_internals.py checks that each public class
    still builds layers of exactly that type, so that a reshuffled class hierarchy in a new
    Keras cannot quietly turn every fold into "left in place".
    """
    return _kinds().get(type(layer), "")


#: The float dtypes below float32 that a Keras dtype policy computes or stores weights in.
_LOW_PRECISION = ("float16", "bfloat16")


def _np_dtype(dtype):
    """NumPy's dtype for a Keras dtype name ("bfloat16" is ml_dtypes', registered by Keras)."""
    return np.dtype(_keras().backend.standardize_dtype(dtype))


def _largest(dtype):
    """The largest finite value of a float dtype (65504 for float16)."""
    d = _np_dtype(dtype)
    return float(np.nextafter(np.full((), np.inf, d), np.zeros((), d)))


def _coarser(a, b):
    """Of two float dtypes, the one with the larger spacing of numbers near 1 (machine epsilon)."""

    def eps(dtype):
        d = _np_dtype(dtype)
        return float(np.nextafter(np.ones((), d), np.full((), 2, d))) - 1.0

    return a if eps(a) >= eps(b) else b


class _Linear:
    """A layer a BN can fold into, with its weights in float64 as folds accumulate."""

    def __init__(self, layer):
        self.layer, self.kind = layer, _kind(layer)
        weights = [np.asarray(w, np.float64) for w in layer.get_weights()]
        n = 2 if self.kind == "separable" else 1
        self.kernels = weights[:n]
        self.bias = weights[n] if layer.use_bias else None

    def fold_previous(self, s, t):
        k = self.kernels
        if self.kind == "depthwise":
            k[0], self.bias = folds.fold_depthwise_into_previous(k[0], self.bias, s, t)
        else:  # the pointwise kernel of a separable convolution is its last
            axis = -2 if self.kind == "transpose" else -1
            k[-1], self.bias = folds.fold_into_previous(k[-1], self.bias, s, t, axis=axis)

    def fold_next(self, s, t):
        k = self.kernels
        if self.kind == "depthwise":
            k[0], self.bias = folds.fold_depthwise_into_next(k[0], self.bias, s, t)
        elif self.kind == "separable":
            k[0], k[1], self.bias = folds.fold_separable_into_next(k[0], k[1], self.bias, s, t)
        else:
            groups = getattr(self.layer, "groups", 1)
            k[0], self.bias = folds.fold_into_next(k[0], self.bias, s, t, groups=groups)

    def state(self):
        return list(self.kernels), self.bias

    def restore(self, state):
        self.kernels, self.bias = list(state[0]), state[1]

    def overflow(self):
        """ "" when the folded weights fit the layer's dtypes, else why not (float16: 65504)."""
        biggest = max(float(np.max(np.abs(w), initial=0.0)) for w in self.weights64())
        for dtype in dict.fromkeys((self.layer.variable_dtype, self.layer.compute_dtype)):
            if biggest > _largest(dtype):
                return (
                    f"folded weights of '{self.layer.name}' would reach {biggest:.3g}, beyond "
                    f"{dtype}'s largest value {_largest(dtype):.6g}"
                )
        return ""

    def weights64(self):
        return [w for w in (*self.kernels, self.bias) if w is not None]

    def weights(self):
        """The folded weights, computed in float64, rounded once to the layer's variable dtype."""
        dtype = _np_dtype(self.layer.weights[0].dtype)
        return [np.asarray(w, dtype) for w in (*self.kernels, self.bias)]


def _why_not_linear(layer, direction):
    """ "" when a BN can fold into `layer` from `direction` ("previous"/"next"), else why not."""
    kind = _kind(layer)
    if not kind:
        bases = [c.__name__ for c in _kinds() if isinstance(layer, c)]
        if bases:
            return (
                f"'{layer.name}' ({type(layer).__name__}) {direction} is a subclass of "
                f"{bases[0]}, whose call may differ; BN folds only into Keras's own classes"
            )
        return f"'{layer.name}' ({type(layer).__name__}) {direction} is not a linear layer"
    if getattr(layer, "lora_enabled", False):
        return f"'{layer.name}' uses LoRA; merge it first"
    if getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None):
        return f"'{layer.name}' is quantized"
    act = getattr(layer, "activation", None)
    if direction == "before" and getattr(act, "__name__", "linear") != "linear":
        return f"'{layer.name}' applies {act.__name__} before the BN"
    if direction == "after" and kind == "transpose":
        return f"'{layer.name}' is a transposed convolution, where a fold is not exact at borders"
    if direction == "after" and kind != "dense" and layer.padding != "valid":
        return f"'{layer.name}' pads with zeros (padding='{layer.padding}')"
    return ""


def _channel_axis(layer, rank):
    """Channel axis (batch included) of a linear layer's input or output of this rank."""
    if _kind(layer) != "dense" and layer.data_format == "channels_first":
        return 1
    return rank - 1


def _passthrough_types():
    L = _keras().layers
    return (L.Flatten, L.Reshape, L.Permute, L.Dropout, L.Identity)


# ---------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------


def _shape(tensor):
    return tuple(tensor.shape)


class _Graph:
    """A model's call graph, from which BN nodes can be removed (their output rewired)."""

    def __init__(self, model):
        fn = internals.functional_of(model)  # None: subclassed, or a Sequential with no input
        if fn is None:
            raise ValueError(
                "model must be a built Sequential or functional Keras model (give a Sequential "
                "model a `keras.Input` first, or call it once); subclassed models cannot be fused."
            )
        self.model = model
        self.outputs = [id(t) for t in fn.outputs]
        self.nodes = internals.graph_nodes(fn)
        self.calls, self.producer, self.readers = {}, {}, {}
        for node in self.nodes:
            self.calls[id(node.operation)] = self.calls.get(id(node.operation), 0) + 1
            for t in node.outputs:
                self.producer[id(t)] = node
            for t in node.input_tensors:
                self.readers.setdefault(id(t), []).append(node)
        self.alias, self.removed = {}, set()

    def resolve(self, tid):
        while tid in self.alias:
            tid = self.alias[tid]
        return tid

    def live(self):
        return [n for n in self.nodes if id(n) not in self.removed]

    def consumers(self, tid):
        """Distinct live nodes reading tensor `tid`, and whether it is a model output."""
        tid = self.resolve(tid)
        nodes = list({id(n): n for n in self.readers.get(tid, [])}.values())
        return nodes, any(self.resolve(o) == tid for o in self.outputs)

    def remove(self, bn_node):
        src, out = self.resolve(id(bn_node.input_tensors[0])), id(bn_node.outputs[0])
        self.removed.add(id(bn_node))
        self.alias[out] = src
        kept = [n for n in self.readers.get(src, []) if n is not bn_node]
        self.readers[src] = kept + self.readers.pop(out, [])


def _fan_out(consumers, is_output):
    n = len(consumers)
    parts = [f"feeds {n} layer{'s' if n != 1 else ''}"] if n else []
    if is_output:
        parts.append("is a model output")
    return " and ".join(parts)


def _try_previous(g, node, bn):
    """(node of the layer before the BN, "") when the BN folds into it, else (None, reason)."""
    x = node.input_tensors[0]
    src = g.producer.get(g.resolve(id(x)))
    if src is None:
        return None, "its input is a model input; no layer before it"
    prev = src.operation
    why = _why_not_linear(prev, "before")
    if why:
        return None, why
    if g.calls[id(prev)] != 1:
        return None, f"'{prev.name}' is shared (called {g.calls[id(prev)]} times)"
    consumers, is_output = g.consumers(id(x))
    if is_output or len(consumers) != 1:
        return None, f"output of '{prev.name}' {_fan_out(consumers, is_output)}, not only the BN"
    rank = len(_shape(x))
    if bn.axis % rank != _channel_axis(prev, rank):
        return None, f"BN axis {bn.axis} is not the channel axis of '{prev.name}'"
    return src, ""


def _try_next(g, node, bn):
    """(node after the BN, pass-through chain, channel map, "") or (None, None, None, why)."""
    chain, tid = [], id(node.outputs[0])
    while True:
        consumers, is_output = g.consumers(tid)
        if is_output or len(consumers) != 1:
            what = "BN output" if not chain else f"output of '{chain[-1].operation.name}'"
            return None, None, None, f"{what} {_fan_out(consumers, is_output)}"
        nxt = consumers[0]
        if not isinstance(nxt.operation, _passthrough_types()):
            break
        chain.append(nxt)
        tid = id(nxt.outputs[0])
    op = nxt.operation
    why = _why_not_linear(op, "after")
    if not why and g.calls[id(op)] != 1:
        why = f"'{op.name}' is shared (called {g.calls[id(op)]} times)"
    if not why and len(nxt.input_tensors) != 1:
        why = f"'{op.name}' takes several inputs"
    if why:
        return None, None, None, why
    # Which BN channel lands at each element of the linear layer's input? Push the channel
    # index through the pass-through layers (exact: small integers in float32).
    in_shape = _shape(node.input_tensors[0])[1:]
    if any(d is None for d in in_shape):
        return None, None, None, "BN input has unknown dimensions"
    axis = bn.axis % (len(in_shape) + 1)
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
        idx = _keras().ops.convert_to_numpy(fresh(idx, training=False))
    c_axis = _channel_axis(op, idx.ndim)
    moved = np.moveaxis(idx[0], c_axis - 1, -1).reshape(-1, idx.shape[c_axis])
    if not np.all(moved == moved[:1]):
        return None, None, None, f"BN axis {bn.axis} does not map onto the channels of '{op.name}'"
    return nxt, chain, moved[0].astype(np.int64), ""


def _plan(g, prefix):
    """Fold what can be folded in `g` (removing those BN nodes): (records, {id: _Linear})."""
    keras = _keras()
    linear = {}  # id(layer) -> _Linear, its weights updated fold after fold
    bn_nodes = [n for n in g.nodes if isinstance(n.operation, keras.layers.BatchNormalization)]
    records = {id(n): FoldRecord(prefix + n.operation.name, "left in place") for n in bn_nodes}

    def fold(node, direction, s, t):
        """Fold (s, t) into the layer of `node`: "" when done, else why not (nothing changed)."""
        layer = node.operation
        lin = linear.get(id(layer)) or _Linear(layer)
        before = lin.state()
        getattr(lin, f"fold_{direction}")(s, t)
        why = lin.overflow()
        if why:
            lin.restore(before)
            return why
        linear[id(layer)] = lin
        return ""

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
            if node.kwargs.get("training") is True:
                rec.reason = "the BN is called with training=True, so it uses batch statistics"
                continue
            try:
                changed |= _fold_one(g, node, rec, fold)
            except internals.InternalsError:
                raise
            except Exception as err:
                raise FusionError(
                    f"could not fold BN layer '{bn.name}' of {g.model.name!r}: "
                    f"{type(err).__name__}: {err}"
                ) from err
    return [records[id(n)] for n in bn_nodes], linear


def _fold_one(g, node, rec, fold):
    """Fold one BN node into its previous or next layer if it can; True when it did."""
    bn = node.operation
    s, t = bn_affine_of(bn)
    prev, why_prev = _try_previous(g, node, bn)
    if prev is not None:
        why_prev = fold(prev, "previous", s, t)
        if not why_prev:
            rec.action, rec.target, rec.reason = "folded into previous", prev.operation.name, ""
            g.remove(node)
            return True
    nxt, chain, chan, why_next = _try_next(g, node, bn)
    if nxt is not None:
        why_next = fold(nxt, "next", s[chan], t[chan])
        if not why_next:
            rec.action, rec.target, rec.reason = "folded into next", nxt.operation.name, ""
            rec.via = ", ".join(link.operation.name for link in chain)
            g.remove(node)
            return True
    rec.reason = f"before: {why_prev}; after: {why_next}"
    return False


_SUBCLASSED = "inside a subclassed model, whose layer graph cannot be read"


def _nested_graph(layer):
    """The `_Graph` of a nested Sequential or functional model, or None for other layers."""
    if not isinstance(layer, _keras().Model):
        return None
    try:
        return _Graph(layer)
    except ValueError:  # a subclassed model, or a Sequential without a known input
        return None  # a missing Keras internal raises InternalsError, which is no ValueError


def _clone(layer, linear, prefix, records):
    """A copy of one layer for the fused model; a nested model is fused (records extended)."""
    keras = _keras()
    if not isinstance(layer, keras.layers.Layer):
        return layer  # an operation on tensors (x + 3.0, ...): no state, used as it is
    g = _nested_graph(layer)
    if g is not None:
        fused, nested_records = _fuse_graph(g, f"{prefix}{layer.name}/")
        records += nested_records
        return fused
    if isinstance(layer, keras.Model):  # subclassed: its BN layers stay, say so
        records += [
            FoldRecord(f"{prefix}{layer.name}/{bn.name}", "left in place", reason=_SUBCLASSED)
            for bn in _all_layers(layer)[1:]
            if isinstance(bn, keras.layers.BatchNormalization)
        ]
        return keras.models.clone_model(layer)
    if type(layer) is keras.layers.Lambda and layer.function.__name__ == "<lambda>":
        # Its config holds the Python lambda as bytecode, which Keras 3.15 refuses to load
        # and 3.10 loads without the function's globals (a NameError when called): shared.
        return layer
    cfg = layer.get_config()
    if id(layer) in linear:
        cfg["use_bias"] = True
    try:
        return layer.__class__.from_config(cfg)
    except Exception:
        if layer.weights:
            raise
        return layer  # no state (e.g. a Lambda of a Python function): shared, not copied


def _copy_weights(layer, clone, linear):
    keras = _keras()
    if clone is layer or not isinstance(layer, keras.layers.Layer) or not layer.weights:
        return
    if _nested_graph(layer) is not None:
        return  # fused by _fuse_graph, which set its weights
    if id(layer) in linear:
        clone.set_weights(linear[id(layer)].weights())
    else:
        clone.set_weights(layer.get_weights())


def _fuse_graph(g, prefix=""):
    """Plan and rebuild the model of graph `g` (nested models too): (fused model, records)."""
    keras = _keras()
    model = g.model
    records, linear = _plan(g, prefix)
    new, where = {}, None
    try:
        for node in g.live():
            where = node.operation
            if id(where) not in new:
                new[id(where)] = _clone(where, linear, prefix, records)
        name = model.name if prefix else f"{model.name}_fused"
        if isinstance(model, keras.Sequential):
            t = model.inputs[0]
            inp = keras.Input(batch_shape=_shape(t), dtype=t.dtype)
            fused = keras.Sequential([inp] + [new[id(n.operation)] for n in g.live()], name=name)
        else:
            tensors, inputs = {}, []
            for t in model.inputs:
                new_t = keras.Input(
                    batch_shape=_shape(t), dtype=t.dtype, name=internals.input_layer_name(t)
                )
                tensors[id(t)] = new_t
                inputs.append(new_t)
            for node in g.live():
                where = node.operation
                lookup = {id(x): tensors[g.resolve(id(x))] for x in node.input_tensors}
                args, kwargs = node.fill_in(lookup)
                out = new[id(where)](*args, **kwargs)
                for ref, val in zip(node.outputs, keras.tree.flatten(out)):
                    tensors[id(ref)] = val
            where = None
            outputs = keras.tree.pack_sequence_as(
                model.output, [tensors[g.resolve(id(o))] for o in model.outputs]
            )
            inputs = keras.tree.pack_sequence_as(model.input, inputs)
            fused = keras.Model(inputs, outputs, name=name)
        for node in g.live():
            where = node.operation
            _copy_weights(where, new[id(where)], linear)
    except (FusionError, internals.InternalsError):
        raise
    except Exception as err:
        what = f"'{where.name}' ({type(where).__name__})" if where is not None else "the model"
        raise FusionError(
            f"could not rebuild {what} in {model.name!r}: {type(err).__name__}: {err}"
        ) from err
    return fused, records


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------

_SQUASH = ("softmax", "sigmoid")


def _before_squash(model):
    """`model`'s inputs to the outputs it computes before a final softmax or sigmoid."""
    keras = _keras()
    outs, changed = [], False
    for t in keras.tree.flatten(model.outputs):
        node = internals.producer(t)
        op = node.operation
        act = getattr(getattr(op, "activation", None), "__name__", "")
        if isinstance(op, keras.layers.Softmax) or (
            isinstance(op, keras.layers.Activation) and act in _SQUASH
        ):
            outs.append(node.input_tensors[0])
            changed = True
        elif act in _SQUASH and _kind(op) and len(node.input_tensors) == 1:
            linear = op.__class__.from_config({**op.get_config(), "activation": "linear"})
            outs.append(linear(node.input_tensors[0]))
            linear.set_weights(op.get_weights())
            changed = True
        else:
            outs.append(t)
    return keras.Model(model.inputs, outs) if changed else model


def _one_ulp_off(weights, dtypes, rng):
    """Every float weight moved by one unit in the last place of its dtype in `dtypes`.

    Each weight is rounded to that dtype (its own, or a coarser compute dtype such as
    float16), moved to the next number of that dtype up or down at random, and stored back
    in its own dtype.
    """
    out = []
    for w, dtype in zip(weights, dtypes):
        if "float" in w.dtype.name:
            own = w.dtype.name
            d = _np_dtype(_coarser(own, dtype) if "float" in str(dtype) else own)
            v = w.astype(d)
            down = np.nextafter(v, np.full((), -np.inf, d))
            up = np.nextafter(v, np.full((), np.inf, d))
            w = np.where(rng.random(w.shape) < 0.5, down, up).astype(w.dtype)
        out.append(w)
    return out


def _all_layers(model):
    """`model` and every layer inside it, nested models' and wrapped layers' too.

    Public attributes only: the `layers` of a model, and the ``layer``, ``forward_layer`` and
    ``backward_layer`` of a wrapper (TimeDistributed, Bidirectional). A layer comes before
    the layers inside it.
    """
    keras = _keras()
    found, todo = {}, [model]
    while todo:
        layer = todo.pop(0)
        if id(layer) in found:
            continue
        found[id(layer)] = layer
        inner = list(layer.layers) if isinstance(layer, keras.Model) else []
        inner += [getattr(layer, a, None) for a in ("layer", "forward_layer", "backward_layer")]
        todo[:0] = [la for la in inner if isinstance(la, keras.layers.Layer)]
    return list(found.values())


def _low_layers(model):
    """The layers of `model` (nested ones too) that store their weights in float16 or bfloat16."""
    return [
        layer
        for layer in _all_layers(model)
        if layer.variable_dtype in _LOW_PRECISION and layer.weights
    ]


def _policy_name(layer):
    policy = layer.dtype_policy
    return getattr(policy, "name", str(policy))


def _low_precision(model):
    """The dtypes below float32 that `model`'s layers compute or store weights in, sorted."""
    found = {v.dtype for v in model.weights} & set(_LOW_PRECISION)
    for layer in _all_layers(model):
        found.update({layer.compute_dtype, layer.variable_dtype} & set(_LOW_PRECISION))
    return tuple(sorted(found))


#: How Keras serializes a dtype policy that is not quantized (FloatDTypePolicy: its old name).
_FLOAT_POLICIES = ("DTypePolicy", "FloatDTypePolicy")


def _float32_config(config):
    """A layer's `config` with every dtype policy in it, nested layers' too, made "float32".

    A policy is serialized as ``{"class_name": "DTypePolicy", "config": {"name": ...}, ...}``
    (``FloatDTypePolicy`` in older Keras); quantized policies and the dtypes of inputs (plain
    strings) are left as they are.
    """
    if isinstance(config, (list, tuple)):
        return type(config)(_float32_config(c) for c in config)
    if not isinstance(config, dict):
        return config
    out = {key: _float32_config(value) for key, value in config.items()}
    policy = config.get("dtype")
    if isinstance(policy, dict) and policy.get("class_name") in _FLOAT_POLICIES:
        out["dtype"] = "float32"
    return out


def _float32_input(tensor):
    """A new model input like `tensor`, float32 if `tensor` is float16 or bfloat16."""
    dtype = "float32" if tensor.dtype in _LOW_PRECISION else tensor.dtype
    return _keras().Input(batch_shape=tensor.shape, dtype=dtype, name=tensor.name)


class _NoTwin(Exception):
    """`_float32_twin` cannot copy a model so; the message names the layer and why."""


def _float32_twin(model):
    """A copy of `model` whose every layer computes in float32 and stores float32 weights.

    The copy holds `model`'s weights converted to float32 (exactly: float16 and bfloat16
    numbers are float32 numbers). It is built with public API only, `model` is read and never
    changed: ``keras.models.clone_model`` with each layer rebuilt from its config with every
    dtype policy in it made "float32" (`_float32_config`), and every float16 or bfloat16 model
    input made float32; nested Sequential and functional models are cloned the same way (by
    this function rather than ``clone_model(recursive=True)``, which Keras 3.10 applies to one
    level of nesting only). A Lambda layer is built anew around the same function (its config
    holds a Python lambda as bytecode, which Keras 3.15 refuses to load and 3.10 loads without
    the function's globals), its output shape then inferred.

    Raises:
        _NoTwin: a layer cannot be rebuilt so: a nested subclassed model, or a layer other
            than Lambda whose config does not rebuild it.
    """
    keras = _keras()
    made = {}  # id(layer) -> its copy, so a layer shared by nested models stays shared

    def rebuild(layer):
        if id(layer) in made:
            return made[id(layer)]
        if not isinstance(layer, keras.layers.Layer):
            return layer  # an operation on tensors (x + 3.0): no weights, no dtype policy
        what = f"'{layer.name}' ({type(layer).__name__})"
        if isinstance(layer, keras.Model) and layer is not model and _nested_graph(layer) is None:
            raise _NoTwin(f"{what} is a model whose layer graph cannot be read")
        try:
            if isinstance(layer, keras.Model):
                if isinstance(layer, keras.Sequential):  # its `input` needs a call
                    inputs = _float32_input(layer.inputs[0])
                else:
                    inputs = keras.tree.map_structure(_float32_input, layer.input)
                copy = keras.models.clone_model(
                    layer, input_tensors=inputs, clone_function=rebuild
                )
            elif type(layer) is keras.layers.Lambda:  # its config holds a lambda as bytecode
                copy = keras.layers.Lambda(
                    layer.function,
                    mask=layer.mask,
                    arguments=layer.arguments,
                    name=layer.name,
                    dtype="float32",
                )
            else:
                copy = layer.__class__.from_config(_float32_config(layer.get_config()))
        except _NoTwin:
            raise
        except Exception as err:
            raise _NoTwin(f"{what} cannot be rebuilt from its config") from err
        made[id(layer)] = copy
        return copy

    twin = rebuild(model)
    for layer in _all_layers(twin):
        # The dtype policies of a Sequential or functional model and of an InputLayer cast
        # nothing: a Sequential converts its inputs to its InputLayer's dtype, a functional
        # model leaves them to its layers. What counts there is the dtype of the inputs.
        if isinstance(layer, keras.Model):
            dtypes = {t.dtype for t in layer.inputs}
        elif isinstance(layer, keras.layers.InputLayer):
            continue
        else:
            dtypes = {layer.compute_dtype, layer.variable_dtype}
        if dtypes & set(_LOW_PRECISION):
            raise _NoTwin(
                f"'{layer.name}' ({type(layer).__name__}) still computes in "
                f"{' and '.join(sorted(dtypes & set(_LOW_PRECISION)))} when rebuilt in float32"
            )
    if [(w.shape, w.dtype) for w in twin.weights] != [
        (w.shape, "float32" if "float" in w.dtype else w.dtype) for w in model.weights
    ]:
        raise _NoTwin("its float32 copy does not have the same weights")
    twin.set_weights(
        [w.astype(np.float32) if "float" in w.dtype.name else w for w in model.get_weights()]
    )
    return twin


def _compute_dtypes(model):
    """For each of ``model.weights``, the dtype of the layer that computes with it."""
    owner = {}
    for layer in _all_layers(model):
        for v in layer.weights:  # deeper layers come later and win
            owner[id(v)] = layer.compute_dtype
    return [owner.get(id(v), v.dtype) for v in model.weights]


def _largest_change(a, b):
    """max |a - b|, infinite when a NaN appears (Python's max would skip a NaN)."""
    change = float(np.max(np.abs(a - b)))
    return np.inf if np.isnan(change) else change


def _largest_finite_change(a, b):
    """max |a - b| over the entries where both are finite (0.0 if there are none)."""
    change = np.abs(a - b)
    return float(np.max(change[np.isfinite(change)], initial=0.0))


def _compare(views, fused, xs, ulp_dtypes, seed):
    """(max |fused - original|, noise, output scale) of the two `views` on the inputs `xs`.

    `noise` is the largest change of the fused outputs when every weight of `fused` moves by
    one ulp of its dtype in `ulp_dtypes` (`_one_ulp_off`). The scale is at least 1.
    """
    want = [_predict(views[0], batch) for batch in xs]
    got = [_predict(views[1], batch) for batch in xs]
    weights = fused.get_weights()
    fused.set_weights(_one_ulp_off(weights, ulp_dtypes, np.random.default_rng(seed)))
    try:
        noisy = [_predict(views[1], batch) for batch in xs]
    finally:
        fused.set_weights(weights)
    diff, noise, scale, finite = 0.0, 0.0, 1.0, True
    with np.errstate(invalid="ignore"):  # inf - inf: the caller reports non-finite outputs
        for w, g, z in zip(want, got, noisy):
            for a, b, c in zip(w, g, z):
                if a.size:
                    finite = finite and bool(np.all(np.isfinite(a)))
                    diff = max(diff, _largest_change(a, b))
                    noise = max(noise, _largest_finite_change(c, b))
                    scale = max(scale, float(np.max(np.abs(a))))
    return diff, noise, scale, finite


def _random_inputs(model, n, seed):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = _shape(t)[1:]
        if any(d is None for d in shape):
            return None
        if "int" in str(t.dtype):
            xs.append(rng.integers(0, 2, (n, *shape)).astype(t.dtype))
        else:
            xs.append(rng.standard_normal((n, *shape)).astype(np.float32))
    return xs


def _predict(model, xs):
    keras = _keras()
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o), np.float64) for o in keras.tree.flatten(out)]


def fuse(model, x=None, *, n_random=64, seed=0, rtol=RTOL):
    """A copy of `model` with every Batch Normalization layer that can be folded folded away.

    Each BN layer ``z = s * x + t`` (`bn_affine_of`) is absorbed, exactly, into

    * the linear layer *before* it (the book's formula, p. 341), when that layer applies no
      activation, is called once, feeds only this BN, and the BN normalizes its channel axis;
      otherwise into
    * the linear layer *after* it, possibly through Flatten, Reshape, Permute, Dropout or
      Identity layers, when every tensor on that path feeds only the next layer on it, a
      convolution uses ``padding="valid"``, and each input channel of the linear layer
      receives a single BN channel.

    The linear layers are listed in the module docstring. BN layers inside nested models (a
    ``keras.applications`` base inside a Sequential) fold within their model; those inside a
    nested *subclassed* model stay. Anything else stays in place, with the reason in the
    report. Fused layers always get a bias, even when the original had ``use_bias=False``.
    Every other layer is copied from its config, except a layer without weights whose config
    cannot be rebuilt (a ``Lambda`` of a Python lambda), which the two models share.

    The new model is then checked against the original on `n_random` standard-normal inputs
    (plus `x` when given), on the outputs *before* a final softmax or sigmoid, whose scale
    would hide errors in small probabilities:

        max |fused - original| <= max(rtol * max(1, max |original|), NOISE_FACTOR * noise).

    Folding only rounds the new weights to float32 and reorders float32 arithmetic. In a
    well-conditioned network each output is a sum of a few hundred products whose rounding
    errors (unit roundoff 6e-8) add up to about 1e-6 of the output's scale, so ``rtol=1e-4``
    leaves a margin of ~100. Deep networks with untrained weights can amplify rounding a
    thousandfold; `noise` measures that amplification on the fused model itself, as the
    largest change of its outputs when every weight moves by one float32 ulp, and the check
    allows `NOISE_FACTOR` times that. A wrong fold changes outputs at the scale of the
    outputs themselves, far above either bound.

    The bound must stay below the outputs' scale, or a wrong fold could pass: `fuse` refuses
    a model whose `noise` makes it that large (ValueError), which in practice happens only to
    weights stored in bfloat16 or float16.

    Models whose layers compute in float16 or bfloat16 (the ``mixed_float16`` and
    ``mixed_bfloat16`` policies, or layers built with ``dtype="float16"``/``"bfloat16"``) are
    folded the same way: each fold is computed in float64 from the stored weights and rounded
    once to the layer's variable dtype, which is float32 under the mixed policies (Keras
    casts the weights to float16 only when a layer computes) and float16 or bfloat16 under
    the pure ones. A fold whose weights would exceed the largest value of the layer's compute
    or variable dtype (65504 for float16) is not made; the BN stays, with the reason. The
    check then runs twice:

    1. On float32 copies of both models, by the bound above, with `noise` in ulps of each
       weight's dtype in the fused model. Each copy is built with public Keras API from the
       model's layers' configs with every dtype policy made "float32", and holds the model's
       weights converted to float32 (exactly); the models themselves are only read, never
       changed, not even for the duration of the check. Every layer of a copy computes in
       float32, with the same numbers as weights, so the copies compute what the models
       would in float32. Under the mixed policies the weights are float32, so a fold is checked as
       sharply as in a float32 model; under the pure ones the folded weights had to be
       rounded to float16 or bfloat16, and `noise` measures what that rounding moves. This
       is the check that catches a wrong fold (`max_abs_diff`, `tolerance`, `noise`).
       Check 2 cannot stand in for it, as its bound lets through errors up to the rounding
       of float16 or bfloat16 (a bias off by 1e-3 passes it), so `fuse` refuses a model it
       cannot copy so (ValueError, naming the layer): one with a nested subclassed model, or
       with a layer that its config does not rebuild and that `fuse` therefore shares.
    2. With both models computing as their policies say, by the same bound with `noise` in
       ulps of each layer's *compute* dtype (`compute_diff`, `compute_tolerance`,
       `compute_noise`). Every weight is rounded to that dtype when the layer uses it (unit
       roundoff u = 2^-11 = 4.9e-4 for float16, 2^-8 = 3.9e-3 for bfloat16, against
       float32's 2^-24), and so is every layer's output. Folding changes which numbers get
       rounded: a fused weight rounds differently from the original one, the two roundings
       at most one ulp apart, which is the move `noise` makes; and the BN's own rounded
       output disappears, one rounding of each value, no more than what rounding the n
       weights of the sum that produced it does. So the outputs differ by about `noise`:
       measured, at most 2 times `noise` (mean 0.6) over 96 small Dense and Conv2D
       networks, and 1.0 on MobileNetV2, so `NOISE_FACTOR` leaves a margin of five. Scaling
       ``rtol`` by the ratio of unit roundoffs instead (8192 for float16, 65536 for
       bfloat16), as its float32 derivation would, gives 0.8 and 6.6 times the outputs'
       scale, which would pass a wrong fold; that is check 1's job. This check shows that
       the fused model, run as it will be, stays within the rounding of its compute dtype
       (it fails, e.g., where a fused activation overflows float16).

    Args:
        model: a built Sequential or functional Keras model. It is not modified.
        x: optional array (or list of arrays, one per model input) to include in the check.
        n_random: number of random samples in the check (0 to use only `x`).
        seed: seed of the random check inputs.
        rtol: relative tolerance of the check.

    Returns:
        ``(fused_model, report)``: a new model of the same kind (Sequential stays Sequential),
        named ``<name>_fused``, with the same dtype policies, and a `FusionReport`.

    Raises:
        ValueError: `model` is not a built Sequential/functional model, the check has no
            input (`n_random=0` and no `x`, or inputs with unknown dimensions and no `x`), the
            original model outputs infinite or NaN values on the check inputs, or rounding
            alone moves its outputs too much to check a fold (weights stored in float16 or
            bfloat16; the message names the dtype policy), or it computes in float16 or
            bfloat16 and has a layer that cannot be rebuilt to compute in float32.
        FusionError: a layer could not be rebuilt (the message names it), or the fused
            model's predictions differ from the original's beyond the tolerance (in float32,
            or in the model's compute dtype); nothing is returned then.
    """
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    checks.integer(n_random, "n_random", minimum=0)
    checks.seed(seed)
    rtol = checks.positive(rtol, "rtol")
    graph = _Graph(model)  # refuses subclassed and unbuilt models with a ValueError
    xs = []
    if n_random:
        rand = _random_inputs(model, n_random, seed)
        if rand is None and x is None:
            raise ValueError(
                "the model's inputs have unknown dimensions: pass sample inputs as x."
            )
        xs.append(rand)
    if x is not None:
        xs.append([np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])])
    xs = [v for v in xs if v is not None]
    if not xs:
        raise ValueError("nothing to check the fused model on: use n_random > 0 or pass x.")

    fused, records = _fuse_graph(graph)
    low = _low_precision(model)
    if low:
        try:
            twin = _float32_twin(model)
        except _NoTwin as err:
            raise ValueError(
                f"{model.name!r} computes in {' and '.join(low)}, and fuse checks its folds on a "
                f"copy of it that computes in float32, which it cannot build: {err}."
            ) from err
    try:
        views = _before_squash(model), _before_squash(fused)
        own = [v.dtype for v in fused.weights]
        if low:  # check 1 on float32 copies, check 2 on the models themselves
            fused32 = _float32_twin(fused)
            views32 = _before_squash(twin), _before_squash(fused32)
            diff, noise, scale, finite = _compare(views32, fused32, xs, own, seed)
            at_compute = _compare(views, fused, xs, _compute_dtypes(fused), seed)
        else:
            diff, noise, scale, finite = _compare(views, fused, xs, own, seed)
    except internals.InternalsError:
        raise
    except Exception as err:
        raise FusionError(
            f"could not run the check of {model.name!r}: {type(err).__name__}: {err}"
        ) from err
    tol = max(rtol * scale, NOISE_FACTOR * noise)
    report = FusionReport(records, diff, tol, sum(len(b[0]) for b in xs), noise)
    both = " with both computing in float32" if low else ""
    if not finite:
        raise ValueError(
            f"{model.name!r} itself outputs infinite or NaN values on the check inputs{both}; "
            "pass inputs like those it was trained on as x, with n_random=0."
        )
    if not NOISE_FACTOR * noise < scale:  # a wrong fold moves outputs by about their scale
        low_layers = _low_layers(model)
        stored = " and ".join(sorted({la.variable_dtype for la in low_layers} or {"float32"}))
        policies = ", ".join(sorted({repr(_policy_name(la)) for la in low_layers}))
        hint = "; rebuild it under a mixed policy, which keeps float32 weights" if policies else ""
        raise ValueError(
            f"{model.name!r} stores its weights in {stored}"
            + (f" (dtype policy {policies})" if policies else "")
            + f", and moving each weight by one ulp moves its outputs by up to {noise:.3g} for a "
            f"scale of {scale:.3g}, too much for fuse's check to tell a wrong fold from "
            f"rounding{hint}."
        )
    if not diff <= tol:
        raise FusionError(
            f"the fused model differs from {model.name!r} by up to {diff:.3g} (tolerance "
            f"{tol:.3g}){both}; this is a bug in fuse, please report it with the model.\n{report}"
        )
    if low:
        dtypes = " and ".join(low)
        c_diff, c_noise, c_scale, c_finite = at_compute
        c_tol = max(rtol * c_scale, NOISE_FACTOR * c_noise)
        report.compute_dtypes, report.compute_tolerance = low, c_tol
        report.compute_diff, report.compute_noise = c_diff, c_noise
        if not c_finite:
            raise ValueError(
                f"{model.name!r} itself outputs infinite or NaN values on the check inputs when "
                f"it computes in {dtypes}, as its dtype policy says; pass inputs like those it "
                "was trained on as x, with n_random=0."
            )
        if not c_diff <= c_tol:
            why = f"overflows {dtypes}" if np.isinf(c_diff) else f"differs by up to {c_diff:.3g}"
            raise FusionError(
                f"computing in {dtypes}, as its dtype policy says, the fused model {why}, more "
                f"than rounding explains (tolerance {c_tol:.3g}), though it predicts what "
                f"{model.name!r} does when both compute in float32; keep the original model."
                f"\n{report}"
            )
    return fused, report


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


# ---------------------------------------------------------------------------------------------
# python -m helpers.fusion
# ---------------------------------------------------------------------------------------------


def main(argv=None):
    """Fuse a saved Keras model: ``python -m helpers.fusion model.keras -o fused.keras``.

    Loads the model, fuses it with `fuse` (which checks the result), saves the fused model and
    prints the report. Any failure prints one line on stderr, exits with status 1 and writes
    no output file.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on failure (2 for bad usage, from argparse).
    """
    parser = argparse.ArgumentParser(
        prog="python -m helpers.fusion",
        description="Fold the BN layers of a saved Keras model into their neighbours.",
    )
    parser.add_argument("model", help="the saved model, a .keras file")
    parser.add_argument("-o", "--output", required=True, help="where to save the fused model")
    parser.add_argument("--n-random", type=int, default=64, help="random samples in the check")
    args = parser.parse_args(argv)

    def fail(message):
        print(f"error: {message}", file=sys.stderr)
        return 1

    if not args.output.endswith(".keras"):
        return fail(f"the output must be a .keras file, got {args.output!r}.")
    if os.path.abspath(args.output) == os.path.abspath(args.model):
        return fail("the output must not overwrite the input model.")
    if not os.path.isfile(args.model):
        return fail(f"no such file: {args.model!r}.")
    keras = _keras()
    try:
        model = keras.models.load_model(args.model, compile=False)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        return fail(f"{args.model!r} is not a Keras model that can be loaded ({first}).")
    try:
        fused, report = fuse(model, n_random=args.n_random)
    except (ValueError, FusionError) as err:
        return fail(str(err).splitlines()[0])
    tmp = f"{args.output}.partial.keras"
    try:
        fused.save(tmp)
        os.replace(tmp, args.output)
    except Exception as err:
        return fail(f"could not save {args.output!r}: {err}")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(report)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
