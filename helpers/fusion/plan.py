"""Reading a model's call graph (`Graph`) and planning which BN layer folds where.

`plan_folds` folds each BN layer it can into the linear layer before or after it, in that
layer's weights (float64, `helpers.fusion.folds`); `helpers.fusion.surgery` builds the model.

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
"""

from helpers import internals
from helpers.fusion.folds import (
    bn_affine,
    fold_depthwise_into_next,
    fold_depthwise_into_previous,
    fold_into_next,
    fold_into_previous,
    fold_separable_into_next,
)
from helpers.fusion.report import FoldRecord, FusionError

import numpy as np

__all__ = ["Graph", "bn_affine_of", "linear_kind", "np_dtype", "plan_folds"]


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
    import keras

    if not isinstance(bn, keras.layers.BatchNormalization) or not bn.built:
        raise ValueError(f"bn must be a built keras.layers.BatchNormalization, got {bn!r}.")
    return bn_affine(
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
    from keras import layers as L

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


def linear_kind(layer):
    """ "dense", "conv", "depthwise", "separable", "transpose", or "" for any other layer.

    Exact types only: a subclass may change ``call``, so it gets "" (and `_why_not_linear`
    names the class it derives from). tests/test_internals.py checks that each public class
    still builds layers of exactly that type, so that a reshuffled class hierarchy in a new
    Keras cannot quietly turn every fold into "left in place".
    """
    return _kinds().get(type(layer), "")


def np_dtype(dtype):
    """NumPy's dtype for a Keras dtype name ("bfloat16" is ml_dtypes', registered by Keras)."""
    import keras

    return np.dtype(keras.backend.standardize_dtype(dtype))


def _largest(dtype):
    """The largest finite value of a float dtype (65504 for float16)."""
    d = np_dtype(dtype)
    return float(np.nextafter(np.full((), np.inf, d), np.zeros((), d)))


class _Linear:
    """A layer a BN can fold into, with its weights in float64 as folds accumulate."""

    def __init__(self, layer):
        self.layer, self.kind = layer, linear_kind(layer)
        weights = [np.asarray(w, np.float64) for w in layer.get_weights()]
        n = 2 if self.kind == "separable" else 1
        self.kernels = weights[:n]
        self.bias = weights[n] if layer.use_bias else None

    def fold_previous(self, s, t):
        k = self.kernels
        if self.kind == "depthwise":
            k[0], self.bias = fold_depthwise_into_previous(k[0], self.bias, s, t)
        else:  # the pointwise kernel of a separable convolution is its last
            axis = -2 if self.kind == "transpose" else -1
            k[-1], self.bias = fold_into_previous(k[-1], self.bias, s, t, axis=axis)

    def fold_next(self, s, t):
        k = self.kernels
        if self.kind == "depthwise":
            k[0], self.bias = fold_depthwise_into_next(k[0], self.bias, s, t)
        elif self.kind == "separable":
            k[0], k[1], self.bias = fold_separable_into_next(k[0], k[1], self.bias, s, t)
        else:
            groups = getattr(self.layer, "groups", 1)
            k[0], self.bias = fold_into_next(k[0], self.bias, s, t, groups=groups)

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
        dtype = np_dtype(self.layer.weights[0].dtype)
        return [np.asarray(w, dtype) for w in (*self.kernels, self.bias)]


def _why_not_linear(layer, direction):
    """ "" when a BN can fold into `layer` from `direction` ("previous"/"next"), else why not."""
    kind = linear_kind(layer)
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
    if linear_kind(layer) != "dense" and layer.data_format == "channels_first":
        return 1
    return rank - 1


def _passthrough_types():
    from keras import layers as L

    return (L.Flatten, L.Reshape, L.Permute, L.Dropout, L.Identity)


# ---------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------


def _shape(tensor):
    return tuple(tensor.shape)


class Graph:
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
    import keras

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
        idx = keras.ops.convert_to_numpy(fresh(idx, training=False))
    c_axis = _channel_axis(op, idx.ndim)
    moved = np.moveaxis(idx[0], c_axis - 1, -1).reshape(-1, idx.shape[c_axis])
    if not np.all(moved == moved[:1]):
        return None, None, None, f"BN axis {bn.axis} does not map onto the channels of '{op.name}'"
    return nxt, chain, moved[0].astype(np.int64), ""


def plan_folds(g, prefix):
    """Fold what can be folded in `g` (removing those BN nodes): (records, {id: _Linear})."""
    import keras

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
