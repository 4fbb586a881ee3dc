"""Timing inference fairly: Keras models traced once, and callables timed interleaved.

Used by chapter 06 and ``make bench`` to time a model before and after fusion.
"""

from helpers.book import checks

import numpy as np

__all__ = ["keras_inference_fn", "stored_bench", "stored_benchmark", "time_interleaved"]


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
    reps = checks.integer(reps, "reps", minimum=1)
    inner = checks.integer(inner, "inner", minimum=1)
    warmup = checks.integer(warmup, "warmup", minimum=0)
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


#: The stored results of ``make bench``: file stem -> what it measured.
BENCHES = {
    "latency": "inference latency of the book's two models, before and after fusion (C3)",
    "networks": "inference latency of MobileNetV2, EfficientNetB0 and ResNet50 (C3)",
    "wall_time": "wall time to a target accuracy with and without BN (C6)",
}


def stored_bench(name):
    """The stored results of one part of ``make bench``, which ship inside the package.

    Args:
        name: a key of `BENCHES`: ``"latency"``, ``"networks"`` or ``"wall_time"``.

    Returns:
        ``(results, table)``: the parsed ``<name>.json`` and the Markdown of ``<name>.md``.

    Raises:
        ValueError: `name` is not a key of `BENCHES`.
        FileNotFoundError: the results were never stored (run ``make bench``).
    """
    import json
    from importlib import resources

    if name not in BENCHES:
        raise ValueError(f"name must be one of {', '.join(BENCHES)}, got {name!r}")
    folder = resources.files("helpers") / "bench"
    if not (folder / f"{name}.json").is_file():
        raise FileNotFoundError(
            f"helpers/bench/{name}.json is missing: run make bench to measure {BENCHES[name]}"
        )
    results = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return results, (folder / f"{name}.md").read_text(encoding="utf-8")


def stored_benchmark():
    """The results of the last ``make bench``, which ship inside the package.

    Chapter 06 shows them wherever it runs (Colab included): timings are measured by the
    benchmark, interleaved and repeated, not by the chapter.

    Returns:
        ``(results, table)``: the parsed ``latency.json`` and the Markdown table of
        ``latency.md``.
    """
    import json
    from importlib import resources

    folder = resources.files("helpers") / "bench"
    results = json.loads((folder / "latency.json").read_text(encoding="utf-8"))
    return results, (folder / "latency.md").read_text(encoding="utf-8")
