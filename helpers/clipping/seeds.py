"""The same clipped training over several seeds, each seed's steps logged to TensorBoard."""

from helpers import checks
from helpers.clipping.recording import GradientNormModel
from helpers.clipping.tensorboard import TensorBoardScalars
from helpers.runtime.session import setup

import keras


def fit_seeds(build, optimizer, seeds, logdir, **fit_kwargs):
    """Train one network once per seed, watching its gradients, with one traced training step.

    The model is ``GradientNormModel(build())``, compiled once with `optimizer()` and a
    cross-entropy loss. Before each seed's `fit`, everything a fresh run would start from is
    restored: ``keras.utils.set_random_seed(seed)``, the weights of a freshly built ``build()``,
    and the optimizer's initial state (step counter and slots). Each run is therefore
    bit-identical to ``helpers.setup(seed)`` followed by building, compiling and fitting a new
    model (the unit tests check this); sharing the compiled model only saves the tracing of the
    training step, which costs more than a short run itself.

    Args:
        build: a function returning a new, uncompiled Keras model.
        optimizer: a function returning a new Keras optimizer (with its clipping arguments).
        seeds: the seeds, non-negative integers.
        logdir: a function ``seed -> folder`` for that run's `TensorBoardScalars` event files.
        **fit_kwargs: passed to ``fit`` (``x``, ``y``, ``epochs``, ``batch_size``,
            ``validation_data``, ...); ``verbose`` is 0 unless given.

    Returns:
        A dict ``{seed: (history, weights)}``: the `History.history` dict of the run and the
        model's weights after it.

    Raises:
        ValueError: `seeds` is empty or holds something other than a non-negative integer, or
            `build`, `optimizer` or `logdir` is not callable.
    """
    seeds = list(seeds)
    if not seeds or not all(checks.is_int(s) and s >= 0 for s in seeds):
        raise ValueError(
            f"seeds must be a non-empty list of non-negative integers, got {seeds!r}."
        )
    for name, fn in (("build", build), ("optimizer", optimizer), ("logdir", logdir)):
        if not callable(fn):
            raise ValueError(f"{name} must be a function, got {type(fn).__name__}.")
    fit_kwargs.setdefault("verbose", 0)
    setup(int(seeds[0]))
    model = GradientNormModel(build())
    model.compile(
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], optimizer=optimizer()
    )
    model.optimizer.build(model.trainable_variables)
    start = [v.numpy() for v in model.optimizer.variables]
    runs = {}
    for seed in seeds:
        keras.utils.set_random_seed(int(seed))
        model.inner.set_weights(build().get_weights())
        for var, value in zip(model.optimizer.variables, start):
            var.assign(value)
        history = model.fit(callbacks=[TensorBoardScalars(logdir(seed))], **fit_kwargs)
        runs[seed] = (history.history, model.get_weights())
    return runs
