"""The networks of chapter 07: deep MLPs with and without Batch Normalization, seeded per layer.

* `MLPSpec` describes a network (depth, width, activation, initializer, BN placement, dropout,
  residual blocks with optional Fixup initialization) and refuses impossible combinations.
* `build_mlp` turns a spec into a Keras model that outputs logits. Each Dense layer it builds
  carries the role it plays (hidden, first or last layer of a residual branch, output), and
  `initialize_weights` draws every kernel from the initializer that role and the spec call for,
  seeded per layer, so the initial weights depend on the spec and the seed only.
* `fixup_scale` is the rescaling of Fixup (Zhang et al., 2019) for residual branches.

How these networks are trained is `helpers.training.runner`'s job.
"""

import dataclasses

from helpers import checks

import numpy as np

#: Placements of the BN layer in a hidden block (book, p. 343).
BN_PLACEMENTS = (None, "before", "after")

#: What a Dense layer of `build_mlp` does, which decides how `initialize_weights` starts it.
ROLES = ("hidden", "branch_start", "branch_end", "output")


def _keras_lookup(get, kind, value, examples):
    """Resolve `value` with Keras's `get` (activations, initializers), or say what is allowed."""
    try:
        get(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{kind}={value!r} is not a Keras {kind}; use e.g. {examples}") from err


@dataclasses.dataclass(frozen=True)
class MLPSpec:
    r"""What network to build: a deep multilayer perceptron, optionally residual.

    A plain MLP has `depth` hidden blocks, each ``Dense(width) -> activation``; with BN
    ``"after"`` a BN layer follows the activation (the book's first model, p. 341), with
    ``"before"`` the Dense layer drops its bias and BN sits between it and the activation (the
    book's second model, p. 343). Dropout, when set, follows each hidden block.

    A residual MLP (``residual=True``) has a stem ``Dense(width) -> activation`` and then
    `depth` residual blocks, each computing

    $$x \leftarrow \phi\big(x + W_2\,\phi(W_1 x + b_1) + b_2\big)$$

    with BN (when ``batch_norm="before"``) after each of the two Dense layers of the branch.
    ``fixup=True`` applies Fixup-style initialization (Zhang et al., 2019): the last layer of
    every residual branch and the output layer start at zero, and the inner layer's He
    initialization is scaled by $L^{-1/(2m-2)}$ ($L$ branches of $m=2$ layers), see
    `fixup_scale`.

    Args:
        depth: number of hidden blocks (plain) or residual blocks (residual), >= 1.
        width: units per hidden layer, >= 1.
        activation: a Keras activation name, e.g. ``"relu"``, ``"elu"``, ``"tanh"``,
            ``"sigmoid"``.
        initializer: a Keras initializer name for the hidden kernels (e.g. ``"he_normal"``),
            or a positive float meaning ``RandomNormal(mean=0, stddev=that float)``.
        batch_norm: None (no BN), ``"before"`` or ``"after"`` the activation.
        dropout: dropout rate after each hidden block of a plain MLP, in [0, 1).
        residual: build residual blocks instead of plain ones.
        fixup: Fixup-style initialization; needs ``residual=True`` and no BN.
        bn_epsilon: the ε of every BN layer, > 0, or None for Keras's default (1e-3); the
            book's typical value is 1e-5 (p. 340).

    Raises:
        ValueError: an argument is out of range, unknown to Keras, or the combination is not
            supported (the message says which and what to do).
    """

    depth: int = 10
    width: int = 64
    activation: str = "relu"
    initializer: object = "he_normal"
    batch_norm: object = None
    dropout: float = 0.0
    residual: bool = False
    fixup: bool = False
    bn_epsilon: object = None

    def __post_init__(self):
        import keras

        checks.integer(self.depth, "depth", minimum=1, hint="it is the number of hidden blocks")
        checks.integer(
            self.width, "width", minimum=1, hint="it is the number of units per hidden layer"
        )
        if not isinstance(self.activation, str):
            raise ValueError(
                "activation must be a Keras activation name such as 'relu', got "
                f"{self.activation!r}"
            )
        _keras_lookup(
            keras.activations.get,
            "activation",
            self.activation,
            "'relu', 'elu', 'tanh' or 'sigmoid'",
        )
        if checks.is_real(self.initializer):
            checks.positive(
                self.initializer, "initializer", hint="a number is the stddev of N(0, stddev)"
            )
        elif isinstance(self.initializer, str):
            _keras_lookup(
                keras.initializers.get,
                "initializer",
                self.initializer,
                "'he_normal', 'glorot_uniform', or a float stddev",
            )
        else:
            raise ValueError(
                "initializer must be a Keras initializer name or a float stddev, got "
                f"{self.initializer!r}"
            )
        if self.batch_norm not in BN_PLACEMENTS:
            raise ValueError(f"batch_norm must be one of {BN_PLACEMENTS}, got {self.batch_norm!r}")
        if not checks.is_real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a rate in [0, 1), got {self.dropout!r}")
        if not isinstance(self.residual, bool) or not isinstance(self.fixup, bool):
            raise ValueError("residual and fixup must be True or False")
        if self.fixup and not self.residual:
            raise ValueError("fixup=True needs residual=True: Fixup initializes residual branches")
        if self.fixup and self.batch_norm is not None:
            raise ValueError(
                "fixup=True replaces BN; set batch_norm=None (or fixup=False to compare with BN)"
            )
        if self.residual and self.batch_norm == "after":
            raise ValueError(
                "residual blocks put BN before the activation (ResNet style); use "
                "batch_norm='before' or None"
            )
        if self.bn_epsilon is not None:
            checks.positive(self.bn_epsilon, "bn_epsilon", hint="None keeps Keras's 1e-3")
            if self.batch_norm is None:
                raise ValueError(
                    "bn_epsilon is the ε of the BN layers, but batch_norm is None; set "
                    "batch_norm='before' or 'after', or leave bn_epsilon=None"
                )
        if self.residual and self.dropout:
            raise ValueError(
                "dropout is only supported in plain MLPs; set dropout=0 when residual=True"
            )

    @property
    def init_name(self):
        """The initializer as tables show it: its name, ``N(0,0.01)`` for a float, or ``Fixup``."""
        if self.fixup:
            return "Fixup"
        return (
            f"N(0,{self.initializer:g})" if checks.is_real(self.initializer) else self.initializer
        )

    @property
    def label(self):
        """A short readable name, e.g. ``'10x64 relu he_normal BN-before'``."""
        parts = [f"{self.depth}x{self.width}", self.activation, self.init_name]
        if self.residual:
            parts.insert(0, "res")
        parts.append(f"BN-{self.batch_norm}" if self.batch_norm else "no BN")
        if self.bn_epsilon is not None:
            parts.append(f"ε={self.bn_epsilon:g}")
        if self.dropout:
            parts.append(f"dropout {self.dropout:g}")
        return " ".join(parts)


def fixup_scale(n_branches, layers_per_branch=2):
    """The factor Fixup multiplies a residual branch's inner He-initialized weights by.

    With $L$ residual branches of $m$ layers each, Fixup scales the standard initialization of
    the inner layers by

    $$L^{-1/(2m-2)},$$

    so that, with the branch's last layer at zero, the sum of the branches' contributions to
    the output stays of order one however deep the network is.

    Args:
        n_branches: number of residual branches $L$, >= 1.
        layers_per_branch: layers per branch $m$, >= 2.

    Returns:
        The scale factor, a float in (0, 1].

    Raises:
        ValueError: `n_branches` < 1 or `layers_per_branch` < 2.
    """
    checks.integer(n_branches, "n_branches", minimum=1)
    checks.integer(
        layers_per_branch, "layers_per_branch", minimum=2, hint="Fixup's exponent divides by 2m-2"
    )
    return float(n_branches) ** (-1.0 / (2 * layers_per_branch - 2))


def _initializer(spec_init, seed, scale=1.0):
    """A fresh, explicitly seeded Keras initializer (so weights depend on `seed` only)."""
    import keras

    if checks.is_real(spec_init):
        return keras.initializers.RandomNormal(
            mean=0.0, stddev=float(spec_init) * scale, seed=seed
        )
    init = keras.initializers.get(spec_init)
    if scale != 1.0:
        if not isinstance(init, keras.initializers.VarianceScaling):
            raise ValueError(
                f"initializer={spec_init!r} cannot be rescaled for Fixup; use a variance-scaling "
                "one such as 'he_normal'"
            )
        return keras.initializers.VarianceScaling(  # weights x c  <=>  variance x c**2
            scale=init.scale * scale**2, mode=init.mode, distribution=init.distribution, seed=seed
        )
    config = init.get_config()
    if "seed" in config:
        config["seed"] = seed
    return type(init).from_config(config)


def _kernel_plan(model, spec):
    """Name of every Dense layer -> how its kernel starts: ``(initializer, fixup scale)``.

    The role of each layer was recorded by `build_mlp` when it built the layer.
    """
    plan = {}
    for layer in model.layers:
        if layer.__class__.__name__ != "Dense":
            continue
        role = getattr(layer, "init_role", None)
        if role not in ROLES:
            raise ValueError(
                f"layer {layer.name!r} has no initialization role, so the model was not built by "
                "build_mlp; build it with build_mlp(spec, ...)"
            )
        if role == "output":
            plan[layer.name] = ("zeros" if spec.fixup else "glorot_uniform", 1.0)
        elif role == "branch_end" and spec.fixup:
            plan[layer.name] = ("zeros", 1.0)
        elif role == "branch_start" and spec.fixup:
            plan[layer.name] = (spec.initializer, fixup_scale(spec.depth))
        else:
            plan[layer.name] = (spec.initializer, 1.0)
    return plan


def _dropout_seed(seed, i):
    """The seed of the `i`-th dropout layer (from 1) of a network initialized with `seed`."""
    return 10_000 * int(seed) + 5_000 + i


def initialize_weights(model, spec, seed):
    r"""Give a model built by `build_mlp` the initial weights that `spec` and `seed` prescribe.

    The $j$-th Dense kernel is drawn from its initializer seeded with ``10_000 * seed + j``
    (hidden layers: ``spec.initializer``; output layer: Glorot uniform; with Fixup, zeros for
    the output layer and for the last layer of every residual branch, and the inner layers'
    initializer scaled by `fixup_scale`). Biases start at 0; BN starts as the identity
    ($\gamma = 1$, $\beta = 0$, moving mean 0, moving variance 1); the $k$-th dropout layer's
    masks restart from seed ``10_000 * seed + 5_000 + k``. Because every value
    depends on `spec` and `seed` only, re-initializing a model gives exactly the weights a
    freshly built one would have.

    Args:
        model: a model returned by `build_mlp` (for the same architecture as `spec`).
        spec: the `MLPSpec` whose initialization to apply.
        seed: non-negative integer.

    Returns:
        The model, re-initialized in place.

    Raises:
        ValueError: `seed` is not a non-negative integer, or `model` does not have the layers
            `spec` describes.
    """
    checks.seed(seed)
    plan = _kernel_plan(model, spec)
    expected = spec.depth * (2 if spec.residual else 1) + (2 if spec.residual else 1)
    if len(plan) != expected:
        raise ValueError(
            f"model has {len(plan)} Dense layers but spec {spec.label!r} describes {expected}; "
            "build the model with build_mlp(spec, ...)"
        )
    j = k = 0
    for layer in model.layers:
        kind = layer.__class__.__name__
        if kind == "Dense":
            init_name, scale = plan[layer.name]
            init = _initializer(init_name, 10_000 * int(seed) + j, scale)
            layer.kernel.assign(init(tuple(layer.kernel.shape), dtype="float32"))
            if layer.bias is not None:
                layer.bias.assign(np.zeros(layer.bias.shape, dtype=np.float32))
            j += 1
        elif kind == "BatchNormalization":
            for var, value in (
                (layer.gamma, 1.0),
                (layer.beta, 0.0),
                (layer.moving_mean, 0.0),
                (layer.moving_variance, 1.0),
            ):
                var.assign(np.full(var.shape, value, dtype=np.float32))
        elif kind == "Dropout":  # the masks restart from the seed a fresh build gives the layer
            k += 1
            state = layer.seed_generator.state
            state.assign(np.array([_dropout_seed(seed, k), 0], dtype=state.dtype))
    return model


def build_mlp(spec, input_dim, n_classes=10, seed=42):
    """Build the network a `MLPSpec` describes; it outputs logits.

    The initial weights are set by `initialize_weights`, so the same spec and seed always
    give the same weights, whatever was built before.

    Args:
        spec: an `MLPSpec`.
        input_dim: number of input features (784 for flattened Fashion-MNIST), >= 1.
        n_classes: number of output logits, >= 2.
        seed: non-negative integer for the initial weights (and the dropout masks).

    Returns:
        A `keras.Model` mapping ``(batch, input_dim)`` to ``(batch, n_classes)`` logits.

    Raises:
        ValueError: `spec` is not an `MLPSpec`, or a size or the seed is invalid.
    """
    import keras
    from keras import layers

    if not isinstance(spec, MLPSpec):
        raise ValueError(f"spec must be an MLPSpec, got {type(spec).__name__}")
    checks.integer(input_dim, "input_dim", minimum=1)
    checks.integer(n_classes, "n_classes", minimum=2)
    checks.seed(seed)
    act, bn = spec.activation, spec.batch_norm
    bn_args = {} if spec.bn_epsilon is None else {"epsilon": float(spec.bn_epsilon)}

    def dense(units, role, use_bias=True, activation=None, name=None):
        # zeros for now: initialize_weights() sets the real values, seeded per layer.
        layer = layers.Dense(
            units, activation=activation, use_bias=use_bias, name=name, kernel_initializer="zeros"
        )
        layer.init_role = role
        return layer

    inputs = keras.Input((input_dim,), name="pixels")
    x = inputs
    if not spec.residual:
        for i in range(1, spec.depth + 1):
            if bn == "before":
                x = dense(spec.width, "hidden", use_bias=False, name=f"dense_{i}")(x)
                x = layers.BatchNormalization(name=f"bn_{i}", **bn_args)(x)
                x = layers.Activation(act, name=f"act_{i}")(x)
            else:
                x = dense(spec.width, "hidden", activation=act, name=f"dense_{i}")(x)
                if bn == "after":
                    x = layers.BatchNormalization(name=f"bn_{i}", **bn_args)(x)
            if spec.dropout:
                x = layers.Dropout(spec.dropout, seed=_dropout_seed(seed, i), name=f"dropout_{i}")(
                    x
                )
    else:
        x = dense(spec.width, "hidden", activation=act, name="stem")(x)
        for i in range(1, spec.depth + 1):
            h = dense(spec.width, "branch_start", use_bias=bn is None, name=f"block{i}_dense_a")(x)
            if bn:
                h = layers.BatchNormalization(name=f"block{i}_bn_a", **bn_args)(h)
            h = layers.Activation(act, name=f"block{i}_act_a")(h)
            h = dense(spec.width, "branch_end", use_bias=bn is None, name=f"block{i}_dense_b")(h)
            if bn:
                h = layers.BatchNormalization(name=f"block{i}_bn_b", **bn_args)(h)
            x = layers.Add(name=f"block{i}_add")([x, h])
            x = layers.Activation(act, name=f"block{i}_act_out")(x)
    output_layer = layers.Dense(n_classes, name="logits")
    output_layer.init_role = "output"
    outputs = output_layer(x)
    model = keras.Model(inputs, outputs, name="mlp")
    return initialize_weights(model, spec, seed)


#: The hidden layers of the book's Fashion-MNIST network (pp. 342-343).
BOOK_HIDDEN_UNITS = (300, 100)


def book_model(placement="after", use_bias=None):
    """The book's Fashion-MNIST network with BN, declared the Keras 3 way (``keras.Input``).

    With ``placement="after"`` it is the model of p. 342: BN after ``Flatten`` and after each
    hidden ``Dense(activation="elu")``. With ``"before"`` it is the model of p. 343: each
    hidden ``Dense`` (without bias by default) is followed by BN and then a separate
    ``Activation("elu")``. The layers are the book's; only ``Flatten(input_shape=[28, 28])``
    becomes ``keras.Input(shape=[28, 28])`` and ``Flatten()``, which is not in
    ``model.layers``, so the first BN layer is still ``model.layers[1]``.

    Args:
        placement: ``"after"`` or ``"before"`` the activation.
        use_bias: whether the hidden ``Dense`` layers have a bias; None means the book's
            choice (True after, False before the activation).

    Returns:
        An uncompiled ``keras.Sequential`` model.

    Raises:
        ValueError: `placement` is not ``"after"`` or ``"before"``, or `use_bias` is not None
            or a bool.
    """
    import keras

    if placement not in ("after", "before"):
        raise ValueError(f"placement must be 'after' or 'before', got {placement!r}.")
    if use_bias is not None and not isinstance(use_bias, bool):
        raise ValueError(f"use_bias must be None, True or False, got {use_bias!r}.")
    if use_bias is None:
        use_bias = placement == "after"
    layers = [keras.Input(shape=[28, 28]), keras.layers.Flatten()]
    layers.append(keras.layers.BatchNormalization())
    for units in BOOK_HIDDEN_UNITS:
        if placement == "after":
            layers.append(
                keras.layers.Dense(
                    units, activation="elu", kernel_initializer="he_normal", use_bias=use_bias
                )
            )
            layers.append(keras.layers.BatchNormalization())
        else:
            layers.append(
                keras.layers.Dense(units, kernel_initializer="he_normal", use_bias=use_bias)
            )
            layers.append(keras.layers.BatchNormalization())
            layers.append(keras.layers.Activation("elu"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.models.Sequential(layers)
