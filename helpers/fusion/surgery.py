"""Building the fused model: every layer cloned, the folded ones with their new weights.

`fuse_graph` plans the folds of a model's `Graph` (`helpers.fusion.plan`) and rebuilds the
model without the folded BN layers, the same kind of model as the original (Sequential stays
Sequential); nested Sequential and functional models are fused the same way, within their model.
"""

from helpers import internals
from helpers.fusion.plan import Graph, plan_folds
from helpers.fusion.report import FoldRecord, FusionError

__all__ = ["all_layers", "fuse_graph", "nested_graph"]


_SUBCLASSED = "inside a subclassed model, whose layer graph cannot be read"


def nested_graph(layer):
    """The `Graph` of a nested Sequential or functional model, or None for other layers."""
    import keras

    if not isinstance(layer, keras.Model):
        return None
    try:
        return Graph(layer)
    except ValueError:  # a subclassed model, or a Sequential without a known input
        return None  # a missing Keras internal raises InternalsError, which is no ValueError


def _clone(layer, linear, prefix, records):
    """A copy of one layer for the fused model; a nested model is fused (records extended)."""
    import keras

    if not isinstance(layer, keras.layers.Layer):
        return layer  # an operation on tensors (x + 3.0, ...): no state, used as it is
    g = nested_graph(layer)
    if g is not None:
        fused, nested_records = fuse_graph(g, f"{prefix}{layer.name}/")
        records += nested_records
        return fused
    if isinstance(layer, keras.Model):  # subclassed: its BN layers stay, say so
        records += [
            FoldRecord(f"{prefix}{layer.name}/{bn.name}", "left in place", reason=_SUBCLASSED)
            for bn in all_layers(layer)[1:]
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
    import keras

    if clone is layer or not isinstance(layer, keras.layers.Layer) or not layer.weights:
        return
    if nested_graph(layer) is not None:
        return  # fused by fuse_graph, which set its weights
    if id(layer) in linear:
        clone.set_weights(linear[id(layer)].weights())
    else:
        clone.set_weights(layer.get_weights())


def fuse_graph(g, prefix=""):
    """Plan and rebuild the model of graph `g` (nested models too): (fused model, records)."""
    import keras

    model = g.model
    records, linear = plan_folds(g, prefix)
    new, where = {}, None
    try:
        for node in g.live():
            where = node.operation
            if id(where) not in new:
                new[id(where)] = _clone(where, linear, prefix, records)
        name = model.name if prefix else f"{model.name}_fused"
        if isinstance(model, keras.Sequential):
            t = model.inputs[0]
            inp = keras.Input(batch_shape=tuple(t.shape), dtype=t.dtype)
            fused = keras.Sequential([inp] + [new[id(n.operation)] for n in g.live()], name=name)
        else:
            tensors, inputs = {}, []
            for t in model.inputs:
                new_t = keras.Input(
                    batch_shape=tuple(t.shape), dtype=t.dtype, name=internals.input_layer_name(t)
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


def all_layers(model):
    """`model` and every layer inside it, nested models' and wrapped layers' too.

    Public attributes only: the `layers` of a model, and the ``layer``, ``forward_layer`` and
    ``backward_layer`` of a wrapper (TimeDistributed, Bidirectional). A layer comes before
    the layers inside it.
    """
    import keras

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
