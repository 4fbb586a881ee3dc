"""Models that compute in float16 or bfloat16: which dtypes they use, and their float32 twin.

`fuse` checks the folds of such a model on two copies that compute in float32
(`float32_twin`), where a wrong fold cannot hide in the rounding of a low-precision dtype.
"""

from helpers.fusion.surgery import all_layers, nested_graph

import numpy as np

__all__ = [
    "LOW_PRECISION",
    "NoTwin",
    "compute_dtypes",
    "float32_twin",
    "low_layers",
    "low_precision",
    "policy_name",
]


#: The float dtypes below float32 that a Keras dtype policy computes or stores weights in.
LOW_PRECISION = ("float16", "bfloat16")


def low_layers(model):
    """The layers of `model` (nested ones too) that store their weights in float16 or bfloat16."""
    return [
        layer
        for layer in all_layers(model)
        if layer.variable_dtype in LOW_PRECISION and layer.weights
    ]


def policy_name(layer):
    policy = layer.dtype_policy
    return getattr(policy, "name", str(policy))


def low_precision(model):
    """The dtypes below float32 that `model`'s layers compute or store weights in, sorted."""
    found = {v.dtype for v in model.weights} & set(LOW_PRECISION)
    for layer in all_layers(model):
        found.update({layer.compute_dtype, layer.variable_dtype} & set(LOW_PRECISION))
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
    dtype = "float32" if tensor.dtype in LOW_PRECISION else tensor.dtype
    import keras

    return keras.Input(batch_shape=tensor.shape, dtype=dtype, name=tensor.name)


class NoTwin(Exception):
    """`float32_twin` cannot copy a model so; the message names the layer and why."""


def float32_twin(model):
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
        NoTwin: a layer cannot be rebuilt so: a nested subclassed model, or a layer other
            than Lambda whose config does not rebuild it.
    """
    import keras

    made = {}  # id(layer) -> its copy, so a layer shared by nested models stays shared

    def rebuild(layer):
        if id(layer) in made:
            return made[id(layer)]
        if not isinstance(layer, keras.layers.Layer):
            return layer  # an operation on tensors (x + 3.0): no weights, no dtype policy
        what = f"'{layer.name}' ({type(layer).__name__})"
        if isinstance(layer, keras.Model) and layer is not model and nested_graph(layer) is None:
            raise NoTwin(f"{what} is a model whose layer graph cannot be read")
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
        except NoTwin:
            raise
        except Exception as err:
            raise NoTwin(f"{what} cannot be rebuilt from its config") from err
        made[id(layer)] = copy
        return copy

    twin = rebuild(model)
    for layer in all_layers(twin):
        # The dtype policies of a Sequential or functional model and of an InputLayer cast
        # nothing: a Sequential converts its inputs to its InputLayer's dtype, a functional
        # model leaves them to its layers. What counts there is the dtype of the inputs.
        if isinstance(layer, keras.Model):
            dtypes = {t.dtype for t in layer.inputs}
        elif isinstance(layer, keras.layers.InputLayer):
            continue
        else:
            dtypes = {layer.compute_dtype, layer.variable_dtype}
        if dtypes & set(LOW_PRECISION):
            raise NoTwin(
                f"'{layer.name}' ({type(layer).__name__}) still computes in "
                f"{' and '.join(sorted(dtypes & set(LOW_PRECISION)))} when rebuilt in float32"
            )
    if [(w.shape, w.dtype) for w in twin.weights] != [
        (w.shape, "float32" if "float" in w.dtype else w.dtype) for w in model.weights
    ]:
        raise NoTwin("its float32 copy does not have the same weights")
    twin.set_weights(
        [w.astype(np.float32) if "float" in w.dtype.name else w for w in model.get_weights()]
    )
    return twin


def compute_dtypes(model):
    """For each of ``model.weights``, the dtype of the layer that computes with it."""
    owner = {}
    for layer in all_layers(model):
        for v in layer.weights:  # deeper layers come later and win
            owner[id(v)] = layer.compute_dtype
    return [owner.get(id(v), v.dtype) for v in model.weights]
