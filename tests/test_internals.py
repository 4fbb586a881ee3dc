"""helpers.internals: the one seam for private Keras and TensorFlow attributes.

Each internal of `INTERNALS` is used once here on the installed versions, then deleted with
monkeypatch to see the error: it names the attribute and the running Keras version, and no
caller turns it into a quiet "subclassed" or "left in place". A scan of the package's source
checks that no other module reads a private attribute or imports keras.src / tensorflow.python.
"""

import ast
import pathlib
import re

from helpers import fusion, internals
from helpers.fusion import plan

import keras
import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.usefixtures("seeded")

HELPERS = pathlib.Path(internals.__file__).parent


def _functional():
    inp = keras.Input((3,), name="x")
    h = keras.layers.Dense(4, name="dense")(inp)
    out = keras.layers.BatchNormalization(name="bn")(h)
    return keras.Model(inp, out, name="net")


def _sequential():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="seq")


def _raw_node(model):
    """A Keras Node of `model` (the contract test may touch internals; the package may not)."""
    return model.layers[-1]._inbound_nodes[0]


def _delete(monkeypatch, obj, name):
    """Delete `name` where it is defined: on the object, or on the class that defines it."""
    if name in getattr(obj, "__dict__", {}):
        monkeypatch.delattr(obj, name)
        return
    for cls in type(obj).__mro__ if not isinstance(obj, type) else obj.__mro__:
        if name in vars(cls):
            monkeypatch.delattr(cls, name)
            return
    raise AssertionError(f"{name} is defined nowhere on {obj!r}")


def _uninitialized_interpreter():
    return object.__new__(tf.lite.Interpreter)


# Each internal: (delete it, use it through helpers.internals).
CASES = {
    "keras.src.models.functional.Functional": (
        lambda mp, m: mp.delattr(
            __import__("keras.src.models.functional").src.models.functional, "Functional"
        ),
        lambda m: internals.functional_of(m),
    ),
    "keras.Sequential._functional": (
        lambda mp, m: _delete(mp, m["seq"], "_functional"),
        lambda m: internals.functional_of(m["seq"]),
    ),
    "Functional._nodes_by_depth": (
        lambda mp, m: _delete(mp, m["net"], "_nodes_by_depth"),
        lambda m: internals.graph_nodes(m["net"]),
    ),
    "Node.operation": (
        lambda mp, m: _delete(mp, m["node"], "operation"),
        lambda m: internals.graph_nodes(m["net"]),
    ),
    "Node.is_input": (
        lambda mp, m: _delete(mp, m["node"], "is_input"),
        lambda m: internals.graph_nodes(m["net"]),
    ),
    "Node.input_tensors": (
        lambda mp, m: _delete(mp, m["node"], "input_tensors"),
        lambda m: internals.graph_nodes(m["net"]),
    ),
    "Node.outputs": (
        lambda mp, m: _delete(mp, m["node"], "outputs"),
        lambda m: internals.graph_nodes(m["net"]),
    ),
    "Node.arguments": (
        lambda mp, m: _delete(mp, m["node"], "arguments"),
        lambda m: internals.graph_nodes(m["net"]),
    ),
    "KerasTensor._keras_history": (
        lambda mp, m: _delete(mp, m["net"].inputs[0], "_keras_history"),
        lambda m: internals.input_layer_name(m["net"].inputs[0]),
    ),
    "Operation._inbound_nodes": (
        lambda mp, m: _delete(mp, m["net"].layers[-1], "_inbound_nodes"),
        lambda m: internals.producer(m["net"].outputs[0]),
    ),
    "tf.distribute.MirroredStrategy._collective_key_base": (
        lambda mp, m: _delete(mp, tf.distribute.MirroredStrategy, "_collective_key_base"),
        lambda m: internals.collective_key_base_class(10_000),
    ),
    "tf.lite.Interpreter._get_ops_details": (
        lambda mp, m: _delete(mp, tf.lite.Interpreter, "_get_ops_details"),
        lambda m: internals.tflite_op_names(_uninitialized_interpreter()),
    ),
    "keras.src.backend.config.keras_home": (
        lambda mp, m: mp.delattr(
            __import__("keras.src.backend.config").src.backend.config, "keras_home"
        ),
        lambda m: internals.keras_home(),
    ),
}


@pytest.fixture
def models():
    net = _functional()
    return {"net": net, "seq": _sequential(), "node": _raw_node(net)}


def test_every_internal_has_a_case_here():
    assert set(CASES) == set(internals.INTERNALS)


def test_each_internal_works_on_this_keras(models):
    net, seq = models["net"], models["seq"]
    assert internals.functional_of(net) is net
    assert internals.functional_of(seq) is not None
    assert internals.functional_of(keras.Sequential([keras.layers.Dense(2)])) is None
    nodes = internals.graph_nodes(net)
    assert [n.operation.name for n in nodes] == ["dense", "bn"]
    assert nodes[1].input_tensors[0] is nodes[0].outputs[0]
    assert nodes[1].kwargs.get("training") is None
    args, _ = nodes[1].fill_in({id(nodes[0].outputs[0]): "x"})
    assert args == ("x",)
    assert internals.input_layer_name(net.inputs[0]) == "x"
    assert internals.producer(net.outputs[0]).operation.name == "bn"
    cls = internals.collective_key_base_class(10_000)
    assert issubclass(cls, tf.distribute.MirroredStrategy) and cls._collective_key_base == 10_000
    assert callable(tf.lite.Interpreter._get_ops_details)
    assert isinstance(internals.keras_home(), str)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_missing_internal_is_an_error_naming_it_and_the_keras_version(name, models, monkeypatch):
    delete, use = CASES[name]
    delete(monkeypatch, models)
    with pytest.raises(internals.InternalsError) as info:
        use(models)
    message = str(info.value)
    assert name in message and f"keras {keras.__version__}" in message
    assert "helpers/internals.py" in message


@pytest.mark.parametrize("attribute", ["_nodes_by_depth", "_functional"])
def test_fuse_raises_instead_of_calling_a_model_subclassed(attribute, monkeypatch):
    model = _functional() if attribute == "_nodes_by_depth" else _sequential()
    _delete(monkeypatch, model, attribute)
    with pytest.raises(internals.InternalsError, match=attribute):
        fusion.fuse(model, n_random=4)


def test_fuse_raises_instead_of_leaving_a_nested_model_in_place(monkeypatch):
    inner = _functional()
    inp = keras.Input((3,))
    outer = keras.Model(inp, keras.layers.Dense(2)(inner(inp)))
    _delete(monkeypatch, inner, "_nodes_by_depth")
    with pytest.raises(internals.InternalsError, match="_nodes_by_depth"):
        fusion.fuse(outer, n_random=4)


def test_fuse_raises_when_a_producer_cannot_be_found(monkeypatch):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()]
    )
    model.layers[-1].set_weights([w + 0.5 for w in model.layers[-1].get_weights()])
    _delete(monkeypatch, model.layers[-1], "_inbound_nodes")
    with pytest.raises(internals.InternalsError, match="_inbound_nodes"):
        fusion.fuse(model, n_random=4)


@pytest.mark.parametrize("cls", list(plan._kinds()), ids=lambda c: c.__name__)
def test_each_public_layer_class_builds_layers_of_exactly_that_type(cls):
    """fuse folds into exact types only; a reshuffled hierarchy would fold nothing, quietly."""
    args = (1,) if cls.__name__.startswith(("Dense", "Depthwise")) else (1, 1)
    layer = cls(*args)
    assert type(layer) is cls and plan.linear_kind(layer)


def test_a_subclass_of_a_linear_layer_is_named_as_one():
    class MyDense(keras.layers.Dense):
        pass

    inp = keras.Input((3,))
    out = keras.layers.BatchNormalization()(MyDense(4, name="mine")(inp))
    _, report = fusion.fuse(keras.Model(inp, out), x=np.ones((2, 3), np.float32), n_random=0)
    assert report.records[0].action == "left in place"
    assert "'mine' (MyDense) before is a subclass of Dense" in report.records[0].reason


def _private_uses(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if (
                node.attr.startswith("__")
                or re.fullmatch(r"_repr_[a-z]+_", node.attr)
                or (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "os"))
            ):
                # own attributes, dunders, os._exit (public, if underscored) and IPython's
                # display protocol (_repr_html_ and its kin are the public way to ask an
                # object for its rich representation)
                continue
            yield node.lineno, ast.unparse(node)
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            if name.startswith(("keras.src", "tensorflow.python", "tensorflow.lite.python")):
                yield node.lineno, f"import {name}"


def test_no_module_but_the_seam_reads_a_private_attribute():
    found = [
        f"{path.relative_to(HELPERS.parent)}:{line}: {what}"
        for path in sorted(HELPERS.rglob("*.py"))
        if path.name != "internals.py"
        for line, what in _private_uses(path)
    ]
    assert not found, "private Keras/TensorFlow use outside helpers/internals.py:\n" + "\n".join(
        found
    )
