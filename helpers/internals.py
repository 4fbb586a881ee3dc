"""Every private Keras or TensorFlow attribute the package uses, and only here.

Keras and TensorFlow may rename or drop a private attribute in any release. Each one used by
the package is read by a function of this module, listed in `INTERNALS` with the reason no
public API does the job in the supported range (Keras 3.10 to the newest). When one is missing,
the function raises `InternalsError`, which names the attribute and the running Keras and
TensorFlow versions: a missing internal is an error, never a quiet change of behaviour (a model
taken for a subclassed one, a BN layer left in place, an empty operator list).
``tests/test_internals.py`` checks every entry of `INTERNALS` on the installed versions and
deletes each attribute in turn to see the error.
"""

from dataclasses import dataclass

__all__ = [
    "INTERNALS",
    "CallNode",
    "InternalsError",
    "collective_key_base_class",
    "functional_of",
    "graph_nodes",
    "input_layer_name",
    "keras_home",
    "producer",
    "tflite_op_names",
]

#: Each internal used, by the name the error message gives, with why it is still needed.
INTERNALS = {
    "keras.src.models.functional.Functional": (
        "tells a functional model from a subclassed one; keras exports no Functional class, "
        "and a subclassed model has `inputs` and `layers` too"
    ),
    "keras.Sequential._functional": (
        "the functional graph a Sequential model builds from its Input; no public accessor"
    ),
    "Functional._nodes_by_depth": (
        "the call graph (who feeds whom) that decides where a BN folds; keras.models.clone_model "
        "rebuilds a graph but does not expose it"
    ),
    "Node.operation": "the layer a graph node calls (keras.src.ops.node.Node is not exported)",
    "Node.is_input": "marks the nodes of Input layers",
    "Node.input_tensors": "the tensors a node reads",
    "Node.outputs": "the tensors a node writes",
    "Node.arguments": (
        "a node's call arguments: `fill_in` maps them onto the rebuilt tensors, `kwargs` shows "
        "training=True"
    ),
    "KerasTensor._keras_history": (
        "the layer and node that made a symbolic tensor (an Input's layer name, a model "
        "output's producer); a KerasTensor's public `name` is not its layer's name"
    ),
    "Operation._inbound_nodes": "the node of a layer call, found from `_keras_history`",
    "tf.distribute.MirroredStrategy._collective_key_base": (
        "a distinct range of collective keys per strategy, so that two strategies in one process "
        "do not meet in the same all-reduce (TensorFlow's own tests set it); no public setting"
    ),
    "tf.lite.Interpreter._get_ops_details": (
        "the operators of a converted model as data; the public tf.lite.experimental.Analyzer "
        "only prints them"
    ),
    "keras.src.backend.config.keras_home": (
        "the folder keras.datasets loads from (KERAS_HOME, ~/.keras, Keras's own fallback); "
        "keras exports no accessor"
    ),
}


class InternalsError(RuntimeError):
    """A private Keras or TensorFlow attribute the package needs is missing in this version."""


def _versions():
    parts = []
    for name in ("keras", "tensorflow"):
        try:
            module = __import__(name)
            parts.append(f"{name} {module.__version__}")
        except Exception:  # pragma: no cover - the package needs both
            parts.append(f"{name} (not importable)")
    return ", ".join(parts)


def _missing(internal, err=None):
    assert internal in INTERNALS, internal
    detail = f" ({type(err).__name__}: {err})" if err is not None else ""
    return InternalsError(
        f"helpers needs {internal}, which this installation ({_versions()}) does not have"
        f"{detail}; it is a private attribute (used for: {INTERNALS[internal]}), so "
        "helpers/internals.py must follow the new version."
    )


def _get(obj, attribute, internal):
    try:
        return getattr(obj, attribute)
    except AttributeError as err:
        raise _missing(internal, err) from None


# --- Keras: the call graph of a Sequential or functional model ---------------------------------


def _functional_class():
    try:
        from keras.src.models.functional import Functional
    except ImportError as err:
        raise _missing("keras.src.models.functional.Functional", err) from None
    return Functional


def functional_of(model):
    """The functional graph behind `model`, or None when it has none.

    Args:
        model: a ``keras.Model``.

    Returns:
        The model itself when it is functional, the functional model a Sequential builds from
        its Input, or None for a subclassed model or a Sequential with no known input yet.

    Raises:
        InternalsError: an internal this needs is missing.
    """
    import keras

    functional = _functional_class()
    if isinstance(model, keras.Sequential):
        return _get(model, "_functional", "keras.Sequential._functional")
    return model if isinstance(model, functional) else None


@dataclass(frozen=True, eq=False)
class CallNode:
    """One call of a layer (or operation) in a model's graph, read from Keras's own node.

    Attributes:
        operation: the layer or operation called.
        input_tensors: the symbolic tensors it reads, in order.
        outputs: the symbolic tensors it writes, in order.
        kwargs: the keyword arguments of the call (``training=True`` among them).
        arguments: Keras's record of the call's arguments (see `fill_in`).
    """

    operation: object
    input_tensors: tuple
    outputs: tuple
    kwargs: dict
    arguments: object

    def fill_in(self, lookup):
        """``(args, kwargs)`` of the call with each tensor replaced by ``lookup[id(tensor)]``."""
        fill = _get(self.arguments, "fill_in", "Node.arguments")
        return fill(lookup)


def _call_node(node):
    arguments = _get(node, "arguments", "Node.arguments")
    return CallNode(
        operation=_get(node, "operation", "Node.operation"),
        input_tensors=tuple(_get(node, "input_tensors", "Node.input_tensors")),
        outputs=tuple(_get(node, "outputs", "Node.outputs")),
        kwargs=dict(_get(arguments, "kwargs", "Node.arguments")),
        arguments=arguments,
    )


def graph_nodes(functional):
    """The layer calls of a functional model, inputs first, without its Input layers.

    Args:
        functional: a functional model (see `functional_of`).

    Returns:
        A list of `CallNode`, each after the nodes it reads from.

    Raises:
        InternalsError: an internal this needs is missing.
    """
    by_depth = _get(functional, "_nodes_by_depth", "Functional._nodes_by_depth")
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if _get(node, "operation", "Node.operation") is None:
                continue
            if _get(node, "is_input", "Node.is_input"):
                continue
            nodes.append(_call_node(node))
    return nodes


def _history(tensor):
    return _get(tensor, "_keras_history", "KerasTensor._keras_history")


def input_layer_name(tensor):
    """The name of the Input layer that made `tensor`, one of a model's ``inputs``."""
    return _history(tensor)[0].name


def producer(tensor):
    """The `CallNode` that wrote the symbolic `tensor` (one of a model's ``outputs``)."""
    operation, node_index, _ = _history(tensor)
    inbound = _get(operation, "_inbound_nodes", "Operation._inbound_nodes")
    return _call_node(inbound[node_index])


# --- TensorFlow --------------------------------------------------------------------------------


def collective_key_base_class(base):
    """A subclass of ``tf.distribute.MirroredStrategy`` numbering its collectives from `base`.

    Args:
        base: an integer; the strategy's collective groups are numbered from ``1 + base``.

    Returns:
        The class (instantiate it with the devices).

    Raises:
        InternalsError: MirroredStrategy has no ``_collective_key_base``.
    """
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy
    _get(strategy, "_collective_key_base", "tf.distribute.MirroredStrategy._collective_key_base")
    return type("MirroredStrategy", (strategy,), {"_collective_key_base": base})


def tflite_op_names(interpreter):
    """The operator names of a ``tf.lite.Interpreter``'s model, in execution order."""
    details = _get(interpreter, "_get_ops_details", "tf.lite.Interpreter._get_ops_details")
    return [d["op_name"] for d in details()]


def keras_home():
    """Keras's home folder (``KERAS_HOME``, else ``~/.keras``), as Keras itself computes it."""
    try:
        from keras.src.backend import config
    except ImportError as err:
        raise _missing("keras.src.backend.config.keras_home", err) from None
    return _get(config, "keras_home", "keras.src.backend.config.keras_home")()
